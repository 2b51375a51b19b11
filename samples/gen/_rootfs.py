"""Staging root filesystems and packing them into images, deterministically.

A sample family builds a rootfs in three steps::

    root = stage(ctx, "linux-backdoor", debian_tree)     # fresh tree + skeleton dirs
    put(root, "/usr/sbin/syncd", compiled, mode=0o755)     # planted or ordinary files
    squashfs(ctx, root, ctx.out / "rootfs.squashfs")       # fixed times, root owner

``put`` accepts bytes, text or a file to copy; ``link`` makes a symlink.
Every packer calls ``ctx.fix_mtimes`` first, so the image bytes depend only
on the staged content. Staging trees live in ``ctx.cache/stage/<name>``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from samples.sample import EPOCH, BuildContext

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
    """Pack ``root`` with mksquashfs: root-owned, fixed timestamps, never appended to an old image."""
    ctx.fix_mtimes(root)
    image.parent.mkdir(parents=True, exist_ok=True)
    image.unlink(missing_ok=True)
    ctx.run("mksquashfs", root, image, "-noappend", "-no-progress", "-quiet", "-all-root",
            "-comp", compression, "-mkfs-time", str(EPOCH), "-all-time", str(EPOCH), *options)
    return image
