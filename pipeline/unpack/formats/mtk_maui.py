"""MediaTek MAUI ROM: the firmware image of MT62xx feature phones (MAUI on Nucleus).

A MAUI ROM (the ``ROM`` file of a flash-tool release, or the start of a raw
flash dump) may begin with GFH headers: ``"MMM"``, version, size, type; the
first is ``FILE_INFO`` (file type, flash device, load address, file length,
content offset, signature length). Somewhere in its first MiB the build
tools write an ``MTK_ROMINFO_vNN`` block: 16-byte identifier, 128-byte
platform id (``MT6261_S00...``), 64-byte project id (the build's version).
Parts of the code may be compressed with ALICE (``ALICE_1``/``ALICE_2``
header: base, mapping-table and dictionary addresses, seven range-register
bit lengths; the dictionary holds the sum of 2^length 16-bit entries).
References: U-Boot's ``tools/mtk_image.h`` and the fernly project (GFH),
MediaTek's ``append2.pl``/``rom_info_internal.h`` (ROM info), donnm's
``mtk_fw_tools`` and its issue threads (ALICE header).

The ROMINFO block names the chipset (``MT6261``) and the platform is
recorded as MAUI. The ROM body, minus its ALICE regions, becomes PARTITION
children ``ROM@<offset>``; each ALICE region is reported as undecodable.
Known limitations: ALICE (MediaTek's proprietary code compression) is not
decoded, so the code inside it is not analysed; a ROM without a GFH header
(older MT62xx builds) is not recognised, and in a raw flash dump only the
ROMs whose FILE_INFO header carving finds are; VIVA/ZIMAGE/DCM sections and
the resource packs inside the body are not split out; encrypted ROMs are
seen as high-entropy data.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

from pipeline.model import ArtifactKind, IssueKind
from pipeline.unpack.format import Format, Source
from pipeline.unpack.output import Output

GFH_MAGIC = b"MMM"
FILE_INFO = struct.Struct("<3sBHH12sIHBBIIIIIII")
# the carving scan compares 16 bytes at most; chunk_length checks the rest of the header
CARVE_MAGIC = b"MMM\x01" + struct.pack("<HH", FILE_INFO.size, 0) + b"FILE"
MAUI_FILE_TYPES = range(0x0100, 0x0180)  # GFH "MAUI binary group": primary/secondary MAUI, DSP ROMs...
ROMINFO_MAGIC = b"MTK_ROMINFO_v"
ROMINFO = struct.Struct("<16s128s64s")
ROMINFO_RANGE = 1 << 20  # the flash tool searches the first MiB of the ROM
ALICE_HEADER = struct.Struct("<7sxIII7H")
ALICE_HEADER_SIZE = 40
ALICE_PATTERN = re.compile(rb"ALICE_[12]\x00")
ALICE_PATTERN_LENGTH = 8
MAX_ALICE = 16
MAX_GFH = 32
SCAN = 1 << 20
CHIPSET = re.compile(r"(?<![A-Za-z0-9])(MT\d{4}[A-Z]?)")


@dataclass(frozen=True)
class FileInfo:
    file_type: int
    flash_device: int
    load_address: int
    file_length: int
    content_offset: int
    signature_length: int

    @classmethod
    def parse(cls, raw: bytes) -> FileInfo | None:
        if len(raw) < FILE_INFO.size or not raw.startswith(GFH_MAGIC) or raw[8:17] != b"FILE_INFO":
            return None
        fields = FILE_INFO.unpack_from(raw)
        info = cls(fields[6], fields[7], fields[9], fields[10], fields[12], fields[13])
        if info.file_type not in MAUI_FILE_TYPES or info.content_offset < FILE_INFO.size:
            return None
        if info.file_length < info.content_offset + info.signature_length:
            return None
        return info


@dataclass(frozen=True)
class RomInfo:
    offset: int
    identifier: str
    platform_id: str
    project_id: str
    chipset: str | None


@dataclass(frozen=True)
class Alice:
    offset: int
    length: int
    version: str


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("ascii", "replace").strip()


def find_rominfo(handle: BinaryIO, start: int, end: int) -> RomInfo | None:
    """The ROM info block in the first MiB of the body, with the chipset its platform id names."""
    handle.seek(start)
    window = handle.read(min(end - start, ROMINFO_RANGE + ROMINFO.size))
    at = window.find(ROMINFO_MAGIC)
    if at < 0 or at + ROMINFO.size > len(window):
        return None
    identifier, platform_id, project_id = ROMINFO.unpack_from(window, at)
    platform, project = _text(platform_id), _text(project_id)
    named = CHIPSET.search(platform) or CHIPSET.search(project)
    return RomInfo(start + at, _text(identifier), platform, project, named.group(1) if named else None)


def _alice_at(handle: BinaryIO, offset: int, end: int) -> Alice | None:
    handle.seek(offset)
    raw = handle.read(ALICE_HEADER_SIZE)
    if len(raw) < ALICE_HEADER_SIZE:
        return None
    magic, base, mapping, dictionary, *ranges = ALICE_HEADER.unpack_from(raw)
    if not base <= mapping < dictionary or not all(1 <= bits <= 16 for bits in ranges):
        return None
    length = dictionary - base + ALICE_HEADER_SIZE + 2 * sum(1 << bits for bits in ranges)
    return Alice(offset, min(length, end - offset), magic.decode())


def find_alice(handle: BinaryIO, start: int, end: int) -> list[Alice]:
    """ALICE-compressed regions of the body, found by their header, in offset order."""
    found: list[Alice] = []
    position = start
    while position < end and len(found) < MAX_ALICE:
        handle.seek(position)
        window = handle.read(min(SCAN, end - position))
        candidates = (_alice_at(handle, position + m.start(), end) for m in ALICE_PATTERN.finditer(window))
        region = next((c for c in candidates if c is not None), None)
        if region is not None:
            found.append(region)
            position = region.offset + region.length
        elif position + len(window) >= end:
            break
        else:  # overlap the windows so a header across their border is seen
            position += len(window) - ALICE_PATTERN_LENGTH + 1
    return found


class MtkMaui(Format):
    name = "mtk-maui"
    description = "MediaTek MAUI feature-phone ROM"
    carve_magics = (CARVE_MAGIC,)

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        return FileInfo.parse(head) is not None

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        handle.seek(offset)
        info = FileInfo.parse(handle.read(FILE_INFO.size))
        if info is None or info.file_length > available:
            return None
        return info.file_length

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            start, end, attributes = self._body(handle, source.size, out)
            rominfo = find_rominfo(handle, start, end)
            if rominfo is not None:
                attributes.update(platform_id=rominfo.platform_id, project_id=rominfo.project_id)
                if rominfo.chipset:
                    out.set_platform(chipset=rominfo.chipset, os="MAUI",
                                     how=f"{rominfo.identifier} block at {rominfo.offset:#x}: platform "
                                         f"{rominfo.platform_id!r}, project {rominfo.project_id!r}")
            position = start
            for region in find_alice(handle, start, end):
                out.undecodable(region.offset, region.length,
                                f"MediaTek {region.version}-compressed code (proprietary ALICE compression, "
                                "no decoder): the code inside is not analysed")
                self._segment(handle, position, region.offset, attributes, out)
                position = region.offset + region.length
            self._segment(handle, position, end, attributes, out)

    @staticmethod
    def _body(handle: BinaryIO, size: int, out: Output) -> tuple[int, int, dict[str, object]]:
        """The ROM body's range (after the GFH headers, before the signature) and what the headers say."""
        handle.seek(0)
        info = FileInfo.parse(handle.read(FILE_INFO.size))
        if info is None:
            raise ValueError("no GFH FILE_INFO header of a MAUI binary")
        if info.file_length > size:
            out.error(f"ROM is truncated: its FILE_INFO header says {info.file_length} bytes, "
                      f"the file has {size}", IssueKind.FAILURE)
        end = min(info.file_length - info.signature_length, size)
        start = min(info.content_offset, end)
        out.cover(0, start)
        out.cover(end, min(info.signature_length, size - end))
        attributes = {"gfh_file_type": info.file_type, "flash_device": info.flash_device,
                      "load_address": info.load_address, "gfh_headers": _gfh_types(handle, start)}
        return start, end, attributes

    @staticmethod
    def _segment(handle: BinaryIO, start: int, end: int, attributes: dict[str, object], out: Output) -> None:
        if end > start:
            out.add_range(f"ROM@{start:#x}", handle, start, end - start, kind=ArtifactKind.PARTITION,
                          attributes=dict(attributes))


def _gfh_types(handle: BinaryIO, end: int) -> list[int]:
    """Types of the chained GFH headers before the content (FILE_INFO, BL_INFO, ...)."""
    types: list[int] = []
    offset = 0
    while offset + 8 <= end and len(types) < MAX_GFH:
        handle.seek(offset)
        magic, _version, length, kind = struct.unpack("<3sBHH", handle.read(8))
        if magic != GFH_MAGIC or length < 8:
            break
        types.append(kind)
        offset += length
    return types
