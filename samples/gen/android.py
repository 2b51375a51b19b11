"""Android family: a planted MT6580 Android 8.1 phone image in the containers vendors ship it in.

The planted build carries two culprits a triage must find: a privileged
system APK (``SystemService.apk``, shared system uid) that starts at boot
and posts the IMEI, IMSI, SMS inbox, contacts and last location over HTTP
to a Russian domain and a hard-coded address, and a native root daemon
(``/system/bin/logsvc``) that reads the IMEI through the modem's AT channel
and sends it over raw TCP. The clean build has only a calculator app.

Every container is made the way the vendor tools make it (mke2fs, img2simg,
mkbootimg, aapt, smali) or, where the tool is not packaged for Debian (block
OTA transfer lists, liblp ``super.img``, scatter releases), written here
from the AOSP and MediaTek layouts. Sources (smali, manifests, C) live in
``samples/src/android/``. Nothing here is timestamped by the clock: the
images are reproducible byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import shutil
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import brotli

from samples.gen._toolchain import cross_compile, debian_package_tree
from samples.sample import EPOCH, BuildContext, Contains, Expect, Sample

SRC = Path(__file__).resolve().parents[1] / "src" / "android"
BLOCK = 4096
ZIP_DATE = (2023, 11, 14, 22, 13, 20)  # EPOCH in UTC
FIXED_UUID = "5a3f1c2e-8b4d-4e6f-9a1b-2c3d4e5f6a7b"  # ext4 directory hash seed

PLANTED_APK = "/system/priv-app/SystemService/SystemService.apk"
CLEAN_APK = "/system/app/Calculator/Calculator.apk"
LOGSVC = "/system/bin/logsvc"
BUILD_PROP = "/system/build.prop"
DEVICE = "x_s10"
MTK_BLOCK_DEVICE = "/dev/block/platform/mtk-msdc.0/11230000.msdc0/by-name"

PLANTED_EXPECT = Expect(
    verdict="backdoor",
    culprits=[PLANTED_APK, LOGSVC],
    endpoints=["api.mobile-stat.ru", "203.0.113.99"],
    countries=["RU"],
    data=["imei", "imsi", "sms", "contacts", "location"],
    channels=["http", "tcp"],
)
CLEAN_EXPECT = Expect(verdict="clean")
IMAGE_CHAIN = ["zip", "android-sparse", "ext"]  # zip › system.img (sparse) › system.raw.img (ext4)
# The ramdisk's /sbin/ueventd → ../init, as on real devices: recorded, never followed.
BOOT_NOTES = [r"symlink to '\.\./init' points outside"]


def build(ctx: BuildContext) -> list[Sample]:
    work = ctx.cache / "android"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    busybox = debian_package_tree(ctx, "armhf", ["busybox-static"]) / "bin" / "busybox"
    logsvc = cross_compile(ctx, SRC / "logsvc.c", "armhf", static=True, strip=True)
    apks = {name: build_apk(ctx, work, name) for name in ("SystemService", "Calculator")}
    boot = build_boot_image(ctx, work, busybox)

    planted_tree = system_tree(work / "planted", busybox, {PLANTED_APK: apks["SystemService"],
                                                           CLEAN_APK: apks["Calculator"]},
                               logsvc=logsvc, release="8.1.0")
    clean_tree = system_tree(work / "clean", busybox, {CLEAN_APK: apks["Calculator"]}, release="8.1.0")
    planted_raw = make_ext4(ctx, planted_tree, work / "system-planted.raw.img", "system")
    clean_raw = make_ext4(ctx, clean_tree, work / "system-clean.raw.img", "system")

    return [
        ota_update_sample(ctx, work, planted_raw, boot),
        block_ota_sample(ctx, planted_raw, boot),
        boot_sample(ctx, boot),
        super_sample(ctx, work, busybox, apks["Calculator"]),
        scatter_sample(ctx, work, clean_raw, boot),
        erofs_sample(ctx, work, apks["Calculator"]),
        agent_update_sample(ctx),
    ]


# --- parts: APKs, boot image, system trees, filesystem images -------------------------------------


def build_apk(ctx: BuildContext, work: Path, name: str) -> Path:
    """Assemble ``src/android/<name>`` (manifest + smali) into an unsigned APK with fixed zip dates.

    aapt compiles the manifest to binary XML against a stand-in framework
    package holding the real public attribute ids (no android.jar in Debian).
    """
    framework = work / "framework-res.apk"
    if not framework.exists():
        ctx.run("aapt", "package", "-f", "-x", "-M", SRC / "framework-res" / "AndroidManifest.xml",
                "-S", SRC / "framework-res" / "res", "-F", framework)
    packaged = work / f"{name}.aapt.apk"
    ctx.run("aapt", "package", "-f", "-M", SRC / name / "AndroidManifest.xml", "-I", framework,
            "-F", packaged)
    dex = work / f"{name}.dex"
    ctx.run("java", "-cp", "/usr/share/java/smali.jar", "org.jf.smali.Main", "assemble",
            "-o", dex, SRC / name / "smali")
    with zipfile.ZipFile(packaged) as aapt_output:
        manifest = aapt_output.read("AndroidManifest.xml")
    apk = work / f"{name}.apk"
    write_zip(apk, [("AndroidManifest.xml", manifest), ("classes.dex", dex.read_bytes()),
                    ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\nCreated-By: 1.0 (Android)\r\n\r\n")])
    return apk


RAMDISK_FILES = {
    "init.rc": """\
