"""The content-addressed store: once per blob, read-only, corruption detected."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from pipeline.store import CHUNK, HOLE_MIN, BlobCorrupted, LocalBlobStore


def test_put_file_stores_under_sha256_read_only(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    source = tmp_path / "image.bin"
    source.write_bytes(b"firmware" * 1000)
    sha256 = store.put_file(source)
    assert sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    stored = store.path(sha256)
    assert stored.read_bytes() == source.read_bytes()
    assert not stat.S_IMODE(stored.stat().st_mode) & 0o222


def test_identical_blobs_are_stored_once(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(b"same bytes")
        store.put_file(tmp_path / name)
    blobs = [p for p in (tmp_path / "store" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1
    assert not list((tmp_path / "store" / "tmp").iterdir())


def test_uncommitted_writer_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    with store.writer() as writer:
        writer.write(b"partial")
    assert not list((tmp_path / "store" / "tmp").iterdir())
    assert not [p for p in (tmp_path / "store" / "blobs").rglob("*") if p.is_file()]


def test_corrupted_blob_is_detected_on_read(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    (tmp_path / "x").write_bytes(b"evidence")
    sha256 = store.put_file(tmp_path / "x")
    store.verify(sha256)
    path = store.path(sha256)
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    now = hashlib.sha256(b"tampered").hexdigest()
    with pytest.raises(BlobCorrupted, match=f"corrupted on disk \\(hashes to {now}\\)"):
        store.verify(sha256)
    path.unlink()
    with pytest.raises(BlobCorrupted, match="missing from the store"):
        store.verify(sha256)


def test_path_rejects_non_hashes(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


def test_writer_interrupted_by_an_exception_leaves_no_temporary(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    with pytest.raises(RuntimeError), store.writer() as writer:
        writer.write(b"half a bomb")
        raise RuntimeError("quota")
    assert not list((tmp_path / "store" / "tmp").iterdir())


@pytest.mark.parametrize("pieces", [
    [b"head", bytes(CHUNK), bytes(HOLE_MIN), b"tail"],  # zeros inside: holes, data around them
    [b"head", bytes(CHUNK), bytes(3 * HOLE_MIN)],  # zeros at the end: the file still has its length
    [bytes(CHUNK)] * 4,  # nothing but zeros
    [bytearray(CHUNK), b"\0" * (HOLE_MIN - 1), b"x"],  # a bytearray; a run too short for a hole is written
])
def test_runs_of_zeros_are_holes_that_read_back_as_zeros(tmp_path: Path, pieces: list[bytes]) -> None:
    store = LocalBlobStore(tmp_path / "store")
    data = b"".join(pieces)
    with store.writer() as writer:
        for piece in pieces:
            writer.write(piece)
        sha256 = store.commit(writer)
    path = store.path(sha256)
    assert sha256 == hashlib.sha256(data).hexdigest() and path.read_bytes() == data
    assert path.stat().st_blocks * 512 <= len(data) - CHUNK + 4096  # the MiB of zeros takes no disk
    store.verify(sha256)
