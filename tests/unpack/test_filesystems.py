"""Filesystem formats: images built here with Debian's own tools from one staging tree.

Every image holds the same tree: a small init script, a multi-block binary
in a nested directory, a symlink to ``/etc/shadow`` (recorded, never
followed) and, when running as root, a character device node (noted, never
created). Hostile cases: truncated and corrupted images, a zero-length JFFS2
node, a directory loop, and filesystems carved from raw dumps.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import stat
import subprocess
import zlib
from pathlib import Path
from typing import BinaryIO

import pytest

from pipeline.config import Limits
from pipeline.model import ArtifactKind, ExtractionTree, IssueKind, NoteKind
from pipeline.store import LocalBlobStore
from pipeline.unpack.formats._fs import FsTree, walk_tree
from pipeline.unpack.formats.jffs2 import Jffs2
from pipeline.unpack.formats.squashfs import Squashfs
from pipeline.unpack.output import Output
from pipeline.unpack.safety import Budget, bubblewrap_available
from tests.conftest import Unpacker

RCS = b"#!/bin/sh\n/usr/bin/syncd --upload 203.0.113.7 &\n"
SYNCD = b"".join(b"syncd record %06d imei=%015d\n" % (i, i * 7919) for i in range(12_000))  # ~400 KB, text
AS_ROOT = os.geteuid() == 0
LINE = " › "


def _run(*command: str | Path) -> None:
    subprocess.run([str(c) for c in command], check=True, capture_output=True)


def _stage(root: Path, *, device: bool = AS_ROOT, links: bool = True) -> Path:
    (root / "etc" / "init.d").mkdir(parents=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "etc" / "init.d" / "rcS").write_bytes(RCS)
    (root / "usr" / "bin" / "syncd").write_bytes(SYNCD)
    if links:
        (root / "bin").mkdir()
        (root / "bin" / "sh").symlink_to("/etc/shadow")
    if device:
        (root / "dev").mkdir()
        os.mknod(root / "dev" / "kmem", stat.S_IFCHR | 0o600, os.makedev(1, 2))
    return root


@pytest.fixture
def stage(tmp_path: Path) -> Path:
    return _stage(tmp_path / "stage")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _assert_tree(tree: ExtractionTree, prefix: str, fmt: str, *, links: bool = True, device: bool = AS_ROOT) -> None:
    """The staging tree was found whole under ``prefix``, with nothing followed or created."""
    container = tree.find(prefix)
    assert container is not None and container.format == fmt
    files = {a.lineage_path: a for a in tree.artifacts if a.parent == container.id and a.kind is ArtifactKind.FILE}
    assert set(files) == {f"{prefix}{LINE}/etc/init.d/rcS", f"{prefix}{LINE}/usr/bin/syncd"}
    assert files[f"{prefix}{LINE}/etc/init.d/rcS"].sha256 == _sha(RCS)
    assert files[f"{prefix}{LINE}/usr/bin/syncd"].sha256 == _sha(SYNCD)
    assert files[f"{prefix}{LINE}/usr/bin/syncd"].size == len(SYNCD)
    assert all(a.extractor == fmt for a in files.values())
    links_found = [a for a in tree.artifacts if a.kind is ArtifactKind.SYMLINK]
    if links:
        [link] = links_found
        assert link.lineage_path == f"{prefix}{LINE}/bin/sh" and link.link_target == "/etc/shadow"
        assert any(n.kind is NoteKind.ESCAPING_LINK and n.path == link.lineage_path for n in tree.notes)
    else:
        assert links_found == []
    specials = [n for n in tree.notes if n.kind is NoteKind.SPECIAL_FILE]
    if device:
        assert [(n.path, n.note) for n in specials] == [
            (f"{prefix}{LINE}/dev/kmem", "character device node not extracted")
        ]
    else:
        assert specials == []
    assert tree.complete, tree.errors


# --- one test per filesystem, built by its own tool ----------------------------------------------


@pytest.mark.parametrize("compression", ["gzip", "xz", "lzo", "lz4", "zstd"])
def test_squashfs(compression: str, stage: Path, tmp_path: Path, run_unpack: Unpacker) -> None:
    image = tmp_path / "root.sqfs"
    _run("mksquashfs", stage, image, "-comp", compression, "-noappend", "-quiet", "-no-progress")
    _assert_tree(run_unpack(image), "root.sqfs", "squashfs")


def test_jffs2(stage: Path, tmp_path: Path, run_unpack: Unpacker) -> None:
    image = tmp_path / "rootfs.jffs2"
    _run("mkfs.jffs2", "-r", stage, "-o", image, "-e", "64KiB", "-l", "-x", "rtime")
    _assert_tree(run_unpack(image), "rootfs.jffs2", "jffs2")


def test_big_endian_jffs2_is_recorded_as_unsupported(stage: Path, tmp_path: Path, run_unpack: Unpacker) -> None:
    image = tmp_path / "rootfs.jffs2"
    _run("mkfs.jffs2", "-r", stage, "-o", image, "-e", "64KiB", "-b")
    tree = run_unpack(image)
    assert tree.root.format == "jffs2"
    [issue] = tree.errors
    assert issue.kind is IssueKind.UNSUPPORTED and "big-endian JFFS2" in issue.error
    assert len(tree.artifacts) == 1


def test_ubi_volume_holding_ubifs(stage: Path, tmp_path: Path, run_unpack: Unpacker) -> None:
    ubifs = tmp_path / "rootfs.ubifs"
    _run("mkfs.ubifs", "-r", stage, "-m", "2048", "-e", "126976", "-c", "64", "-o", ubifs)  # lzo by default
    config = tmp_path / "ubinize.ini"
    config.write_text(f"[rootfs]\nmode=ubi\nimage={ubifs}\nvol_id=0\nvol_type=dynamic\nvol_name=rootfs\n")
    image = tmp_path / "nand.ubi"
    _run("ubinize", "-o", image, "-m", "2048", "-p", "128KiB", "-s", "2048", "-Q", "1234", config)
    tree = run_unpack(image)
    assert tree.root.format == "ubi"
    volume = tree.find(f"nand.ubi{LINE}rootfs")
    assert volume is not None and volume.kind is ArtifactKind.PARTITION
    lebs = -(-ubifs.stat().st_size // 126976)  # ubinize reserves just enough blocks for the image
    assert volume.attributes == {"vol_id": 0, "vol_type": "dynamic", "image_seq": 1234, "reserved_pebs": lebs}
    assert volume.size == ubifs.stat().st_size
    _assert_tree(tree, f"nand.ubi{LINE}rootfs", "ubifs")


def test_ubifs_with_zlib(stage: Path, tmp_path: Path, run_unpack: Unpacker) -> None:
    image = tmp_path / "data.ubifs"
    _run("mkfs.ubifs", "-r", stage, "-m", "2048", "-e", "126976", "-c", "64", "-x", "zlib", "-o", image)
    _assert_tree(run_unpack(image), "data.ubifs", "ubifs")


def test_ext4(stage: Path, tmp_path: Path, run_unpack: Unpacker) -> None:
    image = tmp_path / "system.img"
    _run("mke2fs", "-q", "-t", "ext4", "-d", stage, image, "4M")
    tree = run_unpack(image)
    _assert_tree(tree, "system.img", "ext")
    assert tree.root.coverage is not None and tree.root.coverage.unpacked == 4 << 20


def test_cramfs(stage: Path, tmp_path: Path, run_unpack: Unpacker) -> None:
    image = tmp_path / "root.cramfs"
    _run("mkfs.cramfs", stage, image)
    _assert_tree(run_unpack(image), "root.cramfs", "cramfs")


def test_fat_with_long_and_short_names(tmp_path: Path, run_unpack: Unpacker) -> None:
    stage = _stage(tmp_path / "stage", device=False, links=False)  # FAT has neither
    image = tmp_path / "modem.img"
    _run("mkfs.vfat", "-C", image, "2048")
    _run("mcopy", "-s", "-i", image, stage / "etc", stage / "usr", "::/")
    _assert_tree(run_unpack(image), "modem.img", "fat", links=False, device=False)


def test_erofs(tmp_path: Path, run_unpack: Unpacker) -> None:
    stage = _stage(tmp_path / "stage", device=False)
    image = tmp_path / "vendor.img"
    _run("mkfs.erofs", "--quiet", "-zlz4hc", image, stage)
    _assert_tree(run_unpack(image), "vendor.img", "erofs", device=False)


@pytest.mark.skipif(not AS_ROOT, reason="creating a device node needs root")
@pytest.mark.skipif(not bubblewrap_available(), reason="the tool runs unprivileged only inside bubblewrap")
def test_erofs_device_node_is_not_created_by_the_unprivileged_tool(
    stage: Path, tmp_path: Path, run_unpack: Unpacker
) -> None:
    image = tmp_path / "vendor.img"
    _run("mkfs.erofs", "--quiet", image, stage)
    tree = run_unpack(image)
    assert tree.errors == []
    assert tree.find(f"vendor.img{LINE}/bin/sh") is not None
    assert tree.find(f"vendor.img{LINE}/dev/kmem") is None  # skipped by fsck.erofs, never created


# --- hostile images ------------------------------------------------------------------------------


def test_truncated_squashfs_is_a_recorded_failure(stage: Path, tmp_path: Path, run_unpack: Unpacker) -> None:
    full = tmp_path / "full.sqfs"
    _run("mksquashfs", stage, full, "-comp", "xz", "-noappend", "-quiet", "-no-progress")
    image = tmp_path / "cut.sqfs"
    image.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    tree = run_unpack(image)
    assert not tree.complete
    assert tree.root.format == "squashfs"
    assert {e.kind for e in tree.errors} == {IssueKind.FAILURE}
    assert tree.find(f"cut.sqfs{LINE}/usr/bin/syncd") is None


def test_corrupt_block_fails_only_its_file(stage: Path, tmp_path: Path, run_unpack: Unpacker) -> None:
    image = tmp_path / "root.sqfs"
    _run("mksquashfs", stage, image, "-comp", "gzip", "-noappend", "-quiet", "-no-progress")
    data = bytearray(image.read_bytes())
    data[200:2000] = random.Random(3).randbytes(1800)  # inside syncd's first data block; rcS is in a fragment
    image.write_bytes(bytes(data))
    tree = run_unpack(image)
    [issue] = tree.errors
    assert issue.path == f"root.sqfs{LINE}/usr/bin/syncd" and issue.kind is IssueKind.FAILURE
    assert tree.find(f"root.sqfs{LINE}/usr/bin/syncd") is None
    rcs = tree.find(f"root.sqfs{LINE}/etc/init.d/rcS")
    assert rcs is not None and rcs.sha256 == _sha(RCS)


def test_zero_length_jffs2_node_is_refused_not_looped(stage: Path, tmp_path: Path, run_unpack: Unpacker) -> None:
    image = tmp_path / "rootfs.jffs2"
    _run("mkfs.jffs2", "-r", stage, "-o", image, "-l", "-x", "rtime")
    header = (0x1985).to_bytes(2, "little") + (0xE002).to_bytes(2, "little") + bytes(4)
    crc = zlib.crc32(header, 0xFFFFFFFF) ^ 0xFFFFFFFF
    image.write_bytes(image.read_bytes() + header + crc.to_bytes(4, "little") + bytes(64))
    tree = run_unpack(image)
    [issue] = tree.errors
    assert issue.kind is IssueKind.FAILURE and "declares length 0" in issue.error
    assert len(tree.artifacts) == 1


def test_squashfs_carved_from_raw_dump(stage: Path, tmp_path: Path, run_unpack: Unpacker) -> None:
    fs = tmp_path / "root.sqfs"
    _run("mksquashfs", stage, fs, "-comp", "gzip", "-noappend", "-quiet", "-no-progress")
    dump = tmp_path / "flash.bin"
    dump.write_bytes(random.Random(7).randbytes(0x10000) + fs.read_bytes() + b"\xff" * 0x20000)
    tree = run_unpack(dump)
    carved = tree.find(f"flash.bin{LINE}0x10000.squashfs")
    assert carved is not None and carved.kind is ArtifactKind.CARVED
    assert carved.offset == 0x10000 and carved.size == fs.stat().st_size  # bytes_used padded to 4 KiB
    assert carved.sha256 == _sha(fs.read_bytes())
    _assert_tree(tree, f"flash.bin{LINE}0x10000.squashfs", "squashfs")


def test_jffs2_chunk_ends_at_its_last_node(stage: Path, tmp_path: Path) -> None:
    fs = tmp_path / "rootfs.jffs2"
    _run("mkfs.jffs2", "-r", stage, "-o", fs, "-e", "64KiB", "-l", "-p", "-x", "rtime")
    body = fs.read_bytes()
    dump = tmp_path / "flash.bin"
    dump.write_bytes(b"\x00" * 4096 + body + random.Random(5).randbytes(4096))
    last_node_end = len(body.rstrip(b"\xff"))
    with open(dump, "rb") as handle:
        assert Jffs2.chunk_length(handle, 4096, dump.stat().st_size - 4096) == last_node_end
        assert Jffs2.chunk_length(handle, 0, dump.stat().st_size) is None


def test_squashfs_chunk_length_rejects_a_lying_superblock(stage: Path, tmp_path: Path) -> None:
    fs = tmp_path / "root.sqfs"
    _run("mksquashfs", stage, fs, "-noappend", "-quiet", "-no-progress")
    with open(fs, "rb") as handle:
        assert Squashfs.chunk_length(handle, 0, fs.stat().st_size) == fs.stat().st_size
        assert Squashfs.chunk_length(handle, 0, 1000) is None  # bytes_used beyond what is there


class _LoopTree(FsTree[str]):
    """A directory whose child is its own parent: what a hostile image's inode table can say."""

    def root(self) -> str:
        return "root"

    def entries(self, directory: str) -> list[tuple[str, str]]:
        return [("sub", "sub"), ("file", "file")] if directory == "root" else [("again", "root")]

    def file_type(self, node: str) -> int:
        return stat.S_IFREG if node == "file" else stat.S_IFDIR

    def identity(self, node: str) -> str:
        return node

    def size(self, node: str) -> int:
        return 4

    def open(self, node: str) -> BinaryIO:
        return io.BytesIO(b"data")

    def link(self, node: str) -> str:
        raise AssertionError("no links here")


