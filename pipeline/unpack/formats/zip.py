"""ZIP archives (PKWARE APPNOTE 6.3.x), including APK and JAR; central directory read by ``zipfile``.

``zipfile`` lists the central directory; each member's bytes are then
decoded by our own bounded pump from its local header, not through
``ZipExtFile``, because ``ZipExtFile`` decodes a whole input chunk of a
bzip2 or LZMA member in one unbounded call (a bzip2 bomb would be
materialised in memory). Stored, deflate, bzip2 and LZMA members are read;
the CRC and size of each member are checked (a corrupt member is recorded
as a failure and the others are still extracted). Directories are skipped;
Unix symlinks are recorded with their target, device nodes and FIFOs are
noted; encrypted members are recorded as undecodable, other compression
methods as unsupported. When the central directory is missing (a
truncated dump), members are recovered by walking the local headers.

The label is ``apk`` when the name ends with ``.apk`` or an
``AndroidManifest.xml`` member is seen in the first 64 KiB, ``jar`` for
``.jar`` or a ``META-INF/MANIFEST.MF`` member (not for a ``.zip``: signed
Android OTA packages have one too).

Known limitations: the label only sees the name and the first 64 KiB;
carving does not find zip64 archives; members with a data descriptor
cannot be recovered without the central directory; deflate64, zstd, xz
and PPMd members are unsupported.
"""

from __future__ import annotations

import bz2
import lzma
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pipeline.model import IssueKind
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._members import LinkTarget, special_kind
from pipeline.unpack.formats._stream import Decompressor, Writer, ZlibStream, pump
from pipeline.unpack.output import Output

# signature, version, flags, method, time, date, crc, sizes, name and extra lengths
LOCAL = struct.Struct("<4sHHHHHIIIHH")
# signature, disks, entries (here, total), directory size and offset, comment length
END = struct.Struct("<4sHHHHIIH")
LOCAL_MAGIC, END_MAGIC, DESCRIPTOR_MAGIC = b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"
ENCRYPTED, LZMA_END_MARKER, HAS_DESCRIPTOR, STRONG_ENCRYPTION, UTF8 = 0x0001, 0x0002, 0x0008, 0x0040, 0x0800
STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14
METHOD_NAMES = {9: "deflate64", 93: "zstd", 95: "xz", 98: "PPMd", 99: "AES"}
UNIX = 3
SCAN = 1 << 20
END_SEARCH = END.size + 0xFFFF  # the record and the longest comment
_APK_MEMBER = re.compile(rb"PK\x03\x04.{22}\x13\x00..AndroidManifest\.xml|PK\x01\x02.{24}\x13\x00.{16}"
                         rb"AndroidManifest\.xml", re.DOTALL)
_JAR_MEMBER = re.compile(rb"PK\x03\x04.{22}\x14\x00..META-INF/MANIFEST\.MF|PK\x01\x02.{24}\x14\x00.{16}"
                         rb"META-INF/MANIFEST\.MF", re.DOTALL)


@dataclass(frozen=True)
class _Entry:
    """What we need of a member, from the central directory or, failing that, its local header."""

    name: str
    flags: int
    method: int
    crc: int
    compress_size: int
    file_size: int
    header_offset: int
    mode: int = 0

    @classmethod
    def from_info(cls, info: zipfile.ZipInfo) -> _Entry:
        mode = info.external_attr >> 16 if info.create_system == UNIX else 0
        if info.is_dir():
            mode = stat.S_IFDIR
        return cls(info.orig_filename, info.flag_bits, info.compress_type, info.CRC, info.compress_size,
                   info.file_size, info.header_offset, mode)


