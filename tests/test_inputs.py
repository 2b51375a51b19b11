"""What ``fwtriage scan`` accepts: one image, a folder, a manifest; every mistake named before any scan starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ingest import CaseMetadata
from pipeline.inputs import InputError, report_folder_names, scan_requests
from pipeline.scan import ScanRequest

DEFAULTS = CaseMetadata(case="OP-1", examiner="E. X.")


def _images(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())
        paths.append(path)
    return paths


def test_one_image_is_not_a_batch(tmp_path: Path) -> None:
    [image] = _images(tmp_path, "a.bin")
    requests, batch = scan_requests(image, DEFAULTS)
    assert (requests, batch) == ([ScanRequest(image, DEFAULTS)], False)


def test_a_folder_is_every_regular_visible_file_sorted(tmp_path: Path) -> None:
    a, b, _hidden = _images(tmp_path / "in", "b/2.bin", "a.bin", ".DS_Store")
    (tmp_path / "in" / "link.bin").symlink_to("/etc/passwd")
    requests, batch = scan_requests(tmp_path / "in", DEFAULTS)
    assert batch
    assert [r.image for r in requests] == [b, a]  # "a.bin" < "b/2.bin"
    assert all(r.metadata == DEFAULTS for r in requests)


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image"):
        scan_requests(tmp_path / "empty", DEFAULTS)


def test_a_manifest_gives_per_row_metadata_with_command_line_defaults(tmp_path: Path) -> None:
    first, second = _images(tmp_path / "dumps", "one.bin", "two.bin")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,case,exhibit,device,examiner\n"
                        f"dumps/one.bin,OP-9,S-1,phone A,\n{second},,S-2,,R. Y.\n")
    requests, batch = scan_requests(manifest, DEFAULTS)
    assert batch
    assert requests == [
        ScanRequest(first, CaseMetadata(case="OP-9", exhibit="S-1", device="phone A", examiner="E. X.")),
        ScanRequest(second, CaseMetadata(case="OP-1", exhibit="S-2", device=None, examiner="R. Y.")),
    ]


@pytest.mark.parametrize(("content", "message"), [
    ("case,exhibit\nOP,1\n", "no 'path' column"),
    ("path,exhibt\na.bin,1\n", "unknown columns exhibt"),
    ("path\na.bin\nmissing.bin\n", "manifest.csv line 3: .*missing.bin does not exist"),
    ("path\n\n", "no image listed"),
    ("path\n   \n", "line 2: the path is empty"),
    ("path\n", "no image listed"),
])
def test_a_bad_manifest_is_refused_with_its_line(tmp_path: Path, content: str, message: str) -> None:
    _images(tmp_path, "a.bin")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(content)
    with pytest.raises(InputError, match=message):
        scan_requests(manifest, DEFAULTS)


def test_a_manifest_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(b"path\n\xff\xfe.bin\n")
    with pytest.raises(InputError, match="not UTF-8"):
        scan_requests(manifest, DEFAULTS)


def test_report_folders_are_safe_and_distinct(tmp_path: Path) -> None:
    requests = [
        ScanRequest(tmp_path / "a.bin", CaseMetadata(exhibit="SEAL 1/2")),
        ScanRequest(tmp_path / "b.bin", CaseMetadata(exhibit="SEAL 1/2")),
        ScanRequest(tmp_path / "../..", CaseMetadata()),
        ScanRequest(tmp_path / "c.bin", CaseMetadata()),
    ]
    assert report_folder_names(requests) == ["SEAL_1_2", "SEAL_1_2-2", "image", "c.bin"]
