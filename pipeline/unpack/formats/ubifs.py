"""UBIFS, the NAND-flash filesystem that lives in a UBI volume, read with ubi_reader's node parsers.

ubi_reader parses the superblock, the master node and each node; the index
(a B+ tree of index nodes pointing at inode, directory-entry and data nodes)
is walked here, iteratively and each position once, because ubi_reader's own
walk recurses without memory of where it has been (an index that points to
itself would never end) and its file reader builds whole files in memory.
Files are streamed data node by data node (4 KiB each), holes as zeros.

References: linux/fs/ubifs/ubifs-media.h; "UBIFS - UBI File-System"
(http://www.linux-mtd.infradead.org/doc/ubifs.html).

Known limitations:
- Encrypted (fscrypt) files and names are not decrypted: their members fail
  or carry encrypted bytes.
- Only the committed index is read: nodes written after the last commit (in
  the journal) and deleted files are not recovered.
- Extended attributes are not recorded.
"""

from __future__ import annotations

import re
import stat
import struct
import zlib
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import zstandard
from lzallright import LZOCompressor
from ubireader.ubi_io import ubi_file
from ubireader.ubifs import nodes
from ubireader.ubifs import ubifs as ubifs_reader
from ubireader.ubifs.defines import (
    UBIFS_BLOCK_SIZE,
    UBIFS_COMMON_HDR_SZ,
    UBIFS_COMPR_LZO,
    UBIFS_COMPR_NONE,
    UBIFS_COMPR_ZLIB,
    UBIFS_COMPR_ZSTD,
    UBIFS_DATA_KEY,
    UBIFS_DATA_NODE,
    UBIFS_DATA_NODE_SZ,
    UBIFS_DENT_NODE,
    UBIFS_IDX_NODE,
    UBIFS_INO_NODE,
    UBIFS_S_KEY_BLOCK_BITS,
)

from pipeline.model import IssueKind
from pipeline.store import CHUNK
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._fs import LINK_MAX, ChunkStream, FsTree, walk_tree
from pipeline.unpack.formats.ubi import quiet_ubireader
from pipeline.unpack.output import Output

MAGIC = b"\x31\x18\x10\x06"
SUPERBLOCK_NODE = 6
ROOT_INODE = 1
FIRST_DATA_KEY = UBIFS_DATA_KEY << UBIFS_S_KEY_BLOCK_BITS


def filesystem_length(head: bytes) -> int | None:
    """leb_size × leb_cnt of a plausible UBIFS superblock node, or None."""
    if len(head) < 48 or not head.startswith(MAGIC) or head[20] != SUPERBLOCK_NODE:
        return None
    min_io, leb_size, leb_cnt = struct.unpack_from("<III", head, 32)
    if not min_io or leb_size < UBIFS_BLOCK_SIZE or leb_size % min_io or not leb_cnt:
        return None
    return leb_size * leb_cnt


@dataclass
class _Index:
    """The nodes the committed index points to, by inode number."""

    inodes: dict[int, Any] = field(default_factory=dict)
    entries: dict[int, list[Any]] = field(default_factory=dict)
    data: dict[int, list[Any]] = field(default_factory=dict)
    bad_nodes: int = 0


def read_index(reader: Any, size: int, out: Output) -> _Index:
    """Walk the index tree from the master node, each position at most once."""
    index = _Index()
    leb = reader.leb_size
    master = reader.master_node
    stack = [(master.root_lnum, master.root_offs)]
    seen: set[tuple[int, int]] = set()
    while stack:
        lnum, offs = stack.pop()
        position = lnum * leb + offs
        if (lnum, offs) in seen or not 0 <= offs < leb or position + UBIFS_COMMON_HDR_SZ > size:
            index.bad_nodes += (lnum, offs) not in seen
            continue
        seen.add((lnum, offs))
        out.check_time()
        try:
            reader.file.seek(position)
            header = nodes.common_hdr(reader.file.read(UBIFS_COMMON_HDR_SZ))
            if not UBIFS_COMMON_HDR_SZ < header.len <= leb - offs:
                raise ValueError("node length out of its block")
            body = reader.file.read(header.len - UBIFS_COMMON_HDR_SZ)
            _add_node(index, stack, header.node_type, body, position)
        except (ValueError, struct.error, KeyError, ZeroDivisionError, UnicodeDecodeError):
            index.bad_nodes += 1
    return index


