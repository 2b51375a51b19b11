"""The walker: recursion, limits, deduplication, coverage, folders; on inputs built here."""

from __future__ import annotations

import gzip
import io
import random
import zlib
from pathlib import Path

from pipeline.config import Limits
from pipeline.model import ArtifactKind, IssueKind, NoteKind
from tests.conftest import Unpacker


def _gzip(data: bytes, name: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=name or "", mode="wb", fileobj=buffer, mtime=0) as handle:
        handle.write(data)
    return buffer.getvalue()


def test_gzip_member_gets_its_stored_name(tmp_path: Path, run_unpack: Unpacker) -> None:
    image = tmp_path / "fw.bin.gz"
    image.write_bytes(_gzip(b"#!/bin/sh\necho hi\n", name="rcS"))
    tree = run_unpack(image)
    assert [a.lineage_path for a in tree.artifacts] == ["fw.bin.gz", "fw.bin.gz › rcS"]
    assert tree.artifacts[1].format == "text"
    assert tree.artifacts[1].extractor == "gzip"
    assert tree.complete
    assert tree.coverage.reached == tree.coverage.bytes


def test_depth_limit_is_recorded_not_fatal(tmp_path: Path, run_unpack: Unpacker) -> None:
    data = b"bottom\n"
    for _ in range(6):
        data = _gzip(data)
    image = tmp_path / "nest.gz"
    image.write_bytes(data)
    tree = run_unpack(image, limits=Limits(max_depth=3))
    assert tree.max_depth == 3
    assert not tree.complete
    [issue] = tree.errors
    assert issue.kind is IssueKind.LIMIT and "depth limit of 3" in issue.error
    assert issue.path.count(" › ") == 3


