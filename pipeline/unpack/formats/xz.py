"""xz (the .xz container of LZMA2, tukaani.org/xz/xz-file-format.txt), decoded with the stdlib.

The whole file is one member, decoded in bounded steps by ``lzma`` with
``FORMAT_XZ``; back-to-back streams are decoded as one member, as ``xz -d``
does. The integrity check of each block is verified by liblzma.
Known limitations: stream padding (NUL bytes) between concatenated streams
ends the member; what follows is left to coverage accounting.
"""

from __future__ import annotations

import functools
import lzma
import re
from typing import ClassVar

from pipeline.unpack.format import Magic
from pipeline.unpack.formats._stream import StreamFormat

MAGIC = b"\xfd7zXZ\x00"


class Xz(StreamFormat):
    name = "xz"
    description = "xz compressed data"
    magics = (Magic(0, MAGIC),)
    binwalk = (re.compile(r"^xz compressed data"),)
    decoder = functools.partial(lzma.LZMADecompressor, lzma.FORMAT_XZ)
    next_magic = MAGIC
    suffixes: ClassVar[dict[str, str]] = {".txz": ".tar", ".xz": ""}
