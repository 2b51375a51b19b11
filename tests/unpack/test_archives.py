"""Archive and compression formats: whole trees, hostile members, bombs, truncation, carving."""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import subprocess
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from pipeline.config import Limits
from pipeline.model import ArtifactKind, ExtractionTree, IssueKind, NoteKind
from pipeline.unpack.formats.lzma import Lzma
from pipeline.unpack.identify import HEAD_SIZE, identify

PAYLOAD = b"".join(b"line %d of the payload\n" % i for i in range(3000))
SECRET = b"exfil endpoint 203.0.113.7\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _members(tree: ExtractionTree) -> dict[str, str]:
    """Every artifact below the root: lineage path → sha256 of a file, or '-> target' of a symlink."""
    return {
        a.lineage_path: f"-> {a.link_target}" if a.kind is ArtifactKind.SYMLINK else a.sha256
        for a in tree.artifacts[1:]
    }


def _issues(tree: ExtractionTree) -> set[tuple[str, IssueKind]]:
    return {(e.path, e.kind) for e in tree.errors}


def _run(*argv: str, cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)


def _source_tree(root: Path) -> Path:
    """A small directory: a text file, a nested file and a relative symlink."""
    (root / "etc" / "init.d").mkdir(parents=True)
    (root / "etc" / "payload.txt").write_bytes(PAYLOAD)
    (root / "etc" / "init.d" / "rcS").write_bytes(SECRET)
    (root / "etc" / "link").symlink_to("payload.txt")
    return root


def _stray_files(tmp_path: Path, store_dir: Path, before: set[Path]) -> set[Path]:
    """Files the run created under tmp_path anywhere but in the blob store (named by their hash)."""
    blobs = store_dir / "blobs"
    return {p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(blobs)} - before


# single-stream compressors ------------------------------------------------------


COMPRESSORS = {
    "xz": (["xz", "-k"], ".xz"),
    "lzma": (["lzma", "-k"], ".lzma"),
    "bzip2": (["bzip2", "-k"], ".bz2"),
    "zstd": (["zstd", "-q"], ".zst"),
    "lz4": (["lz4", "-q"], ".lz4"),
}


def _compressed(tmp_path: Path, fmt: str, data: bytes = PAYLOAD) -> Path:
    command, suffix = COMPRESSORS[fmt]
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "payload.bin").write_bytes(data)
    extra = ["payload.bin.lz4"] if fmt == "lz4" else []
    _run(*command, "payload.bin", *extra, cwd=tmp_path)
    return tmp_path / f"payload.bin{suffix}"


@pytest.mark.parametrize("fmt", sorted(COMPRESSORS))
def test_compressed_file_gives_its_payload(tmp_path, run_unpack, fmt):
    tree = run_unpack(_compressed(tmp_path, fmt))

    assert tree.root.format == fmt
    assert _members(tree) == {f"payload.bin{COMPRESSORS[fmt][1]} › payload.bin": _sha(PAYLOAD)}
    assert tree.complete
    assert tree.root.coverage.unpacked == tree.root.size


@pytest.mark.parametrize("fmt", ["bzip2", "xz", "lz4"])
def test_concatenated_streams_are_one_member(tmp_path, run_unpack, fmt):
    first = _compressed(tmp_path / "first", fmt).read_bytes()
    second = _compressed(tmp_path / "second", fmt, SECRET).read_bytes()
    joined = tmp_path / f"joined{COMPRESSORS[fmt][1]}"
    joined.write_bytes(first + second)

    tree = run_unpack(joined)

    assert _members(tree) == {f"{joined.name} › joined": _sha(PAYLOAD + SECRET)}
    assert tree.complete


