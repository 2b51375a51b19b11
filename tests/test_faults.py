"""Faults of the lab's own machinery during a triage: the broker restarted, the database gone for half a minute,
the disk full, a worker's process OOM-killed by the kernel, a blob rotted on disk, the same image submitted twice
at once.

The broker and the database are a Redis server and a PostgreSQL cluster of this module's own (``tests/servers.py``),
so stopping them disturbs no other test. The OOM killer is the kernel's own, in a memory cgroup of the test's; a
whole worker killed at once (a lost host) is
``tests/test_fleet.py::test_a_worker_killed_in_an_analysis_task_loses_nothing``.

Each test's docstring ends with its ``Outcome:``, the line docs/security.md quotes.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from pipeline.analyze.runner import analyze_tree
from pipeline.api.dispatch import LocalDispatcher
from pipeline.config import Detection, Limits, Settings
from pipeline.db import Database, SubmissionRecord, SubmissionState
from pipeline.ingest import CaseMetadata, ingest
from pipeline.report.html import render_html
from pipeline.scan import ScanOutcome, extraction_of_image, record_submission, triage_report, unpack_config
from pipeline.steps import BatchPolicy, analyze_step, batches_of, report_step, target_of_message, unpack_step
from pipeline.store import LocalBlobStore, file_sha256
from tests.conftest import SAMPLES
from tests.servers import PrivatePostgres, PrivateRedis
from tests.workers import FWTRIAGE, Fleet, FleetError

BIG = "linux-rootfs-backdoor.squashfs"  # ~300 unique blobs: dozens of analysis batches of a few files
SMALL = "featurephone-sc6531e.pac"
OUTAGE_SECONDS = 30
MEMORY_CGROUPS = Path("/sys/fs/cgroup/memory")
_databases = itertools.count()


def _quiet(*_: object) -> None:
    """No one watches the progress of these in-process steps."""


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PrivateRedis, PrivatePostgres]]:
    """This module's Redis and PostgreSQL, in a folder the ``postgres`` user can reach (pytest's are root's only)."""
    folder = Path(tempfile.mkdtemp(prefix="fwtriage-faults-"))
    folder.chmod(0o755)
    broker, database = PrivateRedis(folder / "redis"), PrivatePostgres(folder / "postgres")
    try:
        broker.start()
        database.create()
        database.start()
        yield broker, database
    finally:
        broker.stop()
        database.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class PrivateFleet(Fleet):
    """A fleet whose broker and results are two databases of the module's own Redis server."""

    server: PrivateRedis | None = None
    redis_db: int = 0

    def __post_init__(self) -> None:
        assert self.server is not None
        self.broker_url, self.results_url = self.server.url(self.redis_db), self.server.url(self.redis_db + 1)
        self.home.mkdir(parents=True, exist_ok=True)
        self.purge()


@pytest.fixture
def make_fleet(servers: tuple[PrivateRedis, PrivatePostgres]) -> Iterator[Callable[..., PrivateFleet]]:
    """A fleet with a fresh PostgreSQL database (an empty analysis cache: every test analyses for real)."""
    broker, postgres = servers
    made: list[PrivateFleet] = []

    def make(home: Path, **env: str) -> PrivateFleet:
        number = next(_databases)
        url = postgres.create_database(f"faults_{number}")
        fleet = PrivateFleet(home, url, server=broker, redis_db=2 * number,
                             extra_env={"FWTRIAGE_VISIBILITY_TIMEOUT": "10", **env})
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.stop()


def _wait_for_analysis_under_way(fleet: Fleet, sid: str, seconds: float = 120) -> None:
    """Until some batches are analysed and the rest are not: the middle of the submission's analysis."""
    deadline = time.monotonic() + seconds
    with fleet.database() as database:
        while True:
            record = database.get(sid)
            if record.state is SubmissionState.ANALYZING and 0 < record.progress_done < record.progress_total:
                return
            assert record.state not in (SubmissionState.DONE, SubmissionState.FAILED), "finished before the fault"
            if time.monotonic() > deadline:
                raise FleetError(f"no analysis under way after {seconds} s: {record.state}\n{fleet.logs()}")
            time.sleep(0.05)


def _assert_done_as_scanned(record: SubmissionRecord, expected: ScanOutcome) -> None:
    assert (record.state, record.failure) == (SubmissionState.DONE, None)
    assert record.report_digest == expected.report["report_digest"]


