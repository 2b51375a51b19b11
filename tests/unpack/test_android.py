"""Android, U-Boot and MediaTek formats: inputs built with the Debian tools or from the public layouts."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import brotli
import pytest

from pipeline.config import Limits
from pipeline.model import ArtifactKind, ExtractionTree, IssueKind
from tests.conftest import Unpacker

BLOCK = 4096
INIT_RC = b"service syncd /system/bin/syncd\n    class main\n"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def _blob(tree: ExtractionTree, lineage_path: str, store_root: Path) -> bytes:
    artifact = tree.find(lineage_path)
    assert artifact is not None, f"{lineage_path} not in {[a.lineage_path for a in tree.artifacts]}"
    return (store_root / "blobs" / artifact.sha256[:2] / artifact.sha256[2:4] / artifact.sha256).read_bytes()


def _ext4(tmp_path: Path, name: str = "system.raw") -> Path:
    """A small ext4 image holding /etc/init.rc and a few blocks of text."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "init.rc").write_bytes(INIT_RC)
    (root / "bin").mkdir()
    (root / "bin" / "syncd").write_bytes(b"post imei to 203.0.113.7\n" * 2000)
    image = tmp_path / name
    subprocess.run([_tool("mke2fs"), "-q", "-t", "ext4", "-b", str(BLOCK), "-d", str(root), image, "4M"],
                   check=True, capture_output=True)
    return image


# android-sparse ------------------------------------------------------------------------------------


def test_sparse_ext4_is_expanded_and_its_files_found(tmp_path: Path, run_unpack: Unpacker, store) -> None:
    raw = _ext4(tmp_path)
    sparse = tmp_path / "system.img"
    subprocess.run([_tool("img2simg"), raw, sparse], check=True)

    tree = run_unpack(sparse)

    expanded = tree.find("system.img › system.raw.img")
    assert tree.root.format == "android-sparse"
    assert expanded is not None and expanded.size == raw.stat().st_size
    assert _blob(tree, "system.img › system.raw.img", store.root) == raw.read_bytes()
    init = tree.find("system.img › system.raw.img › /etc/init.rc")
    assert expanded.format == "ext" and init is not None
    assert _blob(tree, init.lineage_path, store.root) == INIT_RC
    assert tree.errors == []


def test_sparse_claiming_ten_gigabytes_hits_the_quota(tmp_path: Path, run_unpack: Unpacker, store) -> None:
    blocks = (10 << 30) // BLOCK
    header = struct.pack("<IHHHHIIII", 0xED26FF3A, 1, 0, 28, 12, BLOCK, blocks, 1, 0)
    image = tmp_path / "userdata.img"
    image.write_bytes(header + struct.pack("<HHII", 0xCAC3, 0, blocks, 12))

    tree = run_unpack(image, limits=Limits(total_bytes_floor=64 << 20, total_bytes_factor=1))

    assert [e.kind for e in tree.errors] == [IssueKind.LIMIT]
    assert "total extracted bytes" in tree.errors[0].error
    committed = sum(p.stat().st_size for p in store.blobs.rglob("*") if p.is_file())
    on_disk = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file())
    assert committed < 1 << 20  # the partial expansion never became a blob
    assert on_disk <= (64 << 20) + (1 << 20)  # and what was written stayed within the quota


def test_sparse_with_a_chunk_past_the_end_is_a_failure(tmp_path: Path, run_unpack: Unpacker) -> None:
    header = struct.pack("<IHHHHIIII", 0xED26FF3A, 1, 0, 28, 12, BLOCK, 4, 1, 0)
    image = tmp_path / "vendor.img"
    image.write_bytes(header + struct.pack("<HHII", 0xCAC1, 0, 4, 12 + 4 * BLOCK) + b"\x55" * 100)

    tree = run_unpack(image)

    assert len(tree.artifacts) == 1
    assert [e.kind for e in tree.errors] == [IssueKind.FAILURE]
    assert "ends past the container" in tree.errors[0].error


# android-boot ---------------------------------------------------------------------------------------


