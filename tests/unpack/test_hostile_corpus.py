"""The hostile corpus through the real unpacker, analyzers and report: every case ends with its documented outcome.

Each test's docstring holds one line ``Outcome: ...``, the sentence that
``docs/security.md`` lists for the case.
"""

from __future__ import annotations

import hashlib
import re
import stat
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.analyze.base import Target
from pipeline.analyze.iocs import IocsAnalyzer
from pipeline.analyze.strings import iter_buffer_strings
from pipeline.analyze.yara_scan import YaraScanner
from pipeline.config import Detection, Limits, Settings
from pipeline.ingest import CaseMetadata
from pipeline.model import LINEAGE_SEPARATOR, ArtifactKind, ExtractionTree, IssueKind, NoteKind
from pipeline.scan import ScanRequest, scan_image
from pipeline.store import CHUNK, LocalBlobStore
from pipeline.unpack import unpack
from pipeline.unpack.safety import MAX_COMPONENT, MAX_NAME, Budget
from tests.conftest import Unpacker
from tests.hostile import corpus
from tests.hostile.zip_quine import zip_quine


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(tree: ExtractionTree) -> dict[str, str]:
    """sha256 → lineage path of every regular member below the root."""
    return {a.sha256: a.lineage_path for a in tree.artifacts[1:] if a.kind is ArtifactKind.FILE}


@pytest.fixture
def canary(settings: Settings) -> Path:
    """An empty directory next to the work directory: anything written outside the work directory lands here."""
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    path = settings.work_dir.parent / "canary"
    path.mkdir()
    return path


def _assert_nothing_escaped(root: Path, canary: Path) -> None:
    assert list(canary.iterdir()) == []
    assert not [p for p in root.rglob("*escape*")], "a member name became a path on disk"
    assert not Path("/etc/escape-absolute").exists()


def _assert_safe(member: str, rooted: bool) -> None:
    assert "\x00" not in member and "\\" not in member
    assert rooted == member.startswith("/")
    parts = member.strip("/").split("/")
    assert ".." not in parts and "." not in parts
    assert not any(ch in corpus.LOOKALIKES for ch in member)
    assert all(len(part.encode()) <= MAX_COMPONENT for part in parts)
    assert len(member) <= MAX_NAME + 1


# --- traversal ---------------------------------------------------------------------------------------------

TRAVERSAL_ARCHIVES = {
    "zip": (lambda path: corpus.write_zip(path, corpus.traversal_members()), False),
    "tar": (lambda path: corpus.write_tar(path, corpus.traversal_members()), False),
    "cpio": (corpus.traversal_cpio, True),
}


@pytest.mark.parametrize("fmt", sorted(TRAVERSAL_ARCHIVES))
def test_traversal_names_stay_in_the_store(fmt: str, tmp_path: Path, run_unpack: Unpacker, store: LocalBlobStore,
                                           canary: Path) -> None:
    """Outcome: every member is stored under its hash with a sanitised lineage name, each unsafe name is noted, nothing
    is written outside the work directory.
    """
    build, rooted = TRAVERSAL_ARCHIVES[fmt]
    image = build(tmp_path / f"traversal.{fmt}")
    tree = run_unpack(image)
    assert tree.complete, tree.errors
    files = _files(tree)
    noted = {n.path for n in tree.notes if n.kind is NoteKind.UNSAFE_NAME}
    assert all(len(n.note) < 2 * MAX_NAME for n in tree.notes)  # a 64 KiB name is quoted cut short, not whole
    for hostile in corpus.TRAVERSAL_NAMES:
        path = files[_sha(hostile.content)]  # every member is there, found by its bytes
        assert store.path(_sha(hostile.content)).read_bytes() == hostile.content
        member = path.split(LINEAGE_SEPARATOR)[-1]
        _assert_safe(member, rooted)
        # tar itself ends a ustar name at its NUL, and a cpio (an initramfs) holds absolute paths by nature:
        # what is left are ordinary names; every other name was rewritten
        if (fmt, hostile.label) not in (("tar", "nul"), ("cpio", "absolute")):
            assert path in noted, hostile.label
    _assert_nothing_escaped(tmp_path, canary)