def test_redis_restarted_mid_batch(make_fleet: Callable[..., PrivateFleet], servers: tuple[PrivateRedis, ...],
                                   tmp_path: Path, sample_scans: Callable[[str], ScanOutcome]) -> None:
    """The broker (and result backend) is stopped and started again while analysis batches are queued and running.

    Outcome: the workers reconnect, every batch completes and the submission ends done with the scan's report_digest.
    """
    broker = servers[0]
    fleet = make_fleet(tmp_path / "home", FWTRIAGE_BATCH_FILES="8")
    fleet.start("unpack,report")
    fleet.start("analyze")
    (sid,) = fleet.submit(SAMPLES / "out" / BIG)
    _wait_for_analysis_under_way(fleet, sid)
    assert redis.Redis.from_url(fleet.broker_url).llen("analyze") > 0  # batches still queued across the restart
    broker.stop()
    time.sleep(2)
    broker.start()
    _assert_done_as_scanned(fleet.wait([sid], seconds=240)[sid], sample_scans(BIG))


def _database_down_mid_analysis(fleet: Fleet, postgres: PrivatePostgres, outage: Callable[[], None]) -> str:
    """Start the fleet's workers, submit the big image, and stop the database for as long as ``outage`` takes
    once its analysis is under way; returns the submission's id."""
    fleet.start("unpack,report")
    fleet.start("analyze")
    (sid,) = fleet.submit(SAMPLES / "out" / BIG)
    _wait_for_analysis_under_way(fleet, sid)
    postgres.stop()
    try:
        outage()
    finally:
        postgres.start()
    return sid


def test_postgresql_unavailable_for_30_seconds(make_fleet: Callable[..., PrivateFleet],
                                               servers: tuple[PrivateRedis, PrivatePostgres], tmp_path: Path,
                                               sample_scans: Callable[[str], ScanOutcome]) -> None:
    """The database is shut down (every connection cut) in the middle of the analysis and started 30 s later.

    Outcome: the tasks that met the outage retry with backoff, and the submission ends done with the scan's
    report_digest.
    """
    fleet = make_fleet(tmp_path / "home", FWTRIAGE_BATCH_FILES="8")
    sid = _database_down_mid_analysis(fleet, servers[1], lambda: time.sleep(OUTAGE_SECONDS))
    record = fleet.wait([sid], seconds=240)[sid]
    _assert_done_as_scanned(record, sample_scans(BIG))
    logs = [worker.log.read_text() for worker in fleet.workers]
    assert any("OperationalError" in log and "Retry in" in log for log in logs), "no task met the outage"


def _wait_until_the_broker_holds_nothing(fleet: Fleet, seconds: float = 120) -> None:
    """Until no task is queued, waiting for a retry or in a worker's hands (Redis transport: the queues' lists
    and the hash of unacknowledged messages)."""
    broker = redis.Redis.from_url(fleet.broker_url)
    deadline = time.monotonic() + seconds
    while any(broker.llen(queue) for queue in ("unpack", "analyze", "report")) or broker.hlen("unacked"):
        if time.monotonic() > deadline:
            raise FleetError(f"tasks still held after {seconds} s\n{fleet.logs()}")
        time.sleep(0.2)


