"""The unpacking child process: a reader that exhausts memory, crashes in C, spins, hangs or raises ends its
child, never the test process, and comes back as an incomplete tree that says why; a normal image gives the
same tree, the same progress and the same report digest in both isolation modes.

The hostile readers are format classes of this module, registered only for the test that uses them (the
child imports them by name); each is triggered by its own magic prefix.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import GIB, MIB, Detection, Isolation, Limits, Settings
from pipeline.ingest import ingest
from pipeline.model import ExtractionTree, IssueKind, Submission
from pipeline.report.html import render_html
from pipeline.report.schema import schema_errors
from pipeline.scan import ScanRequest, Stage, StageProgress, _quiet, scan_image, unpack_guarded
from pipeline.store import LocalBlobStore
from pipeline.unpack import registry
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.isolation import UnpackerRaised, UnpackJob, unpack_in_child
from pipeline.unpack.output import Output

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "out"


def _hog() -> None:
    """Touches 64 MiB after 64 MiB and keeps them all, without end: far beyond any limit."""
    held = []
    while True:
        held.append(bytes(64 * MIB))


class MemoryHog(Format):
    name = "test-hog"
    magics = (Magic(0, b"FWT-HOG\0"),)

    def extract(self, source: Source, out: Output) -> None:
        _hog()


class MemoryHogWhileIdentifying(Format):
    """Exhausts memory where the walker does not expect it: while telling whether a file is of its format."""

    name = "test-hog-identify"

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        if head.startswith(b"FWT-HOGID\0"):
            _hog()
        return False

    def extract(self, source: Source, out: Output) -> None:
        raise AssertionError("never reached")


class Segfault(Format):
    """A C extension reading address 0."""

    name = "test-segfault"
    magics = (Magic(0, b"FWT-SEGV\0"),)

    def extract(self, source: Source, out: Output) -> None:
        ctypes.string_at(0)


class Spinner(Format):
    """Computes forever."""

    name = "test-spinner"
    magics = (Magic(0, b"FWT-SPIN\0"),)

    def extract(self, source: Source, out: Output) -> None:
        while True:
            pass


class Sleeper(Format):
    """Waits forever, burning no CPU (a reader blocked on something that never comes)."""

    name = "test-sleeper"
    magics = (Magic(0, b"FWT-HANG\0"),)

    def extract(self, source: Source, out: Output) -> None:
        while True:
            time.sleep(1)


class Raiser(Format):
    """Raises while extracting, as a library does on input it cannot parse."""

    name = "test-raiser"
    magics = (Magic(0, b"FWT-RAISE\0"),)

    def extract(self, source: Source, out: Output) -> None:
        raise RuntimeError("the header says 2**64 entries")


class RaiserWhileIdentifying(Format):
    """Raises where the walker does not expect it: a bug of ours, not a hostile input."""

    name = "test-raiser-identify"

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        if head.startswith(b"FWT-RAISEID\0"):
            raise LookupError("a bug in identification")
        return False

    def extract(self, source: Source, out: Output) -> None:
        raise AssertionError("never reached")


HOSTILE = (MemoryHog, MemoryHogWhileIdentifying, Segfault, Spinner, Sleeper, Raiser, RaiserWhileIdentifying)


@pytest.fixture(autouse=True)
def hostile_formats() -> Iterator[None]:
    for fmt in HOSTILE:
        registry.register(fmt)
    yield
    for fmt in HOSTILE:
        registry.unregister(fmt)


def _settings(tmp_path: Path, **isolation: object) -> Settings:
    """Tight limits, so each hostile reader is stopped within seconds."""
    bounds = {"memory": GIB, "cpu_seconds": 3, "wall_seconds": 60.0, **isolation}
    return Settings(home=tmp_path / "home", limits=Limits(tool_memory=512 * MIB, extractor_seconds=1.0),
                    isolation=Isolation(**bounds))  # type: ignore[arg-type]


def _submission(store: LocalBlobStore, tmp_path: Path, content: bytes, name: str = "exhibit.bin") -> Submission:
    image = tmp_path / name
    image.write_bytes(content.ljust(4096, b"\xa5"))
    return ingest(image, store)


def _job(store: LocalBlobStore, tmp_path: Path, content: bytes) -> UnpackJob:
    submission = _submission(store, tmp_path, content)
    return UnpackJob(store.path(submission.sha256), submission.filename, submission.sha256, submission.size)


def _unpack(tmp_path: Path, content: bytes, **isolation: object) -> ExtractionTree:
    settings = _settings(tmp_path, **isolation)
    store = LocalBlobStore(settings.store_dir)
    return unpack_in_child(_job(store, tmp_path, content), store, settings, lambda done, detail: None)


def _only_issue(tree: ExtractionTree) -> tuple[str, IssueKind]:
    assert not tree.complete
    assert len(tree.errors) == 1, tree.errors
    return tree.errors[0].error, tree.errors[0].kind


def test_a_reader_that_allocates_far_beyond_the_memory_limit_is_stopped_by_it(tmp_path: Path) -> None:
    tree = _unpack(tmp_path, b"FWT-HOG\0")
    error, kind = _only_issue(tree)
    assert (error, kind) == ("test-hog: ran out of memory", IssueKind.LIMIT)
    assert tree.root.format == "test-hog"


def test_memory_exhausted_outside_a_reader_ends_the_child_with_the_limit_named(tmp_path: Path) -> None:
    tree = _unpack(tmp_path, b"FWT-HOGID\0")
    error, kind = _only_issue(tree)
    assert kind is IssueKind.LIMIT
    assert error.startswith("unpacking stopped: it ran out of memory (limit 1 GiB)")
    assert [a.lineage for a in tree.artifacts] == [("exhibit.bin",)]
    assert tree.coverage.unknown == tree.coverage.bytes == 4096


def test_a_reader_that_segfaults_kills_its_child_only(tmp_path: Path) -> None:
    error, kind = _only_issue(_unpack(tmp_path, b"FWT-SEGV\0"))
    assert kind is IssueKind.FAILURE
    assert error.startswith("a reader crashed the unpacking process: SIGSEGV (Segmentation fault)")
    healthy = _unpack(tmp_path / "after", (SAMPLES / "hostile-traversal.tar").read_bytes())
    assert len(healthy.artifacts) > 1, "the next image is unpacked as if nothing had happened"


def test_a_nested_crash_names_the_last_artifact_finished(tmp_path: Path) -> None:
    import tarfile

    inner = tmp_path / "crash.bin"
    inner.write_bytes(b"FWT-SEGV\0".ljust(1024, b"\0"))
    bundle = tmp_path / "bundle.tar"
    with tarfile.open(bundle, "w") as tar:
        tar.add(inner, arcname="a/crash.bin")
    error, _ = _only_issue(_unpack(tmp_path, bundle.read_bytes()))
    assert "SIGSEGV" in error
    assert error.endswith("the last artifact finished was exhibit.bin")


def test_a_reader_that_spins_hits_the_cpu_time_limit(tmp_path: Path) -> None:
    error, kind = _only_issue(_unpack(tmp_path, b"FWT-SPIN\0"))
    assert (error, kind) == ("unpacking stopped: the CPU time limit of 3 s was reached", IssueKind.LIMIT)


def test_a_reader_that_hangs_is_killed_at_the_wall_clock_limit(tmp_path: Path) -> None:
    started = time.monotonic()
    error, kind = _only_issue(_unpack(tmp_path, b"FWT-HANG\0", wall_seconds=2.0))
    assert kind is IssueKind.LIMIT
    assert error == ("unpacking stopped: it did not finish within the wall-clock limit of 2 s (a reader that "
                     "never returns)")
    assert time.monotonic() - started < 10


def test_a_reader_that_raises_is_recorded_by_the_walker_in_the_child(tmp_path: Path) -> None:
    error, kind = _only_issue(_unpack(tmp_path, b"FWT-RAISE\0"))
    assert (error, kind) == ("test-raiser could not parse it: RuntimeError: the header says 2**64 entries",
                             IssueKind.FAILURE)


def test_an_exception_of_the_walker_itself_is_raised_again_in_the_parent(tmp_path: Path) -> None:
    with pytest.raises(UnpackerRaised, match=r"^LookupError: a bug in identification$"):
        _unpack(tmp_path, b"FWT-RAISEID\0")


def test_a_scan_of_a_crashing_image_reports_the_crash_and_the_isolation(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    image = tmp_path / "crash.bin"
    image.write_bytes(b"FWT-SEGV\0".ljust(4096, b"\0"))
    outcome = scan_image(ScanRequest(image), tmp_path / "out", store=LocalBlobStore(settings.store_dir),
                         settings=settings, detection=Detection())
    report = outcome.report
    assert outcome.internal_errors == []
    assert report["verdict"]["label"] == "incomplete"
    assert "SIGSEGV" in report["extraction"]["errors"][0]["error"]
    assert report["isolation"]["readers"] == "subprocess"
    assert report["isolation"]["limits"]["reader_memory"] == GIB
    assert schema_errors(report) == []
    html = render_html(report)
    assert "in a child process with its own limits" in html and "1,024 MiB" in html


def test_the_walker_raising_in_the_child_is_an_internal_error_of_the_unpack_stage(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = LocalBlobStore(settings.store_dir)
    failures: list[str] = []
    tree = unpack_guarded(_submission(store, tmp_path, b"FWT-RAISEID\0"), store, settings, _quiet, failures)
    assert failures == ["internal error in the unpack stage: LookupError: a bug in identification"]
    assert tree.errors[0].error == failures[0] and tree.errors[0].kind is IssueKind.FAILURE


def _recording(seen: list[tuple[int, str]]) -> StageProgress:
    def record(stage: Stage, done: int, total: int | None, detail: str) -> None:
        seen.append((done, detail))

    return record


def _tree_digest(tree: ExtractionTree) -> str:
    return hashlib.sha256(json.dumps(tree.to_dict(), sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("sample", ["linux-rootfs-backdoor.squashfs", "android-ota-update.zip"])
def test_a_normal_image_gives_the_same_tree_and_progress_in_both_modes(sample: str, tmp_path: Path) -> None:
    """squashfs goes through an external extractor, which must live with the child's own limits."""
    results = {}
    for mode in ("in-process", "subprocess"):
        settings = Settings(home=tmp_path / mode, isolation=Isolation(mode=mode))
        store = LocalBlobStore(settings.store_dir)
        submission = _submission(store, tmp_path, (SAMPLES / sample).read_bytes(), sample)
        seen: list[tuple[int, str]] = []
        failures: list[str] = []
        tree = unpack_guarded(submission, store, settings, _recording(seen), failures)
        assert failures == [] and tree.complete, tree.errors
        results[mode] = (_tree_digest(tree), seen)
    assert results["in-process"] == results["subprocess"]
    assert len(results["subprocess"][1]) > 10


def test_a_normal_scan_has_the_same_report_digest_in_both_modes(tmp_path: Path) -> None:
    reports = {}
    for mode in ("in-process", "subprocess"):
        settings = Settings(home=tmp_path / mode, isolation=Isolation(mode=mode))
        outcome = scan_image(ScanRequest(SAMPLES / "rootfs.cramfs"), tmp_path / mode / "out",
                             store=LocalBlobStore(settings.store_dir), settings=settings, detection=Detection())
        reports[mode] = outcome.report
    assert reports["in-process"]["report_digest"] == reports["subprocess"]["report_digest"]
    assert reports["in-process"]["isolation"]["readers"] == "in-process"
    assert "reader_memory" not in reports["in-process"]["isolation"]["limits"]


def test_the_isolation_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FWTRIAGE_ISOLATION", "in-process")
    monkeypatch.setenv("FWTRIAGE_READER_MEMORY", str(3 * GIB))
    assert Settings.from_env().isolation == Isolation(mode="in-process", memory=3 * GIB)
    monkeypatch.setenv("FWTRIAGE_ISOLATION", "container")
    with pytest.raises(ValueError, match="FWTRIAGE_ISOLATION must be one of subprocess, in-process"):
        Isolation.from_env()
