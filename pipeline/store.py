"""Content-addressed blob store: every unique blob is kept once, under its sha256.

Blobs are written through a ``BlobWriter`` that hashes while it writes (one
pass, constant memory), then renamed into place and made read-only, so the
evidence is never altered after it is stored. Blobs are re-hashed before
they are used (``verify`` for the original before it is unpacked, the
analysis runner for each extracted blob before its first analysis): a blob
corrupted on disk is detected, never silently used.

``BlobStore`` is the interface; ``LocalBlobStore`` keeps blobs on a local or
shared filesystem; an S3-compatible backend would implement the same methods
(none is written yet).
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1 << 20
HOLE_MIN = 64 * 1024  # shorter runs of zeros are written: a hole saves whole filesystem blocks only
_ZEROS = bytes(CHUNK)


class BlobCorrupted(Exception):
    """A stored blob no longer hashes to its name."""


class StoreFull(OSError):
    """The store's filesystem (or the lab's quota on it) is full: a fault of the installation, not of the image.

    Why a type of its own: readers record an OSError of a member as the image's problem ("could not read
    member"), which would blame a full disk on the evidence and end in a report that looks complete enough to
    trust. A full store must instead fail the submission with this reason, and let the others go on.
    """


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


@contextmanager
def _full_store_raised() -> Iterator[None]:
    """Turn a write that found no space into StoreFull."""
    try:
        yield
    except StoreFull:
        raise
    except OSError as exc:
        if exc.errno in _FULL:
            raise StoreFull(exc.errno, f"the evidence store is full: {exc.strerror}") from exc
        raise


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in chunks (constant memory whatever its size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class BlobWriter:
    """Streams bytes to a temporary file while hashing them.

    A piece of at least HOLE_MIN zero bytes is hashed and skipped over instead of written: the file gets a hole
    (reads give the same zeros, the hash is the same) and takes no disk. Why: erased flash, empty partitions and
    the holes of a sparse image are mostly zeros, and an image built to expand into gigabytes of them would
    otherwise cost that much disk before the bytes budget stops it.
    """

    def __init__(self, handle: BinaryIO, temp_path: Path) -> None:
        self._handle = handle
        self.temp_path = temp_path
        self._hash = hashlib.sha256()
        self.size = 0
        self._ends_in_hole = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        with _full_store_raised():
            if _all_zeros(data):
                self._handle.seek(len(data), os.SEEK_CUR)
                self._ends_in_hole = True
            else:
                self._handle.write(data)
                self._ends_in_hole = False
        self._hash.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def flush(self) -> None:
        with _full_store_raised():
            if self._ends_in_hole:  # a hole at the end is no byte of the file until its length says so
                self._handle.truncate(self.size)
            self._handle.flush()


def _all_zeros(data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` is a piece of zeros worth a hole (compared with memcmp: ~10 µs a MiB, at once on data)."""
    if not HOLE_MIN <= len(data) <= CHUNK or not isinstance(data, bytes | bytearray) or data[0] or data[-1]:
        return False
    return data == (_ZEROS if len(data) == CHUNK else bytes(len(data)))


class BlobStore(Protocol):
    """What the pipeline needs from a store, whatever keeps the bytes."""

    def writer(self) -> Iterator[BlobWriter]: ...
    def commit(self, writer: BlobWriter) -> str: ...
    def discard(self, writer: BlobWriter) -> None: ...
    def put_file(self, path: Path) -> str: ...
    def adopt(self, path: Path) -> str: ...
    def exists(self, sha256: str) -> bool: ...
    def path(self, sha256: str) -> Path: ...
    def verify(self, sha256: str) -> None: ...


class LocalBlobStore:
    """Blobs under ``root/blobs/ab/cd/<sha256>``, temporaries under ``root/tmp``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.tmp = self.root / "tmp"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._made_dirs: set[Path] = set()

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.blobs / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    @contextmanager
    def writer(self) -> Iterator[BlobWriter]:
        """A writer whose blob is committed by ``commit``; discarded if never committed."""
        with _full_store_raised():
            fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        temp_path = Path(name)
        try:
            with _full_store_raised(), os.fdopen(fd, "wb") as handle:
                yield BlobWriter(handle, temp_path)
        finally:
            temp_path.unlink(missing_ok=True)  # already gone when committed

    def commit(self, writer: BlobWriter) -> str:
        """Move the writer's bytes into place under their hash; a duplicate is dropped."""
        writer.flush()  # every byte is in the file before it becomes visible under its hash
        sha256 = writer.sha256
        final = self.path(sha256)
        if final.exists():
            writer.temp_path.unlink(missing_ok=True)
            return sha256
        if final.parent not in self._made_dirs:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(final.parent)
        os.chmod(writer.temp_path, 0o444)
        os.replace(writer.temp_path, final)
        return sha256

    def discard(self, writer: BlobWriter) -> None:
        writer.temp_path.unlink(missing_ok=True)

    def put_file(self, path: Path) -> str:
        """Copy a file into the store, streaming; returns its sha256."""
        with self.writer() as blob_writer, open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                blob_writer.write(chunk)
            return self.commit(blob_writer)

    def adopt(self, path: Path) -> str:
        """Move a scratch file (on the store's filesystem) into the store without copying it."""
        sha256 = file_sha256(path)
        final = self.path(sha256)
        if final.exists():
            path.unlink()
            return sha256
        if final.parent not in self._made_dirs:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(final.parent)
        os.chmod(path, 0o444)
        os.replace(path, final)
        return sha256

    def verify(self, sha256: str) -> None:
        """Raise BlobCorrupted unless the blob is there and still hashes to its name."""
        try:
            actual = file_sha256(self.path(sha256))
        except FileNotFoundError:
            raise BlobCorrupted(f"blob {sha256} is missing from the store") from None
        if actual != sha256:
            raise BlobCorrupted(f"blob {sha256} is corrupted on disk (hashes to {actual})")
