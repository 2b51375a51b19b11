"""Android dynamic partitions (``super.img``): LP metadata mapping logical partitions to extents.

Since Android 10, ``system``, ``vendor``, ``product``... live inside one
``super`` partition. Each logical partition becomes a PARTITION child named
as in the metadata (``system_a``), rebuilt by concatenating its LINEAR
extents (ZERO extents give zeros) in bounded reads. A sparse ``super.img``
is expanded by the android-sparse reader first and comes back here.

Reference: AOSP ``system/core/fs_mgr/liblp/include/liblp/metadata_format.h``:
4096 reserved bytes, the geometry (magic ``gDla``) and its backup, then the
metadata slots (header magic ``0PLA``, version 10.x) and their backups;
table entries are little-endian, extents in 512-byte sectors. The primary
copies are used when their SHA-256 checksums hold, else the backups.

Known limitations: only slot 0 of the metadata is read; extents on a block
device other than the super partition itself (retrofit devices, split
super) are reported unsupported; super images must start at offset 0
(not carved from raw dumps).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from pipeline.model import ArtifactKind, IssueKind
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats.android_sparse import copy_range, write_fill
from pipeline.unpack.output import Output

RESERVED = 4096
GEOMETRY_SIZE = 4096
GEOMETRY_MAGIC = 0x616C4467
HEADER_MAGIC = 0x414C5030
SECTOR = 512
GEOMETRY = struct.Struct("<II32sIII")
HEADER = struct.Struct("<IHHI32sI32s12I")
PARTITION = struct.Struct("<36sIIII")
EXTENT = struct.Struct("<QIQI")
GROUP = struct.Struct("<36sIQ")
MAX_METADATA = 16 << 20
TARGET_LINEAR, TARGET_ZERO = 0, 1
ATTRIBUTE_NAMES = {1: "readonly", 2: "slot-suffixed", 4: "updated", 8: "disabled"}


@dataclass(frozen=True)
class Geometry:
    metadata_max_size: int
    slot_count: int


@dataclass(frozen=True)
class Extent:
    sectors: int
    target_type: int
    target_data: int
    target_source: int


@dataclass(frozen=True)
class LogicalPartition:
    name: str
    attributes: int
    group: str
    extents: list[Extent]


def _checksum_ok(data: bytes, checksum_at: int) -> bool:
    zeroed = data[:checksum_at] + bytes(32) + data[checksum_at + 32 :]
    return hashlib.sha256(zeroed).digest() == data[checksum_at : checksum_at + 32]


def read_geometry(handle: BinaryIO) -> Geometry:
    for offset in (RESERVED, RESERVED + GEOMETRY_SIZE):
        handle.seek(offset)
        raw = handle.read(GEOMETRY.size)
        if len(raw) < GEOMETRY.size:
            continue
        magic, struct_size, _checksum, max_size, slots, _block_size = GEOMETRY.unpack(raw)
        if magic != GEOMETRY_MAGIC or struct_size != GEOMETRY.size or not _checksum_ok(raw, 8):
            continue
        if 0 < max_size <= MAX_METADATA and max_size % SECTOR == 0 and 0 < slots <= 16:
            return Geometry(max_size, slots)
    raise ValueError("no valid LP metadata geometry (primary or backup)")


def _table(tables: bytes, descriptor: tuple[int, int, int], entry: struct.Struct) -> list[tuple[Any, ...]]:
    offset, count, size = descriptor
    if size < entry.size or offset + count * size > len(tables):
        raise ValueError(f"LP metadata table ({count} × {size} bytes at {offset}) does not fit its tables")
    return [entry.unpack_from(tables, offset + i * size) for i in range(count)]


def _read_metadata(handle: BinaryIO, offset: int, geometry: Geometry) -> list[LogicalPartition]:
    handle.seek(offset)
    raw = handle.read(geometry.metadata_max_size)
    if len(raw) < HEADER.size:
        raise ValueError("LP metadata is truncated")
    magic, major, _minor, header_size, _hsum, tables_size, tables_sum, *descriptors = HEADER.unpack_from(raw)
    if magic != HEADER_MAGIC or major != 10:
        raise ValueError(f"no LP metadata header (magic {magic:#x}, version {major})")
    if header_size < HEADER.size or header_size + tables_size > len(raw):
        raise ValueError("LP metadata sizes exceed the metadata area")
    tables = raw[header_size : header_size + tables_size]
    if not _checksum_ok(raw[:header_size], 12) or hashlib.sha256(tables).digest() != tables_sum:
        raise ValueError("LP metadata checksum mismatch")
    partitions = _table(tables, tuple(descriptors[0:3]), PARTITION)
    extents = [Extent(*e) for e in _table(tables, tuple(descriptors[3:6]), EXTENT)]
    groups = [g[0].split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
              for g in _table(tables, tuple(descriptors[6:9]), GROUP)]
    found = []
    for name, attributes, first, count, group in partitions:
        if first + count > len(extents):
            raise ValueError(f"partition {name!r} points past the extent table")
        found.append(LogicalPartition(name.split(b"\0", 1)[0].decode("utf-8", "backslashreplace"),
                                      attributes, groups[group] if group < len(groups) else str(group),
                                      extents[first : first + count]))
    return found


def read_partitions(handle: BinaryIO) -> tuple[Geometry, list[LogicalPartition]]:
    """Slot 0's partitions, from the primary metadata or, if it is damaged, the backup."""
    geometry = read_geometry(handle)
    primary = RESERVED + 2 * GEOMETRY_SIZE
    backup = primary + geometry.metadata_max_size * geometry.slot_count
    try:
        return geometry, _read_metadata(handle, primary, geometry)
    except ValueError:
        return geometry, _read_metadata(handle, backup, geometry)