def _add_node(index: _Index, stack: list[tuple[int, int]], node_type: int, body: bytes, position: int) -> None:
    if node_type == UBIFS_IDX_NODE:
        stack.extend((branch.lnum, branch.offs) for branch in reversed(nodes.idx_node(body).branches))
    elif node_type == UBIFS_INO_NODE:
        inode = nodes.ino_node(body)
        index.inodes[inode.key["ino_num"]] = inode
    elif node_type == UBIFS_DENT_NODE:
        entry = nodes.dent_node(body)
        if entry.inum:
            index.entries.setdefault(entry.key["ino_num"], []).append(entry)
    elif node_type == UBIFS_DATA_NODE:
        data = nodes.data_node(body, position + UBIFS_COMMON_HDR_SZ + UBIFS_DATA_NODE_SZ)
        index.data.setdefault(data.key["ino_num"], []).append(data)


def _decompress(kind: int, data: bytes) -> bytes:
    """One data node's bytes; a node never holds more than one 4 KiB block."""
    if kind == UBIFS_COMPR_NONE:
        return data[:UBIFS_BLOCK_SIZE]
    if kind == UBIFS_COMPR_ZLIB:
        return zlib.decompressobj(-15).decompress(data, UBIFS_BLOCK_SIZE)
    if kind == UBIFS_COMPR_LZO:
        return LZOCompressor.decompress(data, output_size_hint=UBIFS_BLOCK_SIZE)[:UBIFS_BLOCK_SIZE]
    if kind == UBIFS_COMPR_ZSTD:
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=UBIFS_BLOCK_SIZE)
    raise ValueError(f"unknown UBIFS compression type {kind}")


class _UbifsTree(FsTree[int]):
    def __init__(self, reader: Any, index: _Index) -> None:
        self._reader = reader
        self._index = index

    def root(self) -> int:
        return ROOT_INODE

    def entries(self, directory: int) -> Iterable[tuple[bytes, int]]:
        return ((entry.raw_name, entry.inum) for entry in self._index.entries.get(directory, []))

    def _inode(self, node: int) -> Any:
        inode = self._index.inodes.get(node)
        if inode is None:
            raise ValueError(f"inode {node} is not in the index")
        return inode

    def file_type(self, node: int) -> int:
        return stat.S_IFMT(self._inode(node).mode)

    def identity(self, node: int) -> Hashable:
        return node

    def size(self, node: int) -> int:
        return self._inode(node).size

    def open(self, node: int) -> BinaryIO:
        return ChunkStream(self._chunks(self._index.data.get(node, []), self.size(node)))  # type: ignore[return-value]

    def link(self, node: int) -> bytes:
        inode = self._inode(node)
        return inode.data[: min(inode.data_len, LINK_MAX)]

    def _chunks(self, data_nodes: list[Any], size: int) -> Iterator[bytes]:
        """The file's bytes in order: data nodes by block number, holes and the tail as zeros."""
        position = 0
        for node in sorted(data_nodes, key=lambda n: n.key["khash"]):
            start = (node.key["khash"] - FIRST_DATA_KEY) * UBIFS_BLOCK_SIZE
            if start < position or start >= size:
                continue
            yield from _zeros(start - position)
            self._reader.file.seek(node.offset)
            block = _decompress(node.compr_type, self._reader.file.read(node.compr_len))
            block = block[: size - start]
            yield block
            position = start + len(block)
        yield from _zeros(size - position)


def _zeros(count: int) -> Iterator[bytes]:
    while count > 0:
        step = min(count, CHUNK)
        yield bytes(step)
        count -= step


class Ubifs(Format):
    name = "ubifs"
    description = "UBIFS filesystem"
    magics = (Magic(0, MAGIC),)
    rooted = True
    binwalk = (re.compile(r"^UBIFS filesystem superblock node"),)

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        return filesystem_length(head) is not None

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        handle.seek(offset)
        length = filesystem_length(handle.read(48))
        return length if length is not None and length <= available else None

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            head = handle.read(48)
        length = filesystem_length(head)
        if length is None:
            raise ValueError("invalid UBIFS superblock node")
        (leb_size,) = struct.unpack_from("<I", head, 36)
        with quiet_ubireader():
            image = ubi_file(str(source.path), leb_size)
        try:
            with quiet_ubireader():
                reader = ubifs_reader(image)
                index = read_index(reader, source.size, out)
            if index.bad_nodes:
                out.error(
                    f"{index.bad_nodes} index entries point to invalid nodes; their files may be missing",
                    IssueKind.FAILURE,
                )
            if not index.entries.get(ROOT_INODE):
                raise ValueError("the index holds no root directory entries")
            out.cover(0, min(length, source.size))
            walk_tree(out, _UbifsTree(reader, index), container_size=source.size)
        finally:
            image.close()
