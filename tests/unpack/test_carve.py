"""Carving skips the blank runs of a blob (zeros, erased flash) and finds what a scan of every byte finds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.unpack.carve import BLANK_BLOCK, BLANK_SKIPPED, binwalk_hits, find_chunks, regions_with_data
from pipeline.unpack.registry import all_formats
from tests.conftest import SAMPLES

MIB = 1 << 20
DATA = os.urandom(MIB)
ZEROS, ERASED = bytes(4 * MIB), b"\xff" * (4 * MIB)


def _blob(tmp_path: Path, *parts: bytes) -> Path:
    path = tmp_path / "dump.bin"
    path.write_bytes(b"".join(parts))
    return path


@pytest.mark.parametrize(("parts", "regions"), [
    ((DATA,), [(0, MIB)]),
    ((DATA, ERASED, DATA), [(0, MIB + BLANK_BLOCK), (5 * MIB - BLANK_BLOCK, MIB + BLANK_BLOCK)]),
    ((ZEROS, DATA), [(4 * MIB - BLANK_BLOCK, MIB + BLANK_BLOCK)]),
    ((DATA, ZEROS), [(0, MIB + BLANK_BLOCK)]),
    ((ZEROS, ERASED), []),
    ((DATA, bytes(BLANK_SKIPPED), DATA), [(0, 3 * MIB)]),  # too short a run to be worth a second call
    ((DATA[:1000], ZEROS, DATA[:1000]), [(0, 2 * BLANK_BLOCK), (4 * MIB - BLANK_BLOCK, BLANK_BLOCK + 2000)]),
])
def test_blank_runs_are_left_out_of_the_scan_with_a_margin(tmp_path: Path, parts: tuple[bytes, ...],
                                                            regions: list[tuple[int, int]]) -> None:
    assert regions_with_data(_blob(tmp_path, *parts)) == regions


def test_a_dump_mostly_blank_is_carved_as_if_every_byte_were_scanned(tmp_path: Path) -> None:
    """Filesystems right after long blank runs: an ext image whose first KiB (zeros) ends a blank block (its
    signature starts 1,080 bytes before its magic, so the scan must start before the first block with data),
    others at offsets that are not block-aligned, and a blank run at the end."""
    ext, jffs2 = (SAMPLES / "out" / "rootfs.ext4").read_bytes(), (SAMPLES / "out" / "linux-rootfs.jffs2").read_bytes()
    uimage = (SAMPLES / "out" / "uimage-rootfs.uimg").read_bytes()
    assert ext[:1024] == bytes(1024)
    path = _blob(tmp_path, DATA, ERASED, bytes(BLANK_BLOCK - 1024), ext, ZEROS, bytes(BLANK_BLOCK - 24), jffs2,
                 ERASED, uimage, ZEROS)
    size = path.stat().st_size
    regions = regions_with_data(path)
    assert sum(length for _, length in regions) < size - 12 * MIB
    assert sorted(binwalk_hits(path, regions)) == sorted(binwalk_hits(path))
    chunks = find_chunks(path, size, all_formats(), max_carves=64).chunks
    ext_at = MIB + 4 * MIB + BLANK_BLOCK - 1024
    jffs2_at = ext_at + len(ext) + 4 * MIB + BLANK_BLOCK - 24
    uimage_at = jffs2_at + len(jffs2) + 4 * MIB
    assert {(chunk.offset, chunk.format.name) for chunk in chunks} >= {
        (ext_at, "ext"), (jffs2_at, "jffs2"), (uimage_at, "uimage")}
