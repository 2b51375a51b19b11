"""Reading rendered HTML back, as a browser would see it: tags with their attributes, and table rows as text."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

# Attributes through which a page can make a browser fetch or navigate.
URL_ATTRIBUTES = frozenset({"src", "href", "srcset", "action", "formaction", "poster", "data", "background",
                            "xlink:href", "manifest", "ping", "cite", "longdesc"})


@dataclass
class Tag:
    name: str
    attributes: dict[str, str | None]


class Page(HTMLParser):
    """Every start tag, every table row (cell texts) per table class, and the text of <style> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[Tag] = []
        self.rows: dict[str, list[list[str]]] = {}
        self.styles: list[str] = []
        self._tables: list[str] = []
        self._cells: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append(Tag(tag, attributes))
        if tag == "table":
            self._tables.append(attributes.get("class") or "")
        elif tag == "tr":
            self._cells = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "style":
            self._in_style = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._tables:
            self._tables.pop()
        elif tag in ("td", "th") and self._cell is not None and self._cells is not None:
            self._cells.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._cells is not None and self._tables:
            self.rows.setdefault(self._tables[-1], []).append(self._cells)
            self._cells = None
        elif tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_style:
            self.styles.append(data)


def read_page(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def urls(page: Page) -> list[tuple[str, str, str]]:
    """(tag, attribute, value) of every attribute that holds a URL."""
    return [(tag.name, name, value or "") for tag in page.tags for name, value in tag.attributes.items()
            if name in URL_ATTRIBUTES]
