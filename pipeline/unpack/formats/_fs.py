"""Shared tree walk for filesystem readers (squashfs, ext, jffs2, cramfs, fat, ubifs).

Every filesystem library exposes the same few things in its own words: a
root, a directory listing, a file type, a readable stream, a symlink target.
A format module adapts its library to ``FsTree`` and ``walk_tree`` does the
rest the same way for all of them: an explicit stack (no recursion, whatever
the depth), directories walked once each (a directory reached twice is a loop
built to hang a reader: noted and cut), ``.``/``..`` entries ignored, every
file streamed to the Output bounded by its declared size, a file that cannot
be read (truncated image, corrupt block) recorded as a failure of that member
while the walk goes on, symlinks recorded and never followed, device nodes
and FIFOs noted and never created.
"""

from __future__ import annotations

import io
import stat
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Generic, TypeVar, cast

from pipeline.model import IssueKind, NoteKind
from pipeline.unpack.output import Output
from pipeline.unpack.safety import ExtractionAborted, sanitise_member_name

NodeT = TypeVar("NodeT")

# A file may not declare more than this many times the image's size: beyond it, a reader would
# allocate per-block tables for an absurd size before the Output's own ratio check could run.
DECLARED_RATIO = 1024
DECLARED_FLOOR = 64 << 20

LINK_MAX = 4096  # PATH_MAX: a symlink target is read at most this long, whatever its inode declares

SPECIAL_KINDS = {
    stat.S_IFCHR: "character device node",
    stat.S_IFBLK: "block device node",
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
}


class FsTree(ABC, Generic[NodeT]):
    """One filesystem seen through its library: what ``walk_tree`` needs to know of a node."""

    @abstractmethod
    def root(self) -> NodeT: ...

    @abstractmethod
    def entries(self, directory: NodeT) -> Iterable[tuple[str | bytes, NodeT]]:
        """(name, node) of each entry of a directory, as stored."""

    @abstractmethod
    def file_type(self, node: NodeT) -> int:
        """The node's ``stat.S_IFMT`` bits (``stat.S_IFDIR``, ``stat.S_IFREG``...)."""

    @abstractmethod
    def identity(self, node: NodeT) -> Hashable:
        """What makes two directory entries the same directory (an inode number, an offset)."""

    @abstractmethod
    def size(self, node: NodeT) -> int: ...

    @abstractmethod
    def open(self, node: NodeT) -> BinaryIO: ...

    @abstractmethod
    def link(self, node: NodeT) -> str | bytes: ...


class InodeTree(FsTree[NodeT]):
    """The dissect.* filesystems share their node vocabulary: root, inum, size, open()."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs

    def root(self) -> NodeT:
        return self._fs.root

    def identity(self, node: NodeT) -> Hashable:
        return node.inum  # type: ignore[attr-defined]

    def size(self, node: NodeT) -> int:
        return node.size  # type: ignore[attr-defined]

    def open(self, node: NodeT) -> BinaryIO:
        return node.open()  # type: ignore[attr-defined]

    def link(self, node: NodeT) -> str | bytes:
        return node.open().read(LINK_MAX)  # type: ignore[attr-defined]


class ChunkStream(io.RawIOBase):
    """A readable stream over an iterator of byte chunks, for readers that decode node by node."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