def test_directory_loop_is_walked_once_and_noted(tmp_path: Path) -> None:
    limits = Limits()
    out = Output(
        LocalBlobStore(tmp_path / "store"),
        Budget(1 << 20, 100, 10.0),
        container_size=100,
        rooted=True,
        max_ratio=limits.max_ratio,
        ratio_floor=limits.ratio_floor,
    )
    walk_tree(out, _LoopTree(), container_size=100)
    assert [c.name for c in out.children] == ["/file"]
    assert [(n.member, n.kind) for n in out.notes] == [("/sub/again", NoteKind.DUPLICATE)]
    assert out.issues == []


def test_tools_are_installed() -> None:
    """The builders above are Debian packages the test environment must have."""
    missing = [
        t
        for t in (
            "mksquashfs",
            "mkfs.jffs2",
            "mkfs.ubifs",
            "ubinize",
            "mke2fs",
            "mkfs.cramfs",
            "mkfs.vfat",
            "mcopy",
            "mkfs.erofs",
            "fsck.erofs",
        )
        if shutil.which(t) is None
    ]
    assert missing == []


@pytest.mark.parametrize("tool", ["mksquashfs", "mkfs.jffs2", "mkfs.cramfs"])
def test_mutated_headers_never_escape_the_walker(tool: str, stage: Path, tmp_path: Path, run_unpack: Unpacker) -> None:
    image = tmp_path / "fs.img"
    commands = {
        "mksquashfs": ("mksquashfs", stage, image, "-noappend", "-quiet", "-no-progress"),
        "mkfs.jffs2": ("mkfs.jffs2", "-r", stage, "-o", image, "-l", "-x", "rtime"),
        "mkfs.cramfs": ("mkfs.cramfs", stage, image),
    }
    _run(*commands[tool])
    original = image.read_bytes()
    rng = random.Random(tool)
    for _ in range(8):
        data = bytearray(original)
        for _ in range(8):
            data[rng.randrange(4, 4096)] = rng.randrange(256)
        image.write_bytes(bytes(data))
        tree = run_unpack(image, limits=Limits(extractor_seconds=20))
        assert tree.root.lineage_path == "fs.img"
        assert tree.complete or all(
            e.kind in (IssueKind.FAILURE, IssueKind.LIMIT, IssueKind.UNDECODABLE) for e in tree.errors
        )


