"""Feature-phone firmware: Spreadtrum PAC and DRPS (LZMA variant), MediaTek MAUI ROMs.

The samples come from ``samples.gen.featurephone`` (built once per module
into a temporary directory); hostile variants are built with its builders.
"""

from __future__ import annotations

import lzma
import re
from pathlib import Path

import pytest

from pipeline.model import LINEAGE_SEPARATOR, ArtifactKind, ExtractionTree, IssueKind, NoteKind
from pipeline.store import LocalBlobStore
from pipeline.unpack.formats._sprd_lzma import UNKNOWN_SIZE, SprdLzmaDecoder
from pipeline.unpack.formats.pac import FEATURE_PHONE, chipset_of
from samples.gen._sprd_lzma_encoder import compress
from samples.gen.featurephone import (
    ALICE_RANGES,
    PS_NAME,
    PacEntry,
    build,
    build_drps,
    build_maui_rom,
    build_pac,
    rtos_image,
    sc6531e_images,
)
from samples.sample import BuildContext, Sample
from tests.conftest import Unpacker

PAC_FILES = {"nor_fdl1.bin", "nor_fdl.bin", PS_NAME, "nvitem.bin", "mmi_res_240x320.bin"}
PLANTED = (b"AT+CMGF=1", b'AT+CMGS="+8613800138000"', b"IMEI:%s", b"http://203.0.113.45/reg.php",
           b"sms.reg-cn.example.cn")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Sample]]:
    root = tmp_path_factory.mktemp("featurephone")
    ctx = BuildContext(root=root, out=root / "out", cache=root / "cache")
    ctx.out.mkdir()
    return ctx.out, build(ctx)


def _sample(built: tuple[Path, list[Sample]], name: str) -> tuple[Path, Sample]:
    out, samples = built
    return out / name, next(s for s in samples if s.file == name)


def _bytes(store: LocalBlobStore, tree: ExtractionTree, path_end: str) -> bytes:
    found = [a for a in tree.artifacts if a.lineage_path.endswith(path_end)]
    assert len(found) == 1, [a.lineage_path for a in tree.artifacts]
    return store.path(found[0].sha256).read_bytes()


def _children(tree: ExtractionTree, parent_path: str) -> dict[str, str]:
    parent = tree.find(parent_path)
    assert parent is not None
    return {a.name: a.format for a in tree.children(parent.id)}


# --- the samples, checked against their own manifest records --------------------------------------


@pytest.mark.parametrize("name", ["featurephone-sc6531e.pac", "featurephone-sc6531e-clean.pac",
                                  "featurephone-mt6261.bin"])
def test_sample_unpacks_as_its_manifest_says(built: tuple[Path, list[Sample]], run_unpack: Unpacker,
                                             name: str) -> None:
    path, sample = _sample(built, name)
    tree = run_unpack(path)
    assert tree.complete is sample.extraction_complete, tree.errors
    labels = {a.format for a in tree.artifacts}
    assert set(sample.formats) <= labels
    for contained in sample.contains:
        matches = [a for a in tree.artifacts if a.lineage_path.endswith(contained.path_endswith)]
        assert len(matches) == 1, contained
        ancestors, parent = [], matches[0].parent
        while parent is not None:
            ancestors.insert(0, tree.artifacts[parent].format)
            parent = tree.artifacts[parent].parent
        assert ancestors == contained.formats
    for pattern in sample.errors:
        assert any(re.search(pattern, e.error) for e in tree.errors), tree.errors
    for field, value in sample.platform.items():
        assert getattr(tree.platform, field) == value


def test_pac_entries_become_named_partitions(built: tuple[Path, list[Sample]], run_unpack: Unpacker) -> None:
    path, _ = _sample(built, "featurephone-sc6531e.pac")
    tree = run_unpack(path)
    assert tree.root.format == "pac"
    children = tree.children(tree.root.id)
    assert {c.name for c in children} == PAC_FILES  # the data-less FLASH operation is not a file
    assert all(c.kind is ArtifactKind.PARTITION for c in children)
    ps = next(c for c in children if c.name == PS_NAME)
    assert ps.format == "drps"
    assert ps.attributes["file_id"] == "PS"
    assert ps.attributes["product"] == "SC6531E"
    assert tree.platform.how is not None and "PAC header product name 'SC6531E'" in tree.platform.how