# --- links and special files -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["tar", "cpio"])
def test_links_are_recorded_never_followed(fmt: str, tmp_path: Path, run_unpack: Unpacker) -> None:
    """Outcome: hard links get their target's bytes (a link out of the archive is a recorded failure), symlink chains
    and loops are recorded with their targets and never followed.
    """
    image = (corpus.links_tar if fmt == "tar" else corpus.links_cpio)(tmp_path / f"links.{fmt}")
    tree = run_unpack(image)
    prefix = "/" if fmt == "cpio" else ""
    by_name = {a.name: a for a in tree.artifacts[1:]}
    assert by_name[f"{prefix}data/hard"].sha256 == by_name[f"{prefix}data/original"].sha256 == _sha(corpus.LINKED)
    links = {a.name: a.link_target for a in tree.artifacts if a.kind is ArtifactKind.SYMLINK}
    assert links == {f"{prefix}{name}": target for name, target in corpus.SYMLINK_CHAIN + corpus.SYMLINK_LOOP}
    assert all(a.size == 0 for a in tree.artifacts if a.kind is ArtifactKind.SYMLINK)
    escaping = {n.path.split(LINEAGE_SEPARATOR)[-1] for n in tree.notes if n.kind is NoteKind.ESCAPING_LINK}
    assert escaping == {f"{prefix}chain/c"}
    assert not any(_sha(Path("/etc/passwd").read_bytes()) == a.sha256 for a in tree.artifacts)
    if fmt == "tar":
        assert [(e.path.split(LINEAGE_SEPARATOR)[-1], e.kind) for e in tree.errors] == [
            ("data/hard-out", IssueKind.FAILURE)]
        assert by_name["chain/a/through-link"].kind is ArtifactKind.FILE  # a name, not a path through the link
    else:
        assert tree.complete, tree.errors


@pytest.mark.parametrize("fmt", ["tar", "cpio"])
def test_device_nodes_and_fifos_are_noted_never_created(fmt: str, tmp_path: Path, run_unpack: Unpacker,
                                                        settings: Settings) -> None:
    """Outcome: character and block devices and FIFOs are noted as special files and never created on disk."""
    image = (corpus.links_tar if fmt == "tar" else corpus.links_cpio)(tmp_path / f"specials.{fmt}")
    tree = run_unpack(image)
    prefix = "/" if fmt == "cpio" else ""
    specials = {n.path.split(LINEAGE_SEPARATOR)[-1] for n in tree.notes if n.kind is NoteKind.SPECIAL_FILE}
    assert specials == {f"{prefix}{name}" for name, _, _ in corpus.SPECIALS}
    assert not any(a.name.endswith(("dev/mem", "dev/sda", "run/fifo")) for a in tree.artifacts)
    on_disk = [p for p in settings.home.rglob("*") if not (p.is_file() or p.is_dir()) or p.is_symlink()]
    assert on_disk == []
    assert not any(stat.S_ISCHR(p.lstat().st_mode) or stat.S_ISFIFO(p.lstat().st_mode)
                   for p in settings.home.rglob("*"))


# --- filesystems with a directory loop ---------------------------------------------------------------------


@pytest.mark.parametrize("build", [corpus.ext4_with_loop, corpus.squashfs_with_loop], ids=["ext4", "squashfs"])
def test_directory_loop_is_walked_once_and_noted(build: Callable[[Path], Path], tmp_path: Path,
                                                 run_unpack: Unpacker) -> None:
    """Outcome: a directory that contains itself is walked once, the loop noted as a duplicate, its file extracted
    once.
    """
    image = build(tmp_path)
    started = time.monotonic()
    tree = run_unpack(image)
    assert time.monotonic() - started < 30
    assert [a.name for a in tree.artifacts[1:] if a.kind is ArtifactKind.FILE] == ["/d/file"]
    assert tree.artifacts[1].sha256 == _sha(corpus.LOOP_FILE)
    loops = [n for n in tree.notes if n.kind is NoteKind.DUPLICATE]
    assert len(loops) == 1 and "directory loop" in loops[0].note
    assert tree.complete, tree.errors


# --- raw dump with overlapping signatures ------------------------------------------------------------------


