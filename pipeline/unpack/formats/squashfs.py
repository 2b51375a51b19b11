"""SquashFS 4.0 (little endian; gzip, xz, lzma, lzo, lz4, zstd), read with dissect.squashfs.

The read-only root filesystem of most Linux-based routers, set-top boxes and
low-cost Android builds. Members are streamed block by block from the image;
symlinks are recorded with their target, device nodes and FIFOs are noted.

Fast path: when the image's metadata (read by dissect, no data touched)
declares only directories, files and symlinks, no loop, and a total size
within the image's quotas, Debian's ``unsquashfs`` (C, multi-threaded, about
5x faster than the Python reader) extracts it inside the sandbox, as an
unprivileged user, into the work directory; its files are hashed and moved
into the store. Anything else, or any tool error, takes the streaming path,
which records precisely what failed.

References: squashfs-tools' squashfs_fs.h; https://dr-emann.github.io/squashfs/
(the format described field by field).

Known limitations:
- SquashFS before 4.0 and big-endian images (``sqsh``, old MIPS routers) have
  no reader: recorded as unsupported. Vendor variants with altered magics
  (DD-WRT ``hsqt``, ``shsq``) are not recognised.
- Extended attributes (SELinux labels of Android images) are not recorded.
- CRC-less format: a corrupt block shows up as a read failure of the files
  that use it, not of the image.
"""

from __future__ import annotations

import lzma
import re
import shutil
import stat
import struct
import zlib
from collections.abc import Hashable, Iterable
from typing import BinaryIO

from dissect.squashfs import SquashFS
from dissect.squashfs.squashfs import INode

from pipeline.model import IssueKind
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._fs import FsTree, Survey, survey_tree, walk_tree
from pipeline.unpack.output import Output, ingest_directory
from pipeline.unpack.safety import ToolFailed, bubblewrap_available, run_tool

SUPERBLOCK = struct.Struct("<IIIIIHHHHHHQQQQQQQQ")  # squashfs_super_block, 96 bytes
MAGIC_LE = b"hsqs"
MAGIC_BE = b"sqsh"
PAD = 4096  # mksquashfs pads the image to a multiple of 4 KiB unless -nopad
ZLIB, LZMA, XZ = 1, 2, 4
COMPRESSIONS = range(1, 7)  # gzip, lzma, lzo, xz, lz4, zstd
UNSQUASHFS = "unsquashfs"


def superblock_length(head: bytes, available: int) -> int | None:
    """``bytes_used`` of a plausible SquashFS 4.0 superblock, or None."""
    if len(head) < SUPERBLOCK.size or not head.startswith(MAGIC_LE):
        return None
    fields = SUPERBLOCK.unpack_from(head)
    block_size, compression, block_log, major = fields[3], fields[5], fields[6], fields[9]
    bytes_used, tables = fields[12], fields[13:]
    if major != 4 or compression not in COMPRESSIONS or not 12 <= block_log <= 20:
        return None
    if block_size != 1 << block_log or not SUPERBLOCK.size < bytes_used <= available:
        return None
    if any(t != 0xFFFFFFFFFFFFFFFF and t > bytes_used for t in tables):
        return None
    return bytes_used


class _BoundedDecompressor:
    """dissect decompresses zlib/lzma/xz blocks unbounded; a SquashFS block never exceeds 1 MiB.

    A hostile 16 MiB block of zeros would otherwise expand to gigabytes in
    memory before anything could check it.
    """

    def __init__(self, compression: int, block_size: int) -> None:
        self._compression = compression
        self._limit = max(block_size, 8192)  # metadata blocks are 8 KiB

    def decompress(self, data: bytes, expected: int) -> bytes:
        if self._compression == ZLIB:
            result = zlib.decompressobj().decompress(data, self._limit)
        else:
            result = lzma.LZMADecompressor().decompress(data, self._limit)
        return result


class _SquashTree(FsTree[INode]):
    def __init__(self, fs: SquashFS) -> None:
        self._fs = fs

    def root(self) -> INode:
        return self._fs.root

    def entries(self, directory: INode) -> Iterable[tuple[str, INode]]:
        return ((node.name, node) for node in directory.iterdir())

    def file_type(self, node: INode) -> int:
        return stat.S_IFMT(node.mode)

    def identity(self, node: INode) -> Hashable:
        return (node.block, node.offset)

    def size(self, node: INode) -> int:
        return node.size or 0

    def open(self, node: INode) -> BinaryIO:
        return node.open()

    def link(self, node: INode) -> str:
        return node.link


class Squashfs(Format):
    name = "squashfs"
    description = "SquashFS filesystem"
    magics = (Magic(0, MAGIC_LE), Magic(0, MAGIC_BE))
    rooted = True
    binwalk = (re.compile(r"^Squashfs filesystem, little endian, version 4\."),)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        handle.seek(offset)
        used = superblock_length(handle.read(SUPERBLOCK.size), available)
        if used is None:
            return None
        padded = min(-(-used // PAD) * PAD, available)
        handle.seek(offset + used)
        return padded if handle.read(padded - used).strip(b"\x00") == b"" else used

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            head = handle.read(SUPERBLOCK.size)
            if head.startswith(MAGIC_BE) or (head.startswith(MAGIC_LE) and head[28:30] != b"\x04\x00"):
                out.error("SquashFS before 4.0 or big endian: no reader", IssueKind.UNSUPPORTED)
                return
            used = superblock_length(head, source.size)
            if used is None:
                raise ValueError("invalid SquashFS 4.0 superblock")
            handle.seek(0)
            fs = SquashFS(handle)
            if fs.sb.compression in (ZLIB, LZMA, XZ):
                fs._compression = _BoundedDecompressor(fs.sb.compression, fs.block_size)
            out.cover(0, used)
            tree = _SquashTree(fs)
            if not _unsquashfs(source, out, survey_tree(tree, source.limits.max_files)):
                walk_tree(out, tree, container_size=source.size)


def _unsquashfs(source: Source, out: Output, survey: Survey) -> bool:
    """Extract with unsquashfs when the survey says it is safe; False to take the streaming path."""
    tool = shutil.which(UNSQUASHFS)
    if not (tool and bubblewrap_available() and survey.plain and out.fits(survey.files, survey.declared_bytes)):
        return False
    target = source.work_dir / "root"
    try:
        result = run_tool([tool, "-n", "-q", "-no-xattrs", "-d", str(target), str(source.path)],
                          work_dir=source.work_dir, timeout=source.limits.extractor_seconds,
                          memory=source.limits.tool_memory, max_file_size=max(survey.declared_bytes, 1))
    except ToolFailed:
        result = None
    if result is None or result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        return False
    ingest_directory(out, target, adopt=True)
    return True