class _LzmaInZip:
    """A zip LZMA member (version, properties size, properties, raw LZMA1) seen as an LZMA-alone stream.

    The alone header is the same 5 property bytes followed by the uncompressed
    size (or -1 when the member ends with an end marker), so the stdlib's
    ``FORMAT_ALONE`` decoder reads it without private APIs.
    """

    def __init__(self, entry: _Entry) -> None:
        self._inner = lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=1 << 29)
        self._size = -1 if entry.flags & LZMA_END_MARKER else entry.file_size
        self._header: bytes | None = b""

    @property
    def eof(self) -> bool:
        return self._inner.eof

    @property
    def needs_input(self) -> bool:
        return self._header is not None or self._inner.needs_input

    @property
    def unused_data(self) -> bytes:
        return self._inner.unused_data

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if self._header is not None:
            self._header += data
            if len(self._header) < 9:
                return b""
            if self._header[2:4] != b"\x05\x00":
                raise ValueError("zip LZMA member has an unexpected properties size")
            data = self._header[4:9] + struct.pack("<q", self._size) + self._header[9:]
            self._header = None
        return self._inner.decompress(data, max_length)


class _Checked:
    """Passes decoded bytes on while computing their CRC-32 and size."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self.crc = 0
        self.size = 0

    def write(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        self._writer.write(data)


def _decompressor(entry: _Entry) -> Decompressor | None:
    """The decoder of a member's method; None for stored members."""
    if entry.method == DEFLATED:
        return ZlibStream(-15)
    if entry.method == BZIP2:
        return bz2.BZ2Decompressor()
    if entry.method == LZMA:
        return _LzmaInZip(entry)
    return None


def _data_start(handle: BinaryIO, entry: _Entry, size: int) -> int:
    """Offset of a member's data, after its local header; ValueError when it is not all there."""
    handle.seek(entry.header_offset)
    raw = handle.read(LOCAL.size)
    if len(raw) < LOCAL.size or raw[:4] != LOCAL_MAGIC:
        raise ValueError(f"no local header at offset {entry.header_offset:#x}")
    *_, name_length, extra_length = LOCAL.unpack(raw)
    start = entry.header_offset + LOCAL.size + name_length + extra_length
    if start + entry.compress_size > size:
        missing = start + entry.compress_size - size
        raise ValueError(f"member data runs {missing} bytes past the end of the archive")
    return start


def _decode(handle: BinaryIO, entry: _Entry, writer: Writer, size: int) -> int:
    """Decode one member into ``writer``, checking its CRC and size; returns where its record ends."""
    start = _data_start(handle, entry, size)
    handle.seek(start)
    checked = _Checked(writer)
    decompressor = _decompressor(entry)
    if decompressor is None:
        remaining = entry.compress_size
        while remaining and (data := handle.read(min(SCAN, remaining))):
            checked.write(data)
            remaining -= len(data)
    else:
        try:
            pump(handle, decompressor, checked, entry.compress_size)
        except (lzma.LZMAError, zlib.error) as exc:
            raise ValueError(f"corrupt compressed data: {exc}") from exc
    if checked.size != entry.file_size:
        raise ValueError(f"decoded {checked.size} bytes, the archive says {entry.file_size}")
    if checked.crc != entry.crc:
        raise ValueError(f"CRC mismatch (corrupt member): {checked.crc:#010x} != {entry.crc:#010x}")
    end = start + entry.compress_size
    if entry.flags & HAS_DESCRIPTOR:
        handle.seek(end)
        end += 16 if handle.read(4) == DESCRIPTOR_MAGIC else 12
    return end


def _local_entries(handle: BinaryIO, size: int) -> Iterator[_Entry]:
    """Members found by walking local headers from the start, for an archive without central directory.

    Stops at the first record that is not a local header, or whose length is
    only in a data descriptor (its end cannot be found without decoding).
    """
    offset = 0
    while offset + LOCAL.size <= size:
        handle.seek(offset)
        (magic, _, flags, method, _, _, crc, compress_size, file_size,
         name_length, extra_length) = LOCAL.unpack(handle.read(LOCAL.size))
        if magic != LOCAL_MAGIC or (flags & HAS_DESCRIPTOR and compress_size == 0):
            return
        raw_name = handle.read(name_length)
        name = raw_name.decode("utf-8" if flags & UTF8 else "cp437", "replace")
        yield _Entry(name, flags, method, crc, compress_size, file_size, offset)
        offset += LOCAL.size + name_length + extra_length + compress_size


def _end_of_directory(handle: BinaryIO, size: int) -> int | None:
    """End offset of the last end-of-central-directory record in the file's tail (as ``zipfile`` finds it)."""
    start = max(0, size - END_SEARCH)
    handle.seek(start)
    tail = handle.read(size - start)
    at = tail.rfind(END_MAGIC)
    if at < 0 or at + END.size > len(tail):
        return None
    return start + at + END.size + END.unpack_from(tail, at)[-1]


