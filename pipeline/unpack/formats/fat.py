"""FAT12, FAT16 and FAT32 filesystems, read with dissect.fat.

Phone firmware carries FAT images for modem and DSP firmware partitions
(``NON-HLOS.bin``, ``modem.img``), feature phones keep their user storage on
FAT, and SD card dumps are FAT. Long file names are used when present.

References: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103);
https://www.win.tue.nl/~aeb/linux/fs/fat/fat-1.html

Known limitations:
- exFAT is not read; a FAT filesystem inside a partition table is reached
  only through the table's own format.
- binwalk has no FAT signature: a FAT filesystem in a raw dump at an offset is
  not carved (a whole-file FAT image is identified by its boot sector).
- Deleted directory entries (0xE5) are skipped, not recovered; slack space
  is not examined.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import BinaryIO

from dissect.fat import FATFS
from dissect.fat.fat import DirectoryEntry

from pipeline.unpack.format import Format, Source
from pipeline.unpack.formats._fs import FsTree, walk_tree
from pipeline.unpack.output import Output

BOOT_SECTOR = 512
SECTOR_SIZES = (512, 1024, 2048, 4096)


def volume_length(boot: bytes) -> int | None:
    """Bytes covered by a plausible FAT boot sector's BPB (total sectors × sector size), or None."""
    if len(boot) < BOOT_SECTOR or boot[510:512] != b"\x55\xaa" or boot[0] not in (0xEB, 0xE9):
        return None
    sector, per_cluster, reserved, fats, _, total16, media = struct.unpack_from("<HBHBHHB", boot, 11)
    (total32,) = struct.unpack_from("<I", boot, 32)
    if sector not in SECTOR_SIZES or per_cluster == 0 or per_cluster & (per_cluster - 1):
        return None
    if reserved == 0 or not 1 <= fats <= 4 or not (media == 0xF0 or media >= 0xF8):
        return None
    if not (boot[54:57] == b"FAT" or boot[82:87] == b"FAT32"):
        return None
    total = total16 or total32
    return total * sector or None


def _bounded_chain(chain: Callable[[int], Iterator[int]], clusters: int) -> Callable[[int], Iterator[int]]:
    """A cluster chain longer than the volume has clusters is a loop (dissect would follow it forever)."""

    def walk(cluster: int) -> Iterator[int]:
        for count, value in enumerate(chain(cluster)):
            if count > clusters:
                raise ValueError(f"cluster chain from {cluster} loops")
            yield value

    return walk


NT_LOWER_BASE = 0x08  # DIR_NTRes: Windows NT shows the 8.3 base name in lower case
NT_LOWER_EXT = 0x10  # ... and the extension


def display_name(entry: DirectoryEntry) -> str:
    """The long name if there is one, else the 8.3 name with the NT lower-case flags applied."""
    if entry.ldirents:
        return entry.name
    base, dot, ext = entry.short_name.partition(".")
    flags = entry.dirent.DIR_NTRes
    base = base.lower() if flags & NT_LOWER_BASE else base
    ext = ext.lower() if flags & NT_LOWER_EXT else ext
    return base + dot + ext


class _FatTree(FsTree[DirectoryEntry]):
    def __init__(self, fs: FATFS) -> None:
        self._fs = fs

    def root(self) -> DirectoryEntry:
        return self._fs.root

    def entries(self, directory: DirectoryEntry) -> Iterable[tuple[str, DirectoryEntry]]:
        return ((display_name(entry), entry) for entry in directory.iterdir() if not entry.is_volume_id())

    def file_type(self, node: DirectoryEntry) -> int:
        return stat.S_IFDIR if node.is_directory() else stat.S_IFREG

    def identity(self, node: DirectoryEntry) -> Hashable:
        return node.cluster

    def size(self, node: DirectoryEntry) -> int:
        return node.size

    def open(self, node: DirectoryEntry) -> BinaryIO:
        return node.open()

    def link(self, node: DirectoryEntry) -> str:
        raise ValueError("FAT has no symbolic links")


class Fat(Format):
    name = "fat"
    description = "FAT12/16/32 filesystem"
    rooted = True

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        return volume_length(head[:BOOT_SECTOR]) is not None

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        handle.seek(offset)
        length = volume_length(handle.read(BOOT_SECTOR))
        return length if length is not None and length <= available else None

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            length = volume_length(handle.read(BOOT_SECTOR))
            if length is None:
                raise ValueError("invalid FAT boot sector")
            fs = FATFS(handle)
            fs.fat.chain = _bounded_chain(fs.fat.chain, max(length // fs.cluster_size, 1))  # type: ignore[method-assign]
            out.cover(0, min(length, source.size))
            walk_tree(out, _FatTree(fs), container_size=source.size)
