"""The Linux family: router and handset root filesystems, planted daemons, and one sample per container format.

Root filesystems are made of real Debian binaries for armhf or mipsel
(``debian_package_tree``) plus the programs of ``samples/src`` cross-compiled
for the device. The planted ones are ``syncd`` (identifiers and SMS posted
over HTTP to a hard-coded collector) and ``beacon`` (static, stripped, raw
syscalls, IMEI over UDP); ``syncd_clean`` and ``netupdate`` are the controls
that must stay clean. The same backdoored rootfs is also nested in update
packages and a raw flash dump, so the unpacker's recursion and carving are
tested on the same needle.

``build_large_rootfs`` (not part of ``build``) assembles the >= 100 MB image
of the benchmarks.
"""

from __future__ import annotations

import shutil
import time
import zipfile
from pathlib import Path

from samples.gen._rootfs import (
    busybox_applets,
    compress,
    cpio_newc,
    cramfs,
    ext4,
    jffs2,
    link,
    put,
    squashfs,
    stage,
    tar,
    ubi,
    vfat,
)
from samples.gen._toolchain import cross_compile, debian_package_tree
from samples.sample import EPOCH, BuildContext, Contains, Expect, Sample

SOURCES = Path(__file__).resolve().parents[1] / "src"
HANDSET_PACKAGES = ["busybox-static", "dropbear-bin", "libc6", "libcrypt1", "libgmp10", "libtomcrypt1",
                    "libtommath1", "zlib1g"]
