"""bzip2 (Seward's block-sorting compressor, sourceware.org/bzip2), decoded with the stdlib.

The whole file is one member, decoded in bounded steps by ``bz2``; the
back-to-back streams that pbzip2 writes are decoded as one member, as
``bunzip2`` does. Each block's CRC is verified by libbz2.
Known limitations: an empty stream (``BZh9`` followed by the end-of-stream
marker, no block) is not identified: there is nothing in it.
"""

from __future__ import annotations

import bz2
import re
from typing import ClassVar

from pipeline.unpack.format import Magic
from pipeline.unpack.formats._stream import StreamFormat

BLOCK_MAGIC = b"1AY&SY"  # the BCD digits of pi: the start of the first block


class Bzip2(StreamFormat):
    name = "bzip2"
    description = "bzip2 compressed data"
    # "BZh" and the block size in units of 100 kB, then the first block
    magics = tuple(Magic(0, b"BZh%d" % level + BLOCK_MAGIC) for level in range(1, 10))
    binwalk = (re.compile(r"^bzip2 compressed data"),)
    decoder = bz2.BZ2Decompressor
    next_magic = b"BZh"
    suffixes: ClassVar[dict[str, str]] = {".tbz2": ".tar", ".tbz": ".tar", ".bz2": "", ".bz": ""}
