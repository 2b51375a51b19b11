"""POSIX tar archives (ustar, GNU, pax), read with the stdlib ``tarfile`` in mode ``r:``.

Only uncompressed tar is read here: a ``.tar.gz`` is a ``gzip`` container
whose member is a tar, so the tree shows ``gzip › tar`` and each layer is
bounded on its own. Nothing is extracted by ``tarfile``: regular files are
streamed with ``extractfile``; symlinks are recorded with their target; a
hard link is streamed from the earlier member it names when that resolves,
else recorded as an error; device nodes and FIFOs are noted. The Output
sanitises names (absolute, ``..``, backslashes) and notes them. GNU sparse
members get the ratio check against the bytes they store, so a sparse bomb
stops like any other.

Known limitations: old V7 tar (no ``ustar`` magic) is not identified;
members after a corrupt header are not reached (``tarfile`` stops there);
carving does not follow pax ``size`` overrides (members over 8 GiB).
"""

from __future__ import annotations

import re
import stat
import tarfile
from typing import BinaryIO

from pipeline.model import IssueKind
from pipeline.store import CHUNK
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._members import special_kind
from pipeline.unpack.output import Output

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
SPECIAL_TYPES = {tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK, tarfile.FIFOTYPE: stat.S_IFIFO}
ZERO_BLOCK = bytes(BLOCK)


class _Window:
    """A read-only, seekable view of ``[offset, offset + length)`` of a file, so tarfile sees a chunk."""

    def __init__(self, handle: BinaryIO, offset: int, length: int) -> None:
        self._handle = handle
        self._offset = offset
        self._length = length
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        size = self._length - self._pos if size < 0 else min(size, self._length - self._pos)
        self._handle.seek(self._offset + self._pos)
        data = self._handle.read(max(size, 0))
        self._pos += len(data)
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        base = (0, self._pos, self._length)[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos


def _stored_bytes(member: tarfile.TarInfo) -> int:
    """Bytes a member's data occupies in the archive (less than its size for a sparse file)."""
    if member.sparse is not None:
        return sum(length for _, length in member.sparse)
    return member.size


def _copy(archive: tarfile.TarFile, member: tarfile.TarInfo, out: Output, name: str, offset: int) -> bool:
    """Stream a regular member (or a hard link's target) into the Output; True when it was stored."""
    before = len(out.children)
    stored = _stored_bytes(member)
    with out.member(name, offset=offset, compressed_size=max(stored, BLOCK)) as writer:
        stream = archive.extractfile(member)
        if stream is None:
            raise ValueError("member has no data")
        try:
            while data := stream.read(CHUNK):
                writer.write(data)
        except tarfile.TarError as exc:  # "unexpected end of data": a truncated member
            raise ValueError(str(exc)) from exc
    return len(out.children) > before


class Tar(Format):
    name = "tar"
    description = "POSIX tar archive"
    magics = (Magic(257, b"ustar\x0000"), Magic(257, b"ustar  \x00"))
    binwalk = (re.compile(r"^POSIX tar archive"),)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        try:
            with tarfile.open(fileobj=_Window(handle, offset, available), mode="r:") as archive:
                for _ in archive:
                    pass
                end = archive.offset
        except tarfile.TarError:
            return None
        if end == 0:
            return None
        # the end-of-archive zero blocks, up to the end of tar's 10 KiB record
        limit = min(-(-(end + 2 * BLOCK) // RECORD) * RECORD, available)
        handle.seek(offset + end)
        while end + BLOCK <= limit and handle.read(BLOCK) == ZERO_BLOCK:
            end += BLOCK
        return end

    def extract(self, source: Source, out: Output) -> None:
        regular: dict[str, tarfile.TarInfo] = {}  # resolvable hard-link targets, by their archive name
        with source.open() as handle, tarfile.open(fileobj=handle, mode="r:") as archive:
            for member in archive:
                out.check_time()
                name = out.safe_name(member.name)
                span = member.offset_data - member.offset + -(-_stored_bytes(member) // BLOCK) * BLOCK
                if member.isreg():
                    if _copy(archive, member, out, name, member.offset_data):
                        regular[member.name] = member
                        out.cover(member.offset, span)
                elif member.islnk():
                    target = regular.get(member.linkname)
                    if target is None:
                        out.error(f"hard link to {member.linkname!r}, which is not an earlier regular member",
                                  IssueKind.FAILURE, member=name)
                    elif _copy(archive, target, out, name, member.offset):
                        regular[member.name] = target
                        out.cover(member.offset, span)
                else:
                    if member.issym():
                        out.add_symlink(name, member.linkname)
                    elif member.type in SPECIAL_TYPES:
                        out.special_file(name, special_kind(SPECIAL_TYPES[member.type]) or "special file")
                    elif not member.isdir():
                        out.special_file(name, f"tar member of type {member.type!r}")
                    out.cover(member.offset, span)
            self._check_end(handle, archive.offset, out)

    @staticmethod
    def _check_end(handle: BinaryIO, end: int, out: Output) -> None:
        """tarfile stops silently at a truncated or invalid header: say so unless the end marker follows."""
        handle.seek(end)
        if handle.read(BLOCK).strip(b"\0"):
            out.error(f"tar stops at offset {end:#x} on a truncated or invalid header; anything after it "
                      "was not reached", IssueKind.FAILURE)
