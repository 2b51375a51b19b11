"""PAC: the Spreadtrum/Unisoc firmware package flashed by ResearchDownload/UpgradeDownload.

Both Android phones and MOCOR feature phones (SC6531E, SC6531DA, UIS8910...)
ship their firmware as a PAC. Layout (little endian), as documented by the
public ``pacextractor`` tools and Spreadtrum's BinPack sources:

- a 0x84C-byte header: UTF-16LE version (``BP_R1.0.0``, ``BP_R2.0.1``), the
  package size (32-bit at 0x30; ``BP_R2`` adds the high word at 0x2C),
  UTF-16LE product name (0x34) and product version (0x234), the file count
  (0x434) and the file table offset (0x438), flash settings, the magic
  0xFFFAFFFA (0x844) and two CRC-16 words;
- a table of 0xA14-byte entries: entry size, UTF-16LE file ID (``FDL``,
  ``FDL2``, ``PS``, ``NV``...), UTF-16LE file name, size (0x604, ``BP_R2``
  high word at 0x5FC), flags, data offset (0x610, ``BP_R2`` high word at
  0x600), download addresses.

Every entry with data becomes a PARTITION child named after its file name
(sanitised by the Output; the raw name and the file ID are kept in its
attributes). An entry pointing outside the package is an error for that
entry; the others are still extracted. The product name identifies the
chipset when it names one.
Known limitations: the header and data CRCs are not verified; the
flash-operation entries without data (``FLASH``, ``EraseUdisk``...) are not
listed; a chipset named only inside a payload is left to other readers.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

from pipeline.model import ArtifactKind, IssueKind
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.output import Output

HEADER_SIZE = 0x84C
ENTRY_SIZE = 0xA14
PAC_MAGIC = 0xFFFAFFFA
VERSION_PREFIX = "BP_R".encode("utf-16-le")
MAX_ENTRIES = 1024
# Spreadtrum/Unisoc part numbers: SC6531E, SC6531DA, SC6531EFM, SC9863A, UIS8910DM, UMS512...
CHIPSET = re.compile(r"(?<![A-Z0-9])(SC\d{4}[A-Z]{0,3}|UIS\d{4}[A-Z]{0,2}|UMS\d{3,4}|SL\d{4})(?![0-9])",
                     re.IGNORECASE)
FEATURE_PHONE = re.compile(r"^(SC65\d\d|SC66\d\d|UIS891\d)", re.IGNORECASE)


def _text(raw: bytes) -> str:
    return raw.decode("utf-16-le", "replace").split("\x00", 1)[0].strip()


@dataclass(frozen=True)
class Header:
    version: str
    size: int
    product: str
    product_version: str
    count: int
    table: int
    magic: int

    @classmethod
    def parse(cls, raw: bytes) -> Header:
        if len(raw) < HEADER_SIZE:
            raise ValueError(f"PAC header is truncated: {len(raw)} of {HEADER_SIZE} bytes")
        if not raw.startswith(VERSION_PREFIX):
            raise ValueError("not a PAC package: no BP_R version string")
        version = _text(raw[:48])
        high = struct.unpack_from("<I", raw, 0x2C)[0] if version.startswith("BP_R2") else 0
        size = high << 32 | struct.unpack_from("<I", raw, 0x30)[0]
        count, table = struct.unpack_from("<II", raw, 0x434)
        magic = struct.unpack_from("<I", raw, 0x844)[0]
        return cls(version, size, _text(raw[0x34:0x234]), _text(raw[0x234:0x434]), count, table, magic)

    def table_fits(self, available: int) -> bool:
        return (0 < self.count <= MAX_ENTRIES and self.table >= HEADER_SIZE
                and self.table + self.count * ENTRY_SIZE <= available)


@dataclass(frozen=True)
class Entry:
    file_id: str
    file_name: str
    size: int
    offset: int
    flags: int

    @classmethod
    def parse(cls, raw: bytes, wide: bool) -> Entry:
        size_high, offset_high, size, flags, _check, offset = struct.unpack_from("<IIIIII", raw, 0x5FC)
        if wide:
            size |= size_high << 32
            offset |= offset_high << 32
        return cls(_text(raw[4:0x204]), _text(raw[0x204:0x404]), size, offset, flags)


def chipset_of(*names: str) -> str | None:
    """The first Spreadtrum/Unisoc part number named in the package's product name or version."""
    for name in names:
        if found := CHIPSET.search(name):
            return found.group(1).upper()
    return None


class Pac(Format):
    name = "pac"
    description = "Spreadtrum/Unisoc PAC firmware package"
    magics = (Magic(0, VERSION_PREFIX),)
    carve_magics = (VERSION_PREFIX,)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        handle.seek(offset)
        try:
            header = Header.parse(handle.read(HEADER_SIZE))
        except ValueError:
            return None
        if header.magic != PAC_MAGIC or not header.table_fits(available):
            return None
        if not header.table + header.count * ENTRY_SIZE <= header.size <= available:
            return None
        return header.size

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            header = Header.parse(handle.read(HEADER_SIZE))
            if not header.table_fits(source.size):
                raise ValueError(f"PAC file table ({header.count} entries at {header.table:#x}) does not fit "
                                 f"in the {source.size}-byte file")
            if header.size > source.size:
                out.error(f"PAC is truncated: its header says {header.size} bytes, "
                          f"the file has {source.size}", IssueKind.FAILURE)
            out.cover(0, HEADER_SIZE)
            out.cover(header.table, header.count * ENTRY_SIZE)
            self._platform(header, out)
            shared = {"pac_version": header.version, "product": header.product,
                      "product_version": header.product_version}
            for index in range(header.count):
                handle.seek(header.table + index * ENTRY_SIZE)
                entry = Entry.parse(handle.read(ENTRY_SIZE), header.version.startswith("BP_R2"))
                self._entry(index, entry, handle, source.size, shared, out)

    @staticmethod
    def _entry(index: int, entry: Entry, handle: BinaryIO, size: int, shared: dict[str, str],
               out: Output) -> None:
        if entry.size == 0:
            return  # a flash operation (erase, format), not a file
        name = entry.file_name or entry.file_id or f"entry{index}"
        if entry.offset < HEADER_SIZE or entry.offset + entry.size > size:
            out.error(f"PAC entry {index} ({entry.file_id!r}) points outside the package: {entry.size} bytes "
                      f"at {entry.offset:#x} in a {size}-byte file", IssueKind.FAILURE,
                      member=out.safe_name(name))
            return
        attributes = {**shared, "file_id": entry.file_id, "raw_name": entry.file_name, "flags": entry.flags}
        out.add_range(name, handle, entry.offset, entry.size, kind=ArtifactKind.PARTITION,
                      attributes=attributes)

    @staticmethod
    def _platform(header: Header, out: Output) -> None:
        chipset = chipset_of(header.product, header.product_version)
        if chipset is None:
            return
        os = "MOCOR" if FEATURE_PHONE.match(chipset) else None
        out.set_platform(chipset=chipset, os=os,
                         how=f"PAC header product name {header.product!r} ({header.product_version!r})")