def _ramdisk(tmp_path: Path) -> Path:
    rd = tmp_path / "rd"
    rd.mkdir()
    (rd / "init.rc").write_bytes(INIT_RC)
    listing = subprocess.run(["cpio", "-o", "-H", "newc"], input=b"init.rc\n", cwd=rd, check=True,
                             capture_output=True).stdout
    path = tmp_path / "ramdisk.cpio.gz"
    path.write_bytes(gzip.compress(listing, mtime=0))
    return path


def _boot_image(tmp_path: Path, version: int) -> tuple[Path, bytes]:
    kernel = b"\x00\x00\xa0\xe1" * 1000 + b"Linux version 4.9.117"
    (tmp_path / "kernel").write_bytes(kernel)
    (tmp_path / "dtb").write_bytes(b"\xd0\x0d\xfe\xed" + bytes(60))
    image = tmp_path / f"boot{version}.img"
    extra = ["--dtb", tmp_path / "dtb"] if version == 2 else []
    subprocess.run([_tool("mkbootimg"), "--kernel", tmp_path / "kernel", "--ramdisk", _ramdisk(tmp_path),
                    "--cmdline", "console=ttyMT0 androidboot.selinux=permissive", "--board", "k80hd",
                    "--os_version", "8.1.0", "--os_patch_level", "2018-05", "--header_version", str(version),
                    *extra, "-o", image], check=True, capture_output=True)
    return image, kernel


@pytest.mark.parametrize("version", [0, 2])
def test_boot_image_gives_kernel_and_ramdisk(tmp_path: Path, run_unpack: Unpacker, store, version: int) -> None:
    image, kernel = _boot_image(tmp_path, version)

    tree = run_unpack(image)

    name = image.name
    children = {a.name: a for a in tree.children(0)}
    assert set(children) == ({"kernel", "ramdisk", "dtb"} if version == 2 else {"kernel", "ramdisk"})
    assert all(a.kind is ArtifactKind.PARTITION for a in children.values())
    assert _blob(tree, f"{name} › kernel", store.root) == kernel
    assert children["kernel"].attributes["cmdline"] == "console=ttyMT0 androidboot.selinux=permissive"
    assert children["kernel"].attributes["name"] == "k80hd"
    assert children["kernel"].attributes["header_version"] == version
    init = next(a for a in tree.artifacts if a.lineage[:2] == (name, "ramdisk") and a.name.endswith("init.rc"))
    assert _blob(tree, init.lineage_path, store.root) == INIT_RC
    assert tree.platform.os == "Android 8.1"
    assert "2018-05" in (tree.platform.how or "")


def test_boot_image_v4_and_vendor_boot_layouts(tmp_path: Path, run_unpack: Unpacker, store) -> None:
    kernel, ramdisk, signature = b"K" * 5000, b"R" * 300, b"S" * 100
    header = bytearray(BLOCK)
    struct.pack_into("<8sIIIII", header, 0, b"ANDROID!", len(kernel), len(ramdisk), 0, 1584, 0)
    struct.pack_into("<I", header, 40, 4)
    header[44:60] = b"console=ttyS0\0\0\0"
    struct.pack_into("<I", header, 1580, len(signature))

    def pages(data: bytes) -> bytes:
        return data + bytes(-len(data) % BLOCK)

    boot = tmp_path / "boot.img"
    boot.write_bytes(bytes(header) + pages(kernel) + pages(ramdisk) + pages(signature))
    tree = run_unpack(boot)
    assert [a.name for a in tree.children(0)] == ["kernel", "ramdisk", "signature"]
    assert _blob(tree, "boot.img › ramdisk", store.root) == ramdisk
    assert tree.find("boot.img › kernel").attributes["cmdline"] == "console=ttyS0"

    vendor_header = bytearray(BLOCK)
    struct.pack_into("<8sIIIII", vendor_header, 0, b"VNDRBOOT", 3, BLOCK, 0, 0, len(ramdisk))
    vendor = tmp_path / "vendor_boot.img"
    vendor.write_bytes(bytes(vendor_header) + pages(ramdisk))
    vendor_tree = run_unpack(vendor)
    assert [a.name for a in vendor_tree.children(0)] == ["vendor_ramdisk"]
    assert _blob(vendor_tree, "vendor_boot.img › vendor_ramdisk", store.root) == ramdisk

    # v4: the vendor ramdisk is split into fragments listed in a table after the dtb
    table = b"".join(struct.pack("<III32s64s", size, offset, 1, name, bytes(64))
                     for size, offset, name in ((100, 0, b"platform"), (200, 100, b"dlkm")))
    struct.pack_into("<I", vendor_header, 8, 4)
    struct.pack_into("<III", vendor_header, 2112, len(table), 2, 108)
    vendor.write_bytes(bytes(vendor_header) + pages(ramdisk) + pages(table))
    v4_tree = run_unpack(vendor)
    assert [a.name for a in v4_tree.children(0)] == ["vendor_ramdisk_platform", "vendor_ramdisk_dlkm"]
    assert _blob(v4_tree, "vendor_boot.img › vendor_ramdisk_dlkm", store.root) == ramdisk[100:]
    assert v4_tree.errors == []


