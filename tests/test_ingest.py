"""Ingest hashes the original three ways in one pass and stores it read-only; custody re-verification sees any
change to the stored copy."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

from pipeline.ingest import CaseMetadata, ingest, verify_custody
from pipeline.store import LocalBlobStore

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _image(tmp_path: Path, size: int = 3 * (1 << 20) + 17) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / "dump.bin"
    path.write_bytes(data)
    return path, data


def test_ingest_hashes_stores_read_only_and_records_the_metadata(tmp_path: Path, store: LocalBlobStore) -> None:
    path, data = _image(tmp_path)
    submission = ingest(path, store, CaseMetadata(case="OP-7", exhibit="S-12", device="mini phone", examiner="A. B."))
    assert (submission.md5, submission.sha1, submission.sha256) == (
        hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(), hashlib.sha256(data).hexdigest())
    assert (submission.filename, submission.size) == ("dump.bin", len(data))
    assert (submission.case, submission.exhibit, submission.device, submission.examiner) == (
        "OP-7", "S-12", "mini phone", "A. B.")
    assert RFC3339_UTC.match(submission.received_at)
    stored = store.path(submission.sha256)
    assert stored.read_bytes() == data
    assert stat.S_IMODE(stored.stat().st_mode) & 0o222 == 0


def test_two_ingests_of_one_image_are_two_submissions_of_one_blob(tmp_path: Path, store: LocalBlobStore) -> None:
    path, _ = _image(tmp_path, 1000)
    first, second = ingest(path, store), ingest(path, store)
    assert first.id != second.id
    assert first.sha256 == second.sha256
    assert len(list(store.blobs.rglob("*"))) == 3  # two fan-out folders and one blob


def test_custody_is_intact_until_the_stored_copy_changes(tmp_path: Path, store: LocalBlobStore) -> None:
    path, _ = _image(tmp_path, 4096)
    submission = ingest(path, store)
    custody = verify_custody(store, submission)
    assert custody.intact and custody.sha256 == submission.sha256 and custody.md5 == submission.md5
    stored = store.path(submission.sha256)
    stored.chmod(0o644)
    with open(stored, "r+b") as handle:
        handle.seek(100)
        handle.write(b"X")
    tampered = verify_custody(store, submission)
    assert not tampered.intact
    assert tampered.sha256 != submission.sha256


def test_custody_of_a_vanished_copy_is_not_intact(tmp_path: Path, store: LocalBlobStore) -> None:
    path, _ = _image(tmp_path, 100)
    submission = ingest(path, store)
    store.path(submission.sha256).unlink()
    assert verify_custody(store, submission).intact is False
