"""Generators of hostile inputs, each written into a directory the test gives (nothing is kept in the tree).

Archives are made with the stdlib (``zipfile``, ``tarfile``) and patched as
raw bytes where the stdlib refuses a name (a NUL in a zip name); cpio records
are written by hand (newc) because GNU cpio takes names from a real
directory. Filesystems come from Debian's tools through the samples
generator's packers (``samples.gen._rootfs``) and are then corrupted on
purpose: ``debugfs`` links a directory into itself, a SquashFS directory
entry is patched to point at its own parent.
"""

from __future__ import annotations

import gzip
import io
import stat
import struct
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from samples.gen._rootfs import ext4, squashfs
from samples.sample import EPOCH, BuildContext

ZIP_DATE = (2023, 11, 14, 22, 13, 20)
LONG_COMPONENT = 4096  # a single name component this long (the kernel allows 255)
LONG_PATH = 65_535  # the longest name a zip header can carry


@dataclass(frozen=True)
class HostileName:
    """A member name built to escape or deceive, and the content that identifies its member in the store."""

    label: str
    name: str

    @property
    def content(self) -> bytes:
        return f"hostile member {self.label}\n".encode()


TRAVERSAL_NAMES = (
    HostileName("dotdot-first", "../../../escape-first"),
    HostileName("dotdot-middle", "docs/../../../escape-middle"),
    HostileName("dotdot-last", "docs/escape-last/.."),
    HostileName("dotdot-alone", ".."),
    HostileName("absolute", "/etc/escape-absolute"),
    HostileName("backslash", "..\\..\\escape-backslash"),
    HostileName("nul", "escape-nul\x00/../../etc/passwd"),
    HostileName("long-component", "long/" + "A" * LONG_COMPONENT),
    HostileName("long-path", ("B" * 254 + "/") * (LONG_PATH // 255 - 1) + "C" * 255),
    HostileName("division-slash", "..\u2215..\u2215etc\u2215escape-division-slash"),
    HostileName("fullwidth-dot", "\uff0e\uff0e/\uff0e\uff0e/escape-fullwidth-dot"),
    HostileName("one-dot-leader", "\u2024\u2024/\u2024\u2024/escape-one-dot-leader"),
    HostileName("combining", ".\u0338./.\u0301./escape-combining"),
)
# Look-alikes of path separators and dots that must never reach a lineage name as such.
LOOKALIKES = "\u2215\uff0e\u2024\u2025\u2044\uff0f\u29f8\u2216\uff3c"

XSS_NAMES = ("<img src=x onerror=alert(1)>.bin", "</script><script>alert(1)</script>")


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.create_system = 3  # Unix: external attributes carry a mode
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


def write_zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A zip of regular members; a NUL in a name is written as stored (``zipfile`` would cut the name there)."""
    placeholder = "\x01"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(_zip_info(name.replace("\x00", placeholder)), data)
    if any("\x00" in name for name, _ in members):
        raw = path.read_bytes()
        for name, _ in members:
            if "\x00" in name:
                raw = raw.replace(name.replace("\x00", placeholder).encode(), name.encode())
        path.write_bytes(raw)
    return path


def write_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    """A pax tar (names of any length, NUL kept in the pax record) of members or ready-made headers."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                member.mtime = EPOCH
                archive.addfile(member)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            archive.addfile(info, io.BytesIO(data))
    return path


def tar_entry(name: str, kind: bytes, *, linkname: str = "", device: tuple[int, int] = (0, 0)) -> tarfile.TarInfo:
    """A tar header without data: a symlink, hard link, device node or FIFO."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.devmajor, info.devminor = device
    return info


@dataclass(frozen=True)
class CpioEntry:
    """One newc record: name as raw bytes, mode, data, and the inode that hard links share."""

    name: bytes
    mode: int
    data: bytes = b""
    inode: int = 0
    nlink: int = 1
    device: tuple[int, int] = (0, 0)


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def write_cpio(path: Path, entries: list[CpioEntry]) -> Path:
    """A newc cpio archive written field by field, so names and modes can be anything."""
    out = bytearray()
    for index, entry in enumerate([*entries, CpioEntry(b"TRAILER!!!", 0)], start=1):
        fields = (entry.inode or index, entry.mode, 0, 0, entry.nlink, EPOCH, len(entry.data), 0, 0,
                  *entry.device, len(entry.name) + 1, 0)
        out += _pad4(b"070701" + b"".join(b"%08x" % value for value in fields) + entry.name + b"\0")
        out += _pad4(entry.data)
    out += bytes(-len(out) % 512)
    path.write_bytes(bytes(out))
    return path


def traversal_members() -> list[tuple[str, bytes]]:
    return [(hostile.name, hostile.content) for hostile in TRAVERSAL_NAMES]


def traversal_cpio(path: Path) -> Path:
    return write_cpio(path, [CpioEntry(hostile.name.encode(), stat.S_IFREG | 0o644, hostile.content)
                             for hostile in TRAVERSAL_NAMES])


# --- links and special files ------------------------------------------------------------------------------

LINKED = b"the one regular file that links point to\n"
SYMLINK_CHAIN = (("chain/a", "b"), ("chain/b", "c"), ("chain/c", "/etc/passwd"))
SYMLINK_LOOP = (("loop/a", "b"), ("loop/b", "a"))
SPECIALS = (("dev/mem", stat.S_IFCHR, (1, 1)), ("dev/sda", stat.S_IFBLK, (8, 0)), ("run/fifo", stat.S_IFIFO, (0, 0)))
_TAR_SPECIAL = {stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE, stat.S_IFIFO: tarfile.FIFOTYPE}


def links_tar(path: Path) -> Path:
    """A regular file, a hard link to it, a hard link out of the archive, symlink chains and loops, specials."""
    members: list[tarfile.TarInfo | tuple[str, bytes]] = [("data/original", LINKED)]
    members.append(tar_entry("data/hard", tarfile.LNKTYPE, linkname="data/original"))
    members.append(tar_entry("data/hard-out", tarfile.LNKTYPE, linkname="../../../etc/passwd"))
    members += [tar_entry(name, tarfile.SYMTYPE, linkname=target) for name, target in SYMLINK_CHAIN + SYMLINK_LOOP]
    members.append(("chain/a/through-link", b"written through a symlink\n"))
    members += [tar_entry(name, _TAR_SPECIAL[kind], device=device) for name, kind, device in SPECIALS]
    return write_tar(path, members)


def links_cpio(path: Path) -> Path:
    """The same in newc: a hard-link group (data with its last link), symlink chains and loops, specials."""
    entries = [CpioEntry(b"data/original", stat.S_IFREG | 0o644, b"", inode=77, nlink=2),
               CpioEntry(b"data/hard", stat.S_IFREG | 0o644, LINKED, inode=77, nlink=2)]
    entries += [CpioEntry(name.encode(), stat.S_IFLNK | 0o777, target.encode())
                for name, target in SYMLINK_CHAIN + SYMLINK_LOOP]
    entries += [CpioEntry(name.encode(), kind | 0o600, device=device) for name, kind, device in SPECIALS]
    return write_cpio(path, entries)


# --- filesystems with a directory loop --------------------------------------------------------------------

LOOP_FILE = b"a file beside a directory that contains itself\n"


def _loop_stage(ctx: BuildContext) -> Path:
    root = ctx.cache / "loop-stage"
    (root / "d" / "loop").mkdir(parents=True, exist_ok=True)
    (root / "d" / "file").write_bytes(LOOP_FILE)
    return root


def context(directory: Path) -> BuildContext:
    """A samples build context whose output and scratch space are ``directory``."""
    return BuildContext(root=directory, out=directory, cache=directory)


def ext4_with_loop(directory: Path) -> Path:
    """An ext4 image whose ``/d/self`` is a second entry of directory ``/d`` (made with ``debugfs link``)."""
    ctx = context(directory)
    image = ext4(ctx, _loop_stage(ctx), directory / "loop.ext4", size="2M")
    ctx.run("debugfs", "-w", "-R", "link /d /d/self", image)
    return image


def squashfs_with_loop(directory: Path) -> Path:
    """A SquashFS whose directory entry ``/d/loop`` is patched to point at ``/d`` itself.

    Metadata is left uncompressed (``-noI``) so the directory table can be
    patched in place: a newc-like entry is (offset u16, inode delta s16,
    type u16, name size - 1 u16, name), preceded by a header naming the
    inode table block.
    """
    from dissect.squashfs import SquashFS

    ctx = context(directory)
    image = squashfs(ctx, _loop_stage(ctx), directory / "loop.squashfs", "gzip", "-noI", "-noId", "-noD",
                     "-noF", "-noX")
    raw = bytearray(image.read_bytes())
    with open(image, "rb") as handle:
        parent = SquashFS(handle).get("/d")
        block, offset = parent.block, parent.offset
    at = raw.index(b"\x03\x00loop") - 6  # name size field ("loop" is 4 bytes, stored as 3)
    header = raw.rindex(struct.pack("<I", block), 0, at)  # the entry's header: count, start block, inode
    assert header < at
    raw[at : at + 2] = struct.pack("<H", offset)
    image.write_bytes(bytes(raw))
    return image


# --- raw dumps, nesting, bombs ----------------------------------------------------------------------------

NESTED_PAYLOAD = b"the innermost file of a hundred-level nest\n"


def deep_nest(path: Path, levels: int = 100) -> Path:
    """gzip of tar of zip of gzip ... ``levels`` containers around one small file."""
    data = NESTED_PAYLOAD
    wrappers: list[Callable[[bytes, str], bytes]] = [_in_gzip, _in_tar, _in_zip]
    for level in range(levels):
        data = wrappers[level % 3](data, f"level-{level}")
    path.write_bytes(data)
    return path


def _in_gzip(data: bytes, name: str) -> bytes:
    return gzip.compress(data, mtime=0)


def _in_tar(data: bytes, name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(data), EPOCH
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _in_zip(data: bytes, name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_zip_info(name), data)
    return buffer.getvalue()


SPARSE_MAGIC, SPARSE_BLOCK = 0xED26FF3A, 4096
FILL, DONT_CARE = 0xCAC2, 0xCAC3


def sparse_bomb(path: Path, expanded: int = 10 << 30) -> Path:
    """An Android sparse image of a few hundred bytes that expands to ``expanded`` bytes of FILL and DONT_CARE."""
    blocks = expanded // SPARSE_BLOCK
    chunk_blocks = 1 << 20  # 4 GiB per chunk, alternating FILL and DONT_CARE
    chunks = bytearray()
    count, left = 0, blocks
    while left:
        take = min(chunk_blocks, left)
        if count % 2 == 0:
            chunks += struct.pack("<HHII", FILL, 0, take, 12 + 4) + b"\xa5\x5a\xa5\x5a"
        else:
            chunks += struct.pack("<HHII", DONT_CARE, 0, take, 12)
        count, left = count + 1, left - take
    header = struct.pack("<IHHHHIIII", SPARSE_MAGIC, 1, 0, 28, 12, SPARSE_BLOCK, blocks, count, 0)
    path.write_bytes(header + bytes(chunks))
    return path


def overlapping_dump(path: Path, inner: bytes) -> tuple[Path, int, int]:
    """A raw dump holding a zip whose stored member is a gzip stream: two signatures, nested extents.

    Returns the path, the zip's offset and its length. Random-looking filler
    (a fixed LCG, not ``random``: the bytes must not repeat between runs of the
    generator) surrounds it so the dump is unidentified and carved.
    """
    member = gzip.compress(inner, mtime=0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(_zip_info("inner.gz"), member)
    archive_bytes = buffer.getvalue()
    filler = _filler(96 << 10)
    offset = len(filler) // 2
    dump = filler[:offset] + archive_bytes + filler[offset:]
    path.write_bytes(dump)
    return path, offset, len(archive_bytes)


def _filler(size: int) -> bytes:
    state, out = 0x2545F491, bytearray()
    while len(out) < size:
        state = (state * 6364136223846793005 + 1442695040888963407) & (1 << 64) - 1
        out += (state >> 32).to_bytes(4, "little")
    return bytes(out[:size])