def test_drps_payloads_are_decompressed_whole(built: tuple[Path, list[Sample]], run_unpack: Unpacker,
                                              store: LocalBlobStore) -> None:
    path, _ = _sample(built, "featurephone-sc6531e.pac")
    tree = run_unpack(path)
    ps_path = LINEAGE_SEPARATOR.join((path.name, PS_NAME))
    assert _children(tree, ps_path) == {"kern": "data", "user": "data", "rsrc": "data"}
    for name, image in sc6531e_images(backdoor=True).items():
        assert _bytes(store, tree, LINEAGE_SEPARATOR + name) == image
    user = _bytes(store, tree, LINEAGE_SEPARATOR + "user")
    assert all(planted in user for planted in PLANTED)


def test_clean_twin_has_no_planted_strings(built: tuple[Path, list[Sample]], run_unpack: Unpacker,
                                           store: LocalBlobStore) -> None:
    path, _ = _sample(built, "featurephone-sc6531e-clean.pac")
    tree = run_unpack(path)
    user = _bytes(store, tree, LINEAGE_SEPARATOR + "user")
    assert user == sc6531e_images(backdoor=False)["user"]
    assert not any(planted in user for planted in PLANTED)


def test_maui_rom_platform_and_alice_region(built: tuple[Path, list[Sample]], run_unpack: Unpacker) -> None:
    path, _ = _sample(built, "featurephone-mt6261.bin")
    tree = run_unpack(path)
    assert (tree.platform.chipset, tree.platform.os) == ("MT6261", "MAUI")
    assert tree.platform.how is not None and tree.platform.how.startswith("MTK_ROMINFO_v09 block")
    alice_length = 40 + 48 * 1024 + 4 * (48 * 1024 // 64) + 2 * sum(1 << bits for bits in ALICE_RANGES)
    [issue] = tree.errors
    assert issue.kind is IssueKind.UNDECODABLE
    assert issue.path == path.name
    assert re.search(rf"^{alice_length} bytes at offset 0x[0-9a-f]+ not decoded: MediaTek ALICE_2", issue.error)
    assert tree.root.coverage is not None and tree.root.coverage.undecodable == alice_length
    segments = tree.children(tree.root.id)
    assert len(segments) == 2
    assert segments[0].name == "ROM@0x200"
    assert sum(s.size for s in segments) + alice_length + 0x200 == tree.root.size
    assert segments[0].attributes["platform_id"] == "MT6261_S00"


# --- hostile packages ------------------------------------------------------------------------------


def _small_entries() -> list[PacEntry]:
    return [PacEntry("FDL", "nor_fdl1.bin", rtos_image(1, ("FDL1 ready",), rounds=1)),
            PacEntry("NV", "nvitem.bin", b"\x01\x00\x10\x00" + bytes(range(16)) * 8)]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_hostile_pac_names_are_sanitised(tmp_path: Path, run_unpack: Unpacker) -> None:
    hostile = ["../../etc/shadow", "..\\..\\Windows\\fdl.bin", "C:\\fw\\ps.bin"]
    entries = [PacEntry(f"ID{i}", name, bytes([i + 1]) * 300) for i, name in enumerate(hostile)]
    path = _write(tmp_path, "names.pac", build_pac(entries, product="SC6531E", product_version="x"))
    tree = run_unpack(path)
    children = tree.children(tree.root.id)
    assert [c.name for c in children] == ["etc/shadow", "Windows/fdl.bin", "C:/fw/ps.bin"]
    assert [c.attributes["raw_name"] for c in children] == hostile
    assert [c.attributes["file_id"] for c in children] == ["ID0", "ID1", "ID2"]
    unsafe = [n for n in tree.notes if n.kind is NoteKind.UNSAFE_NAME]
    assert len(unsafe) == 3
    assert tree.complete


def test_pac_entry_outside_the_file_is_an_error_for_that_entry(tmp_path: Path, run_unpack: Unpacker) -> None:
    entries = [*_small_entries(), PacEntry("PS", "ps.bin", b"\x00" * 64, offset=1 << 30)]
    path = _write(tmp_path, "outside.pac", build_pac(entries, product="SC6531E", product_version="x"))
    tree = run_unpack(path)
    assert {c.name for c in tree.children(tree.root.id)} == {"nor_fdl1.bin", "nvitem.bin"}
    [issue] = tree.errors
    assert issue.path == LINEAGE_SEPARATOR.join((path.name, "ps.bin"))
    assert issue.kind is IssueKind.FAILURE
    assert "points outside the package" in issue.error


def test_truncated_pac_table_is_a_failure(built: tuple[Path, list[Sample]], tmp_path: Path,
                                          run_unpack: Unpacker) -> None:
    path, _ = _sample(built, "featurephone-sc6531e.pac")
    cut = _write(tmp_path, "cut.pac", path.read_bytes()[:0x84C + 0xA14 * 2])
    tree = run_unpack(cut)
    assert not tree.complete
    [issue] = tree.errors
    assert issue.kind is IssueKind.FAILURE and issue.extractor == "pac"
    assert "does not fit" in issue.error
    assert tree.children(tree.root.id) == []


def test_truncated_pac_data_keeps_the_entries_before_the_cut(built: tuple[Path, list[Sample]], tmp_path: Path,
                                                             run_unpack: Unpacker) -> None:
    path, _ = _sample(built, "featurephone-sc6531e.pac")
    data = path.read_bytes()
    cut = _write(tmp_path, "cut.pac", data[:len(data) - 5000])
    tree = run_unpack(cut)
    assert any(e.error.startswith("PAC is truncated") for e in tree.errors)
    outside = [e for e in tree.errors if "points outside the package" in e.error]
    assert [e.path.rsplit(LINEAGE_SEPARATOR, 1)[1] for e in outside] == ["mmi_res_240x320.bin"]
    assert {c.name for c in tree.children(tree.root.id)} == PAC_FILES - {"mmi_res_240x320.bin"}


def test_corrupt_drps_payload_fails_alone(tmp_path: Path, run_unpack: Unpacker) -> None:
    images = {"kern": rtos_image(21, ("SCI_ASSERT",), rounds=2), "user": rtos_image(22, ("MMI_Init",), rounds=2)}
    drps = bytearray(build_drps([(b"GAMI", images["kern"], 1), (b"resu", images["user"], 1)]))
    drps[16 + 13 + 40 : 16 + 13 + 80] = b"\xff" * 40  # inside the kern stream
    tree = run_unpack(_write(tmp_path, "ps.bin", bytes(drps)))
    assert tree.root.format == "drps"
    assert [c.name for c in tree.children(tree.root.id)] == ["user"]
    [issue] = tree.errors
    assert issue.path.endswith(LINEAGE_SEPARATOR + "kern")
    assert issue.kind is IssueKind.FAILURE


@pytest.mark.parametrize(("product", "version", "chipset", "feature_phone"), [
    ("SC6531E", "MOCOR_W17.44", "SC6531E", True),
    ("SC6531EFM_BASE", "", "SC6531EFM", True),
    ("customer", "MOCOR_SC6531DA_V1", "SC6531DA", True),
    ("UIS8910DM_LTE", "", "UIS8910DM", True),
    ("sc9863a_1h10", "", "SC9863A", False),
    ("ums512_1h10", "", "UMS512", False),
])
def test_chipset_from_pac_product_names(product: str, version: str, chipset: str, feature_phone: bool) -> None:
    assert chipset_of(product, version) == chipset
    assert bool(FEATURE_PHONE.match(chipset)) is feature_phone


def test_no_chipset_in_a_generic_product_name() -> None:
    assert chipset_of("generic_phone", "V1.0") is None


def test_bp_r2_package_reads_64_bit_sizes(tmp_path: Path, run_unpack: Unpacker) -> None:
    entries = _small_entries()
    data = bytearray(build_pac(entries, product="SC6531E", product_version="x"))
    data[0:18] = "BP_R2.0.1".encode("utf-16-le")
    data[0x84C + 0xA14 + 0x5FC : 0x84C + 0xA14 + 0x600] = (1).to_bytes(4, "little")  # NV entry: +4 GiB
    tree = run_unpack(_write(tmp_path, "r2.pac", bytes(data)))
    assert [c.name for c in tree.children(tree.root.id)] == ["nor_fdl1.bin"]
    [issue] = tree.errors
    assert f"points outside the package: {(1 << 32) + len(entries[1].data)} bytes" in issue.error


# --- carving from raw dumps ------------------------------------------------------------------------


def test_pac_drps_and_maui_are_carved_from_a_raw_dump(tmp_path: Path, run_unpack: Unpacker,
                                                      store: LocalBlobStore) -> None:
    pac = build_pac(_small_entries(), product="SC6531E", product_version="x")
    user = rtos_image(31, ("MMI_Init", "IMEI:%s"), rounds=1)
    drps = build_drps([(b"resu", user, 2)])
    rom = build_maui_rom()
    boot = rtos_image(32, ("bootloader",), rounds=1)
    dump = boot + b"\xff" * 1000 + pac + b"\xff" * 333 + drps + b"\x00" * 4000 + rom + b"\xff" * 2000
    tree = run_unpack(_write(tmp_path, "flash.bin", dump))
    carved = {a.name: a for a in tree.children(tree.root.id)}
    pac_at, drps_at, rom_at = len(boot) + 1000, len(boot) + 1000 + len(pac) + 333, dump.index(rom)
    assert set(carved) == {f"{pac_at:#x}.pac", f"{drps_at:#x}.drps", f"{rom_at:#x}.mtk-maui"}
    assert all(a.kind is ArtifactKind.CARVED for a in carved.values())
    assert carved[f"{pac_at:#x}.pac"].size == len(pac)
    assert carved[f"{rom_at:#x}.mtk-maui"].size == len(rom)
    assert _bytes(store, tree, f"{drps_at:#x}.drps{LINEAGE_SEPARATOR}user") == user
    assert {c.name for c in tree.children(carved[f"{pac_at:#x}.pac"].id)} == {"nor_fdl1.bin", "nvitem.bin"}
    assert tree.platform.chipset == "SC6531E"


# --- the LZMA variant ------------------------------------------------------------------------------

TEXT = b"".join(b"AT+CMGS=%d;IMEI:%s;" % (i, b"35%013d" % (i * 7919)) + bytes([i % 251]) for i in range(800))


def _decode(stream: bytes, *, sprd: bool, piece: int = 777) -> bytes:
    decoder = SprdLzmaDecoder(len(stream), sprd=sprd)
    out, fed = bytearray(), 0
    while not decoder.eof:
        data = b""
        if decoder.needs_input:
            data = stream[fed : fed + piece]
            fed += len(data)
            if not data:
                raise EOFError("input ran out")
        out += decoder.decompress(data, 4096)
    return bytes(out)


def test_model_matches_standard_lzma_both_ways() -> None:
    assert lzma.decompress(compress(TEXT, sprd=False), format=lzma.FORMAT_ALONE) == TEXT
    from_xz = lzma.compress(TEXT, format=lzma.FORMAT_ALONE)  # uses repeat matches and an end marker
    assert int.from_bytes(from_xz[5:13], "little") == UNKNOWN_SIZE
    assert _decode(from_xz, sprd=False) == TEXT


def test_variant_round_trips_and_is_not_standard_lzma() -> None:
    stream = compress(TEXT)
    assert _decode(stream, sprd=True) == TEXT
    with pytest.raises(lzma.LZMAError):
        lzma.decompress(stream, format=lzma.FORMAT_ALONE)


def test_truncated_variant_stream_raises() -> None:
    with pytest.raises(EOFError, match="truncated"):
        _decode(compress(TEXT)[:2000], sprd=True)