def test_a_submission_stranded_by_a_long_outage_is_requeued(make_fleet: Callable[..., PrivateFleet],
                                                             servers: tuple[PrivateRedis, PrivatePostgres],
                                                             tmp_path: Path,
                                                             sample_scans: Callable[[str], ScanOutcome]) -> None:
    """The database goes down in the middle of the analysis and stays down after every task's last retry.

    Outcome: the tasks give up without being able to record it, so the submission is left unfinished with nothing
    queued; ``fwtriage requeue`` finds it idle, queues it again at the step it stopped in (audited), and it ends
    done with the scan's report_digest.
    """
    fleet = make_fleet(tmp_path / "home", FWTRIAGE_BATCH_FILES="8", FWTRIAGE_TASK_RETRIES="1")
    sid = _database_down_mid_analysis(fleet, servers[1], lambda: _wait_until_the_broker_holds_nothing(fleet))
    assert any("fwtriage.analyze failed: OperationalError" in w.log.read_text() for w in fleet.workers)
    time.sleep(2)
    with fleet.database() as database:
        assert database.get(sid).state is SubmissionState.ANALYZING  # stranded: no task left to finish it

    def requeue(*options: str) -> str:
        done = subprocess.run([str(FWTRIAGE), "requeue", "--idle", "0", *options], env=fleet.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert requeue("--dry-run").startswith(f"{sid}  {BIG}: analyzing for ")
    assert requeue().strip().endswith("queued at unpack")
    _assert_done_as_scanned(fleet.wait([sid], seconds=240)[sid], sample_scans(BIG))
    with fleet.database() as database:
        [event] = [e for e in database.audit_events(sid) if e.action == "submission.requeued"]
        assert event.detail == {"step": "unpack", "state": "analyzing"}
    assert requeue().startswith("no unfinished submission idle")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 12 MiB tmpfs: the whole fwtriage home (store and scratch must share a filesystem) on a disk that fills."""
    mountpoint = tmp_path / "home"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m,mode=0755", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): the disk-full case needs one")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "--lazy", str(mountpoint)], check=True)


def test_disk_full_ends_that_submission_cleanly(make_fleet: Callable[..., PrivateFleet], small_disk: Path,
                                                sample_scans: Callable[[str], ScanOutcome]) -> None:
    """The store's filesystem fills up while a large image is unpacked; a small one was submitted just before it.

    Outcome: the large image's submission fails with the reason ("the evidence store is full: No space left on
    device"), no report is made from the bytes that could be stored and no tree is kept for reuse; the small
    submission and the workers go on.
    """
    fleet = make_fleet(small_disk)
    fleet.start("unpack,report")
    fleet.start("analyze")
    (small,) = fleet.submit(SAMPLES / "out" / SMALL)
    (large,) = fleet.submit(SAMPLES / "out" / BIG)
    records = fleet.wait([small, large], seconds=240)
    _assert_done_as_scanned(records[small], sample_scans(SMALL))
    full = records[large]
    assert full.state is SubmissionState.FAILED
    assert "StoreFull" in full.failure and "the evidence store is full: No space left on device" in full.failure
    assert "Traceback" not in full.failure
    with fleet.database() as database:
        assert database.report(large) is None
        config = unpack_config(Settings(limits=Limits.from_env()))  # what the workers' settings digest to
        assert database.reusable_extraction(records[small].sha256, config) == small
        assert database.reusable_extraction(full.sha256, config) is None


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", limits=Limits())


@contextmanager
def memory_cgroup(limit: int) -> Iterator[Path]:
    """A memory cgroup (v1) of its own that lets the processes moved into it allocate ``limit`` more bytes: what
    they held before stays charged where it was, so their next allocations beyond it meet the kernel's OOM killer."""
    group = MEMORY_CGROUPS / f"fwtriage-test-{uuid.uuid4().hex[:12]}"
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(limit))
        yield group
    finally:
        for pid in (group / "cgroup.procs").read_text().split():  # survivors go back, or the group cannot go
            (MEMORY_CGROUPS / "cgroup.procs").write_text(pid)
        group.rmdir()


def _oom_kills(group: Path) -> int:
    """How many processes the kernel's OOM killer has killed in the group."""
    counters = dict(line.split() for line in (group / "memory.oom_control").read_text().splitlines())
    return int(counters["oom_kill"])


def test_a_worker_process_killed_by_the_oom_killer(make_fleet: Callable[..., PrivateFleet], tmp_path: Path,
                                                    sample_scans: Callable[[str], ScanOutcome]) -> None:
    """In the middle of the analysis, the analysis worker's pool process (the one running the batch) is moved into
    a memory cgroup with 1 MiB to spare, so the kernel's OOM killer kills it (SIGKILL) at its next allocations.

    Outcome: the worker sees its pool process lost and the batch it held (unacknowledged) is delivered again to the
    process started in its place; the kernel counted one OOM kill and the submission ends done with the scan's
    report_digest.
    """
    fleet = make_fleet(tmp_path / "home", FWTRIAGE_BATCH_FILES="4")
    fleet.start("unpack,report")
    analyst = fleet.start("analyze")
    (sid,) = fleet.submit(SAMPLES / "out" / BIG)
    _wait_for_analysis_under_way(fleet, sid)
    (pool,) = (pid for pid in analyst.pids() if pid != analyst.process.pid)
    with memory_cgroup(limit=2**20) as group:
        (group / "cgroup.procs").write_text(str(pool))
        record = fleet.wait([sid], seconds=240)[sid]
        assert _oom_kills(group) == 1, fleet.logs()
    assert "exited with 'signal 9 (SIGKILL)'" in analyst.log.read_text()
    _assert_done_as_scanned(record, sample_scans(BIG))


