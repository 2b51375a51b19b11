"""U-Boot legacy image (uImage): a 64-byte big-endian header in front of one payload.

Router and set-top firmware wraps its kernel, ramdisk or script in a uImage.
The payload becomes one child, still compressed as the header says: the
gzip/bzip2/lzma/lz4/zstd readers take it from there (its name gets the
matching suffix, so the decompressed member is named like the original). A MULTI image gives one
child per sub-image. Image type, OS, architecture and load address go into
the child's attributes; a Linux image names the platform's OS.

Reference: U-Boot ``include/image.h`` (``struct legacy_img_hdr``, the
``IH_OS_*``, ``IH_ARCH_*``, ``IH_TYPE_*`` and ``IH_COMP_*`` tables). The header
CRC-32 is computed with the CRC field zeroed; the data CRC-32 covers the
payload.

Known limitations: an LZO payload is lzop-framed and no reader here opens
it; a payload whose data CRC does not match is still emitted, flagged
``data_crc_valid: false``.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any, BinaryIO

from pipeline.model import ArtifactKind
from pipeline.store import CHUNK
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.output import Output

MAGIC = 0x27051956
HEADER = struct.Struct(">IIIIIIIBBBB32s")
TYPE_MULTI = 4
MAX_MULTI = 256

OS_NAMES = ("invalid", "OpenBSD", "NetBSD", "FreeBSD", "4.4BSD", "Linux", "SVR4", "Esix", "Solaris",
            "Irix", "SCO", "Dell", "NCR", "LynxOS", "VxWorks", "pSOS", "QNX", "U-Boot", "RTEMS", "ARTOS",
            "Unity", "INTEGRITY", "OSE", "Plan 9", "OpenRTOS", "ARM Trusted Firmware", "TEE", "OpenSBI",
            "EFI")
ARCH_NAMES = ("invalid", "alpha", "arm", "x86", "ia64", "mips", "mips64", "powerpc", "s390", "sh", "sparc",
              "sparc64", "m68k", "nios", "microblaze", "nios2", "blackfin", "avr32", "st200", "sandbox",
              "nds32", "openrisc", "arm64", "arc", "x86_64", "xtensa", "riscv")
TYPE_NAMES = ("invalid", "standalone", "kernel", "ramdisk", "multi", "firmware", "script", "filesystem",
              "flat_dt")
COMPRESSIONS = ("none", "gzip", "bzip2", "lzma", "lzo", "lz4", "zstd")
COMPRESSION_SUFFIXES = {"gzip": ".gz", "bzip2": ".bz2", "lzma": ".lzma", "lzo": ".lzo", "lz4": ".lz4",
                        "zstd": ".zst"}


def compressed_name(name: str, compression: str | None) -> str:
    """A payload's name with the suffix of its compression, so its reader recognises it."""
    suffix = COMPRESSION_SUFFIXES.get(compression or "", "")
    return name if name.endswith(suffix) else name + suffix


def _named(table: tuple[str, ...], value: int) -> str:
    return table[value] if value < len(table) else f"unknown ({value})"


def parse_header(raw: bytes) -> dict[str, Any]:
    """The header's fields, or ValueError when the magic or the header CRC is wrong."""
    if len(raw) < HEADER.size:
        raise ValueError("uImage header is truncated")
    magic, header_crc, timestamp, size, load, entry, data_crc, os, arch, kind, comp, name = \
        HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise ValueError("no uImage magic")
    zeroed = raw[:4] + b"\0\0\0\0" + raw[8 : HEADER.size]
    if zlib.crc32(zeroed) != header_crc:
        raise ValueError("uImage header CRC mismatch")
    return {"size": size, "data_crc": data_crc, "timestamp": timestamp, "load_address": load,
            "entry_point": entry, "os": _named(OS_NAMES, os), "arch": _named(ARCH_NAMES, arch),
            "type": _named(TYPE_NAMES, kind), "compression": _named(COMPRESSIONS, comp),
            "name": name.split(b"\0", 1)[0]}


def _crc32(handle: BinaryIO, offset: int, length: int) -> int:
    handle.seek(offset)
    crc = 0
    while length > 0 and (data := handle.read(min(length, CHUNK))):
        crc = zlib.crc32(data, crc)
        length -= len(data)
    return crc


def _multi_parts(handle: BinaryIO, start: int, size: int) -> list[tuple[int, int]]:
    """(offset, length) of each sub-image: a zero-terminated size table, then 4-byte aligned images."""
    handle.seek(start)
    lengths = []
    while len(lengths) < MAX_MULTI:
        word = handle.read(4)
        if len(word) < 4:
            raise ValueError("multi-image size table is truncated")
        (length,) = struct.unpack(">I", word)
        if length == 0:
            break
        lengths.append(length)
    else:
        raise ValueError(f"multi-image lists more than {MAX_MULTI} images")
    parts, position = [], start + 4 * (len(lengths) + 1)
    for length in lengths:
        if position + length > start + size:
            raise ValueError("a multi-image sub-image ends past the payload")
        parts.append((position, length))
        position += -(-length // 4) * 4
    return parts


class UImage(Format):
    name = "uimage"
    description = "U-Boot legacy uImage"
    magics = (Magic(0, struct.pack(">I", MAGIC)),)
    binwalk = (re.compile(r"^uImage header"),)
    carve_magics = (struct.pack(">I", MAGIC),)

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        try:
            parse_header(head)
        except ValueError:
            return False
        return True

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        handle.seek(offset)
        try:
            header = parse_header(handle.read(HEADER.size))
        except ValueError:
            return None
        length = HEADER.size + header["size"]
        return length if length <= available else None

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            header = parse_header(handle.read(HEADER.size))
            size = header.pop("size")
            if HEADER.size + size > source.size:
                raise ValueError(f"header says {size} payload bytes, the file has "
                                 f"{source.size - HEADER.size}")
            out.cover(0, HEADER.size)
            header["data_crc_valid"] = _crc32(handle, HEADER.size, size) == header.pop("data_crc")
            raw_name = header.pop("name").strip()
            base = out.safe_name(raw_name) if raw_name else "payload"
            attributes = {**header, "image_name": base}
            if header["type"] == "multi":
                parts = _multi_parts(handle, HEADER.size, size)
                out.cover(HEADER.size, 4 * (len(parts) + 1))
                names = [f"{base}-{index}" for index in range(len(parts))]
            else:
                parts, names = [(HEADER.size, size)], [base]
            for name, (offset, length) in zip(names, parts, strict=True):
                out.add_range(compressed_name(name, header["compression"]), handle, offset, length,
                              kind=ArtifactKind.PARTITION, attributes=attributes)
        if header["os"] == "Linux":
            out.set_platform(os="Linux", how=f"uImage header ({header['arch']} {header['type']})")
