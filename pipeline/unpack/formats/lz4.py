"""LZ4 frame format (github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md), via ``lz4.frame``.

The whole file is one member, decoded in bounded steps by
``LZ4FrameDecompressor`` (``max_length``); back-to-back frames are decoded
as one member, as ``lz4 -d`` does. Content and block checksums, when the
frame has them, are verified by liblz4.
Known limitations: the legacy format (magic 0x184C2102, Linux kernel
``lz4 -l`` images) and skippable frames are not read.
"""

from __future__ import annotations

import re
from typing import ClassVar

from lz4.frame import LZ4FrameDecompressor

from pipeline.unpack.format import Magic
from pipeline.unpack.formats._stream import StreamFormat

MAGIC = b"\x04\x22\x4d\x18"


class Lz4(StreamFormat):
    name = "lz4"
    description = "LZ4 frame compressed data"
    magics = (Magic(0, MAGIC),)
    binwalk = (re.compile(r"^LZ4 compressed data(?!, legacy)"),)
    decoder = LZ4FrameDecompressor
    next_magic = MAGIC
    suffixes: ClassVar[dict[str, str]] = {".tlz4": ".tar", ".lz4": ""}
