"""7-Zip archives (7zFormat.txt of the 7-Zip SDK), read with ``libarchive-c``.

libarchive is used rather than py7zr because it iterates entries one by
one and streams each with ``get_blocks``: a ``../`` name or an escaping
symlink is just an entry whose name the Output sanitises, where py7zr
aborts the whole archive; and nothing is ever written to disk. The reader
is pinned to the ``7zip`` format with no filter, so a hostile file cannot
steer libarchive to another parser. Symlinks are recorded with their
target; device nodes and FIFOs are noted. An encrypted archive (content or
header) is recorded as undecodable: libarchive cannot go on after it.
The carving length comes from the signature header (its CRC is checked):
the archive ends with its "next header".

Known limitations: solid blocks give no per-member compressed size, so the
ratio check of each member is against the whole archive's size; hard
links (which 7-Zip does not write) are recorded as failures; multi-volume
archives are not joined.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import libarchive
from libarchive.entry import ArchiveEntry
from libarchive.exception import ArchiveError

from pipeline.model import IssueKind
from pipeline.store import CHUNK
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._members import special_kind
from pipeline.unpack.output import Output

SIGNATURE = b"7z\xbc\xaf\x27\x1c"
START_HEADER = struct.Struct("<6s2sIQQI")  # signature, version, CRC of the rest, next header offset/size/CRC


class EncryptedError(Exception):
    """libarchive met encrypted data; it cannot read further."""


def archive_length(handle: BinaryIO, offset: int, available: int) -> int | None:
    """Length of the 7z archive at ``offset`` from its signature header, or None if it is not one."""
    handle.seek(offset)
    raw = handle.read(START_HEADER.size)
    if len(raw) < START_HEADER.size:
        return None
    signature, version, crc, next_offset, next_size, _ = START_HEADER.unpack(raw)
    if signature != SIGNATURE or version[0] != 0 or zlib.crc32(raw[12:]) != crc:
        return None
    length = START_HEADER.size + next_offset + next_size
    return length if next_size > 0 and length <= available else None


def _message(exc: ArchiveError) -> str:
    """libarchive's message without the handle address it appends (reports must be reproducible)."""
    return str(exc.args[0]) if exc.args else "libarchive error"


def _blocks(entry: ArchiveEntry) -> Iterator[bytes]:
    """An entry's data; libarchive's errors become ValueError (a failed member) or ``EncryptedError``."""
    try:
        yield from entry.get_blocks(CHUNK)
    except ArchiveError as exc:
        if "encrypted" in _message(exc):
            raise EncryptedError(_message(exc)) from exc
        raise ValueError(_message(exc)) from exc


class SevenZip(Format):
    name = "7z"
    description = "7-Zip archive"
    magics = (Magic(0, SIGNATURE),)
    binwalk = (re.compile(r"^7-zip archive data"),)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        return archive_length(handle, offset, available)

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            length = archive_length(handle, 0, source.size)
        if length is None:
            raise ValueError("7z signature header is invalid or the archive is truncated")
        out.cover(0, START_HEADER.size)
        try:
            self._entries(source, out)
        except EncryptedError as exc:
            out.undecodable(START_HEADER.size, length - START_HEADER.size, f"encrypted 7z archive ({exc})")
            return
        out.cover(0, length)

    @staticmethod
    def _entries(source: Source, out: Output) -> None:
        try:
            with libarchive.file_reader(str(source.path), format_name="7zip", filter_name="none") as archive:
                for entry in archive:
                    out.check_time()
                    name = out.safe_name(entry.pathname or "")
                    if entry.isdir:
                        continue
                    if entry.issym:
                        out.add_symlink(name, entry.linkpath or "")
                    elif entry.islnk:
                        out.error(f"hard link to {entry.linkpath!r} not resolved", IssueKind.FAILURE,
                                  member=name)
                    elif entry.isreg:
                        try:
                            with out.member(name, compressed_size=source.size) as writer:
                                for block in _blocks(entry):
                                    writer.write(block)
                        except EncryptedError as exc:
                            raise EncryptedError(f"member {name!r}: {exc}") from exc
                    else:
                        out.special_file(name, special_kind(entry.filetype) or "special file")
        except ArchiveError as exc:
            if "encrypted" in _message(exc):
                raise EncryptedError(_message(exc)) from exc
            raise ValueError(_message(exc)) from exc
