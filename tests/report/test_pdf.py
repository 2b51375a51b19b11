"""The PDF of a report: a real PDF of several pages, from the print variant of the HTML."""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

from pipeline.report.pdf import write_pdf

_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


def page_count(pdf: bytes) -> int:
    """The ``/Type /Page`` objects, including those WeasyPrint packs into compressed object streams."""
    texts = [pdf]
    for stream in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            texts.append(zlib.decompress(stream.group(1)))
        except zlib.error:  # an image or font stream with another filter
            continue
    return sum(len(_PAGE_OBJECT.findall(text)) for text in texts)


def test_pdf_of_a_backdoor_report_has_several_pages(sample_report: dict[str, Any], tmp_path: Path) -> None:
    path = write_pdf(sample_report, tmp_path / "report.pdf")
    data = path.read_bytes()
    assert path == tmp_path / "report.pdf"
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert page_count(data) > 1