@pytest.mark.skipif(not bubblewrap_available(), reason="the unsquashfs fast path runs only inside bubblewrap")
def test_squashfs_fast_path_gives_the_same_tree_as_the_streaming_reader(
    tmp_path: Path, run_unpack: Unpacker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.unpack.formats import squashfs

    plain = tmp_path / "plain"
    (plain / "usr" / "bin").mkdir(parents=True)
    (plain / "usr" / "bin" / "syncd").write_bytes(os.urandom(300_000))
    (plain / "etc").mkdir()
    (plain / "etc" / "hostname").write_text("phone\n")
    (plain / "etc" / "shadow-link").symlink_to("/etc/shadow")
    image = tmp_path / "plain.sqfs"
    _run("mksquashfs", plain, image, "-comp", "gzip", "-noappend", "-quiet", "-no-progress")
    calls: list[list[str]] = []
    real_run_tool = squashfs.run_tool

    def counting_run_tool(command, **kwargs):
        calls.append(list(command))
        return real_run_tool(command, **kwargs)

    monkeypatch.setattr(squashfs, "run_tool", counting_run_tool)
    fast = run_unpack(image)
    assert len(calls) == 1 and "unsquashfs" in calls[0][0]
    monkeypatch.setattr(squashfs.shutil, "which", lambda _name: None)
    streamed = run_unpack(image)
    assert len(calls) == 1

    def summary(tree):
        return sorted((a.lineage_path, a.sha256, a.kind, a.link_target) for a in tree.artifacts)

    assert summary(fast) == summary(streamed)
    assert fast.find(f"plain.sqfs{LINE}/etc/shadow-link").link_target == "/etc/shadow"