def test_truncated_boot_image_is_a_failure(tmp_path: Path, run_unpack: Unpacker) -> None:
    image, _ = _boot_image(tmp_path, 0)
    truncated = tmp_path / "boot-cut.img"
    truncated.write_bytes(image.read_bytes()[: 2048 + 1000])

    tree = run_unpack(truncated)

    assert not tree.complete
    assert {(e.path, e.kind) for e in tree.errors} == {("boot-cut.img › kernel", IssueKind.FAILURE),
                                                       ("boot-cut.img › ramdisk", IssueKind.FAILURE)}
    assert tree.children(0) == []


def test_boot_image_and_sparse_image_are_carved_from_a_raw_dump(tmp_path: Path, run_unpack: Unpacker,
                                                               store) -> None:
    boot, kernel = _boot_image(tmp_path, 0)
    sparse = tmp_path / "system.img"
    subprocess.run([_tool("img2simg"), _ext4(tmp_path), sparse], check=True)
    dump = tmp_path / "flash.bin"
    dump.write_bytes(b"\xff" * 5000 + boot.read_bytes() + b"\xff" * 3000 + sparse.read_bytes())

    tree = run_unpack(dump)

    boot_at, sparse_at = 5000, 5000 + boot.stat().st_size + 3000
    assert [(a.name, a.format, a.offset) for a in tree.children(0)] == [
        (f"{boot_at:#x}.android-boot", "android-boot", boot_at),
        (f"{sparse_at:#x}.android-sparse", "android-sparse", sparse_at)]
    assert _blob(tree, f"flash.bin › {boot_at:#x}.android-boot › kernel", store.root) == kernel
    assert any(a.name == "/etc/init.rc" for a in tree.artifacts)


# android-ota ---------------------------------------------------------------------------------------


def _block_ota(tmp_path: Path, image: Path, *, reverse: bool, compress: bool = True) -> Path:
    """A full OTA zip: a v4 transfer list writing every non-zero block with `new`, the rest with `zero`."""
    data = image.read_bytes()
    blocks = [data[i : i + BLOCK] for i in range(0, len(data), BLOCK)]
    runs: list[tuple[bool, int, int]] = []
    for index, block in enumerate(blocks):
        used = any(block)
        if runs and runs[-1][0] == used and runs[-1][2] == index and runs[-1][2] - runs[-1][1] < 64:
            runs[-1] = (used, runs[-1][1], index + 1)
        else:
            runs.append((used, index, index + 1))
    new_runs = [(s, e) for used, s, e in runs if used]
    zero_runs = [(s, e) for used, s, e in runs if not used]
    if reverse:
        new_runs.reverse()
    commands = [f"erase 2,0,{len(blocks)}"]
    commands += [f"new 2,{s},{e}" for s, e in new_runs]
    commands.append("zero " + ",".join(map(str, [2 * len(zero_runs), *[n for r in zero_runs for n in r]])))
    new_data = b"".join(data[s * BLOCK : e * BLOCK] for s, e in new_runs)
    total = sum(e - s for s, e in new_runs)
    transfer_list = "\n".join(["4", str(total), "0", "0", *commands]) + "\n"
    package = tmp_path / "update.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("META-INF/com/google/android/updater-script", 'block_image_update("/dev/block/system")')
        archive.writestr("system.transfer.list", transfer_list)
        if compress:
            archive.writestr("system.new.dat.br", brotli.compress(new_data, quality=1))
        else:
            archive.writestr("system.new.dat", new_data)
        archive.writestr("system.patch.dat", b"")
    return package