def _archive_end(handle: BinaryIO, offset: int, available: int) -> int | None:
    """End of the zip archive starting at ``offset``: its end record, found consistent with its directory."""
    limit = offset + available
    pos, carry = offset, b""
    while pos < limit:
        handle.seek(pos)
        block = handle.read(min(SCAN, limit - pos))
        if not block:
            return None
        window, base = carry + block, pos - len(carry)
        for match in re.finditer(re.escape(END_MAGIC), window):
            at = base + match.start()
            handle.seek(at)
            record = handle.read(END.size)
            if len(record) < END.size:
                return None
            _, disk, directory_disk, here, total, size, directory, comment = END.unpack(record)
            end = at + END.size + comment
            consistent = directory + size == at - offset
            if disk == directory_disk == 0 and here == total and end <= limit and consistent:
                return end
        carry, pos = window[-(len(END_MAGIC) - 1):], pos + len(block)
    return None


class Zip(Format):
    name = "zip"
    description = "Zip archive"
    magics = (Magic(0, LOCAL_MAGIC),)
    binwalk = (re.compile(r"^Zip archive data"),)

    @classmethod
    def label(cls, head: bytes, name: str) -> str:
        lowered = name.lower()
        if lowered.endswith(".apk") or _APK_MEMBER.search(head):
            return "apk"
        if lowered.endswith(".jar") or (not lowered.endswith(".zip") and _JAR_MEMBER.search(head)):
            return "jar"
        return cls.name

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        handle.seek(offset)
        if handle.read(len(LOCAL_MAGIC)) != LOCAL_MAGIC:
            return None
        end = _archive_end(handle, offset, available)
        return None if end is None else end - offset

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            try:
                archive = zipfile.ZipFile(handle)
            except zipfile.BadZipFile as exc:
                entries = list(_local_entries(handle, source.size))
                if not entries:
                    raise ValueError(f"not a readable zip archive: {exc}") from exc
                out.error(f"central directory not found ({exc}): {len(entries)} members recovered from "
                          "their local headers; the archive is truncated or damaged", IssueKind.FAILURE)
            else:
                with archive:
                    entries = [_Entry.from_info(info) for info in archive.infolist()]
                    directory_end = _end_of_directory(handle, source.size)
                    if directory_end is not None:
                        out.cover(archive.start_dir, directory_end - archive.start_dir)
            for entry in entries:
                out.check_time()
                self._member(handle, entry, source.size, out)

    @staticmethod
    def _member(handle: BinaryIO, entry: _Entry, size: int, out: Output) -> None:
        name = out.safe_name(entry.name)
        if entry.flags & (ENCRYPTED | STRONG_ENCRYPTION):
            out.error(f"member {name!r} is encrypted; not decoded", IssueKind.UNDECODABLE, member=name)
            return
        if entry.method not in (STORED, DEFLATED, BZIP2, LZMA):
            method = METHOD_NAMES.get(entry.method, "unknown")
            out.error(f"member {name!r} uses compression method {entry.method} ({method}), "
                      "which has no reader", IssueKind.UNSUPPORTED, member=name)
            return
        kind = special_kind(entry.mode)
        if kind is not None or stat.S_ISDIR(entry.mode) or stat.S_ISLNK(entry.mode):
            try:
                target = LinkTarget()
                end = _decode(handle, entry, target, size)
            except (ValueError, EOFError, OSError) as exc:
                out.error(f"could not read member: {exc}", IssueKind.FAILURE, member=name)
                return
            if stat.S_ISLNK(entry.mode):
                out.add_symlink(name, bytes(target.value))
            elif kind is not None:
                out.special_file(name, kind)
        else:
            before = len(out.children)
            with out.member(name, offset=entry.header_offset, compressed_size=entry.compress_size) as writer:
                end = _decode(handle, entry, writer, size)
            if len(out.children) == before:
                return  # the Output recorded why this member failed; its bytes stay uncovered
        out.cover(entry.header_offset, end - entry.header_offset)
