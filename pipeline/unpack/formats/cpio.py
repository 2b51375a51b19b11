"""cpio archives: SVR4 "newc" (070701) and "crc" (070702), POSIX odc (070707), old binary (both byte orders).

An own streaming parser rather than libarchive: the format is a flat run
of (header, name, data) records, so a small parser gives each member's
exact offset, the archive's exact length for carving, coverage of every
record, and bounds every field against the file before using it.
Initramfs images are the main use: device nodes (``/dev/console``) and
FIFOs are noted, not errors; symlinks are recorded with their target. A
newc hard-link group stores its data only with its last link: the earlier
links get the same bytes once the data is seen. Archives concatenated after
the ``TRAILER!!!`` (early microcode + main initramfs) are read on; anything
else after the trailer (a compressed initramfs appended by the kernel build)
is handed over as a carved chunk so the walker identifies and unpacks it.

Known limitations: the crc format's checksums are not verified; old
binary archives are not carved (their 2-byte magic is too weak to search).
"""

from __future__ import annotations

import io
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pipeline.model import IssueKind
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._members import MAX_LINK_TARGET, special_kind
from pipeline.unpack.output import Output

NEWC, CRC, ODC = b"070701", b"070702", b"070707"
BINARY_LE, BINARY_BE = b"\xc7\x71", b"\x71\xc7"
TRAILER = b"TRAILER!!!"
MAX_NAME = 1 << 16  # a name is sanitised and capped later; a long one is no reason to stop the archive
BLOCK = 512  # cpio pads the archive to this
NEWC_SIZE, ODC_SIZE, BINARY_SIZE = 110, 76, 26


@dataclass(frozen=True)
class _Record:
    """One cpio record; ``data`` is where its data starts and ``end`` where the next record starts."""

    offset: int
    name: bytes
    mode: int
    nlink: int
    inode: tuple[int, int]  # (device, inode): what hard links share
    data: int
    size: int
    end: int