class _Counting:
    """A read-only stream wrapper that counts the bytes it gave."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data


@dataclass(frozen=True)
class Survey:
    """What a filesystem declares it holds, read from its metadata alone."""

    files: int
    declared_bytes: int
    plain: bool  # only directories, regular files and symlinks, no loop, every entry readable


def survey_tree(tree: FsTree[NodeT], max_entries: int) -> Survey:
    """Count files and declared bytes without reading any data (to decide how to extract)."""
    root = tree.root()
    seen: set[Hashable] = {tree.identity(root)}
    stack, files, declared, entries = [root], 0, 0, 0
    try:
        while stack:
            for name, node in tree.entries(stack.pop()):
                if name in (".", "..", b".", b".."):
                    continue
                entries += 1
                kind = tree.file_type(node)
                if entries > max_entries or kind not in (stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK):
                    return Survey(files, declared, plain=False)
                if kind == stat.S_IFDIR:
                    if tree.identity(node) in seen:
                        return Survey(files, declared, plain=False)
                    seen.add(tree.identity(node))
                    stack.append(node)
                    continue
                files += 1
                declared += tree.size(node) if kind == stat.S_IFREG else 0
    except Exception:  # a corrupt listing: the streaming walk records exactly what fails
        return Survey(files, declared, plain=False)
    return Survey(files, declared, plain=True)


def walk_tree(out: Output, tree: FsTree[NodeT], *, container_size: int) -> None:
    """Hand every member of a filesystem to ``out``.

    ``container_size`` bounds each member's expansion (no file may exceed the
    Output's ratio over the whole image), which stops sparse-file and
    compression bombs.
    """
    root = tree.root()
    seen: set[Hashable] = {tree.identity(root)}
    stack: list[tuple[str, NodeT]] = [("", root)]
    while stack:
        path, directory = stack.pop()
        subdirectories: list[tuple[str, NodeT]] = []
        try:
            for raw_name, node in tree.entries(directory):
                out.check_time()
                name = raw_name.decode("utf-8", "surrogateescape") if isinstance(raw_name, bytes) else raw_name
                if name in (".", ".."):
                    continue
                member = f"{path}/{name}"
                if _is_directory(out, tree, member, node):
                    key = tree.identity(node)
                    if key in seen:
                        out.note(
                            _shown(member),
                            "directory already walked at another path (a directory loop); not walked again",
                            NoteKind.DUPLICATE,
                        )
                    else:
                        seen.add(key)
                        subdirectories.append((member, node))
                    continue
                _member(out, tree, member, node, container_size)
        except ExtractionAborted:
            raise
        except Exception as exc:  # a corrupt directory breaks its library in any way
            out.error(
                f"could not list directory: {type(exc).__name__}: {exc}", IssueKind.FAILURE, member=_shown(path or "/")
            )
        stack.extend(reversed(subdirectories))  # depth first, in directory order


def _is_directory(out: Output, tree: FsTree[NodeT], member: str, node: NodeT) -> bool:
    """False for anything not a directory, and for a node whose inode cannot be read (then recorded)."""
    try:
        return tree.file_type(node) == stat.S_IFDIR
    except ExtractionAborted:
        raise
    except Exception as exc:  # a corrupt inode breaks its library in any way
        out.error(f"could not read inode: {type(exc).__name__}: {exc}", IssueKind.FAILURE, member=_shown(member))
        return False


def _member(out: Output, tree: FsTree[NodeT], member: str, node: NodeT, container_size: int) -> None:
    """One non-directory entry: a file streamed, a symlink recorded, anything else noted."""
    try:
        kind = tree.file_type(node)
    except Exception:  # already recorded by _is_directory
        return
    try:
        if kind == stat.S_IFLNK:
            out.add_symlink(member, tree.link(node))
        elif kind == stat.S_IFREG:
            size = tree.size(node)
            if size > max(container_size * DECLARED_RATIO, DECLARED_FLOOR):
                out.error(
                    f"declares {size} bytes, beyond {DECLARED_RATIO}x the image; not read (a bomb or corruption)",
                    IssueKind.LIMIT,
                    member=_shown(member),
                )
                return
            stream = _Counting(tree.open(node))
            recorded = len(out.issues)
            out.add_stream(member, cast(BinaryIO, stream), length=size, compressed_size=container_size)
            if stream.count < size and len(out.issues) == recorded:
                out.error(
                    f"truncated: {stream.count} of {size} bytes could be read", IssueKind.FAILURE, member=_shown(member)
                )
        else:
            out.special_file(member, SPECIAL_KINDS.get(kind, f"file of unknown type {kind:#o}"))
    except ExtractionAborted:
        raise
    except Exception as exc:  # a corrupt inode breaks its library in any way
        out.error(f"could not read member: {type(exc).__name__}: {exc}", IssueKind.FAILURE, member=_shown(member))


def _shown(member: str) -> str:
    """The member's name as the tree shows it (sanitised), without noting it twice."""
    return sanitise_member_name(member, rooted=True).path
