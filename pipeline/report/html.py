"""The report as one self-contained HTML file: what a reviewer opens first.

Why self-contained: reports travel on evidence media and are opened on
air-gapped review machines, so the file carries its own style and fetches
nothing (no stylesheet, script, font or image by URL). Why autoescape: every
name, string and excerpt shown comes from a criminal's device; Jinja2 escapes
each value, and the only markup built outside a template (``code_spans``)
escapes before it adds tags.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup, escape

from pipeline import __version__
from pipeline.report.build import DIGESTED
from pipeline.report.view import report_view

TEMPLATES = Path(__file__).with_name("templates")
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")
_CODE_SPAN = re.compile(r"``(.+?)``")
CONFIDENCE_STATEMENT = ("Confidence measures how strongly the evidence supports the pattern; "
                        "it is not a statement about intent.")


def hex_offset(offset: int | None) -> str:
    return "—" if offset is None else f"0x{offset:x}"


def short_size(size: int | None) -> str:
    """1,536 → "1.5 KiB": for tables where the exact count is one click away."""
    if size is None:
        return "—"
    value, unit = float(size), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{size} bytes" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def exact_size(size: int | None) -> str:
    """8388608 → "8,388,608 bytes (8.0 MiB)": the exact count a court can check, and its scale."""
    if size is None:
        return "—"
    scaled = short_size(size)
    return f"{size:,} bytes" + ("" if scaled.endswith(" bytes") else f" ({scaled})")


def dash(value: Any) -> Any:
    """A visible mark for a missing value, so a blank cell is never mistaken for an empty string."""
    return "—" if value is None or value == "" else value


def code_spans(text: str | None) -> Markup:
    """Docstring text with ``literal`` spans as <code>; escaped first, so no markup of the input survives."""
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(text or ""))))


@functools.cache
def environment() -> Environment:
    """The Jinja2 environment of every readable report (report, batch index): autoescaping, with our filters."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(hex=hex_offset, short_size=short_size, exact_size=exact_size, dash=dash,
                       code_spans=code_spans)
    script = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    # The page's only script, allowed by its hash: an injected inline script or handler would not run.
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    env.globals.update(fwtriage_version=__version__, confidence_statement=CONFIDENCE_STATEMENT, script=Markup(script),
                       content_policy=f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'")
    return env


def content_policy() -> str:
    """The report's Content-Security-Policy (in its own <meta>, and in the header when a server sends it)."""
    return str(environment().globals["content_policy"])


def render_html(report: Mapping[str, Any], *, for_print: bool = False) -> str:
    """The HTML report; ``for_print`` opens every collapsible section (for the PDF, which cannot click)."""
    return environment().get_template("report.html.j2").render(
        report=report, view=report_view(report), for_print=for_print, digested=DIGESTED)