def _check_extents(partition: LogicalPartition, size: int) -> tuple[IssueKind, str] | None:
    """Why a partition cannot be rebuilt from this file, or None."""
    for extent in partition.extents:
        if extent.target_type not in (TARGET_LINEAR, TARGET_ZERO):
            return IssueKind.FAILURE, f"extent target type {extent.target_type} is unknown"
        if extent.target_type == TARGET_ZERO:
            continue
        if extent.target_source != 0:
            return IssueKind.UNSUPPORTED, (f"extent on block device {extent.target_source}, not in this file "
                                           "(retrofit or split super)")
        end = (extent.target_data + extent.sectors) * SECTOR
        if end > size:
            return IssueKind.FAILURE, f"extent ends at {end}, past the end of the {size}-byte image"
    return None


class AndroidSuper(Format):
    name = "android-super"
    description = "Android dynamic partitions (super.img, LP metadata)"
    magics = (Magic(RESERVED, struct.pack("<I", GEOMETRY_MAGIC)),)

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            geometry, partitions = read_partitions(handle)
            out.cover(0, RESERVED + 2 * GEOMETRY_SIZE + 2 * geometry.metadata_max_size * geometry.slot_count)
            for partition in partitions:
                if not partition.extents:
                    continue
                problem = _check_extents(partition, source.size)
                if problem:
                    out.error(problem[1], problem[0], member=partition.name)
                    continue
                flags = [label for bit, label in ATTRIBUTE_NAMES.items() if partition.attributes & bit]
                attributes = {"group": partition.group, "attributes": flags,
                              "extents": len(partition.extents)}
                with out.member(partition.name, kind=ArtifactKind.PARTITION, attributes=attributes) as writer:
                    for extent in partition.extents:
                        if extent.target_type == TARGET_ZERO:
                            write_fill(writer, b"\0", extent.sectors * SECTOR)
                            continue
                        copy_range(handle, extent.target_data * SECTOR, extent.sectors * SECTOR, writer)
                        out.cover(extent.target_data * SECTOR, extent.sectors * SECTOR)