ROUTER_PACKAGES = ["busybox-static", "libc6"]
# Debian armhf packages of the benchmark rootfs, in groups: one cached tree per group
# keeps the cache directory names (the joined package names) short.
LARGE_PACKAGE_GROUPS = [
    ["libc6", "libc-bin", "busybox-static", "dropbear-bin", "openssl", "libssl3", "coreutils", "bash"],
    ["python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "perl-base", "libperl5.36"],
    ["libstdc++6", "libgcc-s1", "libsqlite3-0", "curl", "libcurl4", "libnghttp2-14", "libssh2-1",
     "librtmp1", "libpsl5", "libbrotli1"],
    ["libicu72", "libxml2", "libglib2.0-0", "libpcre2-8-0", "libffi8", "libexpat1", "libzstd1",
     "liblzma5", "zlib1g", "libbz2-1.0"],
    ["libgnutls30", "libgcrypt20", "libp11-kit0", "libunistring2", "libidn2-0", "libnettle8",
     "libhogweed6", "libtasn1-6", "libgmp10"],
    ["gdb", "systemd", "libsystemd0", "util-linux", "vim-tiny", "libdb5.3", "libreadline8",
     "libncursesw6", "libtinfo6"],
    ["libllvm15"],
    ["libz3-4", "libavcodec59", "libqt5core5a", "libqt5gui5", "libgtk-3-0", "libopenblas0-pthread",
     "libpython3.11"],
]
LARGE_MIN_BYTES = 100 * 1024 * 1024

COLLECTOR = ["203.0.113.7", "collect.hgtx-data.cn", "backup.hgtx-data.cn"]
SYNCD_EXPECT = Expect(verdict="backdoor", culprits=["/usr/sbin/syncd"], endpoints=COLLECTOR, countries=["CN"],
                      data=["imei", "imsi", "sms", "device_info"], channels=["http", "tcp"])
SYNCD_NOTE = ("203.0.113.7 is TEST-NET-3 (no country): CN comes from the .cn collector domains, the second "
              "one hidden in a base64 string decoded at run time")
CLEAN = Expect(verdict="clean")
LINUX_UIMAGE = {"os": "Linux"}  # the unpacker reads the OS from the uImage header

INITTAB = """::sysinit:/etc/init.d/rcS
::respawn:/sbin/getty -L ttyS0 115200 vt100
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
"""
RCS = """#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
for script in /etc/init.d/S??*; do
    [ -x "$script" ] && "$script" start
done
"""
PASSWD = "root:x:0:0:root:/root:/bin/sh\nsshd:x:74:74:dropbear:/var/empty:/bin/false\n"
GROUP = "root:x:0:\nsshd:x:74:\n"


def _service(name: str, command: str) -> str:
    """A busybox init script starting one daemon in the background."""
    return (f"#!/bin/sh\n# {name}\ncase \"$1\" in\n"
            f"  start) start-stop-daemon -S -b -q -x {command} ;;\n"
            f"  stop) start-stop-daemon -K -q -x {command} ;;\nesac\n")


def _program(ctx: BuildContext, name: str, arch: str, **options: bool) -> Path:
    return cross_compile(ctx, SOURCES / f"{name}.c", arch, **options)


def _base_system(root: Path, hostname: str) -> None:
    """What every device rootfs has: busybox links, init scripts, users (Debian's libc6 brings the loader link)."""
    busybox_applets(root, ("sh", "ls", "cat", "mount", "umount", "ps", "sleep", "start-stop-daemon"))
    link(root, "/sbin/init", "../bin/busybox")
    link(root, "/sbin/getty", "../bin/busybox")
    put(root, "/etc/inittab", INITTAB)
    put(root, "/etc/init.d/rcS", RCS, 0o755)
    put(root, "/etc/passwd", PASSWD)
    put(root, "/etc/group", GROUP)
    put(root, "/etc/hostname", f"{hostname}\n")


def _handset_root(ctx: BuildContext, name: str, syncd: Path, *, full: bool = True) -> Path:
    """A handset rootfs with ``syncd`` at /usr/sbin/syncd started by S99syncd; ``full`` adds Debian's libc and ssh."""
    packages = HANDSET_PACKAGES if full else ["busybox-static"]
    root = stage(ctx, name, debian_package_tree(ctx, "armhf", packages))
    _base_system(root, "mt-handset")
    if full:
        put(root, "/etc/init.d/S50dropbear", _service("dropbear ssh server", "/usr/sbin/dropbear"), 0o755)
    put(root, "/etc/init.d/S99syncd", _service("cloud sync daemon", "/usr/sbin/syncd"), 0o755)
    put(root, "/etc/syncd.conf", "# syncd settings\ninterval=600\nmax_log_size=262144\nkeep=3\n")
    put(root, "/usr/sbin/syncd", syncd, 0o755)
    return root


def _handset_images(ctx: BuildContext) -> list[Sample]:
    syncd = _program(ctx, "syncd", "armhf")
    clean = _program(ctx, "syncd_clean", "armhf")
    squashfs(ctx, _handset_root(ctx, "handset-backdoor", syncd), ctx.out / "linux-rootfs-backdoor.squashfs")
    squashfs(ctx, _handset_root(ctx, "handset-clean", clean), ctx.out / "linux-rootfs-clean.squashfs")
    sqfs = ["squashfs"]
    return [
        Sample("linux-rootfs-backdoor.squashfs", "linux",
               "Debian armhf handset rootfs (busybox, dropbear, glibc) whose S99syncd starts a daemon that "
               "posts IMEI, IMSI, SMS and the CPU serial to a hard-coded collector. " + SYNCD_NOTE,
               SYNCD_EXPECT, [Contains("/usr/sbin/syncd", sqfs), Contains("/usr/sbin/dropbear", sqfs),
                              Contains("/etc/init.d/S99syncd", sqfs)], formats=["squashfs"]),
        Sample("linux-rootfs-clean.squashfs", "control",
               "Clean twin of linux-rootfs-backdoor: the same rootfs, /usr/sbin/syncd only syncs the clock "
               "from the RTC and rotates logs (no identifiers, no network).",
               CLEAN, [Contains("/usr/sbin/syncd", sqfs), Contains("/etc/syncd.conf", sqfs)],
               formats=["squashfs"]),
    ]


def _router_image(ctx: BuildContext) -> Sample:
    root = stage(ctx, "router-netupdate", debian_package_tree(ctx, "mipsel", ROUTER_PACKAGES))
    _base_system(root, "home-router")
    put(root, "/usr/bin/netupdate", _program(ctx, "netupdate", "mipsel"), 0o755)
    put(root, "/etc/fw_version", "1.4.2\n")
    put(root, "/etc/crontab", "# m h dom mon dow user command\n17 3 * * * root /usr/bin/netupdate\n"
                              "*/30 * * * * root /usr/bin/netupdate --time\n")
    squashfs(ctx, root, ctx.out / "router-netupdate.squashfs", "gzip")
    return Sample("router-netupdate.squashfs", "control",
                  "mipsel router rootfs (gzip squashfs) with a network-heavy but innocent updater: SNTP to "
                  "pool.ntp.org, update manifest and firmware download from update.example-vendor.com.",
                  CLEAN, [Contains("/usr/bin/netupdate", ["squashfs"]), Contains("/etc/crontab", ["squashfs"])],
                  formats=["squashfs"])


def _flash_images(ctx: BuildContext) -> list[Sample]:
    """JFFS2 with the static beacon (NOR flash) and a clean UBI/UBIFS rootfs (NAND flash)."""
    busybox = debian_package_tree(ctx, "armhf", ["busybox-static"])
    root = stage(ctx, "jffs2-beacon", busybox)
    _base_system(root, "mt-handset")
    put(root, "/usr/bin/beacon", _program(ctx, "beacon_static", "armhf", static=True, strip=True), 0o755)
    put(root, "/etc/init.d/S90beacon", _service("mdns responder", "/usr/bin/beacon"), 0o755)
    jffs2(ctx, root, ctx.out / "linux-rootfs.jffs2")
    root = stage(ctx, "ubi-clean", busybox)
    _base_system(root, "nand-router")
    put(root, "/etc/fw_version", "2.0.1\n")
    ubi(ctx, root, ctx.out / "linux-rootfs.ubi")
    return [
        Sample("linux-rootfs.jffs2", "linux",
               "Little-endian JFFS2 rootfs (busybox) with /usr/bin/beacon: static, stripped armhf, raw 'svc 0' "
               "syscalls, reads the IMEI (AT+CGSN) and sends it over UDP to 198.51.100.23:5353. "
               "198.51.100.23 is TEST-NET-2: no country.",
               Expect(verdict="backdoor", culprits=["/usr/bin/beacon"], endpoints=["198.51.100.23"],
                      data=["imei"], channels=["udp"]),
               [Contains("/usr/bin/beacon", ["jffs2"]), Contains("/bin/busybox", ["jffs2"])], formats=["jffs2"]),
        Sample("linux-rootfs.ubi", "control",
               "UBI image (2 KiB pages, 128 KiB PEBs) with one dynamic volume 'rootfs' holding a clean busybox "
               "UBIFS.", CLEAN, [Contains("/bin/busybox", ["ubi", "ubifs"]), Contains("/etc/fw_version",
                                                                                          ["ubi", "ubifs"])],
               formats=["ubi", "ubifs"]),
    ]


def _uimage(ctx: BuildContext, payload: Path, image: Path, kind: str, compression: str, name: str) -> Path:
    """A U-Boot legacy image; mkimage takes its timestamp from SOURCE_DATE_EPOCH."""
    ctx.run("mkimage", "-A", "arm", "-O", "linux", "-T", kind, "-C", compression, "-a", "0x80008000",
            "-e", "0x80008000", "-n", name, "-d", payload, image)
    return image


def _zip(files: dict[str, Path], image: Path) -> Path:
    """A deflated zip with fixed member dates, members in name order."""
    stamp = time.gmtime(EPOCH)[:6]
    with zipfile.ZipFile(image, "w") as archive:
        for name, source in sorted(files.items()):
            info = zipfile.ZipInfo(name, stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, source.read_bytes())
    return image


def _update_images(ctx: BuildContext) -> list[Sample]:
    """The backdoored syncd inside a uImage, a zip › tar.gz › uImage update, and a raw NOR flash dump."""
    work = ctx.cache / "linux-update"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    small = squashfs(ctx, _handset_root(ctx, "handset-small", _program(ctx, "syncd", "armhf"), full=False),
                     work / "rootfs.squashfs")
    uimg = _uimage(ctx, small, ctx.out / "uimage-rootfs.uimg", "filesystem", "none", "mt-handset rootfs")

    package = work / "package"
    put(package, "/update/rootfs.uimg", uimg)
    put(package, "/update/VERSION", "MT-H1 2.3.7 build 20231114\n")
    update = compress(ctx, tar(ctx, package, work / "update.tar"), "gz")
    readme = put(work / "zip", "/README.txt", "Copy update.zip to the SD card and hold VOL+ at power on.\n")
    _zip({"firmware/update.tar.gz": update, "firmware/README.txt": readme}, ctx.out / "nested-update.zip")

    flash = _flash_dump(ctx, work, small)
    syncd_in = ["uimage", "squashfs"]
    return [
        Sample("uimage-rootfs.uimg", "linux",
               "U-Boot legacy uImage (filesystem, uncompressed) wrapping a small busybox squashfs with the "
               "planted syncd. " + SYNCD_NOTE, SYNCD_EXPECT, [Contains("/usr/sbin/syncd", syncd_in)],
               formats=syncd_in, platform=LINUX_UIMAGE),
        Sample("nested-update.zip", "linux",
               "OTA package: zip › firmware/update.tar.gz › update/rootfs.uimg (uImage) › squashfs with the "
               "planted syncd. " + SYNCD_NOTE, SYNCD_EXPECT,
               [Contains("/usr/sbin/syncd", ["zip", "gzip", "tar", *syncd_in])],
               formats=["zip", "gzip", "tar", *syncd_in], platform=LINUX_UIMAGE),
        flash,
    ]


FLASH_SIZE = 8 * 1024 * 1024
KERNEL_OFFSET = 0x40000
ROOTFS_OFFSET = 0x200000
UBOOT_BANNER = (b"\x00U-Boot 2016.01 (Nov 14 2023 - 22:13:20 +0000) mt-handset\x00"
                b"bootcmd=bootm 0x9f040000\x00bootargs=console=ttyS0,115200 root=/dev/mtdblock2 "
                b"rootfstype=squashfs\x00")


def _flash_dump(ctx: BuildContext, work: Path, rootfs: Path) -> Sample:
    """8 MiB NOR dump: bootloader code at 0, gzip uImage kernel at 0x40000, squashfs at 0x200000, 0xFF between."""
    donor = debian_package_tree(ctx, "armhf", ["busybox-static"]) / "bin" / "busybox"
    code = work / "bootloader.bin"
    # Raw ARM code with no ELF header, as a bootloader is flashed.
    ctx.run("arm-linux-gnueabihf-objcopy", "-O", "binary", "--only-section=.text", donor, code)
    bootloader = code.read_bytes()[:KERNEL_OFFSET - len(UBOOT_BANNER) - 0x1000] + UBOOT_BANNER
    kernel_code = work / "Image"
    kernel_code.write_bytes(code.read_bytes()[:0x100000])
    kernel = _uimage(ctx, compress(ctx, kernel_code, "gz"), work / "uImage", "kernel", "gzip",
                     "Linux-4.9.118")
    parts = [(0, bootloader), (KERNEL_OFFSET, kernel.read_bytes()), (ROOTFS_OFFSET, rootfs.read_bytes())]
    dump = bytearray(b"\xff" * FLASH_SIZE)
    limits = [offset for offset, _ in parts[1:]] + [FLASH_SIZE]
    for (offset, blob), limit in zip(parts, limits, strict=True):
        if offset + len(blob) > limit:
            raise ValueError(f"flash part at {offset:#x} ({len(blob)} bytes) runs into the next one at {limit:#x}")
        dump[offset:offset + len(blob)] = blob
    (ctx.out / "flash-dump.bin").write_bytes(bytes(dump))
    return Sample("flash-dump.bin", "linux",
                  "Raw 8 MiB NOR flash dump, no partition table: U-Boot-like code at 0, a gzip uImage kernel at "
                  "0x40000, a squashfs rootfs with the planted syncd at 0x200000, 0xFF erased padding. Found only "
                  "by carving. " + SYNCD_NOTE, SYNCD_EXPECT,
                  [Contains("0x200000.squashfs › /usr/sbin/syncd", ["data", "squashfs"])],
                  formats=["data", "uimage", "gzip", "squashfs"], platform=LINUX_UIMAGE)


def _format_images(ctx: BuildContext) -> list[Sample]:
    """One small clean image per remaining container format, each holding known files."""
    busybox = debian_package_tree(ctx, "armhf", ["busybox-static"])
    root = stage(ctx, "mini", busybox)
    _base_system(root, "mini")
    out = ctx.out
    work = ctx.cache / "linux-formats"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    ext4(ctx, root, out / "rootfs.ext4")
    cramfs(ctx, root, out / "rootfs.cramfs")
    boot = {"uEnv.txt": put(work / "boot", "/uEnv.txt", "bootargs=console=ttyS0,115200 root=/dev/mmcblk0p2\n"),
            "zImage": root / "bin" / "busybox"}
    vfat(ctx, boot, out / "bootfs.vfat")
    cpio = cpio_newc(ctx, root, work / "initramfs.cpio")
    shutil.move(compress(ctx, cpio, "gz"), out / "initramfs.cpio.gz")
    archive = tar(ctx, root, work / "rootfs.tar")
    shutil.move(compress(ctx, archive, "xz"), out / "rootfs.tar.xz")
    shutil.move(compress(ctx, archive, "zst"), out / "bundle.tar.zst")
    blob = put(work / "blobs", "/blob", root.joinpath("bin", "busybox"))
    shutil.move(compress(ctx, blob, "lz4"), out / "blob.lz4")
    shutil.move(compress(ctx, blob, "bz2"), out / "blob.bz2")
    (out / "archive.7z").unlink(missing_ok=True)
    ctx.run("7z", "a", "-bd", "-mx=5", "-mmt=1", "-mtc=off", "-mta=off", out / "archive.7z", "bin", "etc",
            cwd=root)

    def sample(file: str, description: str, inner: str, chain: list[str]) -> Sample:
        return Sample(file, "control", description, CLEAN, [Contains(inner, chain)], formats=chain)

    return [
        sample("rootfs.ext4", "ext4 rootfs made by mke2fs -d (fixed UUID and hash seed).", "/bin/busybox",
               ["ext"]),
        sample("rootfs.cramfs", "Little-endian cramfs rootfs (util-linux mkfs.cramfs).", "/bin/busybox",
               ["cramfs"]),
        sample("bootfs.vfat", "FAT boot partition with a kernel image and uEnv.txt.", "uEnv.txt", ["fat"]),
        sample("initramfs.cpio.gz", "Kernel initramfs: gzip-compressed newc cpio of a busybox rootfs.",
               "/bin/busybox", ["gzip", "cpio"]),
        sample("rootfs.tar.xz", "xz-compressed tar of a busybox rootfs.", "rootfs.tar › bin/busybox",
               ["xz", "tar"]),
        sample("bundle.tar.zst", "zstd-compressed tar of a busybox rootfs.", "bundle.tar › bin/busybox",
               ["zstd", "tar"]),
        sample("blob.lz4", "One binary compressed with lz4 (frame format).", "blob", ["lz4"]),
        sample("blob.bz2", "One binary compressed with bzip2.", "blob", ["bzip2"]),
        sample("archive.7z", "7z archive of a busybox rootfs's bin/ and etc/.", "bin/busybox", ["7z"]),
    ]


def build(ctx: BuildContext) -> list[Sample]:
    return [*_handset_images(ctx), _router_image(ctx), *_flash_images(ctx), *_update_images(ctx),
            *_format_images(ctx)]


def build_large_rootfs(ctx: BuildContext) -> Path:
    """``ctx.cache/bench/bench-rootfs.squashfs``: a gzip squashfs of real Debian armhf binaries, >= 100 MB."""
    trees = [debian_package_tree(ctx, "armhf", group) for group in LARGE_PACKAGE_GROUPS]
    root = stage(ctx, "bench-rootfs", *trees)
    _base_system(root, "bench")
    image = squashfs(ctx, root, ctx.cache / "bench" / "bench-rootfs.squashfs", "gzip")
    if image.stat().st_size < LARGE_MIN_BYTES:
        raise ValueError(f"{image} is {image.stat().st_size} bytes, the benchmark needs {LARGE_MIN_BYTES}")
    return image
