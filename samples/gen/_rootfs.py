"""Staging root filesystems and packing them into images, deterministically.

A sample family builds a rootfs in three steps::

    root = stage(ctx, "linux-backdoor", debian_tree)     # fresh tree + skeleton dirs
    put(root, "/usr/sbin/syncd", compiled, mode=0o755)     # planted or ordinary files
    squashfs(ctx, root, ctx.out / "rootfs.squashfs")       # fixed times, root owner

``put`` accepts bytes, text or a file to copy; ``link`` makes a symlink.
The packers (``squashfs``, ``jffs2``, ``ubi``, ``ext4``, ``cramfs``, ``vfat``,
``cpio_newc``, ``tar``) take a staged root and an image path, call
``ctx.fix_mtimes`` first and pin every other source of variation (UUIDs,
hash seeds, sequence numbers), so the image bytes depend only on the staged
content. ``compress`` runs a stream compressor the same way. Staging trees
live in ``ctx.cache/stage/<name>``.
"""

from __future__ import annotations

import os
import shutil
import struct
import time
import zlib
from pathlib import Path

from samples.sample import EPOCH, BuildContext

# Fixed identifiers: mkfs tools draw them at random otherwise.
VOLUME_UUID = "5a1e0c0d-7f3b-4c2a-9d1e-0b5e7a11c0de"
HASH_SEED = "0d15ea5e-0b5e-4a11-8bad-f00dcafe0001"
UBI_IMAGE_SEQUENCE = "0x2b1d3c4e"
SKELETON = ("bin", "dev", "etc/init.d", "lib", "proc", "root", "sbin", "sys", "tmp",
            "usr/bin", "usr/sbin", "var/log", "var/run")
# Debian documentation is dead weight on a device image and is not there on real ones.
PRUNED = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/bug")


def stage(ctx: BuildContext, name: str, *trees: Path) -> Path:
    """A fresh staging root holding a copy of ``trees`` (symlinks kept as links) and the skeleton."""
    root = ctx.cache / "stage" / name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for tree in trees:
        shutil.copytree(tree, root, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".done"))
    for pruned in PRUNED:
        shutil.rmtree(root / pruned, ignore_errors=True)
    for directory in SKELETON:
        (root / directory).mkdir(parents=True, exist_ok=True)
    return root


def _inside(root: Path, path: str) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def put(root: Path, path: str, content: bytes | str | Path, mode: int = 0o644) -> Path:
    """Write one file at the absolute in-image ``path``; a Path is copied, text is UTF-8."""
    target = _inside(root, path)
    if target.is_symlink() or target.exists():
        target.unlink()
    if isinstance(content, Path):
        shutil.copyfile(content, target)
    else:
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    target.chmod(mode)
    return target


def link(root: Path, path: str, target: str) -> None:
    """A symlink at ``path`` pointing to ``target`` (stored verbatim, never resolved)."""
    source = _inside(root, path)
    if source.is_symlink() or source.exists():
        source.unlink()
    os.symlink(target, source)


def busybox_applets(root: Path, applets: tuple[str, ...] = ("sh", "ls", "cat", "mount", "ps", "sleep")) -> None:
    """``/bin/<applet> -> busybox`` links, as on every busybox-based device."""
    for applet in applets:
        link(root, f"/bin/{applet}", "busybox")


def squashfs(ctx: BuildContext, root: Path, image: Path, compression: str = "xz",
             *options: str) -> Path:
    """Pack ``root`` with mksquashfs: root-owned, never appended to an old image.

    mksquashfs takes every timestamp from SOURCE_DATE_EPOCH (set by ``ctx.run``)
    and refuses ``-mkfs-time``/``-all-time`` alongside it.
    """
    ctx.fix_mtimes(root)
    image.parent.mkdir(parents=True, exist_ok=True)
    image.unlink(missing_ok=True)
    ctx.run("mksquashfs", root, image, "-noappend", "-no-progress", "-quiet", "-all-root",
            "-comp", compression, *options)
    return image