import /init.environ.rc
import /init.usb.rc
import /init.${ro.hardware}.rc

on early-init
    write /proc/1/oom_score_adj -1000
    start ueventd

on init
    mkdir /system
    mkdir /data 0771 system system
    mkdir /cache 0770 system cache

on fs
    mount_all /fstab.mt6580

on post-fs-data
    mkdir /data/misc 01771 system misc

service ueventd /sbin/ueventd
    class core
    critical
    seclabel u:r:ueventd:s0

service adbd /sbin/adbd --root_seclabel=u:r:su:s0
    class core
    socket adbd stream 660 system system
    disabled
    seclabel u:r:adbd:s0

on property:sys.usb.config=adb
    start adbd
""",
    "init.environ.rc": """\
on init
    export ANDROID_ROOT /system
    export ANDROID_DATA /data
    export ANDROID_STORAGE /storage
""",
    "fstab.mt6580": f"""\
{MTK_BLOCK_DEVICE}/system /system ext4 ro wait
{MTK_BLOCK_DEVICE}/userdata /data ext4 noatime,nosuid,nodev,noauto_da_alloc wait,check,encryptable=footer
{MTK_BLOCK_DEVICE}/cache /cache ext4 noatime,nosuid,nodev wait,check
""",
    "default.prop": """\
ro.secure=1
ro.adb.secure=1
ro.debuggable=0
persist.sys.usb.config=mtp
""",
}


def build_boot_image(ctx: BuildContext, work: Path, busybox: Path) -> Path:
    """mkbootimg (header v0, MT6580 load addresses): real ARM bytes as kernel, gzip'd newc ramdisk."""
    ramdisk = work / "ramdisk"
    for directory in ("dev", "proc", "sys", "system", "data", "cache", "sbin"):
        (ramdisk / directory).mkdir(parents=True, exist_ok=True)
    for name, text in RAMDISK_FILES.items():
        (ramdisk / name).write_text(text)
    install(busybox, ramdisk / "init", 0o750)
    install(busybox, ramdisk / "sbin" / "adbd", 0o750)
    (ramdisk / "sbin" / "ueventd").symlink_to("../init")
    ctx.fix_mtimes(ramdisk)
    listing = "".join(f"{path}\n" for path in sorted(
        str(p.relative_to(ramdisk)) for p in ramdisk.rglob("*")))
    archive = ctx.run("cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0", "--reproducible",
                      cwd=ramdisk, input=listing.encode()).stdout
    ramdisk_gz = work / "ramdisk.cpio.gz"
    ramdisk_gz.write_bytes(gzip.compress(archive, compresslevel=9, mtime=0))
    boot = work / "boot.img"
    ctx.run("mkbootimg", "--kernel", busybox, "--ramdisk", ramdisk_gz,
            "--cmdline", "bootopt=64S3,32S1,32S1 androidboot.selinux=enforcing",
            "--base", "0x80000000", "--kernel_offset", "0x00008000", "--ramdisk_offset", "0x04000000",
            "--tags_offset", "0x0e000000", "--pagesize", "2048", "--os_version", "8.1.0",
            "--os_patch_level", "2018-06", "--header_version", "0", "-o", boot)
    return boot


