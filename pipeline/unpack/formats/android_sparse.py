"""Android sparse image (libsparse): a block image stored as RAW/FILL/DONT_CARE/CRC32 chunks.

``system.img``, ``vendor.img`` and ``super.img`` of factory images and
fastboot packages are usually sparse. The image is expanded into one member
(``system.raw.img``) written in bounded pieces; DONT_CARE and FILL chunks
are written out and counted like data (zeros become holes in the store,
which take no disk), so an image that claims terabytes of them hits the
image's total-bytes quota and stops there, recorded.

Reference: AOSP ``system/core/libsparse/sparse_format.h`` (28-byte file
header, magic 0xED26FF3A, 12-byte chunk headers, sizes in blocks).

Known limitations: CRC32 chunks and the header's image checksum are not
verified; only major version 1 is read.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from pipeline.store import CHUNK
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._stream import Writer
from pipeline.unpack.output import Output

MAGIC = 0xED26FF3A
HEADER = struct.Struct("<IHHHHIIII")
CHUNK_HEADER = struct.Struct("<HHII")
RAW, FILL, DONT_CARE, CRC32 = 0xCAC1, 0xCAC2, 0xCAC3, 0xCAC4
MAX_BLOCK_SIZE = 1 << 24
_ZEROS = bytes(CHUNK)


def write_fill(writer: Writer, pattern: bytes, count: int) -> None:
    """Write ``count`` bytes of a repeated pattern (zeros by default) in bounded pieces."""
    block = _ZEROS if pattern.count(0) == len(pattern) else pattern * (CHUNK // len(pattern))
    while count > 0:
        piece = min(count, len(block))
        writer.write(block[:piece])
        count -= piece


def copy_range(handle: BinaryIO, offset: int, length: int, writer: Writer) -> None:
    """Copy ``length`` bytes at ``offset`` of ``handle`` into ``writer``; raises EOFError if short."""
    handle.seek(offset)
    while length > 0:
        data = handle.read(min(length, CHUNK))
        if not data:
            raise EOFError(f"{length} bytes missing at offset {handle.tell():#x}")
        writer.write(data)
        length -= len(data)


@dataclass(frozen=True)
class SparseHeader:
    header_size: int
    chunk_header_size: int
    block_size: int
    total_blocks: int
    total_chunks: int


@dataclass(frozen=True)
class SparseChunk:
    kind: int
    blocks: int
    data_offset: int  # absolute offset of the chunk's payload in the container
    data_size: int


def read_header(handle: BinaryIO, offset: int, available: int) -> SparseHeader:
    handle.seek(offset)
    raw = handle.read(HEADER.size)
    if len(raw) < HEADER.size:
        raise ValueError("sparse header is truncated")
    magic, major, _minor, header_size, chunk_header_size, block_size, total_blocks, total_chunks, _ = \
        HEADER.unpack(raw)
    if magic != MAGIC or major != 1:
        raise ValueError(f"not a version 1 Android sparse image (magic {magic:#x}, major {major})")
    if header_size < HEADER.size or chunk_header_size < CHUNK_HEADER.size:
        raise ValueError(f"bad header sizes {header_size}/{chunk_header_size}")
    if block_size == 0 or block_size % 4 or block_size > MAX_BLOCK_SIZE:
        raise ValueError(f"bad block size {block_size}")
    if header_size + total_chunks * chunk_header_size > available:
        raise ValueError(f"{total_chunks} chunks cannot fit in {available} bytes")
    return SparseHeader(header_size, chunk_header_size, block_size, total_blocks, total_chunks)


def iter_chunks(handle: BinaryIO, offset: int, available: int, header: SparseHeader) -> Iterator[SparseChunk]:
    """Every chunk, validated against the container and the header's block count."""
    position = offset + header.header_size
    end = offset + available
    blocks_seen = 0
    for index in range(header.total_chunks):
        handle.seek(position)
        raw = handle.read(CHUNK_HEADER.size)
        if len(raw) < CHUNK_HEADER.size:
            raise ValueError(f"chunk {index} header is truncated")
        kind, _reserved, blocks, total_size = CHUNK_HEADER.unpack(raw)
        data_size = total_size - header.chunk_header_size
        expected = {RAW: blocks * header.block_size, FILL: 4, DONT_CARE: 0, CRC32: 4}.get(kind)
        if expected is None:
            raise ValueError(f"chunk {index} has unknown type {kind:#x}")
        if data_size != expected:
            raise ValueError(f"chunk {index} ({kind:#x}) says {total_size} bytes, expected "
                             f"{expected + header.chunk_header_size}")
        if position + total_size > end:
            raise ValueError(f"chunk {index} ends past the container ({position + total_size} > {end})")
        blocks_seen += blocks if kind != CRC32 else 0
        if blocks_seen > header.total_blocks:
            raise ValueError(f"chunks hold more than the {header.total_blocks} blocks the header declares")
        yield SparseChunk(kind, blocks, position + header.chunk_header_size, data_size)
        position += total_size
    if blocks_seen != header.total_blocks:
        raise ValueError(f"chunks hold {blocks_seen} blocks, the header declares {header.total_blocks}")


def sparse_extent(handle: BinaryIO, offset: int,
                  available: int) -> tuple[SparseHeader, list[SparseChunk], int]:
    """The header, the validated chunks and the sparse file's length in bytes."""
    header = read_header(handle, offset, available)
    chunks = list(iter_chunks(handle, offset, available, header))
    last = chunks[-1] if chunks else None
    end = last.data_offset + last.data_size - offset if last else header.header_size
    return header, chunks, end


def expanded_name(source_name: str) -> str:
    """``system.img`` → ``system.raw.img``; ``x.simg`` → ``x.raw.img``."""
    base = PurePosixPath(source_name).name
    stem = re.sub(r"\.(s?img|sparse)$", "", base, flags=re.IGNORECASE) or base
    return f"{stem}.raw.img"


class AndroidSparse(Format):
    name = "android-sparse"
    description = "Android sparse image"
    magics = (Magic(0, struct.pack("<I", MAGIC)),)
    carve_magics = (struct.pack("<IH", MAGIC, 1),)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        try:
            return sparse_extent(handle, offset, available)[2]
        except ValueError:
            return None

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            header, chunks, end = sparse_extent(handle, 0, source.size)
            out.cover(0, end)
            attributes = {"block_size": header.block_size, "blocks": header.total_blocks,
                          "chunks": header.total_chunks}
            with out.member(expanded_name(source.name), attributes=attributes) as writer:
                for chunk in chunks:
                    size = chunk.blocks * header.block_size
                    if chunk.kind == RAW:
                        copy_range(handle, chunk.data_offset, size, writer)
                    elif chunk.kind == FILL:
                        handle.seek(chunk.data_offset)
                        write_fill(writer, handle.read(4), size)
                    elif chunk.kind == DONT_CARE:
                        write_fill(writer, b"\0", size)
