"""Android boot images (``ANDROID!``, header v0-v4) and vendor boot images (``VNDRBOOT``, v3-v4).

``boot.img`` and ``recovery.img`` hold the kernel and the ramdisk (the
``init`` scripts and binaries a backdoor likes to hide in); every region the
header describes becomes a PARTITION child (``kernel``, ``ramdisk``,
``second``, ``recovery_dtbo``, ``dtb``...), and the header's command line,
name and OS version go into their attributes. The OS version, when set, names
the platform.

Reference: AOSP ``system/tools/mkbootimg/include/bootimg/bootimg.h``. v0-v2
put each region on ``page_size`` boundaries after a one-page header; v3/v4
use fixed 4096-byte pages; vendor boot v4 splits its ramdisk into fragments
listed in a table.

Known limitations: the SHA-1 ``id`` and the v4 boot signature are not
verified; in pre-v1 images from some vendors the header-version word is the
size of a Qualcomm device-tree table, which is emitted as ``dt``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from pipeline.model import ArtifactKind, IssueKind
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.output import Output

BOOT_MAGIC = b"ANDROID!"
VENDOR_MAGIC = b"VNDRBOOT"
HEADER_READ = 4096
V3_PAGE = 4096
MAX_FRAGMENTS = 64
VENDOR_HEADER_SIZES = {3: 2112, 4: 2128}  # past one 2048-byte page: it takes two, as unpack_bootimg counts
FRAGMENT = struct.Struct("<III32s64s")  # size, offset, type, name, board id (16 words)


@dataclass(frozen=True)
class Region:
    name: str
    offset: int
    size: int


@dataclass
class Layout:
    """Where a boot image's regions are, and what its header says about itself."""

    header_size: int = 1  # bytes of header; it fills whole pages before the first region
    regions: list[Region] = field(default_factory=list)
    end: int = 0
    header: dict[str, Any] = field(default_factory=dict)
    os_version: str | None = None
    patch_level: str | None = None

    def append(self, name: str, size: int, page: int) -> None:
        if self.end == 0:
            self.end = -(-self.header_size // page) * page
        if size:
            self.regions.append(Region(name, self.end, size))
        self.end += -(-size // page) * page


def _u32(raw: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", raw, offset)[0])


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def _decode_os_version(layout: Layout, word: int) -> None:
    """bootimg.h packs A.B.C (7 bits each) above the patch level's year-2000 and month."""
    version, patch = word >> 11, word & 0x7FF
    if version:
        a, b, c = version >> 14, (version >> 7) & 0x7F, version & 0x7F
        layout.os_version = f"{a}.{b}" + (f".{c}" if c else "")
        layout.header["os_version"] = layout.os_version
    if patch:
        layout.patch_level = f"{2000 + (patch >> 4)}-{patch & 0xF:02d}"
        layout.header["os_patch_level"] = layout.patch_level


def _check_page(page: int) -> int:
    if page < 512 or page > 1 << 16 or page & (page - 1):
        raise ValueError(f"implausible page size {page}")
    return page


def _boot_layout(raw: bytes) -> Layout:
    version = _u32(raw, 40)
    layout = Layout()
    if version in (3, 4):
        _decode_os_version(layout, _u32(raw, 16))
        layout.header.update(header_version=version, cmdline=_text(raw[44:1580]))
        layout.append("kernel", _u32(raw, 8), V3_PAGE)
        layout.append("ramdisk", _u32(raw, 12), V3_PAGE)
        if version == 4:
            layout.append("signature", _u32(raw, 1580), V3_PAGE)
        return layout
    page = _check_page(_u32(raw, 36))
    _decode_os_version(layout, _u32(raw, 44))
    layout.header.update(header_version=version if version <= 2 else 0, name=_text(raw[48:64]),
                         cmdline=_text(raw[64:576]) + _text(raw[608:1632]))
    layout.append("kernel", _u32(raw, 8), page)
    layout.append("ramdisk", _u32(raw, 16), page)
    layout.append("second", _u32(raw, 24), page)
    if version > 2:
        layout.append("dt", version, page)  # legacy vendor layout: this word is the dt table size
    if version in (1, 2):
        layout.append("recovery_dtbo", _u32(raw, 1632), page)
    if version == 2:
        layout.append("dtb", _u32(raw, 1648), page)
    return layout


def _vendor_layout(raw: bytes) -> Layout:
    version = _u32(raw, 8)
    if version not in (3, 4):
        raise ValueError(f"unknown vendor boot header version {version}")
    page = _check_page(_u32(raw, 12))
    layout = Layout(header_size=VENDOR_HEADER_SIZES[version],
                    header={"header_version": version, "cmdline": _text(raw[28:2076]), "name": _text(raw[2080:2096])})
    layout.append("vendor_ramdisk", _u32(raw, 24), page)
    layout.append("dtb", _u32(raw, 2100), page)
    if version == 4:
        layout.append("vendor_ramdisk_table", _u32(raw, 2112), page)
        layout.append("bootconfig", _u32(raw, 2124), page)
    return layout


def read_layout(handle: BinaryIO, offset: int) -> Layout:
    handle.seek(offset)
    raw = handle.read(HEADER_READ)
    for magic, minimum, parse in ((BOOT_MAGIC, 1660, _boot_layout), (VENDOR_MAGIC, 2128, _vendor_layout)):
        if raw.startswith(magic):
            if len(raw) < minimum:
                raise ValueError("boot image header is truncated")
            return parse(raw.ljust(HEADER_READ, b"\0"))
    raise ValueError("no boot image magic")


def _fragments(handle: BinaryIO, layout: Layout) -> list[Region]:
    """Vendor boot v4 ramdisk fragments, each inside the vendor ramdisk region, or none."""
    regions = {r.name: r for r in layout.regions}
    table, ramdisk = regions.get("vendor_ramdisk_table"), regions.get("vendor_ramdisk")
    if table is None or ramdisk is None:
        return []
    handle.seek(table.offset)
    raw = handle.read(min(table.size, MAX_FRAGMENTS * FRAGMENT.size))
    fragments = []
    for index, (size, offset, _type, name, _board) in enumerate(FRAGMENT.iter_unpack(
            raw[: len(raw) - len(raw) % FRAGMENT.size])):
        if size == 0 or offset + size > ramdisk.size:
            raise ValueError(f"vendor ramdisk fragment {index} lies outside the vendor ramdisk")
        label = _text(name) or str(index)
        fragments.append(Region(f"vendor_ramdisk_{label}", ramdisk.offset + offset, size))
    return fragments


class AndroidBoot(Format):
    name = "android-boot"
    description = "Android boot image"
    magics = (Magic(0, BOOT_MAGIC), Magic(0, VENDOR_MAGIC))
    binwalk = (re.compile(r"^Android bootimg"),)
    carve_magics = (BOOT_MAGIC, VENDOR_MAGIC)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        try:
            end = read_layout(handle, offset).end
        except ValueError:
            return None
        return end if end <= available else None

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            layout = read_layout(handle, 0)
            out.cover(0, min(layout.regions[0].offset if layout.regions else layout.end, source.size))
            fragments = _fragments(handle, layout)
            split = {"vendor_ramdisk_table", "vendor_ramdisk"} if fragments else set()
            for region in layout.regions:
                if region.name in split:
                    out.cover(region.offset, region.size)
            for region in [r for r in layout.regions if r.name not in split] + fragments:
                if region.offset + region.size > source.size:
                    out.error(f"region ends at {region.offset + region.size}, past the end of the "
                              f"{source.size}-byte image (truncated)", IssueKind.FAILURE, member=region.name)
                    continue
                out.add_range(region.name, handle, region.offset, region.size, kind=ArtifactKind.PARTITION,
                              attributes=dict(layout.header))
        if layout.os_version:
            how = "Android boot image header os_version"
            if layout.patch_level:
                how += f" (security patch level {layout.patch_level})"
            out.set_platform(os=f"Android {layout.os_version}", how=how)