def _aligned(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def _numbers(text: bytes, widths: tuple[int, ...], base: int) -> list[int]:
    values, pos = [], 0
    for width in widths:
        field = text[pos : pos + width]
        if not re.fullmatch(rb"[0-9a-fA-F]+" if base == 16 else rb"[0-7]+", field):
            raise ValueError(f"cpio header field {field!r} is not a base-{base} number")
        values.append(int(field, base))
        pos += width
    return values


def _header(raw: bytes) -> tuple[int, int, int, tuple[int, int], int, int, int]:
    """(mode, nlink, name size, (device, inode), data size, header size, alignment) of a record header."""
    magic = raw[:6]
    if magic in (NEWC, CRC) and len(raw) >= NEWC_SIZE:
        ino, mode, _, _, nlink, _, size, major, minor, _, _, namesize, _ = _numbers(raw[6:NEWC_SIZE], (8,) * 13, 16)
        return mode, nlink, namesize, (major << 32 | minor, ino), size, NEWC_SIZE, 4
    if magic == ODC and len(raw) >= ODC_SIZE:
        dev, ino, mode, _, _, nlink, _, _, namesize, size = _numbers(
            raw[6:ODC_SIZE], (6, 6, 6, 6, 6, 6, 6, 11, 6, 11), 8)
        return mode, nlink, namesize, (dev, ino), size, ODC_SIZE, 1
    if raw[:2] in (BINARY_LE, BINARY_BE) and len(raw) >= BINARY_SIZE:
        order = "little" if raw[:2] == BINARY_LE else "big"
        words = [int.from_bytes(raw[i : i + 2], order) for i in range(0, BINARY_SIZE, 2)]
        dev, ino, mode, nlink = words[1], words[2], words[3], words[6]
        return mode, nlink, words[10], (dev, ino), words[11] << 16 | words[12], BINARY_SIZE, 2
    raise ValueError("no cpio header here")


def records(handle: BinaryIO, start: int, end: int) -> Iterator[_Record]:
    """The records from ``start`` up to and including the trailer; ValueError on a bad or truncated one."""
    pos = start
    while True:
        handle.seek(pos)
        mode, nlink, namesize, inode, size, header_size, alignment = _header(handle.read(NEWC_SIZE))
        if not 1 <= namesize <= MAX_NAME:
            raise ValueError(f"cpio record at {pos:#x} has an implausible name size {namesize}")
        handle.seek(pos + header_size)
        name = handle.read(namesize)
        if len(name) < namesize or name[-1] != 0:
            raise ValueError(f"cpio record at {pos:#x} has a truncated or unterminated name")
        data = _aligned(pos + header_size + namesize, alignment)
        record = _Record(pos, name[:-1], mode, nlink, inode, data, size, _aligned(data + size, alignment))
        if data + size > end:
            raise EOFError(f"cpio record {record.name!r} at {pos:#x} runs past the end of the archive")
        yield record
        if record.name == TRAILER:
            return
        pos = record.end


def _next_archive(handle: BinaryIO, pos: int, end: int) -> int:
    """Offset after the zero padding that follows a trailer."""
    handle.seek(pos)
    while pos < end:
        block = handle.read(min(1 << 16, end - pos))
        stripped = block.lstrip(b"\0")
        pos += len(block) - len(stripped)
        if stripped:
            break
    return pos


class Cpio(Format):
    name = "cpio"
    description = "cpio archive"
    magics = (Magic(0, NEWC), Magic(0, CRC), Magic(0, ODC), Magic(0, BINARY_LE), Magic(0, BINARY_BE))
    rooted = True
    binwalk = (re.compile(r"^ASCII cpio archive \(SVR4 with (no )?CRC\)"),)
    carve_magics = (NEWC, CRC, ODC)

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        if not super().matches(head, size, name):
            return False
        try:
            next(records(io.BytesIO(head), 0, max(size, len(head))))
        except (ValueError, EOFError):
            return False
        return True

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        """Up to the trailer, and the zero fill cpio writes after it up to its 512-byte block."""
        try:
            for record in records(handle, offset, offset + available):
                if record.name == TRAILER:
                    end = min(record.end, offset + available) - offset
                    padded = min(_aligned(end, BLOCK), available)
                    handle.seek(offset + end)
                    fill = handle.read(padded - end)
                    return end + len(fill) - len(fill.lstrip(b"\0"))
        except (ValueError, EOFError):
            return None
        return None

    def extract(self, source: Source, out: Output) -> None:
        pending: dict[tuple[int, int], list[str]] = {}  # newc hard links waiting for their data
        pos = 0
        with source.open() as handle:
            while pos < source.size:
                try:
                    for record in records(handle, pos, source.size):
                        out.check_time()
                        pos = record.end
                        self._record(handle, record, out, pending)
                        out.cover(record.offset, min(record.end, source.size) - record.offset)
                except (ValueError, EOFError) as exc:
                    if pos == 0:
                        raise
                    out.error(f"cpio stops at offset {pos:#x}: {exc}", IssueKind.FAILURE)
                    break
                pos = _next_archive(handle, pos, source.size)
                handle.seek(pos)
                if pos < source.size and _is_header(handle.read(NEWC_SIZE)):
                    continue
                if pos < source.size:
                    out.add_range(f"{pos:#x}.trailing", handle, pos, source.size - pos)
                break
            for names in pending.values():
                for name in names:
                    out.add_bytes(name, b"")

    @staticmethod
    def _record(handle: BinaryIO, record: _Record, out: Output, pending: dict[tuple[int, int], list[str]]) -> None:
        if record.name == TRAILER:
            return
        name = out.safe_name(record.name)
        kind = special_kind(record.mode)
        if stat.S_ISDIR(record.mode):
            return
        if kind is not None:
            out.special_file(name, kind)
        elif stat.S_ISLNK(record.mode):
            if record.size > MAX_LINK_TARGET:
                out.error(f"symlink target of {record.size} bytes is not a path", IssueKind.FAILURE, member=name)
                return
            handle.seek(record.data)
            out.add_symlink(name, handle.read(record.size))
        elif record.size == 0 and record.nlink > 1:
            pending.setdefault(record.inode, []).append(name)
        else:
            for member in [name, *pending.pop(record.inode, [])]:
                handle.seek(record.data)
                out.add_stream(member, handle, offset=record.data, length=record.size)


def _is_header(raw: bytes) -> bool:
    try:
        _header(raw)
    except ValueError:
        return False
    return True
