"""Android block-based OTA: ``system.transfer.list`` + ``system.new.dat[.br]`` → ``system.img``.

Full OTA packages (``update.zip``) since Android 5 ship each partition as a
transfer list (commands over 4096-byte block ranges) and the data its
``new`` commands write, in command order, often brotli-compressed. The
android-ota format reads the transfer list, takes the data from its sibling
member and rebuilds the partition image as one member, written front to
back: later commands win where ranges overlap, unwritten, ``zero`` and
``erase`` blocks are zeros. The android-ota-data format claims the data
files so they are not reported as undecodable blobs when their transfer
list is there, and says so when it is not.

Reference: AOSP ``bootable/recovery/updater/blockimg.cpp`` (transfer list
versions 1-4; range sets ``N,a,b,...`` of half-open block ranges) and
``build/make/tools/releasetools/blockimgdiff.py``.

Known limitations: incremental OTAs (``move``/``bsdiff``/``imgdiff``) need
the device's current partition and are reported unsupported; when the
``new`` data is not used in block order and is brotli-compressed it is
first spooled to a scratch file, refused beyond ``MAX_SCRATCH`` bytes or
the image's remaining quota; ``compute_hash_tree`` is ignored (the verity
tree is derived data).
"""

from __future__ import annotations

import heapq
import io
import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import brotli

from pipeline.model import IssueKind
from pipeline.store import CHUNK
from pipeline.unpack.format import Format, Source
from pipeline.unpack.formats._stream import READ, Writer
from pipeline.unpack.formats.android_sparse import write_fill
from pipeline.unpack.output import Output

BLOCK = 4096
LIST_SUFFIX = ".transfer.list"
DATA_SUFFIXES = (".new.dat.br", ".new.dat", ".patch.dat")
MAX_LIST = 16 << 20
MAX_RANGES = 1 << 18
MAX_SCRATCH = 4 << 30
INCREMENTAL = ("move", "bsdiff", "imgdiff")
IGNORED = ("stash", "free", "compute_hash_tree")


@dataclass(frozen=True)
class Write:
    """Blocks [start, end) set by one command: from new.dat at ``data`` (bytes), or zeros."""

    start: int
    end: int
    order: int
    data: int | None


@dataclass(frozen=True)
class TransferList:
    version: int
    writes: list[Write]
    new_bytes: int
    incremental: list[str]


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """``4,0,10,20,30`` → [(0, 10), (20, 30)]."""
    numbers = [int(field) for field in text.split(",")]
    if not numbers or numbers[0] != len(numbers) - 1 or numbers[0] % 2:
        raise ValueError(f"malformed range set {text[:60]!r}")
    pairs = list(zip(numbers[1::2], numbers[2::2], strict=True))
    if any(not 0 <= start < end < 1 << 32 for start, end in pairs):
        raise ValueError(f"bad block range in {text[:60]!r}")
    return pairs


def parse_transfer_list(text: str) -> TransferList:
    lines = text.splitlines()
    if not lines or not lines[0].strip().isdigit() or not 1 <= int(lines[0]) <= 4:
        raise ValueError("transfer list has no version 1-4 on its first line")
    version = int(lines[0])
    writes: list[Write] = []
    incremental: list[str] = []
    data = 0
    for line in lines[2 if version == 1 else 4 :]:
        op, _, args = line.strip().partition(" ")
        if not op or op in IGNORED:
            continue
        if op in INCREMENTAL:
            incremental.append(op)
            continue
        if op not in ("new", "zero", "erase"):
            raise ValueError(f"unknown transfer list command {op[:40]!r}")
        for start, end in parse_ranges(args.strip()):
            writes.append(Write(start, end, len(writes), data if op == "new" else None))
            if op == "new":
                data += (end - start) * BLOCK
        if len(writes) > MAX_RANGES:
            raise ValueError(f"transfer list has more than {MAX_RANGES} ranges")
    return TransferList(version, writes, data, incremental)


def visible_segments(writes: list[Write]) -> Iterator[Write]:
    """The block ranges as the device ends up with them, ascending: a later command wins an overlap."""
    bounds = sorted({w.start for w in writes} | {w.end for w in writes})
    starting: dict[int, list[Write]] = {}
    for write in writes:
        starting.setdefault(write.start, []).append(write)
    active: list[tuple[int, int, Write]] = []  # (-order, end, write): the latest command on top
    current: Write | None = None
    for here, following in itertools.pairwise(bounds):
        for write in starting.get(here, ()):
            heapq.heappush(active, (-write.order, write.end, write))
        while active and active[0][1] <= here:
            heapq.heappop(active)
        top = active[0][2] if active else None
        if top is None:
            continue
        data = None if top.data is None else top.data + (here - top.start) * BLOCK
        piece = Write(here, following, top.order, data)
        if current and current.order == piece.order and current.end == piece.start:
            current = Write(current.start, piece.end, current.order, current.data)
            continue
        if current:
            yield current
        current = piece
    if current:
        yield current


