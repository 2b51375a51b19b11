"""gzip (RFC 1952): one member, decompressed with zlib in bounded steps.

The member's name comes from the header's FNAME field when present (it is
sanitised like any archive name), else from the container's name.
Known limitations: only the first member of a multi-member file is read;
bytes after it are left to coverage accounting.
"""

from __future__ import annotations

import re
from typing import BinaryIO

from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._stream import ZlibStream, extract_stream, inner_name, stream_length
from pipeline.unpack.output import Output

FNAME = 0x08
FEXTRA = 0x04
SUFFIXES = {".tgz": ".tar", ".gz": "", ".gzip": "", "-gz": ""}


def header_name(handle: BinaryIO) -> bytes | None:
    """The original file name stored in a gzip header (FNAME), if any."""
    header = handle.read(10)
    if len(header) < 10 or not header[3] & FNAME:
        return None
    if header[3] & FEXTRA:
        extra = int.from_bytes(handle.read(2), "little")
        handle.seek(extra, 1)
    name = bytearray()
    while (byte := handle.read(1)) not in (b"", b"\x00") and len(name) < 1024:
        name += byte
    return bytes(name) or None


class Gzip(Format):
    name = "gzip"
    description = "gzip compressed data"
    magics = (Magic(0, b"\x1f\x8b\x08"),)
    binwalk = (re.compile(r"^gzip compressed data"),)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        return stream_length(handle, offset, available, ZlibStream(31))

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            stored = header_name(handle)
        name = stored or inner_name(source.name, SUFFIXES)
        extract_stream(source, out, ZlibStream(31), name)