def build_prop(release: str) -> str:
    sdk = {"8.1.0": 27, "10": 29}[release]
    fingerprint = f"XPhone/full_{DEVICE}/{DEVICE}:{release}/O11019/{EPOCH}:user/release-keys"
    return f"""\
# begin build properties
# autogenerated by buildinfo.sh
ro.build.id=O11019
ro.build.display.id=MT6580_S10_V1.4_20231114
ro.build.version.incremental={EPOCH}
ro.build.version.sdk={sdk}
ro.build.version.release={release}
ro.build.version.security_patch=2018-06-05
ro.build.date.utc={EPOCH}
ro.build.type=user
ro.build.tags=release-keys
ro.build.flavor=full_{DEVICE}-user
ro.build.product={DEVICE}
ro.product.model=X-Phone S10
ro.product.brand=XPhone
ro.product.name=full_{DEVICE}
ro.product.device={DEVICE}
ro.product.manufacturer=XPhone
ro.product.cpu.abi=armeabi-v7a
ro.product.cpu.abilist=armeabi-v7a,armeabi
ro.product.locale=en-US
ro.board.platform=mt6580
ro.mediatek.platform=MT6580
ro.build.fingerprint={fingerprint}
# end build properties
"""


LOGSVC_RC = """\
service logsvc /system/bin/logsvc
    class main
    user root
    group root radio inet
    seclabel u:r:su:s0
"""


def system_tree(root: Path, busybox: Path, apks: dict[str, Path], *, release: str,
                logsvc: Path | None = None) -> Path:
    """Stage a system-as-root tree: build.prop, the given apps, toybox (busybox) and its applets."""
    system = root / "system"
    for directory in ("bin", "etc/init", "app", "priv-app", "lib", "framework", "fonts"):
        (system / directory).mkdir(parents=True, exist_ok=True)
    (system / "build.prop").write_text(build_prop(release))
    (system / "etc" / "hosts").write_text("127.0.0.1       localhost\n::1             ip6-localhost\n")
    install(busybox, system / "bin" / "toybox", 0o755)
    for applet in ("cat", "ls", "ps", "mount", "sh", "grep", "sleep"):
        (system / "bin" / applet).symlink_to("toybox")
    for target, apk in apks.items():
        install(apk, root / target.lstrip("/"), 0o644)
    if logsvc is not None:
        install(logsvc, root / LOGSVC.lstrip("/"), 0o755)
        (system / "etc" / "init" / "logsvc.rc").write_text(LOGSVC_RC)
    return root


