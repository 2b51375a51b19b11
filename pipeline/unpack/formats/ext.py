"""ext2, ext3 and ext4 filesystems, read with dissect.extfs.

Android's system, vendor and userdata partitions (once un-sparsed) and many
embedded Linux root filesystems. Files are streamed from their extents or
block maps; symlinks are recorded with their target, device nodes and FIFOs
are noted.

References: https://www.kernel.org/doc/html/latest/filesystems/ext4/ (on-disk
layout); e2fsprogs' lib/ext2fs/ext2_fs.h.

Known limitations:
- Android sparse images must be converted first (the android-sparse format
  does it); a sparse image is not an ext filesystem.
- Encrypted (fscrypt) files and filesystems whose cluster size differs from
  the block size (bigalloc) are not readable by dissect: recorded as
  failures of those members, or of the image.
- The journal is not replayed; deleted files are not recovered.
- Extended attributes (SELinux labels, capabilities) are not recorded.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from typing import BinaryIO

from dissect.extfs import ExtFS
from dissect.extfs.extfs import INode

from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._fs import InodeTree, walk_tree
from pipeline.unpack.output import Output

SUPERBLOCK_OFFSET = 1024
MAGIC = b"\x53\xef"  # 0xEF53 at superblock offset 0x38
INCOMPAT_64BIT = 0x80


def filesystem_length(superblock: bytes) -> int | None:
    """blocks_count × block size of a plausible ext superblock (1024 bytes), or None."""
    if len(superblock) < 0x160 or superblock[0x38:0x3A] != MAGIC:
        return None
    inodes, blocks_lo = struct.unpack_from("<II", superblock, 0)
    (log_block_size,) = struct.unpack_from("<I", superblock, 0x18)
    (blocks_per_group,) = struct.unpack_from("<I", superblock, 0x20)
    (inodes_per_group,) = struct.unpack_from("<I", superblock, 0x28)
    (state,) = struct.unpack_from("<H", superblock, 0x3A)
    (incompat,) = struct.unpack_from("<I", superblock, 0x60)
    (blocks_hi,) = struct.unpack_from("<I", superblock, 0x150)
    if log_block_size > 6 or not inodes or not blocks_per_group or not inodes_per_group or state > 7:
        return None
    blocks = blocks_lo | ((blocks_hi << 32) if incompat & INCOMPAT_64BIT else 0)
    return blocks * (1024 << log_block_size) or None


class _ExtTree(InodeTree[INode]):
    def entries(self, directory: INode) -> Iterable[tuple[str, INode]]:
        return ((node.filename, node) for node in directory.iterdir())

    def file_type(self, node: INode) -> int:
        return node.filetype


class Ext(Format):
    name = "ext"
    description = "Linux ext2/ext3/ext4 filesystem"
    magics = (Magic(SUPERBLOCK_OFFSET + 0x38, MAGIC),)
    rooted = True
    binwalk = (re.compile(r"^Linux EXT filesystem"),)

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        return filesystem_length(head[SUPERBLOCK_OFFSET : SUPERBLOCK_OFFSET * 2]) is not None

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        handle.seek(offset + SUPERBLOCK_OFFSET)
        length = filesystem_length(handle.read(SUPERBLOCK_OFFSET))
        return length if length is not None and length <= available else None

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            handle.seek(SUPERBLOCK_OFFSET)
            length = filesystem_length(handle.read(SUPERBLOCK_OFFSET))
            if length is None:
                raise ValueError("invalid ext superblock")
            fs = ExtFS(handle)
            out.cover(0, min(length, source.size))
            walk_tree(out, _ExtTree(fs), container_size=source.size)
