"""cramfs, the compressed ROM filesystem (little endian), read with dissect.cramfs.

Older embedded Linux root filesystems and some feature-phone and set-top box
firmware. Each file is a table of block pointers followed by zlib-compressed
4 KiB pages; directories are runs of 12-byte inodes followed by their names.
The directory walk here reads those runs itself, bounded by the directory's
size, because dissect's listing loops until it lands exactly on the
directory's end, which a hostile image can make it overshoot forever.

References: linux/fs/cramfs/README; linux/include/uapi/linux/cramfs_fs.h

Known limitations:
- Big-endian images are recorded as unsupported (dissect reads little endian).
- The CRC of the superblock is not checked; files with holes or with
  uncompressed direct-pointer blocks (``CRAMFS_FLAG_EXT_BLOCK_POINTERS``) are
  not decoded by dissect and fail per member.
- A device node's major/minor numbers are not recorded.
"""

from __future__ import annotations

import re
import stat
import struct
from collections.abc import Hashable, Iterator
from typing import BinaryIO

from dissect.cramfs import CramFS
from dissect.cramfs.cramfs import INode

from pipeline.model import IssueKind
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._fs import LINK_MAX, FsTree, walk_tree
from pipeline.unpack.output import Output

MAGIC = 0x28CD3D45
SIGNATURE = b"Compressed ROMFS"
SUPERBLOCK_SIZE = 76  # magic, size, flags, future, signature, fsid, name, root inode
INODE_SIZE = 12


def image_length(head: bytes, available: int) -> int | None:
    """The ``size`` field of a plausible little-endian cramfs superblock, or None."""
    if len(head) < SUPERBLOCK_SIZE:
        return None
    magic, size = struct.unpack_from("<II", head)
    if magic != MAGIC or head[16:32] != SIGNATURE or not SUPERBLOCK_SIZE <= size <= available:
        return None
    return size


class _CramTree(FsTree[INode]):
    def __init__(self, fs: CramFS, size: int) -> None:
        self._fs = fs
        self._size = size

    def root(self) -> INode:
        return self._fs.root

    def entries(self, directory: INode) -> Iterator[tuple[str, INode]]:
        pos = directory.data_offset
        end = min(pos + directory.size, self._size)
        while pos + INODE_SIZE <= end:
            node = self._fs.inode(pos)
            yield node.name, node
            pos += INODE_SIZE + (node.inode.namelen << 2)

    def file_type(self, node: INode) -> int:
        return stat.S_IFMT(node.mode)

    def identity(self, node: INode) -> Hashable:
        return node.data_offset

    def size(self, node: INode) -> int:
        return node.size

    def open(self, node: INode) -> BinaryIO:
        return node.open()

    def link(self, node: INode) -> bytes:
        return node.open().read(LINK_MAX).rstrip(b"\x00")


class Cramfs(Format):
    name = "cramfs"
    description = "cramfs compressed ROM filesystem"
    magics = (Magic(0, MAGIC.to_bytes(4, "little")), Magic(0, MAGIC.to_bytes(4, "big")))
    rooted = True
    binwalk = (re.compile(r"^CramFS filesystem, little endian"),)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        handle.seek(offset)
        return image_length(handle.read(SUPERBLOCK_SIZE), available)

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            head = handle.read(SUPERBLOCK_SIZE)
            if head.startswith(MAGIC.to_bytes(4, "big")):
                out.error(
                    "big-endian cramfs: no reader (dissect.cramfs reads little endian only)", IssueKind.UNSUPPORTED
                )
                return
            size = image_length(head, source.size)
            if size is None:
                raise ValueError("invalid cramfs superblock")
            fs = CramFS(handle)
            out.cover(0, size)
            walk_tree(out, _CramTree(fs, size), container_size=source.size)