def test_truncated_stream_is_a_failure(tmp_path, run_unpack):
    data = _compressed(tmp_path, "xz").read_bytes()
    cut = tmp_path / "cut.xz"
    cut.write_bytes(data[: len(data) // 2])

    tree = run_unpack(cut)

    assert _members(tree) == {}
    assert _issues(tree) == {("cut.xz › cut", IssueKind.FAILURE)}
    assert not tree.complete


@pytest.mark.parametrize(
    "header",
    [
        b"\x5d\x00\x00\x80\x00" + b"\xff" * 8 + b"\x00",  # fine header, then data that does not decode
        b"\x5d\x00\x00\x81\x00" + b"\xff" * 8 + b"\x00",  # dictionary size not 2^n or 2^n + 2^(n-1)
        b"\xe1\x00\x00\x80\x00" + b"\xff" * 8 + b"\x00",  # properties byte above 224
        b"\x5d\x00\x00\x80\x00" + b"\xff" * 8 + b"\x01",  # first range-coder byte is not 0
    ],
)
def test_lzma_needs_a_strictly_valid_header(tmp_path, run_unpack, header):
    """libmagic calls these "LZMA compressed data"; our reader must not claim them."""
    blob = tmp_path / "blob.bin"
    blob.write_bytes(header + hashlib.shake_256(header).digest(8192))
    valid = _compressed(tmp_path, "lzma").read_bytes()

    tree = run_unpack(blob)

    assert _members(tree) == {} and tree.complete
    assert identify(blob.read_bytes(), 8206, blob.name).format is None
    assert identify(valid[:HEAD_SIZE], len(valid), "payload.bin.lzma").format is Lzma


# carving ------------------------------------------------------------------------


def _archive(tmp_path: Path, fmt: str) -> bytes:
    src = _source_tree(tmp_path / "src")
    out = tmp_path / "archive"
    if fmt in COMPRESSORS:
        return _compressed(tmp_path, fmt).read_bytes()
    if fmt == "zip":
        _run("zip", "-qry", str(out), "etc", cwd=src)
        return out.with_suffix(".zip").read_bytes()
    if fmt == "tar":
        _run("tar", "cf", str(out), "etc", cwd=src)
    elif fmt == "7z":
        _run("7z", "a", "-bd", "-y", str(out.with_suffix(".7z")), "etc", cwd=src)
        return out.with_suffix(".7z").read_bytes()
    else:
        listing = subprocess.run(["find", "etc"], cwd=src, check=True, capture_output=True).stdout
        subprocess.run(["cpio", "-o", "-H", fmt], cwd=src, input=listing, stdout=out.open("wb"),
                       stderr=subprocess.DEVNULL, check=True)
    return out.read_bytes()


@pytest.mark.parametrize("fmt", [*sorted(COMPRESSORS), "zip", "tar", "7z", "newc", "crc", "odc"])
def test_chunk_is_carved_at_its_exact_extent(tmp_path, run_unpack, fmt):
    archive = _archive(tmp_path, fmt)
    noise = bytes(b ^ 0x5A for b in hashlib.shake_256(b"noise").digest(96 * 1024))
    dump = tmp_path / "flash.bin"
    dump.write_bytes(noise + archive + noise)

    tree = run_unpack(dump)

    name = "cpio" if fmt in ("newc", "crc", "odc") else fmt
    chunk = tree.find(f"flash.bin › {len(noise):#x}.{name}")
    assert chunk is not None, [a.lineage_path for a in tree.artifacts]
    assert (chunk.format, chunk.offset, chunk.sha256) == (name, len(noise), _sha(archive))
    assert any(a.parent == chunk.id for a in tree.artifacts)


# zip ----------------------------------------------------------------------------


def test_zip_members_every_method_symlink_and_directories(tmp_path, run_unpack):
    path = tmp_path / "update.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("system/", b"")
        for method, name in ((zipfile.ZIP_STORED, "stored.txt"), (zipfile.ZIP_DEFLATED, "deflated.txt"),
                             (zipfile.ZIP_BZIP2, "bzip2.txt"), (zipfile.ZIP_LZMA, "lzma.txt")):
            archive.writestr(f"system/{name}", PAYLOAD, compress_type=method)
        link = zipfile.ZipInfo("system/shadow")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/shadow")

    tree = run_unpack(path)

    assert tree.root.format == "zip"
    assert _members(tree) == {
        "update.zip › system/stored.txt": _sha(PAYLOAD),
        "update.zip › system/deflated.txt": _sha(PAYLOAD),
        "update.zip › system/bzip2.txt": _sha(PAYLOAD),
        "update.zip › system/lzma.txt": _sha(PAYLOAD),
        "update.zip › system/shadow": "-> /etc/shadow",
    }
    assert tree.complete
    assert [n.kind for n in tree.notes] == [NoteKind.ESCAPING_LINK]
    assert tree.root.coverage.unpacked == tree.root.size


@pytest.mark.parametrize(
    ("name", "members", "label"),
    [
        ("app.apk", ["classes.dex"], "apk"),
        ("blob.bin", ["AndroidManifest.xml", "classes.dex"], "apk"),
        ("lib.jar", ["a.class"], "jar"),
        ("blob.bin", ["META-INF/MANIFEST.MF", "a.class"], "jar"),
        ("ota.zip", ["META-INF/MANIFEST.MF", "system.img"], "zip"),
    ],
)
def test_zip_label(tmp_path, run_unpack, name, members, label):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        for member in members:
            archive.writestr(member, SECRET)

    assert run_unpack(path).root.format == label


def _hostile_names() -> dict[str, str]:
    """Archive name → the name the Output records for it."""
    return {"../../etc/passwd": "etc/passwd", "/etc/x": "etc/x", "..\\..\\windows\\win.ini": "windows/win.ini"}


def test_zip_hostile_names_stay_in_the_store(tmp_path, run_unpack, settings):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for raw in _hostile_names():
            archive.writestr(zipfile.ZipInfo(raw), SECRET)
    before = {p for p in tmp_path.rglob("*") if p.is_file()}

    tree = run_unpack(path)

    assert _members(tree) == {f"evil.zip › {safe}": _sha(SECRET) for safe in _hostile_names().values()}
    assert [(n.path, n.kind) for n in tree.notes] == [
        (f"evil.zip › {safe}", NoteKind.UNSAFE_NAME) for safe in _hostile_names().values()
    ]
    assert _stray_files(tmp_path, settings.store_dir, before) == set()
    assert not Path("/etc/x").exists()


def test_zip_bomb_is_stopped(tmp_path, run_unpack, settings):
    path = tmp_path / "bomb.zip"
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("note.txt", SECRET)
        with archive.open("zeros", "w") as member:
            for _ in range(200):
                member.write(zeros)

    tree = run_unpack(path, limits=Limits(ratio_floor=1 << 20))

    assert _members(tree) == {"bomb.zip › note.txt": _sha(SECRET)}
    [issue] = tree.errors
    assert (issue.path, issue.kind) == ("bomb.zip › zeros", IssueKind.LIMIT)
    assert "decompression bomb stopped" in issue.error
    stored = sum(f.stat().st_size for f in settings.store_dir.rglob("*") if f.is_file())
    assert stored < path.stat().st_size + (1 << 20)  # the image and the note; the bomb's bytes were discarded


def test_bzip2_member_bomb_is_stopped_without_decoding_it_whole(tmp_path, run_unpack):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as archive, archive.open("zeros", "w") as member:
        for _ in range(64):
            member.write(bytes(1 << 20))

    tree = run_unpack(path, limits=Limits(ratio_floor=1 << 20, max_ratio=10))

    assert _issues(tree) == {("bomb.zip › zeros", IssueKind.LIMIT)}
    assert _members(tree) == {}


def test_zip_encrypted_member_is_undecodable(tmp_path, run_unpack):
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "plain.txt").write_bytes(PAYLOAD)
    _run("zip", "-q", "-P", "hunter2", "enc.zip", "secret.txt", cwd=tmp_path)
    _run("zip", "-q", "enc.zip", "plain.txt", cwd=tmp_path)

    tree = run_unpack(tmp_path / "enc.zip")

    assert _members(tree) == {"enc.zip › plain.txt": _sha(PAYLOAD)}
    assert _issues(tree) == {("enc.zip › secret.txt", IssueKind.UNDECODABLE)}
    assert "secret.txt" in tree.errors[0].error


def _stored_zip(path: Path, members: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path.read_bytes()


def test_zip_corrupt_member_is_a_failure_and_the_rest_is_extracted(tmp_path, run_unpack):
    path = tmp_path / "bad.zip"
    data = bytearray(_stored_zip(path, {"a.txt": PAYLOAD, "b.txt": SECRET}))
    data[data.index(PAYLOAD) + 100] ^= 0xFF
    path.write_bytes(bytes(data))

    tree = run_unpack(path)

    assert _members(tree) == {"bad.zip › b.txt": _sha(SECRET)}
    assert _issues(tree) == {("bad.zip › a.txt", IssueKind.FAILURE)}
    assert "CRC" in tree.errors[0].error


def test_zip_unsupported_method(tmp_path, run_unpack):
    path = tmp_path / "ppmd.zip"
    data = bytearray(_stored_zip(path, {"a.txt": PAYLOAD, "b.txt": SECRET}))
    for signature, method_at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # first local and central record
        struct.pack_into("<H", data, data.index(signature) + method_at, 98)
    path.write_bytes(bytes(data))

    tree = run_unpack(path)

    assert _members(tree) == {"ppmd.zip › b.txt": _sha(SECRET)}
    assert _issues(tree) == {("ppmd.zip › a.txt", IssueKind.UNSUPPORTED)}


def test_truncated_zip_recovers_members_from_local_headers(tmp_path, run_unpack):
    path = tmp_path / "cut.zip"
    data = _stored_zip(path, {"a.txt": PAYLOAD, "b.txt": SECRET, "c.txt": PAYLOAD[::-1]})
    path.write_bytes(data[: data.index(PAYLOAD[::-1]) + 10])

    tree = run_unpack(path)

    assert _members(tree) == {"cut.zip › a.txt": _sha(PAYLOAD), "cut.zip › b.txt": _sha(SECRET)}
    assert _issues(tree) == {("cut.zip", IssueKind.FAILURE), ("cut.zip › c.txt", IssueKind.FAILURE)}
    assert not tree.complete


# tar ----------------------------------------------------------------------------


def _tar_add(archive: tarfile.TarFile, name: str, data: bytes = b"", **fields: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data) if data else None)


def test_tar_members_links_and_special_files(tmp_path, run_unpack):
    path = tmp_path / "rootfs.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
        _tar_add(archive, "bin", type=tarfile.DIRTYPE)
        _tar_add(archive, "bin/syncd", SECRET)
        _tar_add(archive, "bin/syncd-copy", type=tarfile.LNKTYPE, linkname="bin/syncd")
        _tar_add(archive, "bin/ghost", type=tarfile.LNKTYPE, linkname="bin/nowhere")
        _tar_add(archive, "etc/shadow", type=tarfile.SYMTYPE, linkname="/etc/shadow")
        _tar_add(archive, "dev/console", type=tarfile.CHRTYPE, devmajor=5, devminor=1)
        _tar_add(archive, "run/fifo", type=tarfile.FIFOTYPE)

    tree = run_unpack(path)

    assert tree.root.format == "tar"
    assert _members(tree) == {
        "rootfs.tar › bin/syncd": _sha(SECRET),
        "rootfs.tar › bin/syncd-copy": _sha(SECRET),
        "rootfs.tar › etc/shadow": "-> /etc/shadow",
    }
    assert _issues(tree) == {("rootfs.tar › bin/ghost", IssueKind.FAILURE)}
    assert {(n.path, n.kind) for n in tree.notes} == {
        ("rootfs.tar › etc/shadow", NoteKind.ESCAPING_LINK),
        ("rootfs.tar › dev/console", NoteKind.SPECIAL_FILE),
        ("rootfs.tar › run/fifo", NoteKind.SPECIAL_FILE),
    }


def test_tar_hostile_names_stay_in_the_store(tmp_path, run_unpack, settings):
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as archive:
        for raw in _hostile_names():
            _tar_add(archive, raw, SECRET)
    before = {p for p in tmp_path.rglob("*") if p.is_file()}

    tree = run_unpack(path)

    assert _members(tree) == {f"evil.tar › {safe}": _sha(SECRET) for safe in _hostile_names().values()}
    assert [(n.path, n.kind) for n in tree.notes] == [
        (f"evil.tar › {safe}", NoteKind.UNSAFE_NAME) for safe in _hostile_names().values()
    ]
    assert _stray_files(tmp_path, settings.store_dir, before) == set()
    assert not Path("/etc/x").exists()


def test_truncated_tar_keeps_earlier_members(tmp_path, run_unpack):
    path = tmp_path / "cut.tar"
    with tarfile.open(path, "w") as archive:
        _tar_add(archive, "a.txt", SECRET)
        _tar_add(archive, "b.txt", PAYLOAD)
    data = path.read_bytes()
    path.write_bytes(data[: data.index(PAYLOAD) + 1000])

    tree = run_unpack(path)

    assert _members(tree) == {"cut.tar › a.txt": _sha(SECRET)}
    assert ("cut.tar › b.txt", IssueKind.FAILURE) in _issues(tree)
    assert not tree.complete


def test_tar_gz_is_a_gzip_tar_chain(tmp_path, run_unpack):
    _source_tree(tmp_path / "src")
    _run("tar", "czf", str(tmp_path / "fw.tar.gz"), "etc", cwd=tmp_path / "src")

    tree = run_unpack(tmp_path / "fw.tar.gz")

    assert [tree.find(p).format for p in ("fw.tar.gz", "fw.tar.gz › fw.tar")] == ["gzip", "tar"]
    assert _members(tree) == {
        "fw.tar.gz › fw.tar": tree.find("fw.tar.gz › fw.tar").sha256,
        "fw.tar.gz › fw.tar › etc/payload.txt": _sha(PAYLOAD),
        "fw.tar.gz › fw.tar › etc/init.d/rcS": _sha(SECRET),
        "fw.tar.gz › fw.tar › etc/link": "-> payload.txt",
    }
    assert tree.complete


# 7z -----------------------------------------------------------------------------


def test_7z_members_and_symlink(tmp_path, run_unpack):
    path = tmp_path / "fw.7z"
    path.write_bytes(_archive(tmp_path, "7z"))

    tree = run_unpack(path)

    assert tree.root.format == "7z"
    assert _members(tree) == {
        "fw.7z › etc/payload.txt": _sha(PAYLOAD),
        "fw.7z › etc/init.d/rcS": _sha(SECRET),
        "fw.7z › etc/link": "-> payload.txt",
    }
    assert tree.complete


@pytest.mark.parametrize("header_encrypted", [False, True])
def test_encrypted_7z_is_undecodable(tmp_path, run_unpack, header_encrypted):
    _source_tree(tmp_path / "src")
    flags = ["-mhe=on"] if header_encrypted else []
    _run("7z", "a", "-bd", "-y", "-phunter2", *flags, str(tmp_path / "enc.7z"), "etc", cwd=tmp_path / "src")

    tree = run_unpack(tmp_path / "enc.7z")

    assert _issues(tree) == {("enc.7z", IssueKind.UNDECODABLE)}
    assert "encrypted" in tree.errors[0].error
    assert tree.root.coverage.undecodable > 0
    assert all(a.kind is not ArtifactKind.FILE or a.sha256 != _sha(SECRET) for a in tree.artifacts)


# cpio ---------------------------------------------------------------------------


def _newc(name: str, mode: int, data: bytes = b"", *, ino: int = 1, nlink: int = 1, rdev: tuple = (0, 0)) -> bytes:
    fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, *rdev, len(name) + 1, 0)
    header = b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
    header += bytes(-len(header) % 4)
    return header + data + bytes(-len(data) % 4)


