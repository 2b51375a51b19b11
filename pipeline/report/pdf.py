"""The report as a PDF, for case files and for reviewers who sign on paper.

Why WeasyPrint on the HTML report: one layout to maintain, and WeasyPrint
implements the paged-media CSS the report relies on (page x of y, the report
id on every page, page numbers in the contents). It renders the print
variant, every collapsible section open, and is given a URL fetcher that
refuses every URL: the report references nothing outside itself, and a PDF
renderer must never reach the network or the disk on behalf of text taken
from an image.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from weasyprint import HTML, URLFetcher

from pipeline.report.html import render_html

# WeasyPrint logs each CSS property it does not implement (screen-only rules such as grid gaps or
# -webkit- prefixes) as a warning: noise in a CLI run, not a problem of the PDF.
logging.getLogger("weasyprint").setLevel(logging.ERROR)
logging.getLogger("fontTools").setLevel(logging.ERROR)


def _document(report: Mapping[str, Any]) -> HTML:
    return HTML(string=render_html(report, for_print=True), url_fetcher=URLFetcher(allowed_protocols=()))


def write_pdf(report: Mapping[str, Any], path: Path) -> Path:
    """Render ``report`` to a PDF at ``path`` (replaced if present); returns ``path``."""
    _document(report).write_pdf(path)
    return path


def pdf_bytes(report: Mapping[str, Any]) -> bytes:
    """Render ``report`` to a PDF in memory (what the service sends)."""
    return _document(report).write_pdf()