def test_overlapping_chunks_are_carved_once(tmp_path: Path, run_unpack: Unpacker) -> None:
    """Outcome: a signature inside an already carved chunk is not carved again, and coverage counts its bytes once."""
    inner = b"payload of the gzip inside the zip\n" * 50
    image, offset, length = corpus.overlapping_dump(tmp_path / "dump.bin", inner)
    tree = run_unpack(image)
    carved = [a for a in tree.artifacts if a.kind is ArtifactKind.CARVED]
    assert [(a.offset, a.size, a.format) for a in carved] == [(offset, length, "zip")]
    assert [a.lineage_path for a in tree.artifacts if a.sha256 == _sha(inner)] == [
        f"dump.bin › {offset:#x}.zip › inner.gz › inner"]
    root = tree.root.coverage
    assert root is not None and root.carved == length
    assert root.bytes == image.stat().st_size == (root.unpacked + root.carved + root.padding + root.unknown
                                                  + root.undecodable)


# --- recursion -----------------------------------------------------------------------------------------------


def test_hundred_level_nest_stops_at_the_depth_limit(tmp_path: Path, run_unpack: Unpacker) -> None:
    """Outcome: a 100-level gzip/tar/zip nest stops at the depth limit, recorded, and the verdict is incomplete."""
    image = corpus.deep_nest(tmp_path / "nest.gz")
    tree = run_unpack(image)
    limit = Limits().max_depth
    assert tree.max_depth == limit
    [error] = tree.errors
    assert error.kind is IssueKind.LIMIT and f"depth limit of {limit} reached" in error.error
    assert not tree.complete
    assert _sha(corpus.NESTED_PAYLOAD) not in {a.sha256 for a in tree.artifacts}


def test_zip_that_contains_itself_is_unpacked_once(tmp_path: Path, settings: Settings,
                                                   store: LocalBlobStore) -> None:
    """Outcome: a quine zip (its only member is the archive itself) is opened once: the member is noted as one of its
    own ancestors and not unpacked again; the report is complete and finds nothing.
    """
    image = tmp_path / "quine.zip"
    image.write_bytes(zip_quine())
    with zipfile.ZipFile(image) as archive:  # the premise: a real quine, its CRC checked on read
        assert archive.read("quine.zip") == image.read_bytes()
    request = ScanRequest(image, CaseMetadata(case="CASE-QUINE", exhibit="Q1"))
    outcome = scan_image(request, tmp_path / "report", store=store, settings=settings, detection=Detection())
    extraction, digest = outcome.report["extraction"], _sha(image.read_bytes())
    assert [(n["depth"], n["format"], n["sha256"]) for n in extraction["tree"]] == [(0, "zip", digest),
                                                                                (1, "zip", digest)]
    [note] = extraction["notes"]
    assert note["kind"] == str(NoteKind.DUPLICATE) and "contains one of its own ancestors" in note["note"]
    assert note["path"].split(LINEAGE_SEPARATOR)[-1] == "quine.zip"
    assert extraction["complete"] and not extraction["errors"]
    assert outcome.report["verdict"]["label"] == "clean"


# --- sparse bomb --------------------------------------------------------------------------------------------


def test_ten_gigabyte_sparse_image_stops_at_the_bytes_budget(tmp_path: Path, settings: Settings,
                                                             store: LocalBlobStore) -> None:
    """Outcome: an Android sparse image expanding to 10 GiB stops at the image's bytes budget, recorded, and leaves
    nothing on disk.
    """
    image = corpus.sparse_bomb(tmp_path / "system.img")
    limits = Limits(total_bytes_floor=64 << 20)
    budgets: list[Budget] = []
    tree = unpack(image, store=store, settings=Settings(home=settings.home, limits=limits),
                  progress=lambda _artifact, budget: budgets.append(budget))
    [error] = tree.errors
    assert error.kind is IssueKind.LIMIT and "total extracted bytes limit" in error.error
    assert budgets[-1].written_bytes <= limits.total_bytes_floor + CHUNK
    used = sum(p.stat().st_size for p in settings.home.rglob("*") if p.is_file())
    assert used < 1 << 20, "the stopped member's bytes were left on disk"


# --- report XSS ---------------------------------------------------------------------------------------------