def install(source: Path, target: Path, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(mode)


def make_ext4(ctx: BuildContext, tree: Path, target: Path, label: str) -> Path:
    """mke2fs -d, sized to the tree, with a null UUID, fixed hash seed and fixed times (reproducible)."""
    ctx.fix_mtimes(tree)
    data_blocks = sum(-(-p.stat().st_size // BLOCK) for p in tree.rglob("*")
                      if p.is_file() and not p.is_symlink())
    blocks = data_blocks + data_blocks // 4 + 256
    target.unlink(missing_ok=True)
    ctx.run("env", f"E2FSPROGS_FAKE_TIME={EPOCH}", "mke2fs", "-q", "-F", "-t", "ext4", "-b", str(BLOCK),
            "-O", "^has_journal", "-N", "256", "-L", label, "-U", "clear",
            "-E", f"hash_seed={FIXED_UUID},root_owner=0:0", "-d", tree, target, str(blocks))
    # mke2fs -d copies each file's ctime (no utime() can fix it) and its atime, which reading the
    # staging tree may have moved: reset both in the image.
    paths = ["/", *sorted("/" + str(p.relative_to(tree)) for p in tree.rglob("*"))]
    script = target.with_suffix(".debugfs")
    script.write_text("".join(f"sif {path} {field} @{EPOCH}\n" for path in paths for field in ("ctime", "atime")))
    ctx.run("env", f"E2FSPROGS_FAKE_TIME={EPOCH}", "debugfs", "-w", "-f", script, target)
    return target


def make_sparse(ctx: BuildContext, raw: Path, target: Path) -> Path:
    ctx.run("img2simg", raw, target, str(BLOCK))
    return target


def write_zip(target: Path, members: list[tuple[str, bytes]]) -> None:
    """A zip with fixed dates and modes, in the given member order (reproducible)."""
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


# --- 1-2. file-based OTA zip with a sparse system image --------------------------------------------


def ota_update_sample(ctx: BuildContext, work: Path, system_raw: Path, boot: Path) -> Sample:
    sparse = make_sparse(ctx, system_raw, work / "system-planted.img")
    script = f"""\
getprop("ro.product.device") == "{DEVICE}" || abort("This package is for \\"{DEVICE}\\" devices.");
ui_print("Installing XPhone S10 update V1.4...");
show_progress(0.100000, 0);
package_extract_file("boot.img", "{MTK_BLOCK_DEVICE}/boot");
show_progress(0.800000, 60);
package_extract_file("system.img", "{MTK_BLOCK_DEVICE}/system");
set_progress(1.000000);
ui_print("Update complete.");
"""
    write_zip(ctx.out / "android-ota-update.zip", [
        ("META-INF/com/google/android/updater-script", script.encode()),
        ("META-INF/com/android/metadata", ota_metadata("FILE")),
        ("boot.img", boot.read_bytes()),
        ("system.img", sparse.read_bytes()),
    ])
    return Sample(
        file="android-ota-update.zip", category="android",
        description="Vendor OTA zip: sparse ext4 system.img of an MT6580 Android 8.1 build with a planted "
                    "privileged APK (IMEI/IMSI/SMS/contacts/location over HTTP to a .ru domain and an IP) "
                    "and a root daemon sending the IMEI over raw TCP; plus boot.img",
        expect=PLANTED_EXPECT,
        contains=[Contains(LOGSVC, IMAGE_CHAIN), Contains(PLANTED_APK, IMAGE_CHAIN),
                  Contains(CLEAN_APK, IMAGE_CHAIN), Contains(BUILD_PROP, IMAGE_CHAIN),
                  Contains("/system/etc/init/logsvc.rc", IMAGE_CHAIN),
                  Contains("/init.rc", ["zip", "android-boot", "gzip", "cpio"])],
        formats=["zip", "android-sparse", "ext", "android-boot", "gzip", "cpio", "apk"],
        notes=BOOT_NOTES,
    )


def ota_metadata(kind: str) -> bytes:
    return (f"ota-type={kind}\npost-build=XPhone/full_{DEVICE}/{DEVICE}:8.1.0/O11019/{EPOCH}:user/release-keys\n"
            f"post-timestamp={EPOCH}\npre-device={DEVICE}\n").encode()


# --- 3. block-based OTA (transfer list v4 + brotli'd new data) -------------------------------------

TRANSFER_SPLIT = 1024  # blocks per command, as blockimgdiff.py's WriteSplitTransfers


@dataclass(frozen=True)
class BlockOta:
    transfer_list: str
    new_data: bytes


def block_ota(raw: bytes) -> BlockOta:
    """The AOSP full-image transfer list: data blocks as ``new``, all-zero blocks as ``zero``."""
    if len(raw) % BLOCK:
        raise ValueError("a block image must be a whole number of 4096-byte blocks")
    count = len(raw) // BLOCK
    empty = bytes(BLOCK)
    runs: dict[bool, list[tuple[int, int]]] = {True: [], False: []}  # all-zero? → [(start, end)]
    start = 0
    for is_zero, blocks in itertools.groupby(raw[i * BLOCK:(i + 1) * BLOCK] == empty for i in range(count)):
        length = sum(1 for _ in blocks)
        runs[is_zero].append((start, start + length))
        start += length
    lines = ["4", str(count), "0", "0"]
    for command, ranges in (("new", runs[False]), ("zero", runs[True])):
        lines.extend(f"{command} {rangeset(piece)}" for piece in split_ranges(ranges, TRANSFER_SPLIT))
    new_data = b"".join(raw[a * BLOCK:b * BLOCK] for a, b in runs[False])
    return BlockOta("\n".join(lines) + "\n", new_data)


def split_ranges(ranges: list[tuple[int, int]], limit: int) -> Iterator[list[tuple[int, int]]]:
    """Cut a sorted range list into pieces of at most ``limit`` blocks each."""
    piece: list[tuple[int, int]] = []
    size = 0
    for a, b in ranges:
        while a < b:
            take = min(b - a, limit - size)
            piece.append((a, a + take))
            size += take
            a += take
            if size == limit:
                yield piece
                piece, size = [], 0
    if piece:
        yield piece


def rangeset(ranges: list[tuple[int, int]]) -> str:
    """``N,a,b,c,d``: the count of numbers, then half-open block ranges."""
    numbers = [n for pair in ranges for n in pair]
    return ",".join(str(n) for n in [len(numbers), *numbers])


def block_ota_sample(ctx: BuildContext, system_raw: Path, boot: Path) -> Sample:
    ota = block_ota(system_raw.read_bytes())
    script = f"""\
getprop("ro.product.device") == "{DEVICE}" || abort("E3004: This package is for \\"{DEVICE}\\" devices.");
ui_print("Target: XPhone/full_{DEVICE}/{DEVICE}:8.1.0/O11019/{EPOCH}:user/release-keys");
show_progress(0.750000, 0);
ui_print("Patching system image unconditionally...");
block_image_update("{MTK_BLOCK_DEVICE}/system", package_extract_file("system.transfer.list"), \
"system.new.dat.br", "system.patch.dat") ||
  abort("E1001: Failed to update system image.");
show_progress(0.050000, 5);
package_extract_file("boot.img", "{MTK_BLOCK_DEVICE}/boot");
show_progress(0.200000, 10);
set_progress(1.000000);
"""
    write_zip(ctx.out / "android-block-ota.zip", [
        ("META-INF/com/google/android/updater-script", script.encode()),
        ("META-INF/com/android/metadata", ota_metadata("BLOCK")),
        ("boot.img", boot.read_bytes()),
        ("system.transfer.list", ota.transfer_list.encode()),
        ("system.new.dat.br", brotli.compress(ota.new_data, quality=6, lgwin=24)),
        ("system.patch.dat", b""),
    ])
    chain = ["zip", "android-ota", "ext"]  # zip › system.transfer.list (rebuilt image) › ext4
    return Sample(
        file="android-block-ota.zip", category="android",
        description="Block-based full OTA (transfer list v4, brotli new data) of the planted MT6580 "
                    "Android 8.1 system image, plus boot.img",
        expect=PLANTED_EXPECT,
        contains=[Contains(LOGSVC, chain), Contains(PLANTED_APK, chain), Contains(BUILD_PROP, chain)],
        formats=["zip", "android-ota", "android-ota-data", "ext", "android-boot"],
        notes=BOOT_NOTES,
    )


# --- 4. boot.img alone ------------------------------------------------------------------------------


def boot_sample(ctx: BuildContext, boot: Path) -> Sample:
    shutil.copyfile(boot, ctx.out / "boot.img")
    return Sample(
        file="boot.img", category="android",
        description="Android boot image (header v0, MT6580): ARM kernel bytes and a gzip'd cpio ramdisk "
                    "with init, init.rc and adbd",
        expect=CLEAN_EXPECT,
        contains=[Contains("/init.rc", ["android-boot", "gzip", "cpio"]),
                  Contains("/sbin/adbd", ["android-boot", "gzip", "cpio"])],
        formats=["android-boot", "gzip", "cpio"],
        notes=BOOT_NOTES,
    )


# --- 5. dynamic partitions: super.img (liblp metadata) ----------------------------------------------

SECTOR = 512
LP_RESERVED = 4096  # LP_PARTITION_RESERVED_BYTES
GEOMETRY_SIZE = 4096  # LP_METADATA_GEOMETRY_SIZE
METADATA_MAX = 65536
METADATA_SLOTS = 2
ALIGNMENT = 1 << 20
GEOMETRY = struct.Struct("<II32sIII")  # magic, struct_size, checksum, metadata_max_size, slots, block size
HEADER = struct.Struct("<IHHI32sI32s12I")  # v10.0 header: 128 bytes
PARTITION = struct.Struct("<36sIIII")  # name, attributes, first_extent_index, num_extents, group_index
EXTENT = struct.Struct("<QIQI")  # num_sectors, target_type, target_data, target_source
GROUP = struct.Struct("<36sIQ")  # name, flags, maximum_size
BLOCK_DEVICE = struct.Struct("<QIIQ36sI")  # first sector, alignment, offset, size, name, flags
LP_GEOMETRY_MAGIC = 0x616C4467
LP_HEADER_MAGIC = 0x414C5030
LP_READONLY = 1
LP_TARGET_LINEAR = 0


def align(value: int, to: int) -> int:
    return -(-value // to) * to


def super_image(partitions: list[tuple[str, bytes]], group: str) -> bytes:
    """A raw ``super.img``: reserved 4 KiB, geometry + backup, primary + backup metadata slots, data.

    Reference: AOSP ``system/core/fs_mgr/liblp/include/liblp/metadata_format.h``
    (metadata v10.0); one LINEAR extent per partition, 1 MiB aligned.
    """
    first_sector = align(LP_RESERVED + 2 * GEOMETRY_SIZE + 2 * METADATA_SLOTS * METADATA_MAX, ALIGNMENT) // SECTOR
    placed = []
    offset = first_sector * SECTOR
    for name, data in partitions:
        placed.append((name, offset, align(len(data), ALIGNMENT)))
        offset += align(len(data), ALIGNMENT)
    size = offset + ALIGNMENT  # some free space, as lpmake leaves
    partition_table = b"".join(PARTITION.pack(name.encode(), LP_READONLY, index, 1, 1)
                               for index, (name, _, _) in enumerate(placed))
    extent_table = b"".join(EXTENT.pack(length // SECTOR, LP_TARGET_LINEAR, start // SECTOR, 0)
                            for _, start, length in placed)
    group_table = b"".join(GROUP.pack(name.encode(), 0, maximum) for name, maximum in
                           (("default", 0), (group, size - first_sector * SECTOR)))
    device_table = BLOCK_DEVICE.pack(first_sector, ALIGNMENT, 0, size, b"super", 0)
    tables = partition_table + extent_table + group_table + device_table
    descriptors = []
    table_offset = 0
    for table, entry in ((partition_table, PARTITION), (extent_table, EXTENT), (group_table, GROUP),
                         (device_table, BLOCK_DEVICE)):
        descriptors += [table_offset, len(table) // entry.size, entry.size]
        table_offset += len(table)
    fields = [LP_HEADER_MAGIC, 10, 0, HEADER.size]
    tables_digest = hashlib.sha256(tables).digest()
    unsigned = HEADER.pack(*fields, bytes(32), len(tables), tables_digest, *descriptors)
    header = HEADER.pack(*fields, hashlib.sha256(unsigned).digest(), len(tables), tables_digest, *descriptors)
    metadata = (header + tables).ljust(METADATA_MAX, b"\0")

    geometry_fields = (GEOMETRY.size, bytes(32), METADATA_MAX, METADATA_SLOTS, SECTOR)
    unsigned_geometry = GEOMETRY.pack(LP_GEOMETRY_MAGIC, *geometry_fields)
    geometry = GEOMETRY.pack(LP_GEOMETRY_MAGIC, GEOMETRY.size, hashlib.sha256(unsigned_geometry).digest(),
                             *geometry_fields[2:]).ljust(GEOMETRY_SIZE, b"\0")
    image = bytearray(size)
    image[LP_RESERVED:LP_RESERVED + 2 * GEOMETRY_SIZE] = geometry * 2
    slots_start = LP_RESERVED + 2 * GEOMETRY_SIZE
    image[slots_start:slots_start + 2 * METADATA_SLOTS * METADATA_MAX] = metadata * (2 * METADATA_SLOTS)
    for (_, start, _), (_, data) in zip(placed, partitions, strict=True):
        image[start:start + len(data)] = data
    return bytes(image)


VENDOR_BUILD_PROP = f"""\
ro.vendor.build.date.utc={EPOCH}
ro.vendor.build.fingerprint=XPhone/full_{DEVICE}/{DEVICE}:10/QP1A/{EPOCH}:user/release-keys
ro.hardware=mt6580
"""


def super_sample(ctx: BuildContext, work: Path, busybox: Path, calculator: Path) -> Sample:
    system = make_ext4(ctx, system_tree(work / "super-system", busybox, {CLEAN_APK: calculator}, release="10"),
                       work / "system_a.img", "system")
    vendor_tree = work / "super-vendor"
    (vendor_tree / "etc" / "init").mkdir(parents=True)
    (vendor_tree / "build.prop").write_text(VENDOR_BUILD_PROP)
    (vendor_tree / "etc" / "init" / "hw").mkdir()
    vendor = make_ext4(ctx, vendor_tree, work / "vendor_a.img", "vendor")
    (ctx.out / "android-super.img").write_bytes(super_image(
        [("system_a", system.read_bytes()), ("vendor_a", vendor.read_bytes())], "main_a"))
    return Sample(
        file="android-super.img", category="android",
        description="Dynamic-partition super.img (liblp v10.0, 2 metadata slots): system_a and vendor_a "
                    "ext4 images of a clean build (calculator app only)",
        expect=CLEAN_EXPECT,
        contains=[Contains(CLEAN_APK, ["android-super", "ext"]), Contains(BUILD_PROP, ["android-super", "ext"]),
                  Contains("/build.prop", ["android-super", "ext"])],
        formats=["android-super", "ext", "apk"],
    )


# --- 6. MediaTek scatter release ---------------------------------------------------------------------

# (name, file shipped or NONE, type, region, size, operation type); user-area partitions lie back to back.
SCATTER_LAYOUT = [
    ("preloader", "preloader_x_s10.bin", "SV5_BL_BIN", "EMMC_BOOT_1", 0x40000, "BOOTLOADERS"),
    ("pgpt", "NONE", "NORMAL_ROM", "EMMC_USER", 0x80000, "INVISIBLE"),
    ("proinfo", "NONE", "NORMAL_ROM", "EMMC_USER", 0x300000, "PROTECTED"),
    ("nvram", "NONE", "NORMAL_ROM", "EMMC_USER", 0x500000, "BINREGION"),
    ("protect1", "NONE", "EXT4_IMG", "EMMC_USER", 0xA00000, "PROTECTED"),
    ("protect2", "NONE", "EXT4_IMG", "EMMC_USER", 0xA00000, "PROTECTED"),
    ("seccfg", "NONE", "NORMAL_ROM", "EMMC_USER", 0x40000, "INVISIBLE"),
    ("lk", "NONE", "NORMAL_ROM", "EMMC_USER", 0x60000, "UPDATE"),
    ("boot", "boot.img", "NORMAL_ROM", "EMMC_USER", 0x1000000, "UPDATE"),
    ("recovery", "NONE", "NORMAL_ROM", "EMMC_USER", 0x1000000, "UPDATE"),
    ("para", "NONE", "NORMAL_ROM", "EMMC_USER", 0x80000, "INVISIBLE"),
    ("logo", "NONE", "NORMAL_ROM", "EMMC_USER", 0x800000, "UPDATE"),
    ("expdb", "NONE", "NORMAL_ROM", "EMMC_USER", 0xA00000, "INVISIBLE"),
    ("frp", "NONE", "NORMAL_ROM", "EMMC_USER", 0x100000, "INVISIBLE"),
    ("nvdata", "NONE", "EXT4_IMG", "EMMC_USER", 0x2000000, "INVISIBLE"),
    ("metadata", "NONE", "NORMAL_ROM", "EMMC_USER", 0x2500000, "INVISIBLE"),
    ("secro", "NONE", "NORMAL_ROM", "EMMC_USER", 0x600000, "UPDATE"),
    ("system", "system.img", "EXT4_IMG", "EMMC_USER", 0x60000000, "UPDATE"),
    ("cache", "NONE", "EXT4_IMG", "EMMC_USER", 0x6400000, "INVISIBLE"),
    ("userdata", "NONE", "EXT4_IMG", "EMMC_USER", 0x10000000, "INVISIBLE"),
    ("flashinfo", "NONE", "NORMAL_ROM", "EMMC_USER", 0x1000000, "INVISIBLE"),
]
SCATTER_RULE = "#" * 108


def scatter_text() -> str:
    lines = [SCATTER_RULE, "#", "#  General Setting", "#", SCATTER_RULE,
             "- general: MTK_PLATFORM_CFG", "  info:", "    - config_version: V1.1.2",
             "      platform: MT6580", f"      project: {DEVICE}", "      storage: EMMC",
             "      boot_channel: MSDC_0", "      block_size: 0x20000",
             SCATTER_RULE, "#", "#  Layout Setting", "#", SCATTER_RULE]
    user_offset = 0
    for index, (name, file, kind, region, size, operation) in enumerate(SCATTER_LAYOUT):
        start = 0 if region == "EMMC_BOOT_1" else user_offset
        if region == "EMMC_USER":
            user_offset += size
        lines += [f"- partition_index: SYS{index}", f"  partition_name: {name}", f"  file_name: {file}",
                  f"  is_download: {'false' if file == 'NONE' else 'true'}", f"  type: {kind}",
                  f"  linear_start_addr: {start:#x}", f"  physical_start_addr: {start:#x}",
                  f"  partition_size: {size:#x}", f"  region: {region}", "  storage: HW_STORAGE_EMMC",
                  "  boundary_check: true", f"  is_reserved: {'true' if name == 'pgpt' else 'false'}",
                  f"  operation_type: {operation}", "  reserve: 0x00", ""]
    return "\n".join(lines)


def preloader_blob(ctx: BuildContext, work: Path) -> bytes:
    """EMMC_BOOT and BRLYT headers, a GFH FILE_INFO header, then real bare-metal ARM code."""
    elf = work / "preloader.elf"
    ctx.run("arm-linux-gnueabihf-gcc", "-Os", "-ffreestanding", "-nostdlib", "-static", "-marm",
            "-Wl,--build-id=none", "-Wl,-Ttext=0x201300", "-Wl,-e,preloader_main",
            "-o", elf, SRC / "preloader.c")
    code = work / "preloader.bin"
    ctx.run("arm-linux-gnueabihf-objcopy", "-O", "binary", elf, code)
    body = code.read_bytes()
    emmc_boot = (b"EMMC_BOOT\0" + struct.pack("<II", 1, 0x200)).ljust(0x200, b"\0")
    brlyt = (b"BRLYT\0\0\0" + struct.pack("<II", 1, 0x800)).ljust(0x600, b"\0")
    gfh = (b"MMM\x01" + struct.pack("<H", 0x38) + b"\0\0" + b"FILE_INFO".ljust(12, b"\0")
           + struct.pack("<IHHIIIIII", 1, 0, 5, 0x201000, 0x300 + len(body), 0x40000, 0x300, 0x20, 0x300))
    return emmc_boot + brlyt + gfh.ljust(0x300, b"\0") + body


def scatter_sample(ctx: BuildContext, work: Path, system_raw: Path, boot: Path) -> Sample:
    sparse = make_sparse(ctx, system_raw, work / "system-clean.img")
    write_zip(ctx.out / "mtk-scatter-firmware.zip", [
        ("MT6580_Android_scatter.txt", scatter_text().encode()),
        ("preloader_x_s10.bin", preloader_blob(ctx, work)),
        ("boot.img", boot.read_bytes()),
        ("system.img", sparse.read_bytes()),
    ])
    return Sample(
        file="mtk-scatter-firmware.zip", category="android",
        description="MediaTek SP Flash Tool release for MT6580: scatter file, preloader, boot.img and a "
                    "sparse ext4 system.img of a clean Android 8.1 build (calculator app only)",
        expect=CLEAN_EXPECT,
        contains=[Contains(CLEAN_APK, IMAGE_CHAIN), Contains(BUILD_PROP, IMAGE_CHAIN),
                  Contains("/init.rc", ["zip", "android-boot", "gzip", "cpio"])],
        formats=["zip", "mtk-scatter", "android-sparse", "ext", "android-boot"],
        notes=BOOT_NOTES,
        platform={"chipset": "MT6580"},
    )


# --- 7. EROFS system image ---------------------------------------------------------------------------


def erofs_sample(ctx: BuildContext, work: Path, calculator: Path) -> Sample:
    tree = work / "erofs"
    (tree / "system").mkdir(parents=True)
    (tree / "system" / "build.prop").write_text(build_prop("10"))
    install(calculator, tree / CLEAN_APK.lstrip("/"), 0o644)
    ctx.fix_mtimes(tree)
    target = ctx.out / "android-erofs.img"
    target.unlink(missing_ok=True)
    ctx.run("mkfs.erofs", "--quiet", "-zlz4hc", f"-T{EPOCH}", f"-U{FIXED_UUID}", "--all-root", target, tree)
    return Sample(
        file="android-erofs.img", category="android",
        description="EROFS (lz4hc) system image of a clean build: build.prop and the calculator app",
        expect=CLEAN_EXPECT,
        contains=[Contains(CLEAN_APK, ["erofs"]), Contains(BUILD_PROP, ["erofs"])],
        formats=["erofs", "apk"],
    )


# --- 8. file-based update.zip carrying a known backdoor family's OTA agent ------------------------------

AGENT = "/system/bin/debugs"
AGENT_RC = """\
service debugs /system/bin/debugs
    class main
    user root
    seclabel u:r:su:s0
"""


def agent_update_sample(ctx: BuildContext) -> Sample:
    """A pre-Lollipop style update.zip (package_extract_dir of system/) whose OTA agent is a Ragentek
    "AnyWhere" look-alike: the published path and hosts, started as root, runs what the server sends."""
    agent = cross_compile(ctx, SRC / "debugs.c", "armhf")
    script = f"""\
ui_print("Installing system update...");
mount("ext4", "EMMC", "{MTK_BLOCK_DEVICE}/system", "/system");
package_extract_dir("system", "/system");
set_perm(0, 0, 0755, "{AGENT}");
unmount("/system");
"""
    write_zip(ctx.out / "android-agent-update.zip", [
        ("META-INF/com/google/android/updater-script", script.encode()),
        ("system/bin/debugs", agent.read_bytes()),
        ("system/build.prop", build_prop("8.1.0").encode()),
        ("system/etc/init/debugs.rc", AGENT_RC.encode()),
    ])
    return Sample(
        file="android-agent-update.zip", category="android",
        description="File-based update.zip whose system/bin/debugs mimics the Ragentek/AnyWhere OTA agent "
                    "documented in 2016 (its path and three hard-coded hosts, polled over plain HTTP, the "
                    "reply run as root; started by an init .rc): a known-family match",
        expect=Expect(verdict="backdoor", culprits=["system/bin/debugs"],
                      endpoints=["oyag.lhzbdvm.com", "oyag.prugskh.com", "oyag.prugskh.net"],
                      countries=[], data=[], channels=["http"]),
        contains=[Contains("system/bin/debugs", ["zip"]), Contains("system/etc/init/debugs.rc", ["zip"])],
        formats=["zip"],
    )
