"""Shared pump for single-stream compressors (gzip, xz, lzma, bzip2, lz4, zstd).

Every decompressor is driven with a bounded ``max_length`` so one call can
never expand more than ``CHUNK`` bytes: a bomb is stopped by the Output's
ratio check after at most one chunk too many, never materialised in memory.
Back-to-back streams (pbzip2 output, ``cat a.xz b.xz``) are decoded as one
member when the format gives a ``Concatenation``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO, ClassVar, Protocol

from pipeline.store import CHUNK
from pipeline.unpack.format import Format, Source
from pipeline.unpack.output import Output

READ = 64 * 1024


class Decompressor(Protocol):
    """The lzma/bz2/lz4 decompressor-object protocol (zlib is adapted to it)."""

    eof: bool
    needs_input: bool
    unused_data: bytes

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...


class ZlibStream:
    """zlib's decompressobj seen through the lzma/bz2 protocol."""

    def __init__(self, wbits: int) -> None:
        self._z = zlib.decompressobj(wbits)

    @property
    def eof(self) -> bool:
        return self._z.eof

    @property
    def needs_input(self) -> bool:
        return not self._z.unconsumed_tail

    @property
    def unused_data(self) -> bytes:
        return self._z.unused_data

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        return self._z.decompress(self._z.unconsumed_tail + data, max(max_length, 0))


@dataclass(frozen=True)
class Concatenation:
    """How a format continues after one stream: the magic a next stream starts with, and a fresh decoder."""

    magic: bytes
    new: Callable[[], Decompressor]


class _Discard:
    def __init__(self, limit: int) -> None:
        self.size = 0
        self.limit = limit

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise ValueError("stream expands beyond the carving limit")


def pump(handle: BinaryIO, decompressor: Decompressor, writer: Writer, available: int) -> int:
    """Decompress one stream from ``handle`` into ``writer``; returns the compressed bytes consumed."""
    consumed = 0
    while not decompressor.eof:
        data = b""
        if decompressor.needs_input:
            data = handle.read(min(READ, available - consumed))
            if not data:
                raise EOFError("compressed stream is truncated")
            consumed += len(data)
        writer.write(decompressor.decompress(data, CHUNK))
    return consumed - len(decompressor.unused_data or b"")  # lz4 gives None when nothing is left


def pump_all(handle: BinaryIO, decompressor: Decompressor, writer: Writer, available: int,
             concatenation: Concatenation | None = None) -> int:
    """``pump`` one stream, then every stream that follows it back to back; returns bytes consumed.

    Each further stream consumes at least its magic, so the loop is bounded by ``available``.
    """
    start = handle.tell()
    consumed = pump(handle, decompressor, writer, available)
    while concatenation and available - consumed > len(concatenation.magic):
        handle.seek(start + consumed)
        if handle.read(len(concatenation.magic)) != concatenation.magic:
            break
        handle.seek(start + consumed)
        consumed += pump(handle, concatenation.new(), writer, available - consumed)
    return consumed


def stream_length(handle: BinaryIO, offset: int, available: int, decompressor: Decompressor,
                  output_limit: int = 1 << 31, concatenation: Concatenation | None = None) -> int | None:
    """Compressed length of a stream found at ``offset`` (for carving), or None if it does not decode."""
    handle.seek(offset)
    try:
        return pump_all(handle, decompressor, _Discard(output_limit), available, concatenation)
    except (EOFError, ValueError, OSError, zlib.error, RuntimeError):
        return None


def inner_name(source_name: str, suffixes: dict[str, str]) -> str:
    """The decompressed member's name: ``a.tar.gz`` → ``a.tar``, ``x.tgz`` → ``x.tar``."""
    base = PurePosixPath(source_name).name
    lowered = base.lower()
    for suffix, replacement in suffixes.items():
        if lowered.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)] + replacement
    return base + ".unpacked"


def extract_stream(source: Source, out: Output, decompressor: Decompressor, name: str,
                   concatenation: Concatenation | None = None) -> None:
    """Decompress a whole-file stream into one member; covers the compressed bytes consumed."""
    with source.open() as handle, out.member(name, compressed_size=source.size) as writer:
        consumed = pump_all(handle, decompressor, writer, source.size, concatenation)
        out.cover(0, consumed)


class StreamFormat(Format):
    """A format whose file is one compressed stream, or back-to-back streams starting with ``next_magic``.

    Subclasses set ``decoder`` (a fresh decompressor per stream), ``suffixes``
    (how the member is named after the container) and, when the format allows
    concatenated streams, ``next_magic``.
    """

    decoder: ClassVar[Callable[[], Decompressor]]
    next_magic: ClassVar[bytes] = b""
    suffixes: ClassVar[dict[str, str]] = {}

    @classmethod
    def concatenation(cls) -> Concatenation | None:
        return Concatenation(cls.next_magic, cls.decoder) if cls.next_magic else None

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        return stream_length(handle, offset, available, cls.decoder(), concatenation=cls.concatenation())

    def extract(self, source: Source, out: Output) -> None:
        cls = type(self)
        extract_stream(source, out, cls.decoder(), inner_name(source.name, cls.suffixes), cls.concatenation())