@pytest.mark.parametrize(("reverse", "compress"), [(False, True), (True, True), (True, False)])
def test_block_ota_rebuilds_the_image(tmp_path: Path, run_unpack: Unpacker, store, reverse: bool,
                                      compress: bool) -> None:
    image = _ext4(tmp_path)
    package = _block_ota(tmp_path, image, reverse=reverse, compress=compress)

    tree = run_unpack(package)

    rebuilt = tree.find("update.zip › system.transfer.list › system.img")
    assert rebuilt is not None and rebuilt.format == "ext"
    assert hashlib.sha256(image.read_bytes()).hexdigest() == rebuilt.sha256
    data_name = "system.new.dat.br" if compress else "system.new.dat"
    assert tree.find(f"update.zip › {data_name}").format == "android-ota-data"
    assert tree.find("update.zip › system.transfer.list › system.img › /etc/init.rc") is not None
    assert tree.errors == []


def test_incremental_ota_is_unsupported(tmp_path: Path, run_unpack: Unpacker) -> None:
    package = tmp_path / "incremental.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("system.transfer.list", "4\n10\n0\n0\nbsdiff 0 100 aa bb 2,0,10 10 2,0,10\n")
        archive.writestr("system.patch.dat", b"BSDIFF40" + bytes(100))
        archive.writestr("system.new.dat", b"")

    tree = run_unpack(package)

    assert [(e.path, e.kind) for e in tree.errors] == [("incremental.zip › system.transfer.list",
                                                        IssueKind.UNSUPPORTED)]
    assert tree.find("incremental.zip › system.transfer.list").format == "android-ota"
    assert tree.children(tree.find("incremental.zip › system.transfer.list").id) == []


def test_ota_data_without_its_transfer_list_is_undecodable(tmp_path: Path, run_unpack: Unpacker) -> None:
    package = tmp_path / "partial.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("vendor.new.dat.br", brotli.compress(bytes(range(256)) * 64))

    tree = run_unpack(package)

    assert tree.find("partial.zip › vendor.new.dat.br").format == "android-ota-data"
    assert [(e.path, e.kind) for e in tree.errors] == [("partial.zip › vendor.new.dat.br", IssueKind.UNDECODABLE)]
    assert "vendor.transfer.list" in tree.errors[0].error


# uimage, fit ---------------------------------------------------------------------------------------

KERNEL = b"\x00\x00\xa0\xe1" * 4000 + b"Linux version 3.10.14 (builder@host) telnetd -l /bin/sh"


def test_legacy_uimage_payload_is_found(tmp_path: Path, run_unpack: Unpacker, store) -> None:
    payload = tmp_path / "kernel.gz"
    payload.write_bytes(gzip.compress(KERNEL, mtime=0))
    image = tmp_path / "uImage"
    subprocess.run([_tool("mkimage"), "-A", "mips", "-O", "linux", "-T", "kernel", "-C", "gzip",
                    "-a", "0x80000000", "-e", "0x80000000", "-n", "Linux-3.10.14", "-d", payload, image],
                   check=True, capture_output=True)

    tree = run_unpack(image)

    child = tree.find("uImage › Linux-3.10.14.gz")
    assert tree.root.format == "uimage" and child is not None
    assert {k: child.attributes[k] for k in ("os", "arch", "type", "compression", "data_crc_valid")} == \
        {"os": "Linux", "arch": "mips", "type": "kernel", "compression": "gzip", "data_crc_valid": True}
    assert _blob(tree, "uImage › Linux-3.10.14.gz › Linux-3.10.14", store.root) == KERNEL
    assert tree.platform.os == "Linux"
    assert tree.errors == []


def test_multi_file_uimage_gives_each_sub_image(tmp_path: Path, run_unpack: Unpacker, store) -> None:
    (tmp_path / "a").write_bytes(b"first image!")
    (tmp_path / "b").write_bytes(b"second")
    image = tmp_path / "multi.img"
    subprocess.run([_tool("mkimage"), "-A", "arm", "-O", "linux", "-T", "multi", "-C", "none", "-n", "fw",
                    "-d", f"{tmp_path / 'a'}:{tmp_path / 'b'}", image], check=True, capture_output=True)

    tree = run_unpack(image)

    assert [a.name for a in tree.children(0)] == ["fw-0", "fw-1"]
    assert _blob(tree, "multi.img › fw-1", store.root) == b"second"


