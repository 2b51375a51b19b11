"""Hostile inputs: images built to break, blind or escape the unpacker.

Each sample states the outcome a correct unpacker reaches: which error it
records (so the image is ``incomplete``), or which note it keeps while
extracting safely. None may write outside the work directory, crash the
worker or exhaust the disk.
"""

from __future__ import annotations

import io
import random
import tarfile
import zipfile
import zlib
from pathlib import Path

from samples.sample import EPOCH, BuildContext, Contains, Expect, Sample

ZIP_DATE = (2023, 11, 14, 22, 13, 20)
BOMB_BYTES = 1 << 30  # the bomb member claims 1 GiB of zeros
NESTING = 40
FLOOD_STRIDE = 256
FLOOD_SIZE = 2 << 20


def _zip_bomb(path: Path) -> None:
    """One deflated member of 1 GiB of zeros (about 1 MB on disk), written without holding it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(1 << 20)
    compressed = bytearray()
    for _ in range(BOMB_BYTES // len(block)):
        compressed += compressor.compress(block)
    compressed += compressor.flush()
    info = zipfile.ZipInfo("payload/zeros.bin", date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    crc = 0
    for _ in range(BOMB_BYTES // len(block)):
        crc = zlib.crc32(block, crc)
    # zipfile cannot take pre-compressed data, so the local header, data and central directory are
    # written by hand from the PKWARE APPNOTE layout (section 4.3).
    name = info.filename.encode()
    local = (b"PK\x03\x04" + (20).to_bytes(2, "little") + bytes(2) + (8).to_bytes(2, "little")
             + _dos_datetime() + crc.to_bytes(4, "little") + len(compressed).to_bytes(4, "little")
             + BOMB_BYTES.to_bytes(4, "little") + len(name).to_bytes(2, "little") + bytes(2) + name)
    central = (b"PK\x01\x02" + (20).to_bytes(2, "little") + (20).to_bytes(2, "little") + bytes(2)
               + (8).to_bytes(2, "little") + _dos_datetime() + crc.to_bytes(4, "little")
               + len(compressed).to_bytes(4, "little") + BOMB_BYTES.to_bytes(4, "little")
               + len(name).to_bytes(2, "little") + bytes(8) + bytes(4) + bytes(4) + name)
    end = (b"PK\x05\x06" + bytes(4) + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
           + len(central).to_bytes(4, "little") + (len(local) + len(compressed)).to_bytes(4, "little")
           + bytes(2))
    path.write_bytes(local + compressed + central + end)


def _dos_datetime() -> bytes:
    year, month, day, hour, minute, second = ZIP_DATE
    time = (hour << 11) | (minute << 5) | (second // 2)
    date = ((year - 1980) << 9) | (month << 5) | day
    return time.to_bytes(2, "little") + date.to_bytes(2, "little")


TRAVERSAL_NAMES = (
    "../../../../tmp/fwtriage-escape",
    "/etc/fwtriage-absolute",
    "docs/../../fwtriage-middle",
    "..\\..\\windows\\fwtriage-backslash",
    "./ok/readme.txt",
)


def _traversal_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name in TRAVERSAL_NAMES:
            archive.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE), f"written as {name}\n")


def _traversal_tar(path: Path) -> None:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
        for name in TRAVERSAL_NAMES:
            _tar_add(archive, name, f"written as {name}\n".encode())
        link = tarfile.TarInfo("escape")  # the classic pair: a symlink out, then a file through it
        link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "/etc", EPOCH
        archive.addfile(link)
        _tar_add(archive, "escape/fwtriage-through-link", b"written through a symlink\n")
        device = tarfile.TarInfo("dev/mem")
        device.type, device.devmajor, device.devminor, device.mtime = tarfile.CHRTYPE, 1, 1, EPOCH
        archive.addfile(device)


def _tar_add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
    archive.addfile(info, io.BytesIO(data))


def _symlink_squashfs(ctx: BuildContext, path: Path) -> None:
    staging = ctx.cache / "hostile-symlinks"
    if staging.exists():
        for child in sorted(staging.rglob("*"), reverse=True):
            child.unlink() if not child.is_dir() or child.is_symlink() else child.rmdir()
    (staging / "etc").mkdir(parents=True, exist_ok=True)
    (staging / "etc" / "hostname").write_text("mini-phone\n")
    (staging / "etc" / "shadow-link").symlink_to("/etc/shadow")
    (staging / "etc" / "up-link").symlink_to("../../../../../etc/passwd")
    (staging / "loop").symlink_to("loop")
    ctx.fix_mtimes(staging)
    path.unlink(missing_ok=True)
    ctx.run("mksquashfs", staging, path, "-comp", "gzip", "-all-root", "-noappend", "-quiet")


def _truncated_squashfs(ctx: BuildContext, path: Path) -> None:
    staging = ctx.cache / "hostile-truncated"
    (staging / "bin").mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    for index in range(12):
        text = "\n".join(f"line {index}-{n} {rng.random():.12f}" for n in range(4000))
        (staging / "bin" / f"tool{index:02d}.txt").write_text(text)
    ctx.fix_mtimes(staging)
    whole = ctx.cache / "hostile-truncated.squashfs"
    whole.unlink(missing_ok=True)
    ctx.run("mksquashfs", staging, whole, "-comp", "xz", "-all-root", "-noappend", "-quiet")
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _nested_gzip(path: Path) -> None:
    data = b"the innermost file of a 40-level gzip nest\n"
    for _ in range(NESTING):
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        data = compressor.compress(data) + compressor.flush()
    # zlib writes the header's mtime as 0, so the output is deterministic
    path.write_bytes(data)


def _signature_flood(path: Path) -> None:
    """A gzip header every 256 bytes: thousands of candidates, none a real stream."""
    rng = random.Random(11)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
    blob = bytearray(rng.randbytes(FLOOD_SIZE))
    for offset in range(FLOOD_STRIDE, FLOOD_SIZE, FLOOD_STRIDE):
        blob[offset : offset + len(header)] = header
    path.write_bytes(bytes(blob))


def build(ctx: BuildContext) -> list[Sample]:
    out = ctx.out
    incomplete = Expect(verdict="incomplete")
    clean = Expect(verdict="clean")
    _zip_bomb(out / "hostile-zip-bomb.zip")
    _traversal_zip(out / "hostile-traversal.zip")
    _traversal_tar(out / "hostile-traversal.tar")
    _symlink_squashfs(ctx, out / "hostile-symlink.squashfs")
    _truncated_squashfs(ctx, out / "hostile-truncated.squashfs")
    _nested_gzip(out / "hostile-nested-40.gz")
    _signature_flood(out / "hostile-signature-flood.bin")
    (out / "hostile-empty.bin").write_bytes(b"")
    (out / "hostile-random.bin").write_bytes(random.Random(3).randbytes(1 << 20))
    return [
        Sample("hostile-zip-bomb.zip", "hostile", "a 1 MB zip whose member inflates to 1 GiB of zeros",
               incomplete, formats=["zip"], extraction_complete=False,
               errors=[r"decompression bomb stopped"]),
        Sample("hostile-traversal.zip", "hostile",
               "zip members named with '..', absolute paths and backslashes", clean,
               contains=[Contains("fwtriage-escape", ["zip"]), Contains("etc/fwtriage-absolute", ["zip"])],
               formats=["zip"], notes=[r"unsafe member name '\.\./\.\./\.\./\.\./tmp/fwtriage-escape'",
                                       r"unsafe member name '/etc/fwtriage-absolute'",
                                       r"backslash"]),
        Sample("hostile-traversal.tar", "hostile",
               "tar with traversal names, a symlink out to /etc and a file written through it, a device node",
               clean, contains=[Contains("escape/fwtriage-through-link", ["tar"])], formats=["tar"],
               notes=[r"unsafe member name '/etc/fwtriage-absolute'", r"symlink to '/etc'",
                      r"device not extracted"]),
        Sample("hostile-symlink.squashfs", "hostile",
               "squashfs with symlinks to /etc/shadow, up the tree, and to itself", clean,
               contains=[Contains("/etc/hostname", ["squashfs"])], formats=["squashfs"],
               notes=[r"symlink to '/etc/shadow'", r"symlink to '\.\./\.\./\.\./\.\./\.\./etc/passwd'"]),
        Sample("hostile-truncated.squashfs", "hostile", "the first half of a squashfs image", incomplete,
               formats=["squashfs"], extraction_complete=False, errors=[r"."]),
        Sample("hostile-nested-40.gz", "hostile", "a text file inside 40 levels of gzip", incomplete,
               formats=["gzip"], extraction_complete=False, errors=[r"depth limit of 16 reached"]),
        Sample("hostile-signature-flood.bin", "hostile",
               "2 MiB of random bytes with a gzip header every 256 bytes", incomplete,
               extraction_complete=False, errors=[r"signature flood"]),
        Sample("hostile-empty.bin", "hostile", "an empty file", incomplete,
               extraction_complete=False, errors=[r"the image is empty"]),
        Sample("hostile-random.bin", "hostile", "1 MiB of random bytes: nothing can be decoded", incomplete,
               extraction_complete=False, errors=[r"high-entropy data that no reader recognised"]),
    ]
