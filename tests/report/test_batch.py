"""The batch index and summary: riskiest first, every link to an existing report, a CSV no spreadsheet runs."""

from __future__ import annotations

import copy
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from pipeline.report.batch import CSV_COLUMNS, BatchEntry, risk_order, write_index, write_summary_csv
from pipeline.scan import ScanOutcome
from tests.report.reading import read_page
from tests.report.samples import BY_VERDICT, SHOWCASE

BATCH = [BY_VERDICT["clean"][0], BY_VERDICT["incomplete"][0], SHOWCASE, BY_VERDICT["backdoor"][0]]


def _report(label: str, score: int, exhibit: str | None, filename: str = "fw.bin") -> dict[str, Any]:
    return {"verdict": {"label": label, "score": score, "summary": "s"},
            "submission": {"exhibit": exhibit, "filename": filename, "sha256": "0" * 64}}


def test_risk_order_puts_verdict_first_then_score_then_exhibit() -> None:
    reports = [_report("clean", 15, "A"), _report("incomplete", 0, "B"), _report("suspicious", 45, "C"),
               _report("backdoor", 70, "D"), _report("backdoor", 93, "E"), _report("backdoor", 70, "B"),
               _report("backdoor", 70, None), _report("clean", 0, "A", "a.bin")]
    ordered = [(r["verdict"]["label"], r["verdict"]["score"], r["submission"]["exhibit"])
               for r in sorted(reports, key=risk_order)]
    assert ordered == [("backdoor", 93, "E"), ("backdoor", 70, "B"), ("backdoor", 70, "D"), ("backdoor", 70, None),
                       ("suspicious", 45, "C"), ("incomplete", 0, "B"), ("clean", 15, "A"), ("clean", 0, "A")]


@pytest.fixture(scope="module")
def batch(sample_scans: Callable[[str], ScanOutcome], manifest: dict) -> tuple[list[BatchEntry], Path]:
    """Four scanned samples, each in its own folder under one batch folder (the session's reports folder)."""
    outcomes = [sample_scans(sample) for sample in BATCH]
    out_dir = outcomes[0].out_dir.parent
    return [BatchEntry(o.report, o.out_dir.relative_to(out_dir).as_posix()) for o in outcomes], out_dir


def test_index_lists_every_report_riskiest_first_with_working_links(batch: tuple[list[BatchEntry], Path]) -> None:
    entries, out_dir = batch
    index = write_index(entries, out_dir)
    assert index == out_dir / "index.html"
    page = read_page(index.read_text(encoding="utf-8"))
    links = [tag.attributes["href"] or "" for tag in page.tags if tag.name == "a"]
    expected = sorted(entries, key=lambda e: risk_order(e.report))
    assert [unquote(link) for link in links] == [entry.report_path for entry in expected]
    assert all((out_dir / unquote(link)).is_file() for link in links)
    rows = page.rows["index"][1:]
    assert [row[1] for row in rows] == [e.report["verdict"]["label"] for e in expected]
    assert rows[0][1] == "backdoor" and rows[-1][1] == "clean"
    showcase = next(row for row in rows if SHOWCASE in row[6])
    assert "collect.hgtx-data.cnCN" in showcase[8]
    totals = [tag.attributes.get("class") for tag in page.tags if tag.name == "div"]
    assert {"total--backdoor", "total--suspicious", "total--incomplete", "total--clean"} <= set(totals)
    assert not [(t.name, a, v) for t in page.tags for a, v in t.attributes.items()
                if a in ("src", "srcset") or (a == "href" and (v or "").startswith(("http", "//", "/", "file:")))]


def test_summary_csv_parses_back_in_index_order(batch: tuple[list[BatchEntry], Path]) -> None:
    entries, out_dir = batch
    path = write_summary_csv(entries, out_dir)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    expected = sorted(entries, key=lambda e: risk_order(e.report))
    assert [row["filename"] for row in rows] == [e.report["submission"]["filename"] for e in expected]
    for row, entry in zip(rows, expected, strict=True):
        report = entry.report
        assert row["verdict"] == report["verdict"]["label"] and int(row["score"]) == report["verdict"]["score"]
        assert row["sha256"] == report["submission"]["sha256"] and row["report_digest"] == report["report_digest"]
        assert row["exhibit"] == report["submission"]["exhibit"] and row["summary"] == report["verdict"]["summary"]
        assert int(row["behaviours"]) == len(report["behaviours"])
        assert (out_dir / row["report"]).is_file()
    showcase = next(row for row in rows if row["filename"] == SHOWCASE)
    assert showcase["endpoints"] == "203.0.113.7; backup.hgtx-data.cn; collect.hgtx-data.cn"
    assert showcase["countries"] == "CN"


def test_csv_cells_a_spreadsheet_would_run_are_neutralised(sample_report: dict[str, Any], tmp_path: Path) -> None:
    report = copy.deepcopy(sample_report)
    report["submission"].update(case="=HYPERLINK(\"http://x.invalid\",\"open\")", exhibit="+1+2", device="-3",
                                examiner="@SUM(A1)", filename="\tfw.bin")
    report["behaviours"][0]["endpoints"] = ["+8613800138000"]
    report["behaviours"] = report["behaviours"][:1]
    with write_summary_csv([BatchEntry(report, "one")], tmp_path).open(encoding="utf-8", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert row["case"] == "'=HYPERLINK(\"http://x.invalid\",\"open\")"
    assert (row["exhibit"], row["device"], row["examiner"], row["filename"]) == ("'+1+2", "'-3", "'@SUM(A1)",
                                                                                  "'\tfw.bin")
    assert row["endpoints"] == "'+8613800138000"
    assert row["verdict"] == "backdoor" and row["report"] == "one/report.html"


def test_index_escapes_names_and_encodes_links(sample_report: dict[str, Any], tmp_path: Path) -> None:
    report = copy.deepcopy(sample_report)
    report["submission"]["filename"] = "<script>alert(1)</script>.bin"
    folder = tmp_path / "seal #7 <a>"
    folder.mkdir()
    (folder / "report.html").write_text("report")
    html = write_index([BatchEntry(report, folder.name)], tmp_path).read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;.bin" in html
    link = next(t.attributes["href"] for t in read_page(html).tags if t.name == "a")
    assert link == "seal%20%237%20%3Ca%3E/report.html" and (tmp_path / unquote(link)).is_file()