@pytest.mark.parametrize("external", [False, True])
def test_fit_image_payloads_are_found(tmp_path: Path, run_unpack: Unpacker, store, external: bool) -> None:
    _tool("dtc")
    (tmp_path / "kernel.gz").write_bytes(gzip.compress(KERNEL, mtime=0))
    (tmp_path / "board.dtb").write_bytes(b"\xd0\x0d\xfe\xed" + bytes(60))
    (tmp_path / "fit.its").write_text("""/dts-v1/;
/ {
    description = "router firmware";
    #address-cells = <1>;
    images {
        kernel-1 {
            description = "Linux kernel";
            data = /incbin/("kernel.gz");
            type = "kernel"; arch = "arm"; os = "linux"; compression = "gzip";
            load = <0x80008000>; entry = <0x80008000>;
            hash-1 { algo = "crc32"; };
        };
        fdt-1 {
            data = /incbin/("board.dtb");
            type = "flat_dt"; arch = "arm"; compression = "none";
        };
    };
    configurations {
        default = "conf-1";
        conf-1 { kernel = "kernel-1"; fdt = "fdt-1"; };
    };
};
""")
    image = tmp_path / "firmware.itb"
    subprocess.run([_tool("mkimage"), *(["-E"] if external else []), "-f", "fit.its", image.name],
                   cwd=tmp_path, check=True, capture_output=True)

    tree = run_unpack(image)

    assert tree.root.format == "fit"
    kernel = tree.find("firmware.itb › kernel-1.gz")
    assert kernel is not None and kernel.kind is ArtifactKind.PARTITION
    assert {k: kernel.attributes[k] for k in ("compression", "os", "load")} == \
        {"compression": "gzip", "os": "linux", "load": 0x80008000}
    assert _blob(tree, "firmware.itb › kernel-1.gz › kernel-1", store.root) == KERNEL
    assert _blob(tree, "firmware.itb › fdt-1", store.root) == (tmp_path / "board.dtb").read_bytes()
    assert tree.platform.os == "Linux"


def test_plain_dtb_is_a_leaf(tmp_path: Path, run_unpack: Unpacker) -> None:
    _tool("dtc")
    (tmp_path / "board.dts").write_text('/dts-v1/;\n/ { model = "k80hd"; chosen { bootargs = "x"; }; };\n')
    image = tmp_path / "board.dtb"
    subprocess.run(["dtc", "-I", "dts", "-O", "dtb", "-o", image, tmp_path / "board.dts"], check=True)

    tree = run_unpack(image)

    assert tree.root.format != "fit" and len(tree.artifacts) == 1


# android-super -------------------------------------------------------------------------------------


def _lp_checksummed(data: bytearray, at: int) -> bytes:
    data[at : at + 32] = hashlib.sha256(bytes(data)).digest()
    return bytes(data)