def jffs2(ctx: BuildContext, root: Path, image: Path, erase_block: int = 0x10000) -> Path:
    """A little-endian JFFS2 image (NOR flash, ``erase_block`` bytes per erase block)."""
    ctx.fix_mtimes(root)
    ctx.run("mkfs.jffs2", "--little-endian", "--squash", f"--eraseblock={erase_block:#x}",
            "-d", root, "-o", image)
    return image


# UBIFS on-flash nodes (fs/ubifs/ubifs-media.h): a 24-byte common header (magic, crc at 4,
# sqnum, len at 16, node type at 20), every node 8-byte aligned inside its LEB.
UBIFS_NODE_MAGIC = b"\x31\x18\x10\x06"
UBIFS_INO_NODE, UBIFS_SB_NODE = 0, 6
UBIFS_INO_CTIME, UBIFS_INO_MTIME = 64, 72  # ctime_sec, mtime_sec in an inode node
UBIFS_SB_UUID = 108  # the 16-byte uuid in the superblock node


def _ubifs_nodes(data: bytearray) -> list[tuple[int, int]]:
    """(offset, length) of every node whose CRC checks, so data that merely looks like a header is skipped."""
    nodes = []
    for offset in range(0, len(data) - 24, 8):
        if data[offset:offset + 4] != UBIFS_NODE_MAGIC:
            continue
        length = struct.unpack_from("<I", data, offset + 16)[0]
        stored = struct.unpack_from("<I", data, offset + 4)[0]
        if 24 <= length <= len(data) - offset and stored == _ubifs_crc(data[offset + 8:offset + length]):
            nodes.append((offset, length))
    return nodes


def _ubifs_crc(data: bytes | bytearray) -> int:
    # UBIFS's crc32 starts at 0xffffffff and has no final inversion, unlike zlib's.
    return zlib.crc32(data) ^ 0xFFFFFFFF


def _pin_ubifs(image: Path) -> None:
    """Make a mkfs.ubifs image reproducible: it draws the volume UUID at random and copies
    each file's change time, which a freshly staged tree cannot fix. Set the UUID, make
    ctime = mtime, and re-seal each changed node's CRC (index nodes carry no child CRCs)."""
    data = bytearray(image.read_bytes())
    for offset, length in _ubifs_nodes(data):
        node_type = data[offset + 20]
        if node_type == UBIFS_SB_NODE:
            start = offset + UBIFS_SB_UUID
            data[start:start + 16] = bytes.fromhex(VOLUME_UUID.replace("-", ""))
        elif node_type == UBIFS_INO_NODE:
            mtime = data[offset + UBIFS_INO_MTIME:offset + UBIFS_INO_MTIME + 8]
            data[offset + UBIFS_INO_CTIME:offset + UBIFS_INO_CTIME + 8] = mtime
        else:
            continue
        struct.pack_into("<I", data, offset + 4, _ubifs_crc(data[offset + 8:offset + length]))
    image.write_bytes(bytes(data))


def ubi(ctx: BuildContext, root: Path, image: Path, volume: str = "rootfs") -> Path:
    """A UBI image (2 KiB pages, 128 KiB erase blocks) holding one dynamic UBIFS volume."""
    ctx.fix_mtimes(root)
    work = ctx.cache / "ubi-work" / image.name
    work.mkdir(parents=True, exist_ok=True)
    ubifs = work / f"{volume}.ubifs"
    ubifs.unlink(missing_ok=True)
    ctx.run("mkfs.ubifs", "-r", root, "-m", "2048", "-e", "126976", "-c", "512", "-x", "lzo",
            "--squash-uids", "-o", ubifs)
    _pin_ubifs(ubifs)
    config = work / "ubinize.cfg"
    config.write_text(f"[{volume}]\nmode=ubi\nimage={ubifs}\nvol_id=0\nvol_type=dynamic\n"
                      f"vol_name={volume}\nvol_flags=autoresize\n")
    ctx.run("ubinize", "-o", image, "-m", "2048", "-p", "128KiB", "-s", "2048",
            "-Q", UBI_IMAGE_SEQUENCE, config)
    shutil.rmtree(work)
    return image