def test_identical_blob_at_two_offsets_is_stored_once_and_extracted_once(
    tmp_path: Path, run_unpack: Unpacker, settings
) -> None:
    member = _gzip(b"same payload " * 5000, name="payload.txt")
    rng = random.Random(1)
    image = tmp_path / "dump.bin"
    image.write_bytes(rng.randbytes(70_000) + member + bytes(4096) + member + b"\xff" * 8192)
    tree = run_unpack(image)
    carved = [a for a in tree.artifacts if a.kind is ArtifactKind.CARVED]
    assert [a.offset for a in carved] == [70_000, 70_000 + len(member) + 4096]
    assert carved[0].sha256 == carved[1].sha256
    payloads = [a for a in tree.artifacts if a.name == "payload.txt"]
    assert len(payloads) == 2 and payloads[0].sha256 == payloads[1].sha256
    blobs = [p for p in (settings.store_dir / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == len({a.sha256 for a in tree.artifacts if a.kind is not ArtifactKind.SYMLINK})
    root = tree.root.coverage
    assert root.carved == 2 * len(member)
    assert root.padding >= 4096 + 8192 - 4096  # block-aligned classification may round
    assert root.undecodable >= 65536


def test_total_bytes_quota_stops_the_image(tmp_path: Path, run_unpack: Unpacker) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = b"".join(compressor.compress(bytes(1 << 20)) for _ in range(32)) + compressor.flush()
    image = tmp_path / "big.gz"
    image.write_bytes(data)
    limits = Limits(total_bytes_factor=1, total_bytes_floor=4 << 20, ratio_floor=1 << 30)
    tree = run_unpack(image, limits=limits)
    assert any("total extracted bytes limit" in e.error for e in tree.errors)
    assert not tree.complete
    store_bytes = sum(p.stat().st_size for p in (tmp_path / "home").rglob("*") if p.is_file())
    assert store_bytes < 8 << 20


def test_ratio_limit_stops_a_bomb(tmp_path: Path, run_unpack: Unpacker) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = b"".join(compressor.compress(bytes(1 << 20)) for _ in range(64)) + compressor.flush()
    image = tmp_path / "bomb.gz"
    image.write_bytes(data)
    tree = run_unpack(image, limits=Limits(max_ratio=100, ratio_floor=1 << 20))
    [issue] = tree.errors
    assert "decompression bomb stopped" in issue.error and issue.kind is IssueKind.LIMIT
    assert len(tree.artifacts) == 1


def test_file_count_quota(tmp_path: Path, run_unpack: Unpacker) -> None:
    folder = tmp_path / "release"
    folder.mkdir()
    for index in range(20):
        (folder / f"part{index:02d}.bin").write_bytes(bytes([index]) * 100)
    tree = run_unpack(folder, limits=Limits(max_files=5))
    assert len(tree.artifacts) == 1 + 5
    assert any("file count limit of 5" in e.error for e in tree.errors)


def test_firmware_folder_is_a_container(tmp_path: Path, run_unpack: Unpacker) -> None:
    folder = tmp_path / "release"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "boot.txt").write_text("boot\n")
    (folder / "readme.txt").write_text("readme\n")
    (folder / "link").symlink_to("/etc/passwd")
    tree = run_unpack(folder)
    assert tree.root.format == "directory"
    paths = {a.lineage_path: a for a in tree.artifacts}
    assert set(paths) == {"release", "release › images/boot.txt", "release › link", "release › readme.txt"}
    assert paths["release › link"].kind is ArtifactKind.SYMLINK
    assert paths["release › link"].link_target == "/etc/passwd"
    assert any(n.kind is NoteKind.ESCAPING_LINK for n in tree.notes)


def test_empty_and_random_images_are_incomplete_with_reasons(tmp_path: Path, run_unpack: Unpacker) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.bin"
    noise.write_bytes(random.Random(5).randbytes(200_000))
    empty_tree, noise_tree = run_unpack(empty), run_unpack(noise)
    assert [e.error for e in empty_tree.errors] == ["the image is empty: nothing to analyse"]
    [issue] = noise_tree.errors
    assert issue.kind is IssueKind.UNDECODABLE
    assert noise_tree.coverage.undecodable >= 196_608
    assert noise_tree.coverage.reached_ratio < 0.05


def test_undecodable_child_lowers_image_coverage(tmp_path: Path, run_unpack: Unpacker) -> None:
    noise = random.Random(9).randbytes(100_000)
    image = tmp_path / "wrapped.gz"
    image.write_bytes(_gzip(noise + b"A" * 100_000, name="inner.bin"))
    tree = run_unpack(image)
    assert not tree.complete
    coverage = tree.coverage
    assert coverage.reached == 0  # what gzip handed over was only unknown or undecodable data
    assert 0.3 < coverage.undecodable / coverage.bytes < 0.7
    assert 0.3 < coverage.unknown / coverage.bytes < 0.7
    assert tree.coverage.bytes == image.stat().st_size


def test_build_prop_names_the_android_platform(tmp_path: Path, run_unpack: Unpacker) -> None:
    folder = tmp_path / "system"
    folder.mkdir()
    (folder / "build.prop").write_text("# begin build properties\nro.build.version.release=8.1.0\n"
                                       "ro.board.platform=mt6580\nro.product.model=X1\n")
    tree = run_unpack(folder)
    assert tree.platform.os == "Android 8.1.0"
    assert tree.platform.chipset == "MT6580"
    assert "system › build.prop" in (tree.platform.how or "")


def test_elf_headers_are_described_without_libmagic() -> None:
    from pipeline.unpack.identify import describe_elf, identify

    arm_so = b"\x7fELF\x01\x01\x01" + bytes(9) + (3).to_bytes(2, "little") + (40).to_bytes(2, "little") + bytes(40)
    mips_exec = b"\x7fELF\x01\x02\x01" + bytes(9) + (2).to_bytes(2, "big") + (8).to_bytes(2, "big") + bytes(40)
    assert describe_elf(arm_so) == "ELF 32-bit LSB shared object, ARM"
    assert describe_elf(mips_exec) == "ELF 32-bit MSB executable, MIPS"
    assert describe_elf(b"\x7fELF\x07") is None
    assert identify(arm_so, len(arm_so), "libc.so.6").label == "elf"