def _super_image(path: Path, partitions: dict[str, list[tuple[int, bytes]]], size: int) -> None:
    """A super.img from metadata_format.h: geometry, one metadata slot (and backups), linear extents.

    ``partitions`` maps a name to its extents as (sector in the image, bytes); bytes are sector-aligned.
    """
    max_size, slots = 65536, 1
    geometry = bytearray(struct.pack("<II32sIII", 0x616C4467, 52, bytes(32), max_size, slots, 4096))
    geometry_block = _lp_checksummed(geometry, 8).ljust(4096, b"\0")
    entries, extents = b"", b""
    for name, parts in partitions.items():
        entries += struct.pack("<36sIIII", name.encode(), 1, len(extents) // 24, len(parts), 0)
        extents += b"".join(struct.pack("<QIQI", len(data) // 512, 0, sector, 0) for sector, data in parts)
    groups = struct.pack("<36sIQ", b"default", 0, 0)
    devices = struct.pack("<QII Q36sI", 2048, 0, 0, size, b"super", 0)
    tables = entries + extents + groups + devices
    descriptors = [0, len(partitions), 52, len(entries), len(extents) // 24, 24,
                   len(entries) + len(extents), 1, 48, len(entries) + len(extents) + 48, 1, 64]
    header = bytearray(struct.pack("<IHHI32sI32s12I", 0x414C5030, 10, 0, 128, bytes(32), len(tables),
                                   hashlib.sha256(tables).digest(), *descriptors))
    metadata = (_lp_checksummed(header, 12) + tables).ljust(max_size, b"\0")
    image = bytearray(size)
    image[4096 : 4096 + 8192] = geometry_block * 2
    image[12288 : 12288 + max_size] = metadata
    image[12288 + max_size : 12288 + 2 * max_size] = metadata
    for parts in partitions.values():
        for sector, data in parts:
            image[sector * 512 : sector * 512 + len(data)] = data
    path.write_bytes(bytes(image))


def test_super_image_partitions_are_rebuilt(tmp_path: Path, run_unpack: Unpacker, store) -> None:
    system_1, system_2 = b"S1" * 4096, b"S2" * 2048
    vendor = b"VENDOR!!" * 1024
    image = tmp_path / "super.img"
    _super_image(image, {"system_a": [(2048, system_1), (4096, system_2)], "vendor_a": [(3072, vendor)]},
                 3 << 20)

    tree = run_unpack(image)

    assert tree.root.format == "android-super"
    assert [a.name for a in tree.children(0)] == ["system_a", "vendor_a"]
    assert _blob(tree, "super.img › system_a", store.root) == system_1 + system_2
    assert _blob(tree, "super.img › vendor_a", store.root) == vendor
    assert tree.find("super.img › system_a").attributes["attributes"] == ["readonly"]
    assert tree.errors == []


def test_super_image_with_damaged_primary_metadata_uses_the_backup(tmp_path: Path, run_unpack: Unpacker,
                                                                   store) -> None:
    image = tmp_path / "super.img"
    _super_image(image, {"product_a": [(2048, b"P" * 4096)]}, 2 << 20)
    data = bytearray(image.read_bytes())
    data[12288 + 200] ^= 0xFF
    image.write_bytes(bytes(data))

    tree = run_unpack(image)

    assert _blob(tree, "super.img › product_a", store.root) == b"P" * 4096


# mtk-scatter ---------------------------------------------------------------------------------------

SCATTER = """##################################################################
#
#  General Setting
#
############################################################################################################
- general: MTK_PLATFORM_CFG
  info:
    - config_version: V1.1.2
      platform: MT6580
      project: k80hd_bsp_fwv_512m
      storage: EMMC
      boot_channel: MSDC_0
      block_size: 0x20000
############################################################################################################
- partition_index: SYS0
  partition_name: preloader
  file_name: preloader_k80hd_bsp_fwv_512m.bin
  is_download: true
- partition_index: SYS1
  partition_name: nvram
  file_name: NONE
  is_download: false
- partition_index: SYS2
  partition_name: system
  file_name: system.img
  is_download: true
"""


def test_scatter_file_names_the_platform(tmp_path: Path, run_unpack: Unpacker) -> None:
    scatter = tmp_path / "MT6580_Android_scatter.txt"
    scatter.write_text(SCATTER)

    tree = run_unpack(scatter)

    assert tree.root.format == "mtk-scatter"
    assert (tree.platform.chipset, tree.platform.os) == ("MT6580", "Android")
    partitions = tree.root.attributes["partitions"]
    assert {"name": "preloader", "file": "preloader_k80hd_bsp_fwv_512m.bin"} in partitions
    assert {"name": "system", "file": "system.img"} in partitions
    assert "nvram" in [p["name"] for p in partitions]
    assert tree.errors == [] and len(tree.artifacts) == 1


def test_old_scatter_format_takes_the_chipset_from_its_name(tmp_path: Path, run_unpack: Unpacker) -> None:
    scatter = tmp_path / "MT6575_scatter_emmc.txt"
    scatter.write_text("PRELOADER 0x0\n{\n}\nMBR 0x600000\n{\n}\nANDROID 0x2a00000\n{\n}\n")

    tree = run_unpack(scatter)

    assert (tree.platform.chipset, tree.platform.os) == ("MT6575", "Android")
    assert [p["name"] for p in tree.root.attributes["partitions"]] == ["PRELOADER", "MBR", "ANDROID"]