def test_html_and_script_in_member_names_are_escaped_in_the_report(tmp_path: Path, settings: Settings,
                                                                   store: LocalBlobStore) -> None:
    """Outcome: member names that are HTML or script show escaped in the HTML report, never as a raw tag."""
    members = [(name, f"member named {name}\n".encode()) for name in corpus.XSS_NAMES]
    image = corpus.write_zip(tmp_path / "xss.zip", members)
    request = ScanRequest(image, CaseMetadata(case="CASE-XSS", exhibit="<b>SEAL</b>"))
    outcome = scan_image(request, tmp_path / "report", store=store, settings=settings, detection=Detection())
    html = next(p for p in outcome.files if p.suffix == ".html").read_text()
    assert "onerror=alert(1)&gt;.bin" in html
    assert "<img src=x" not in html
    assert "<script>alert(1)" not in html and "</script><script>" not in html
    assert "<b>SEAL</b>" not in html


# --- regex and YARA bombs -----------------------------------------------------------------------------------

IOC_BOMBS: dict[str, Callable[[int], bytes]] = {
    "dotted-labels": lambda n: b"a." * (n // 2),
    "url-then-labels": lambda n: b"http://" + b"a" * n,
    "url-then-dotted-hyphens": lambda n: b"http://" + b"a-." * (n // 3),
    "plus-then-digits": lambda n: b"+" + b"1" * n,
    "sms-then-spaced-digits": lambda n: b"AT+CMGS=" + b"1 " * (n // 2),
    "equals-run": lambda n: b"=" * n,
    "base64-run": lambda n: b"QUFB" * (n // 4) + b"=",
    "at-signs": lambda n: b"a@" * (n // 2),
    "colons": lambda n: b"1:" * (n // 2),
    "dotted-quads": lambda n: b"1.1." * (n // 4),
}
BOMB_SIZE = 1 << 20


def _linear(run: Callable[[bytes], object], make: Callable[[int], bytes]) -> tuple[float, float]:
    """Best-of-three times of ``run`` on 1x and 4x the bomb (best-of tames noise from concurrent tests)."""
    times = []
    for size in (BOMB_SIZE // 4, BOMB_SIZE):
        data = make(size)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            run(data)
            best = min(best, time.perf_counter() - started)
        times.append(best)
    return times[0], times[1]


@pytest.mark.parametrize("bomb", sorted(IOC_BOMBS))
def test_ioc_regexes_stay_linear_on_bombs(bomb: str) -> None:
    """Outcome: strings built to make the IOC regexes backtrack are scanned in time linear in their size, with no false
    endpoint.
    """
    analyzer = IocsAnalyzer()
    found = analyzer.findings(analyzer.collect(IOC_BOMBS[bomb](BOMB_SIZE)))
    assert [f.endpoint for f in found if f.endpoint is not None and f.endpoint.kind.value != "phone"] == []
    small, large = _linear(lambda data: analyzer.findings(analyzer.collect(data)), IOC_BOMBS[bomb])
    assert large < max(small, 0.005) * 16, (small, large)  # 4x the input; quadratic would be 16x


def test_strings_extraction_stays_linear_on_one_huge_run() -> None:
    """Outcome: a 1 MiB printable run is cut into bounded overlapping pieces in linear time."""
    pieces = list(iter_buffer_strings(b"a." * (BOMB_SIZE // 2)))
    assert max(len(p.text) for p in pieces) == 4096 and pieces[-1].complete
    small, large = _linear(lambda data: list(iter_buffer_strings(data)), IOC_BOMBS["dotted-labels"])
    assert large < max(small, 0.005) * 16, (small, large)


def test_yara_near_matches_stay_linear(tmp_path: Path) -> None:
    """Outcome: a file packed with near-matches of every rule string is scanned by YARA in linear time, with no
    finding.
    """
    texts = sorted({m for rule in (Path(__file__).parents[2] / "rules").rglob("*.yar")
                    for m in re.findall(r'"([^"\\]{6,64})"', rule.read_text())})
    unit = b"\n".join(text.encode()[:-1] + b"#" for text in texts) + b"\n"
    scanner = YaraScanner()

    def scan(data: bytes) -> list:
        path = tmp_path / f"near-{len(data)}"
        path.write_bytes(data)
        return scanner.analyze(Target(path, _sha(data), len(data), "data"))

    def make(size: int) -> bytes:
        return (unit * (size // len(unit) + 1))[:size]

    assert scan(make(BOMB_SIZE)) == []
    small, large = _linear(scan, make)
    assert large < max(small, 0.005) * 16, (small, large)
