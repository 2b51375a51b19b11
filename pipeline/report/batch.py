"""The index of a batch: many images scanned into one folder, the riskiest first.

Why: a lab submits a seizure's worth of images at once, each report in its
own subfolder. The reviewer needs one page that says which report to open
first (index.html, same look as the reports, self-contained, links by
relative path so the folder can be copied or burnt to disc whole), and the
case officer a spreadsheet of the same rows (summary.csv). Cells of the CSV
come from the images and the submission form, so any that a spreadsheet
would run as a formula is neutralised.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipeline.ingest import utc_now
from pipeline.report.html import environment
from pipeline.report.view import VERDICT_LABELS, behaviour_endpoints, verdict_rank

INDEX_NAME = "index.html"
SUMMARY_NAME = "summary.csv"
REPORT_NAME = "report.html"
TOP_ENDPOINTS = 5
CSV_COLUMNS = ("verdict", "score", "case", "exhibit", "device", "examiner", "filename", "sha256", "behaviours",
               "endpoints", "countries", "summary", "report", "report_digest")
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (OWASP CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class BatchEntry:
    """One scanned image of a batch: its report, and its report folder relative to the batch folder (posix)."""

    report: Mapping[str, Any]
    folder: str

    @property
    def report_path(self) -> str:
        return f"{self.folder.rstrip('/')}/{REPORT_NAME}"

    @property
    def report_href(self) -> str:
        """The link to the report from index.html: the relative path, percent-encoded (names may hold ``#``)."""
        return quote(self.report_path)


def risk_order(report: Mapping[str, Any]) -> tuple:
    """Sort key, riskiest first: backdoor, suspicious, incomplete, clean; then score descending; then by exhibit
    and file name, so the order is stable from one run to the next."""
    submission = report["submission"]
    exhibit = submission.get("exhibit")
    return (verdict_rank(report["verdict"]["label"]), -report["verdict"]["score"], exhibit is None,
            (exhibit or "").casefold(), submission["filename"].casefold(), submission["sha256"])


def _ordered(entries: Iterable[BatchEntry]) -> list[BatchEntry]:
    return sorted(entries, key=lambda entry: risk_order(entry.report))


def write_index(entries: Iterable[BatchEntry], out_dir: Path) -> Path:
    """``out_dir/index.html``: verdict totals, then one row per image, riskiest first, linking to its report."""
    ordered = _ordered(entries)
    totals = Counter(entry.report["verdict"]["label"] for entry in ordered)
    labs = sorted({lab for entry in ordered if (lab := (entry.report.get("report") or {}).get("lab"))})
    rows = [(entry, behaviour_endpoints(entry.report)) for entry in ordered]
    html = environment().get_template("index.html.j2").render(
        rows=rows, totals=[(label, totals.get(label, 0)) for label in VERDICT_LABELS], labs=labs,
        built_at=utc_now(), top_endpoints=TOP_ENDPOINTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / INDEX_NAME
    path.write_text(html, encoding="utf-8")
    return path


def neutralise(cell: Any) -> Any:
    """A text cell a spreadsheet would evaluate (``=HYPERLINK(...)``, ``+86...``) prefixed with a quote."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell


def summary_row(entry: BatchEntry) -> dict[str, Any]:
    """One CSV row: ``behaviours`` is their number; ``endpoints`` and ``countries`` those the behaviours name."""
    report, submission = entry.report, entry.report["submission"]
    named = behaviour_endpoints(report)
    row = {
        "verdict": report["verdict"]["label"], "score": report["verdict"]["score"],
        "case": submission.get("case"), "exhibit": submission.get("exhibit"), "device": submission.get("device"),
        "examiner": submission.get("examiner"), "filename": submission["filename"], "sha256": submission["sha256"],
        "behaviours": len(report.get("behaviours") or []),
        "endpoints": "; ".join(endpoint for endpoint, _ in named),
        "countries": "; ".join(sorted({country for _, country in named if country})),
        "summary": report["verdict"]["summary"], "report": entry.report_path,
        "report_digest": report.get("report_digest"),
    }
    return {column: neutralise(value) for column, value in row.items()}


def write_summary_csv(entries: Iterable[BatchEntry], out_dir: Path) -> Path:
    """``out_dir/summary.csv`` (UTF-8, a header row), in the order of the index."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SUMMARY_NAME
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(summary_row(entry) for entry in _ordered(entries))
    return path

