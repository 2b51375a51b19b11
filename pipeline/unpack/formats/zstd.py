"""Zstandard frames (RFC 8878), decoded with the ``zstandard`` package.

The frames' extent is found by walking their structure (frame header,
block headers, optional checksum; skippable frames are stepped over), which
validates the data and gives an exact length for carving without decoding.
The bytes are then decoded by ``stream_reader`` in bounded reads: never one
unbounded call, whose output size would be chosen by the file. The
decoder refuses windows above zstd's default limit (128 MiB), which bounds
its memory. binwalk 2.3 has no zstd signature: carving uses our own magic.
Known limitations: frames that need an external dictionary cannot be decoded
(a failure is recorded).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import zstandard

from pipeline.store import CHUNK
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._stream import inner_name
from pipeline.unpack.output import Output

MAGIC = b"\x28\xb5\x2f\xfd"
SKIPPABLE_MASK, SKIPPABLE = 0xFFFFFFF0, 0x184D2A50
BLOCK_MAXIMUM = 128 * 1024
RESERVED_BLOCK = 3
RLE_BLOCK = 1
SUFFIXES = {".tzst": ".tar", ".zst": "", ".zstd": ""}


def _frame_end(handle: BinaryIO, start: int, end: int) -> int | None:
    """End offset of the zstd frame starting at ``start`` (magic included), or None if malformed."""
    handle.seek(start + 4)
    descriptor = handle.read(1)
    if not descriptor:
        return None
    flags = descriptor[0]
    if flags & 0x08:  # reserved bit
        return None
    single_segment = bool(flags & 0x20)
    size_flag = flags >> 6
    content_size = (1 if single_segment else 0, 2, 4, 8)[size_flag]
    header = 1 + (0 if single_segment else 1) + (0, 1, 2, 4)[flags & 0x03] + content_size
    pos = start + 4 + header
    while pos + 3 <= end:
        handle.seek(pos)
        raw = handle.read(3)
        if len(raw) < 3:
            return None
        block = int.from_bytes(raw, "little")
        last, kind, size = block & 1, (block >> 1) & 3, block >> 3
        if kind == RESERVED_BLOCK or size > BLOCK_MAXIMUM:
            return None
        pos += 3 + (1 if kind == RLE_BLOCK else size)
        if last:
            pos += 4 if flags & 0x04 else 0
            return pos if pos <= end else None
    return None


def frames_end(handle: BinaryIO, offset: int, available: int) -> int | None:
    """End of the run of zstd (and skippable) frames starting at ``offset``; None if the first is bad."""
    end = offset + available
    pos, last_good = offset, None
    while pos + 8 <= end:
        handle.seek(pos)
        magic = handle.read(4)
        number = int.from_bytes(magic, "little") if len(magic) == 4 else 0
        if magic == MAGIC:
            frame_end = _frame_end(handle, pos, end)
        elif last_good is not None and number & SKIPPABLE_MASK == SKIPPABLE:
            (length,) = struct.unpack("<I", handle.read(4))
            frame_end = pos + 8 + length if pos + 8 + length <= end else None
        else:
            break
        if frame_end is None:
            break
        pos = last_good = frame_end
    return last_good


class _Bounded:
    """A read-only view of ``length`` bytes of a file, so the decoder cannot read past the frames."""

    def __init__(self, handle: BinaryIO, length: int) -> None:
        self._handle = handle
        self._remaining = length

    def read(self, size: int = -1) -> bytes:
        size = self._remaining if size < 0 else min(size, self._remaining)
        data = self._handle.read(size)
        self._remaining -= len(data)
        return data


class Zstd(Format):
    name = "zstd"
    description = "Zstandard compressed data"
    magics = (Magic(0, MAGIC),)
    carve_magics = (MAGIC,)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        end = frames_end(handle, offset, available)
        return None if end is None else end - offset

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            end = frames_end(handle, 0, source.size)
            if end is None:
                raise ValueError("no complete zstd frame (truncated or malformed)")
            handle.seek(0)
            decompressor = zstandard.ZstdDecompressor()
            name = inner_name(source.name, SUFFIXES)
            with out.member(name, compressed_size=end) as writer, decompressor.stream_reader(
                _Bounded(handle, end), read_across_frames=True, closefd=False
            ) as reader:
                while data := reader.read(CHUNK):
                    writer.write(data)
            out.cover(0, end)
