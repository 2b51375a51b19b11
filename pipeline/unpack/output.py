"""The one way an extractor hands over what it found in a container.

A format module never opens an output file itself: it gives each member's
(raw, untrusted) name and bytes to an ``Output``, which sanitises the name,
streams the bytes into the content-addressed store while hashing them,
enforces the image's quotas and the per-member expansion ratio, and records
symlinks, special files, errors and coverage. This is what makes a new format
safe by construction.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.model import ArtifactKind, IssueKind, NoteKind, Platform
from pipeline.store import CHUNK, BlobStore, BlobWriter, StoreFull
from pipeline.unpack.safety import Budget, MemberTooLarge, sanitise_member_name


@dataclass(frozen=True)
class Child:
    """A member produced by an extractor, before it becomes an Artifact."""

    name: str
    sha256: str
    size: int
    kind: ArtifactKind
    offset: int | None = None
    link_target: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputIssue:
    """An issue found in a container; ``member`` is None when it is about the container itself."""

    member: str | None
    error: str
    kind: IssueKind


@dataclass(frozen=True)
class OutputNote:
    member: str | None
    note: str
    kind: NoteKind

SHOWN_NAME = 512  # characters of an unsafe member name quoted in its note


class _MemberWriter:
    """Wraps a blob writer with the quota and ratio checks of one member."""

    def __init__(self, blob: BlobWriter, budget: Budget, ratio_cap: int | None) -> None:
        self._blob = blob
        self._budget = budget
        self._ratio_cap = ratio_cap

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._budget.add_bytes(len(data))
        self._blob.write(data)
        if self._ratio_cap is not None and self._blob.size > self._ratio_cap:
            raise MemberTooLarge(f"expands beyond {self._ratio_cap} bytes")
        self._budget.check_time()

    @property
    def size(self) -> int:
        return self._blob.size


class Output:
    """Collects the children, issues, notes and coverage of one container."""

    def __init__(
        self,
        store: BlobStore,
        budget: Budget,
        *,
        container_size: int,
        rooted: bool,
        max_ratio: float,
        ratio_floor: int,
    ) -> None:
        self._store = store
        self._budget = budget
        self._rooted = rooted
        self._max_ratio = max_ratio
        self._ratio_floor = ratio_floor
        self.container_size = container_size
        self.children: list[Child] = []
        self.issues: list[OutputIssue] = []
        self.notes: list[OutputNote] = []
        self.covered: list[tuple[int, int]] = []
        self.undecodable_ranges: list[tuple[int, int]] = []
        self.platform: Platform | None = None
        self.attributes: dict[str, Any] = {}  # facts about the container itself (a partition table...)
        self.store_full: StoreFull | None = None  # the lab's disk filled up: the submission fails, not the image

    # names -----------------------------------------------------------------

    def safe_name(self, raw: str | bytes) -> str:
        """Sanitise a member name, noting it when the archive's name was unsafe."""
        safe = sanitise_member_name(raw, rooted=self._rooted)
        if safe.changed:
            shown = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
            if len(shown) > SHOWN_NAME:  # a 64 KiB name times 200,000 members must not become gigabytes of notes
                shown = f"{shown[:SHOWN_NAME]}… ({len(shown)} characters)"
            self.note(safe.path, f"unsafe member name {shown!r} recorded as {safe.path!r}",
                      NoteKind.UNSAFE_NAME)
        return safe.path

    # members ---------------------------------------------------------------

    @contextmanager
    def member(
        self,
        raw_name: str | bytes,
        *,
        kind: ArtifactKind = ArtifactKind.FILE,
        offset: int | None = None,
        compressed_size: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Iterator[_MemberWriter]:
        """Write one member's bytes; a bomb or a failing member is recorded and skipped.

        ``compressed_size`` (the bytes the member occupies in the container)
        enables the expansion-ratio check. Quota exhaustion and time-outs
        propagate as ``ExtractionAborted`` so the walker stops this container.
        """
        name = self.safe_name(raw_name)
        self._budget.add_file()
        ratio_cap = None
        if compressed_size is not None:
            ratio_cap = max(int(compressed_size * self._max_ratio), self._ratio_floor)
        with self._store.writer() as blob:
            writer = _MemberWriter(blob, self._budget, ratio_cap)
            try:
                yield writer
            except MemberTooLarge as exc:
                self._store.discard(blob)
                self.error(f"decompression bomb stopped: {exc} (ratio limit {self._max_ratio:g}x)",
                           IssueKind.LIMIT, member=name)
                return
            except StoreFull as exc:
                self._store.discard(blob)
                self.store_full = exc  # kept: a reader's own catch-all may swallow it on its way out
                raise
            except (OSError, ValueError, EOFError) as exc:
                self._store.discard(blob)
                self.error(f"could not read member: {exc}", IssueKind.FAILURE, member=name)
                return
            sha256 = self._store.commit(blob)
        self.children.append(
            Child(name, sha256, writer.size, kind, offset, None, dict(attributes or {}))
        )

    def add_stream(
        self,
        raw_name: str | bytes,
        stream: BinaryIO,
        *,
        kind: ArtifactKind = ArtifactKind.FILE,
        offset: int | None = None,
        compressed_size: int | None = None,
        length: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        """Copy a readable stream (at most ``length`` bytes) into a new member."""
        with self.member(raw_name, kind=kind, offset=offset, compressed_size=compressed_size,
                         attributes=attributes) as writer:
            remaining = length
            while remaining is None or remaining > 0:
                want = CHUNK if remaining is None else min(CHUNK, remaining)
                chunk = stream.read(want)
                if not chunk:
                    break
                writer.write(chunk)
                if remaining is not None:
                    remaining -= len(chunk)

    def add_range(
        self,
        raw_name: str | bytes,
        handle: BinaryIO,
        offset: int,
        length: int,
        *,
        kind: ArtifactKind = ArtifactKind.CARVED,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        """Copy ``length`` bytes at ``offset`` of the container into a member, and cover them."""
        length = max(0, min(length, self.container_size - offset))
        handle.seek(offset)
        self.add_stream(raw_name, handle, kind=kind, offset=offset, length=length, attributes=attributes)
        self.cover(offset, length)

    def add_bytes(self, raw_name: str | bytes, data: bytes, **kwargs: Any) -> None:
        """A small member already in memory (a header field, a decoded table)."""
        self.add_stream(raw_name, io.BytesIO(data), **kwargs)

    def adopt_files(self, files: list[tuple[str, Path]]) -> None:
        """Take files an external tool wrote in the work directory, moving them into the store.

        Only for tools whose whole output was checked against the quotas
        beforehand (``fits``): the bytes are counted, not streamed. Files are
        hashed on every core (hashing releases the GIL), children kept in order.
        """
        sizes = []
        for _, path in files:
            self._budget.add_file()
            sizes.append(path.stat().st_size)
            self._budget.add_bytes(sizes[-1])
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            hashes = list(pool.map(self._store.adopt, [path for _, path in files]))
        for (raw_name, _), sha256, size in zip(files, hashes, sizes, strict=True):
            self.children.append(Child(self.safe_name(raw_name), sha256, size, ArtifactKind.FILE))

    def fits(self, files: int, total_bytes: int) -> bool:
        """True when this many more files and bytes stay within the image's quotas."""
        return (self._budget.written_files + files <= self._budget.max_files
                and total_bytes <= self._budget.remaining_bytes)

    def add_symlink(self, raw_name: str | bytes, target: str | bytes) -> None:
        """Record a symlink with its target; it is never followed."""
        name = self.safe_name(raw_name)
        shown = target.decode("utf-8", "backslashreplace") if isinstance(target, bytes) else target
        self._budget.add_file()
        self.children.append(Child(name, _EMPTY_SHA256, 0, ArtifactKind.SYMLINK, link_target=shown))
        if shown.startswith("/") or ".." in shown.split("/"):
            self.note(name, f"symlink to {shown!r} points outside its directory; not followed",
                      NoteKind.ESCAPING_LINK)

    def special_file(self, raw_name: str | bytes, what: str) -> None:
        """A device node, FIFO or socket: noted, never created."""
        self.note(self.safe_name(raw_name), f"{what} not extracted", NoteKind.SPECIAL_FILE)

    # bookkeeping -----------------------------------------------------------

    def error(self, error: str, kind: IssueKind, *, member: str | None = None) -> None:
        self.issues.append(OutputIssue(member, error, kind))

    def note(self, member: str | None, note: str, kind: NoteKind) -> None:
        self.notes.append(OutputNote(member, note, kind))

    def cover(self, offset: int, length: int) -> None:
        """Mark container bytes as reached by this extractor (structures and payloads)."""
        if length > 0:
            self.covered.append((offset, length))

    def undecodable(self, offset: int, length: int, reason: str) -> None:
        """Mark container bytes the extractor recognised but cannot decode, and say why."""
        if length > 0:
            self.undecodable_ranges.append((offset, length))
            self.error(f"{length} bytes at offset {offset:#x} not decoded: {reason}", IssueKind.UNDECODABLE)

    def set_platform(self, *, os: str | None = None, chipset: str | None = None, how: str) -> None:
        self.platform = Platform(os=os, chipset=chipset, how=how)

    def check_time(self) -> None:
        self._budget.check_time()


_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def ingest_directory(out: Output, directory: Path, *, adopt: bool = False) -> None:
    """Hand a directory written by an external tool (or a firmware folder) to ``out``.

    Walks without following symlinks and uses ``lstat``, so a symlink an
    extractor wrote is recorded as a symlink, and device nodes or FIFOs are
    noted, never opened. Names are taken relative to ``directory``. With
    ``adopt``, files are moved into the store instead of copied (a scratch
    directory whose size was checked beforehand).
    """
    adopted: list[tuple[str, Path]] = []
    for current, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        base = Path(current)
        for entry in sorted(files) + [d for d in dirs if (base / d).is_symlink()]:
            full = base / entry
            relative = full.relative_to(directory).as_posix()
            info = full.lstat()
            if stat.S_ISLNK(info.st_mode):
                out.add_symlink(relative, os.readlink(full))
            elif stat.S_ISREG(info.st_mode) and adopt:
                adopted.append((relative, full))
            elif stat.S_ISREG(info.st_mode):
                with open(full, "rb") as handle:
                    out.add_stream(relative, handle)
            else:
                out.special_file(relative, _special_kind(info.st_mode))
    if adopted:
        out.adopt_files(adopted)


def _special_kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device node"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"
