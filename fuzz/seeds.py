"""Seed inputs for the fuzz targets: minimal valid structures, and the bundled samples when they are built.

A fuzzer that starts from valid structures reaches the deep branches (table
walks, region arithmetic, data copies) a random start never gets past the
magic check for. Each built seed lists the integer ``fields`` worth inflating
(sizes, counts, offsets): mutating exactly those is how hostile images lie.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import brotli

from samples.gen.android import block_ota
from samples.gen.featurephone import PAC_ENTRY_SIZE, PAC_HEADER_SIZE, PacEntry, build_pac

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "out"
OTA_BLOCK = 4096


@dataclass(frozen=True)
class Field:
    """An unsigned integer field of a seed: where it is, how wide, and its byte order (``<`` or ``>``)."""

    offset: int
    width: int
    order: str = "<"

    def write(self, data: bytearray, value: int) -> None:
        if self.offset + self.width <= len(data):
            data[self.offset : self.offset + self.width] = (value % (1 << 8 * self.width)).to_bytes(
                self.width, "little" if self.order == "<" else "big")


@dataclass(frozen=True)
class Seed:
    """A starting input; ``valid`` ones give members, the others start from a documented failure."""

    data: bytes
    fields: tuple[Field, ...] = field(default_factory=tuple)
    valid: bool = True


def _u32s(*offsets: int, order: str = "<") -> tuple[Field, ...]:
    return tuple(Field(offset, 4, order) for offset in offsets)


# --- PAC ---------------------------------------------------------------------------------------------

def pac_seeds() -> list[Seed]:
    """A BP_R1 and a BP_R2 package: two files and one flash operation without data."""
    entries = [PacEntry("FDL", "fdl1.bin", b"FDL1" * 64), PacEntry("FLASH", "", b""),
               PacEntry("PS", "ps.bin", bytes(range(256)) * 2)]
    r1 = build_pac(entries, product="SC6531E", product_version="MOCOR_W23")
    r2 = r1.replace("BP_R1".encode("utf-16-le"), "BP_R2".encode("utf-16-le"), 1)
    header = _u32s(0x2C, 0x30, 0x434, 0x438, 0x844)
    table = tuple(f for i in range(len(entries)) for f in _u32s(*(PAC_HEADER_SIZE + i * PAC_ENTRY_SIZE + o
                                                                  for o in (0x5FC, 0x600, 0x604, 0x610))))
    return [Seed(r1, header + table), Seed(r2, header + table)]


# --- Android sparse ----------------------------------------------------------------------------------

SPARSE_BLOCK = 1024


def sparse_seed() -> Seed:
    """Every chunk type once: RAW (1 block), FILL (2), DONT_CARE (3), CRC32."""
    chunks = [(0xCAC1, 1, bytes(range(256)) * (SPARSE_BLOCK // 256)), (0xCAC2, 2, b"\xde\xad\xbe\xef"),
              (0xCAC3, 3, b""), (0xCAC4, 0, b"\0\0\0\0")]
    body, fields, position = b"", list(_u32s(4, 8, 12, 16, 20)), 28
    for kind, blocks, payload in chunks:
        body += struct.pack("<HHII", kind, 0, blocks, 12 + len(payload)) + payload
        fields += [Field(position, 2), *_u32s(position + 4, position + 8)]
        position += 12 + len(payload)
    header = struct.pack("<IHHHHIIII", 0xED26FF3A, 1, 0, 28, 12, SPARSE_BLOCK, 6, len(chunks), 0)
    return Seed(header + body, tuple(fields))


# --- boot.img ----------------------------------------------------------------------------------------

def _paged(header: bytes, regions: list[bytes], page: int) -> bytes:
    pad = lambda data: data + bytes(-len(data) % page)  # noqa: E731
    return b"".join(pad(part) for part in [header, *regions])


def boot_seeds() -> list[Seed]:
    """Boot v2 (kernel, ramdisk, second, recovery dtbo, dtb), boot v4, vendor boot v4 with fragments."""
    kernel, ramdisk = b"\x00\x00\xa0\xe1" * 64 + b"Linux version 4.9", gzip.compress(b"init.rc" * 20, mtime=0)
    v2 = bytearray(1660)
    v2[:8] = b"ANDROID!"
    struct.pack_into("<IIIIII", v2, 8, len(kernel), 0x8000, len(ramdisk), 0x1000000, 16, 0)
    struct.pack_into("<III", v2, 36, 2048, 2, (8 << 14 | 1 << 7) << 11 | 18 << 4 | 5)
    v2[48:56], v2[64:80] = b"k80hd\0\0\0", b"console=ttyMT0\0\0"
    struct.pack_into("<I", v2, 1632, 24)
    struct.pack_into("<I", v2, 1648, 40)
    boot2 = _paged(bytes(v2), [kernel, ramdisk, b"S" * 16, b"R" * 24, b"\xd0\x0d\xfe\xed" + bytes(36)], 2048)

    v4 = bytearray(1584)
    v4[:8] = b"ANDROID!"
    struct.pack_into("<III", v4, 8, len(kernel), len(ramdisk), 11 << 14 << 11)
    struct.pack_into("<I", v4, 40, 4)
    struct.pack_into("<I", v4, 1580, 64)
    boot4 = _paged(bytes(v4), [kernel, ramdisk, b"\x30" * 64], 4096)

    fragments = [(b"platform", b"P" * 100), (b"recovery", b"Q" * 60)]
    table, offset = b"", 0
    for name, data in fragments:
        table += struct.pack("<III32s64s", len(data), offset, 1, name, b"")
        offset += len(data)
    vendor = bytearray(2128)
    vendor[:8] = b"VNDRBOOT"
    struct.pack_into("<III", vendor, 8, 4, 2048, 0x8000)
    struct.pack_into("<I", vendor, 24, offset)
    struct.pack_into("<I", vendor, 2100, 40)
    struct.pack_into("<III", vendor, 2112, len(table), len(fragments), 108)
    struct.pack_into("<I", vendor, 2124, 16)
    ramdisks = b"".join(data for _, data in fragments)
    vendor_boot = _paged(bytes(vendor), [ramdisks, b"\xd0\x0d\xfe\xed" + bytes(36), table, b"bootconfig=1\n\0\0\0"],
                         2048)
    v2_fields = _u32s(8, 16, 24, 36, 40, 44, 1632, 1648)
    table_at = 2048 * 4  # header, ramdisks, dtb pages, then the fragment table
    fragment_fields = _u32s(*(table_at + i * 108 + o for i in range(len(fragments)) for o in (0, 4)))
    return [Seed(boot2, v2_fields), Seed(boot4, _u32s(8, 12, 16, 40, 1580)),
            Seed(vendor_boot, _u32s(8, 12, 24, 2100, 2112, 2124) + fragment_fields)]


# --- OTA transfer list -------------------------------------------------------------------------------

OTA_RAW, OTA_BROTLI = b"r", b"b"


def ota_input(transfer_list: bytes, new_data: bytes | None, mode: bytes = OTA_RAW) -> bytes:
    """The OTA target's input: the transfer list, NUL, the mode (raw/brotli), the new data.

    Without the NUL part, no new data sits next to the list (the missing-sibling path).
    """
    return transfer_list if new_data is None else transfer_list + b"\0" + mode + new_data


def ota_image() -> bytes:
    """Six 4096-byte blocks, two of them zero: ``new`` and ``zero`` commands both appear."""
    return b"".join(bytes([i + 1]) * OTA_BLOCK if i not in (1, 4) else bytes(OTA_BLOCK) for i in range(6))


def ota_seeds() -> list[Seed]:
    ota = block_ota(ota_image())
    text, data = ota.transfer_list.encode(), ota.new_data
    lines = ota.transfer_list.splitlines()
    reordered = "\n".join([*lines[:4], "new 2,5,6", "new 4,0,1,2,4", "zero 4,1,2,4,5", "erase 2,0,6"]).encode()
    incremental = b"4\n6\n0\n0\nstash abc 2,0,1\nbsdiff 0 100 aa bb 2,0,1 1 2,0,1\nfree abc\n"
    return [Seed(ota_input(text, data)), Seed(ota_input(text, brotli.compress(data, quality=1), OTA_BROTLI)),
            Seed(ota_input(reordered, brotli.compress(data, quality=1), OTA_BROTLI)),
            Seed(ota_input(reordered, data)), Seed(ota_input(text, None), valid=False), Seed(incremental, valid=False)]


# --- uImage ------------------------------------------------------------------------------------------

def uimage(payload: bytes, *, kind: int, compression: int, name: bytes) -> bytes:
    """A legacy uImage whose header CRC field is zero: the uImage target fills it in (see ``with_crc``)."""
    header = struct.pack(">IIIIIIIBBBB32s", 0x27051956, 0, 0, len(payload), 0x80000000, 0x80000000,
                         zlib.crc32(payload), 5, 5, kind, compression, name)
    return header + payload


def with_crc(data: bytes) -> bytes:
    """Fill in a zero header CRC, so mutated headers are still read past their checksum."""
    if len(data) < 64 or data[4:8] != b"\0\0\0\0":
        return data
    return data[:4] + struct.pack(">I", zlib.crc32(data[:64])) + data[8:]


def uimage_seeds() -> list[Seed]:
    kernel = uimage(gzip.compress(b"\x00\x00\xa0\xe1" * 100 + b"Linux version 3.10", mtime=0), kind=2,
                    compression=1, name=b"Linux-3.10.14")
    parts = [b"first image!", b"second"]
    table = struct.pack(">3I", len(parts[0]), len(parts[1]), 0)
    multi = uimage(table + parts[0] + parts[1], kind=4, compression=0, name=b"fw")
    fields = (*_u32s(12, order=">"), Field(28, 1), Field(29, 1), Field(30, 1), Field(31, 1))
    return [Seed(kernel, fields), Seed(multi, fields + _u32s(64, 68, 72, order=">"))]


# --- raw dumps and whole images ----------------------------------------------------------------------

def flash_dump() -> bytes:
    """Padding and noise around one chunk of every format of ours: what the carver and the walker see."""
    noise = bytes((i * 73 + 41) % 251 for i in range(700))
    parts = [b"\xff" * 512, with_crc(uimage_seeds()[0].data), noise, sparse_seed().data, b"\0" * 300,
             boot_seeds()[0].data, noise, pac_seeds()[0].data, b"\xff" * 256]
    return b"".join(parts)


def update_zip() -> bytes:
    """A full OTA package: transfer list, brotli new data, a boot image and a uImage."""
    ota = block_ota(ota_image())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("system.transfer.list", ota.transfer_list)
        archive.writestr("system.new.dat.br", brotli.compress(ota.new_data, quality=1))
        archive.writestr("boot.img", boot_seeds()[1].data)
        archive.writestr("kernel.uimg", with_crc(uimage_seeds()[1].data))
    return buffer.getvalue()


def walker_seeds() -> list[Seed]:
    return [Seed(flash_dump()), Seed(update_zip()), Seed(pac_seeds()[1].data), Seed(sparse_seed().data)]


# --- the bundled samples (atheris corpus) ------------------------------------------------------------

SAMPLE_SEEDS = {
    "pac": ("featurephone-sc6531e.pac", "featurephone-sc6531e-clean.pac"),
    "boot": ("boot.img",),
    "uimage": ("uimage-rootfs.uimg",),
    "carve": ("flash-dump.bin", "hostile-signature-flood.bin", "featurephone-mt6261.bin"),
    "walker": ("android-agent-update.zip", "hostile-traversal.zip", "hostile-traversal.tar",
               "hostile-nested-40.gz", "hostile-symlink.squashfs", "android-erofs.img"),
}


def _zip_members(path: Path, suffix: str) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(suffix):
                yield name, archive.read(name)


def sample_seeds(target: str) -> list[bytes]:
    """Seeds taken from ``samples/out`` (empty when the samples are not built): whole files, or for the
    OTA and sparse targets the members of the Android packages."""
    if not SAMPLES.is_dir():
        return []
    found = [(SAMPLES / name).read_bytes() for name in SAMPLE_SEEDS.get(target, ()) if (SAMPLES / name).exists()]
    block_package = SAMPLES / "android-block-ota.zip"
    if target == "ota" and block_package.exists():
        lists = dict(_zip_members(block_package, ".transfer.list"))
        data = dict(_zip_members(block_package, ".new.dat.br"))
        found += [ota_input(text, data.get(name.removesuffix(".transfer.list") + ".new.dat.br"), OTA_BROTLI)
                  for name, text in lists.items()]
    sparse_package = SAMPLES / "android-ota-update.zip"
    if target == "sparse" and sparse_package.exists():
        found += [data for _, data in _zip_members(sparse_package, ".img") if data[:4] == b"\x3a\xff\x26\xed"]
    return found
