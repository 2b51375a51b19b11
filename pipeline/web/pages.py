"""Rendering the reviewers' pages: one Jinja2 environment, who may open which page, and the little shaping the
templates need.

Why autoescape on every template and no inline script: file names, exhibits and every string of a report come
from a seized device or from a form. Jinja2 escapes each value, and since the pages' only script is loaded from
``/static``, every page is sent (by ``pipeline.api.app``) with a ``Content-Security-Policy`` that forbids inline
scripts and handlers: an injection that slipped past the escaping would still not run.

Why the access rules are a table here: the navigation must offer exactly the pages the routes let a principal
open, so both read the same ``Access`` values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader

from pipeline import __version__
from pipeline.accounts import Principal
from pipeline.api.auth import current_session
from pipeline.report.html import dash, exact_size, hex_offset, short_size
from pipeline.review import CLAIM_DECISIONS, NOTE_LIMIT, VERDICTS
from pipeline.signin import WebSession
from pipeline.tables import ReviewStatus, Role, SubmissionState

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
CLAIM_BUTTONS = tuple(zip(CLAIM_DECISIONS, ("Confirm", "Dismiss"), strict=True))  # a decision's value, its button
DETAIL_CHARS = 240  # an audit entry's detail beyond this is cut in the tables (the API gives it whole)


@dataclass(frozen=True)
class Access:
    """Who may open a page: ``who`` says it in words (for the 403), ``admits`` decides."""

    who: str
    admits: Callable[[Principal], bool]


REVIEWERS = Access("reviewers", lambda p: p.role is Role.REVIEWER)
READERS = Access("lab users and reviewers", lambda p: p.role in (Role.LAB, Role.REVIEWER))
SUBMITTERS = Access("lab users and the reviewers of a lab",
                    lambda p: p.role in (Role.LAB, Role.REVIEWER) and p.lab_id is not None)
ADMINS = Access("admins", lambda p: p.role is Role.ADMIN)

# The navigation, in order; a principal's home page is the first entry it may open.
NAV: tuple[tuple[str, str, Access], ...] = (
    ("/queue", "Review queue", REVIEWERS),
    ("/submissions", "Submissions", READERS),
    ("/submit", "Submit", SUBMITTERS),
    ("/fleet", "Fleet", READERS),
    ("/endpoints", "Endpoints", READERS),
    ("/audit", "Audit log", ADMINS),
)


@dataclass(frozen=True)
class NavLink:
    href: str
    label: str
    current: bool


def home_of(principal: Principal) -> str:
    return next(path for path, _, access in NAV if access.admits(principal))


@dataclass(frozen=True)
class Pager:
    """Offset pagination of a listing; the links keep the listing's other query parameters."""

    total: int
    offset: int
    limit: int
    path: str
    params: tuple[tuple[str, str], ...]

    def url(self, offset: int) -> str:
        return f"{self.path}?{urlencode((*self.params, ('offset', str(offset))))}"

    @property
    def first(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last(self) -> int:
        return min(self.offset + self.limit, self.total)

    @property
    def previous(self) -> str | None:
        return self.url(max(0, self.offset - self.limit)) if self.offset > 0 else None

    @property
    def next(self) -> str | None:
        return self.url(self.offset + self.limit) if self.offset + self.limit < self.total else None


def pager(request: Request, total: int, offset: int, limit: int) -> Pager:
    params = tuple((key, value) for key, value in request.query_params.multi_items() if key != "offset" and value)
    return Pager(total, max(0, offset), limit, request.url.path, params)


def when(value: datetime | None) -> str:
    """Times on the pages are UTC, to the second, as in the audit log."""
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def detail_summary(detail: Mapping[str, Any]) -> str:
    """An audit entry's detail on one line: the fields that say something, cut at DETAIL_CHARS."""
    text = "; ".join(f"{key}: {value}" for key, value in detail.items() if value not in (None, "", [], {}))
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS - 1] + "…"


def numbered_findings(findings: Iterable[Mapping[str, Any]]
                      ) -> tuple[list[tuple[int, Mapping[str, Any]]], list[tuple[int, Mapping[str, Any]]]]:
    """The report's findings with their position (what a decision names), split into those that matter and the
    informational ones (shown collapsed: a rootfs has hundreds)."""
    numbered = list(enumerate(findings))
    return ([(p, f) for p, f in numbered if f["severity"] != "info"],
            [(p, f) for p, f in numbered if f["severity"] == "info"])


@functools.cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=when, detail_summary=detail_summary, dash=dash, exact_size=exact_size,
                       short_size=short_size, hex=hex_offset)
    env.globals.update(version=__version__, verdicts=VERDICTS, claim_buttons=CLAIM_BUTTONS, note_limit=NOTE_LIMIT,
                       review_statuses=[str(s) for s in ReviewStatus], states=[str(s) for s in SubmissionState],
                       final_states=(SubmissionState.DONE, SubmissionState.FAILED), Role=Role)
    return env


def render(request: Request, template: str, me: WebSession | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    """A page for the signed-in ``me`` (None: the sign-in page), with its header's navigation."""
    nav = [NavLink(path, label, request.url.path == path) for path, label, access in NAV
           if me is not None and access.admits(me.principal)]
    body = environment().get_template(template).render(me=me, nav=nav, **context)
    return HTMLResponse(body, status)  # the app adds the security headers to every answer


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The page of a refused or failed request, with the status kept (a script or a test can still act on it)."""
    return render(request, "error.html.j2", current_session(request), status, code=status, message=message)