def ext4(ctx: BuildContext, root: Path, image: Path, size: str = "8M") -> Path:
    """An ext4 image made by ``mke2fs -d``: fixed UUID, hash seed and clock (E2FSPROGS_FAKE_TIME).

    ``mke2fs -d`` copies each staged file's change time, which cannot be set on
    the host: ``debugfs`` then sets every inode's ctime to the fixed epoch.
    """
    ctx.fix_mtimes(root)
    image.unlink(missing_ok=True)
    fake_time = ("env", f"E2FSPROGS_FAKE_TIME={EPOCH}")
    ctx.run(*fake_time, "mke2fs", "-q", "-t", "ext4", "-L", "rootfs", "-U", VOLUME_UUID,
            "-E", f"hash_seed={HASH_SEED},root_owner=0:0", "-d", root, image, size)
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(EPOCH))
    commands = image.with_name(f"{image.name}.debugfs")
    commands.write_text("".join(f'sif "/{name}" ctime {stamp}\n' for name in ["", *_members(root)]))
    ctx.run(*fake_time, "debugfs", "-w", "-f", commands, image)
    commands.unlink()
    return image


def cramfs(ctx: BuildContext, root: Path, image: Path) -> Path:
    """A little-endian cramfs (it stores no timestamps; owners come from the staged files)."""
    ctx.fix_mtimes(root)
    image.unlink(missing_ok=True)
    ctx.run("mkfs.cramfs", "-N", "little", "-n", "rootfs", root, image)
    return image


def vfat(ctx: BuildContext, files: dict[str, Path], image: Path, size_kib: int = 4096) -> Path:
    """A FAT boot partition holding ``files`` (in-image name -> source) at its root."""
    image.unlink(missing_ok=True)
    ctx.run("mkfs.vfat", "--invariant", "-i", "1700CAFE", "-n", "BOOT", "-C", image, str(size_kib))
    for name, source in sorted(files.items()):
        os.utime(source, (EPOCH, EPOCH))
        ctx.run("mcopy", "-m", "-i", image, source, f"::{name}")
    return image


def _members(root: Path) -> list[str]:
    """Every path under ``root``, relative, sorted: archive order must not depend on the disk."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def cpio_newc(ctx: BuildContext, root: Path, image: Path) -> Path:
    """An uncompressed cpio archive (newc, as the kernel's initramfs expects), root-owned."""
    ctx.fix_mtimes(root)
    names = "".join(f"{name}\n" for name in [".", *_members(root)])
    result = ctx.run("cpio", "-o", "-H", "newc", "--reproducible", "-R", "0:0", "--quiet",
                     cwd=root, input=names.encode())
    image.write_bytes(result.stdout)
    return image


def tar(ctx: BuildContext, root: Path, image: Path) -> Path:
    """An uncompressed GNU tar of ``root``: sorted names, fixed times, numeric root owner."""
    ctx.fix_mtimes(root)
    ctx.run("tar", "--format=gnu", "--sort=name", f"--mtime=@{EPOCH}", "--owner=0", "--group=0",
            "--numeric-owner", "-C", root, "-cf", image, ".")
    return image


COMPRESSORS = {
    "gz": ("gzip", "-n", "-9"),
    "xz": ("xz", "-T1", "--check=crc32"),
    "zst": ("zstd", "-q", "-19", "-T1"),
    "lz4": ("lz4", "-q", "-9"),
    "bz2": ("bzip2", "-9"),
}


def compress(ctx: BuildContext, source: Path, suffix: str) -> Path:
    """``source`` compressed to ``source.<suffix>`` (gz, xz, zst, lz4, bz2); the source is kept."""
    target = source.with_name(f"{source.name}.{suffix}")
    result = ctx.run(*COMPRESSORS[suffix], "-c", source)
    target.write_bytes(result.stdout)
    return target
