"""JFFS2, the log-structured NOR-flash filesystem, read with dissect.jffs (little endian).

Found in the configuration and root partitions of routers and older embedded
Linux devices. A JFFS2 image is a sequence of nodes (dirents, inodes with
compressed data, cleanmarkers, padding) laid in erase blocks whose unused
tail is erased flash (0xFF); dissect replays the nodes by version into a
tree, which is walked like any filesystem.

JFFS2 has no header with a total size: a chunk found in a raw dump ends at the
last node whose header CRC checks, erased gaps between nodes included.

References: linux/include/uapi/linux/jffs2.h; https://sourceware.org/jffs2/jffs2.pdf

Known limitations:
- Big-endian images (MIPS big-endian routers) are recorded as unsupported:
  dissect reads little endian only, and no second reader is bundled.
- rtime, rubin and dynrubin compressed nodes (rare, pre-2005 images) are not
  decoded by dissect: those files fail to read, recorded per member.
- Node and data CRCs are not verified during extraction: a corrupt node is
  replayed as it is.
- Deleted and superseded versions of files (still present in the log) are not
  recovered; only the current tree is extracted.
"""

from __future__ import annotations

import re
import stat
import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from dissect.jffs import JFFS2
from dissect.jffs.jffs2 import INode

from pipeline.model import IssueKind
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._fs import InodeTree, walk_tree
from pipeline.unpack.output import Output

HEADER = struct.Struct("<HHII")  # magic, nodetype, totlen, hdr_crc
MAGICS = (0x1985, 0x1984)  # current and pre-release magic
NODETYPES = (0xE001, 0xE002, 0x2003, 0x2004, 0x2006, 0xE008, 0xE009)
ERASED = b"\xff" * 4  # an erased word: the rest of an erase block after its last node
ERASED_WORD = 0xFFFF
READ = 1 << 16


def _mtd_crc(data: bytes) -> int:
    """The kernel's crc32_le with seed 0 and no final inversion, as JFFS2 stores it."""
    return zlib.crc32(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


def _header_valid(header: bytes) -> int | None:
    """totlen of a node header whose magic and CRC check, or None."""
    magic, _, totlen, crc = HEADER.unpack(header)
    if magic in MAGICS and totlen >= HEADER.size and crc == _mtd_crc(header[:8]):
        return totlen
    return None


def _end_of_erased(handle: BinaryIO, start: int, end: int) -> int:
    """First 4-byte aligned position (relative to ``start``) at or after ``start`` that is not 0xFF."""
    pos = start
    handle.seek(pos)
    while pos < end:
        block = handle.read(min(READ, end - pos))
        if not block:
            return end
        stripped = len(block) - len(block.lstrip(b"\xff"))
        if stripped < len(block):
            return pos + stripped - stripped % 4
        pos += len(block)
    return end


def nodes_length(handle: BinaryIO, offset: int, available: int) -> int | None:
    """Bytes from ``offset`` to the end of the last valid node of a run of nodes and erased gaps."""
    end = offset + available
    pos, last = offset, None
    while pos + HEADER.size <= end:
        handle.seek(pos)
        header = handle.read(HEADER.size)
        if len(header) < HEADER.size:
            break
        totlen = _header_valid(header)
        if totlen is not None and pos + totlen <= end:
            last = pos + totlen
            pos += (totlen + 3) & ~3
        elif header.startswith(ERASED) and last is not None:
            pos = _end_of_erased(handle, pos, end)
        else:
            break
    return None if last is None else last - offset


def _scan_positions(handle: BinaryIO, size: int) -> Iterator[tuple[int, int]]:
    """(position, totlen) of every node dissect's scan will visit, following its own stepping."""
    pos = 0
    while pos + HEADER.size <= size:
        handle.seek(pos)
        magic, _, totlen, _ = HEADER.unpack(handle.read(HEADER.size))
        if magic in MAGICS:
            yield pos, totlen
            pos += max((totlen + 3) & ~3, 4)
        elif magic == ERASED_WORD:
            pos = max(_end_of_erased(handle, pos, size), pos + 4)
        else:
            pos += 4


class _JffsTree(InodeTree[INode]):
    def entries(self, directory: INode) -> Iterable[tuple[str, INode]]:
        return directory.iterdir()

    def file_type(self, node: INode) -> int:
        return stat.S_IFMT(node.type)


def _magics(byteorder: str) -> tuple[Magic, ...]:
    return tuple(
        Magic(0, MAGICS[0].to_bytes(2, byteorder) + t.to_bytes(2, byteorder))  # type: ignore[arg-type]
        for t in NODETYPES
    )


class Jffs2(Format):
    name = "jffs2"
    description = "JFFS2 filesystem"
    magics = _magics("little") + _magics("big")
    rooted = True
    binwalk = (re.compile(r"^JFFS2 filesystem, little endian"),)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        return nodes_length(handle, offset, available)

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            if handle.read(2) == MAGICS[0].to_bytes(2, "big"):
                out.error("big-endian JFFS2: no reader (dissect.jffs reads little endian only)", IssueKind.UNSUPPORTED)
                return
            # dissect's node scan never advances past a node declaring length 0: refuse it up front.
            for pos, totlen in _scan_positions(handle, source.size):
                out.check_time()
                if totlen == 0:
                    raise ValueError(f"JFFS2 node at {pos:#x} declares length 0")
            handle.seek(0)
            fs = JFFS2(handle)
            handle.seek(0)
            out.cover(0, nodes_length(handle, 0, source.size) or 0)
            walk_tree(out, _JffsTree(fs), container_size=source.size)
