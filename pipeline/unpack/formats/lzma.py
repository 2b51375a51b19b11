"""Legacy LZMA "alone" files (``lzma``/LZMA Utils, the 7-Zip SDK's ``.lzma``), decoded with the stdlib.

The format has no magic: a 13-byte header (properties byte lc/lp/pb,
dictionary size, uncompressed size or -1) and then the range-coded data.
So a file is taken for LZMA only when the header passes liblzma's own
"picky" checks and a few more, and the start of the data decodes:

- properties byte at most 224 (``(pb * 5 + lp) * 9 + lc``);
- dictionary size 2^n or 2^n + 2^(n-1), from 4 KiB to 256 MiB (larger
  would make the decoder allocate that much memory), or 0xFFFFFFFF;
- uncompressed size -1 (end marker) or below 2^38 bytes;
- the first byte of range-coded data is 0 (the encoder always writes it);
- the first 64 KiB decode without error.

It has the lowest priority, so any format with a real magic wins.
Known limitations: LZMA data with a dictionary larger than 256 MiB is not
identified; raw LZMA1 without this header (some bootloaders) is not read.
"""

from __future__ import annotations

import functools
import lzma
import re
import struct
from typing import BinaryIO, ClassVar

from pipeline.unpack.formats._stream import StreamFormat

HEADER = struct.Struct("<BIQ")  # properties, dictionary size, uncompressed size
MAX_PROPERTIES = (4 * 5 + 4) * 9 + 8
MIN_DICTIONARY = 1 << 12
MAX_DICTIONARY = 1 << 28
MAX_UNCOMPRESSED = 1 << 38
UNKNOWN_SIZE = (1 << 64) - 1
PROBE_OUTPUT = 64 * 1024
MEMORY_LIMIT = 2 * MAX_DICTIONARY


def _dictionary_ok(size: int) -> bool:
    if size == 0xFFFFFFFF:
        return True
    if not MIN_DICTIONARY <= size <= MAX_DICTIONARY:
        return False
    top = 1 << (size.bit_length() - 1)
    return size in (top, top | top >> 1)


def header_ok(head: bytes) -> bool:
    """True when ``head`` starts with a plausible LZMA-alone header and its first range-coder byte."""
    if len(head) <= HEADER.size:
        return False
    properties, dictionary, uncompressed = HEADER.unpack_from(head)
    return (
        properties <= MAX_PROPERTIES
        and _dictionary_ok(dictionary)
        and (uncompressed == UNKNOWN_SIZE or uncompressed < MAX_UNCOMPRESSED)
        and head[HEADER.size] == 0
    )


class Lzma(StreamFormat):
    name = "lzma"
    description = "LZMA compressed data (legacy .lzma format)"
    priority = -10
    binwalk = (re.compile(r"^LZMA compressed data, properties: 0x"),)
    decoder = functools.partial(lzma.LZMADecompressor, lzma.FORMAT_ALONE, memlimit=MEMORY_LIMIT)
    suffixes: ClassVar[dict[str, str]] = {".tlz": ".tar", ".lzma": ""}

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        if not header_ok(head):
            return False
        try:
            cls.decoder().decompress(head, PROBE_OUTPUT)
        except lzma.LZMAError:
            return False
        return True

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        handle.seek(offset)
        if not header_ok(handle.read(HEADER.size + 1)):
            return None
        return super().chunk_length(handle, offset, available)