def _corrupt(path: Path) -> None:
    """Flip one byte of a read-only stored blob, as a failing disk or a careless hand would."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_blob_corrupted_on_disk_is_reported_not_analysed(settings: Settings) -> None:
    """A blob of the extraction tree (one with findings) is altered in the store after unpacking, before analysis.

    Outcome: the re-hash on read detects it; its analyzers record "blob corrupted on disk", its findings are not
    reported, and the verdict is incomplete with that reason.
    """
    store = LocalBlobStore(settings.store_dir)
    submission = ingest(SAMPLES / "out" / SMALL, store, CaseMetadata())
    tree = extraction_of_image(submission, store, settings, _quiet, [])
    intact = analyze_tree(tree, store, workers=1)
    victim = next(sha256 for sha256 in sorted(intact.findings) if sha256 != submission.sha256)
    _corrupt(store.path(victim))

    analysis = analyze_tree(tree, store, workers=1)
    report = triage_report(submission, tree, analysis, store, Detection(), _quiet, None, settings)
    damaged = [issue for issue in report["analysis"]["issues"] if issue["sha256"] == victim]
    assert damaged and all("blob corrupted on disk" in issue["error"] for issue in damaged)
    assert victim not in analysis.findings
    assert victim not in {finding["artifact"]["sha256"] for finding in report["findings"]}
    assert report["verdict"]["label"] == "incomplete" and "blob corrupted on disk" in report["verdict"]["summary"]
    assert report["custody"]["stored_copy"]["intact"] is True  # the image itself is untouched


def test_a_corrupted_original_is_reported_in_the_custody(settings: Settings) -> None:
    """The stored original image is altered after it was unpacked, before the report is built.

    Outcome: the report's custody re-hash says the stored copy is not intact, with the hashes it now has, and the
    HTML report says NOT VERIFIED.
    """
    store = LocalBlobStore(settings.store_dir)
    submission = ingest(SAMPLES / "out" / SMALL, store, CaseMetadata())
    tree = extraction_of_image(submission, store, settings, _quiet, [])
    _corrupt(store.path(submission.sha256))

    analysis = analyze_tree(tree, store, workers=1)
    report = triage_report(submission, tree, analysis, store, Detection(), _quiet, None, settings)
    stored = report["custody"]["stored_copy"]
    assert stored["intact"] is False and stored["sha256"] != submission.sha256
    assert "NOT VERIFIED" in render_html(report)


def test_an_original_altered_before_unpacking_fails_its_submission(settings: Settings) -> None:
    """The stored original image is altered after it was received and before it is unpacked (the service's local
    dispatch runs the triage).

    Outcome: the unpack re-hashes it first and refuses: the submission fails with the reason and the hash the
    bytes now have; no tree and no report are made from the altered bytes.
    """
    store = LocalBlobStore(settings.store_dir)
    with Database.for_settings(settings) as database:
        submission = ingest(SAMPLES / "out" / SMALL, store, CaseMetadata())
        record_submission(database, submission)
        _corrupt(store.path(submission.sha256))
        now = file_sha256(store.path(submission.sha256))
        dispatcher = LocalDispatcher(database, store, settings, Detection())
        dispatcher.dispatch(submission.id)
        dispatcher.close()
        record = database.get(submission.id)
        assert record.state is SubmissionState.FAILED
        assert f"the stored original cannot be unpacked: blob {submission.sha256} is corrupted on disk (hashes to " \
               f"{now}); restore it from the exhibit" in record.failure
        assert database.load_extraction(submission.id) is None and database.report(submission.id) is None


def test_the_same_image_submitted_twice_at_once(make_fleet: Callable[..., PrivateFleet], tmp_path: Path,
                                                sample_scans: Callable[[str], ScanOutcome]) -> None:
    """Two ``fwtriage submit`` of one image run at the same moment, on a fleet with two unpacking processes.

    Outcome: two submissions, one analysis (the second's analyzer calls are 0, all its results cache hits), and
    both reports have the scan's report_digest.
    """
    fleet = make_fleet(tmp_path / "home")
    fleet.start("unpack,report", concurrency=2)
    fleet.start("analyze")
    with ThreadPoolExecutor(max_workers=2) as pool:
        submitted = list(pool.map(lambda _: fleet.submit(SAMPLES / "out" / BIG), range(2)))
    ids = [sid for ids in submitted for sid in ids]
    records = fleet.wait(ids, seconds=240)
    assert len(set(ids)) == 2
    for record in records.values():
        _assert_done_as_scanned(record, sample_scans(BIG))
    calls = sorted(record.analyzer_calls for record in records.values())
    assert calls[0] == 0 < calls[1]
    assert sum(record.cache_hits for record in records.values()) >= calls[1]


def test_exactly_the_batch_that_completes_the_analysis_queues_the_report(settings: Settings) -> None:
    """The fleet's join is the database's count of analysed files (a Redis chord lost it across a restart).

    Outcome: of a submission's batches only the one that completes the count is the last (it queues the report);
    the same batch delivered again says so again, which the idempotent report step absorbs.
    """
    store = LocalBlobStore(settings.store_dir)
    submission = ingest(SAMPLES / "out" / SMALL, store, CaseMetadata())
    with Database.for_settings(settings) as database:
        record_submission(database, submission)
        tree = unpack_step(database, store, settings, submission.id)
        assert tree is not None
        batches = [[target_of_message(message, store) for message in batch]
                   for batch in batches_of(tree, store, BatchPolicy(files=2))]
        assert len(batches) > 2
        lasts = [analyze_step(database, submission.id, batch).last for batch in batches]
        assert lasts == [False] * (len(batches) - 1) + [True]
        assert analyze_step(database, submission.id, batches[0]).last
        assert report_step(database, store, submission.id, Detection(), settings) is not None