class BrotliReader:
    """A read-only stream over brotli-compressed bytes, decompressed in bounded pieces."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._decompressor = brotli.Decompressor()
        self._pending = b""

    def read(self, size: int) -> bytes:
        while not self._pending:
            if self._decompressor.is_finished():
                return b""
            data = b""
            if self._decompressor.can_accept_more_data():
                data = self._handle.read(READ)
                if not data:
                    raise EOFError("brotli stream is truncated")
            try:
                self._pending = self._decompressor.process(data, output_buffer_limit=CHUNK)
            except brotli.error as exc:  # not a ValueError: the Output would not record it as this member's
                raise ValueError(f"new data is not valid brotli: {exc}") from None
        piece, self._pending = self._pending[:size], self._pending[size:]
        return piece

    def seek(self, position: int) -> int:
        raise io.UnsupportedOperation("a brotli stream cannot seek")


class NewData:
    """The ``new`` data, read at increasing positions (or any position when seekable)."""

    def __init__(self, stream: BinaryIO | BrotliReader, seekable: bool, check: Callable[[], None]) -> None:
        self._stream = stream
        self._seekable = seekable
        self._check = check
        self.position = 0

    def pieces(self, length: int) -> Iterator[bytes]:
        """The next ``length`` bytes, in bounded pieces; EOFError if the data ends first."""
        while length > 0:
            self._check()
            data = self._stream.read(min(length, CHUNK))
            if not data:
                raise EOFError(f"new data ends {length} bytes early, at offset {self.position}")
            self.position += len(data)
            length -= len(data)
            yield data

    def copy(self, position: int, length: int, writer: Writer) -> None:
        if position != self.position:
            if self._seekable:
                self._stream.seek(position)
                self.position = position
            elif position < self.position:
                raise ValueError("new data needed out of order from a stream that cannot seek")
            for _ in self.pieces(position - self.position):
                pass
        for data in self.pieces(length):
            writer.write(data)


def _spool(reader: BrotliReader, path: Path, length: int, check: Callable[[], None]) -> None:
    """Decompress the first ``length`` bytes to a scratch file (only the bytes commands use)."""
    with open(path, "wb") as scratch:
        for data in NewData(reader, False, check).pieces(length):
            scratch.write(data)


def prefix_of(name: str, suffixes: tuple[str, ...]) -> str | None:
    lowered = name.lower()
    return next((name[: -len(s)] for s in suffixes if lowered.endswith(s) and len(name) > len(s)), None)


class AndroidOta(Format):
    name = "android-ota"
    description = "Android block OTA transfer list"

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        first = head.split(b"\n", 1)[0].strip()
        return prefix_of(name, (LIST_SUFFIX,)) is not None and first in (b"1", b"2", b"3", b"4")

    def extract(self, source: Source, out: Output) -> None:
        if source.size > MAX_LIST:
            raise ValueError(f"a {source.size}-byte transfer list is beyond the {MAX_LIST}-byte limit")
        transfers = parse_transfer_list(source.path.read_text("utf-8", "replace"))
        out.cover(0, source.size)
        if transfers.incremental:
            commands = "/".join(sorted(set(transfers.incremental)))
            out.error(f"incremental OTA ({len(transfers.incremental)} {commands} commands): the image needs "
                      "the device's current partition and is not rebuilt", IssueKind.UNSUPPORTED)
            return
        prefix = prefix_of(source.name, (LIST_SUFFIX,)) or source.name
        segments = list(visible_segments(transfers.writes))
        with ExitStack() as stack:
            new_data = self._open_new_data(source, out, prefix, segments, transfers.new_bytes, stack)
            if new_data is None:
                return
            image = PurePosixPath(prefix).name + ".img"
            with out.member(image, attributes={"transfer_list_version": transfers.version}) as writer:
                block = 0
                for segment in segments:
                    write_fill(writer, b"\0", (segment.start - block) * BLOCK)
                    length = (segment.end - segment.start) * BLOCK
                    if segment.data is None:
                        write_fill(writer, b"\0", length)
                    else:
                        new_data.copy(segment.data, length, writer)
                    block = segment.end

    @staticmethod
    def _open_new_data(source: Source, out: Output, prefix: str, segments: list[Write], needed: int,
                       stack: ExitStack) -> NewData | None:
        """The sibling new data, seekable when the commands use it out of order; None if missing."""
        raw, compressed = source.sibling(prefix + ".new.dat"), source.sibling(prefix + ".new.dat.br")
        if needed and raw is None and compressed is None:
            out.error(f"neither {prefix}.new.dat nor {prefix}.new.dat.br is next to the transfer list",
                      IssueKind.FAILURE)
            return None
        if not needed:
            return NewData(io.BytesIO(), True, out.check_time)
        if raw is not None:
            return NewData(stack.enter_context(open(raw, "rb")), True, out.check_time)
        assert compressed is not None
        reader = BrotliReader(stack.enter_context(compressed.open("rb")))
        positions = [s.data for s in segments if s.data is not None]
        if positions == sorted(positions):
            return NewData(reader, False, out.check_time)
        # a genuine list writes each block once, so its image holds all of its new data: past the image's
        # remaining quota, the image could not be written either, and the scratch file is not counted in it
        if needed > MAX_SCRATCH or not out.fits(0, needed):
            out.error(f"new data used out of block order needs a {needed}-byte scratch file, beyond the "
                      f"{MAX_SCRATCH}-byte limit or the image's remaining quota", IssueKind.LIMIT)
            return None
        scratch = source.work_dir / "new.dat"
        _spool(reader, scratch, needed, out.check_time)
        return NewData(stack.enter_context(open(scratch, "rb")), True, out.check_time)


class AndroidOtaData(Format):
    name = "android-ota-data"
    description = "Android block OTA data (new.dat, new.dat.br, patch.dat)"
    priority = 10  # a new.dat starting at block 0 carries a filesystem magic; it is not that filesystem

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        return prefix_of(name, DATA_SUFFIXES) is not None

    def extract(self, source: Source, out: Output) -> None:
        prefix = prefix_of(source.name, DATA_SUFFIXES)
        transfer_list = f"{prefix}{LIST_SUFFIX}"
        if source.sibling(transfer_list) is None:
            out.undecodable(0, source.size, f"no {transfer_list} next to it: its blocks cannot be placed")
            return
        out.cover(0, source.size)