def test_initramfs_cpio_devices_links_and_appended_gzip(tmp_path, run_unpack):
    inner = zlib.compressobj(wbits=31)
    appended = inner.compress(SECRET) + inner.flush()
    archive = b"".join([
        _newc(".", stat.S_IFDIR | 0o755),
        _newc("init", stat.S_IFREG | 0o755, PAYLOAD, ino=2),
        _newc("bin/sh", stat.S_IFLNK | 0o777, b"busybox", ino=3),
        _newc("dev/console", stat.S_IFCHR | 0o600, ino=4, rdev=(5, 1)),
        _newc("sbin/a", stat.S_IFREG | 0o755, ino=5, nlink=2),  # newc hard link: data with the last link
        _newc("sbin/b", stat.S_IFREG | 0o755, SECRET, ino=5, nlink=2),
        _newc("TRAILER!!!", 0),
    ])
    archive += bytes(-len(archive) % 512)
    path = tmp_path / "initramfs.cpio"
    path.write_bytes(archive + appended)

    tree = run_unpack(path)

    tail = f"initramfs.cpio › /{len(archive):#x}.trailing"
    assert tree.root.format == "cpio"
    assert _members(tree) == {
        "initramfs.cpio › /init": _sha(PAYLOAD),
        "initramfs.cpio › /bin/sh": "-> busybox",
        "initramfs.cpio › /sbin/b": _sha(SECRET),
        "initramfs.cpio › /sbin/a": _sha(SECRET),
        tail: _sha(appended),
        f"{tail} › {len(archive):#x}.trailing.unpacked": _sha(SECRET),
    }
    assert tree.find(tail).format == "gzip"
    assert [(n.path, n.kind) for n in tree.notes] == [("initramfs.cpio › /dev/console", NoteKind.SPECIAL_FILE)]
    assert tree.complete


@pytest.mark.parametrize("variant", ["newc", "crc", "odc", "bin"])
def test_cpio_variants_made_by_gnu_cpio(tmp_path, run_unpack, variant):
    path = tmp_path / "fs.cpio"
    path.write_bytes(_archive(tmp_path, variant))

    tree = run_unpack(path)

    assert tree.root.format == "cpio"
    assert _members(tree) == {
        "fs.cpio › /etc/payload.txt": _sha(PAYLOAD),
        "fs.cpio › /etc/init.d/rcS": _sha(SECRET),
        "fs.cpio › /etc/link": "-> payload.txt",
    }
    assert tree.complete


def test_truncated_cpio_keeps_earlier_members(tmp_path, run_unpack):
    path = tmp_path / "cut.cpio"
    archive = _newc("a", stat.S_IFREG | 0o644, SECRET, ino=1) + _newc("b", stat.S_IFREG | 0o644, PAYLOAD, ino=2)
    path.write_bytes(archive[:-1000])

    tree = run_unpack(path)

    assert _members(tree) == {"cut.cpio › /a": _sha(SECRET)}
    assert _issues(tree) == {("cut.cpio", IssueKind.FAILURE)}
