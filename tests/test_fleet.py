"""The distributed pipeline for real: ``fwtriage worker`` processes on Redis (and RabbitMQ), SQLite and PostgreSQL.

The reference for every image is ``fwtriage scan`` of it in-process (the ``sample_scans`` fixture): a fleet must
reach the same ``report_digest``, whatever the broker, the database, the batching or a worker killed mid-task.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from pipeline.db import SubmissionState
from pipeline.scan import ScanOutcome
from tests.conftest import SAMPLES, fresh_postgres
from tests.workers import FWTRIAGE, RABBITMQ_URL, Fleet

# a backdoor, a clean control, a feature phone, an Android OTA, and two hostile images the report calls incomplete
BATCH = ("linux-rootfs-backdoor.squashfs", "linux-rootfs-clean.squashfs", "featurephone-sc6531e.pac",
         "android-ota-update.zip", "hostile-truncated.squashfs", "hostile-zip-bomb.zip")
BIG = "linux-rootfs-backdoor.squashfs"  # ~300 unique blobs: many analysis batches when they are small
VISIBILITY_SECONDS = 8  # the kill test's broker hands an unacknowledged task out again after this long


@contextmanager
def database_url(backend: str) -> Iterator[str | None]:
    """None: the embedded SQLite under a fleet's home; else a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield None
        return
    with fresh_postgres() as url:
        yield url.render_as_string(hide_password=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def fleet_db_url(backend: str) -> Iterator[str | None]:
    with database_url(backend) as url:
        yield url


@pytest.fixture(scope="module")
def fleet(fleet_db_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One worker per queue, as docker-compose runs them (two analysis processes)."""
    running = Fleet(tmp_path_factory.mktemp("fleet-home"), fleet_db_url)
    try:
        running.start("unpack")
        running.start("analyze", concurrency=2)
        running.start("report")
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def batch_ids(fleet: Fleet, manifest: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The BATCH submitted as one folder; {file name: submission id}, once every submission is final."""
    folder = tmp_path_factory.mktemp("batch")
    for name in BATCH:
        shutil.copy(SAMPLES / "out" / name, folder / name)
    ids = fleet.submit(folder, "--case", "OP-FLEET")
    fleet.wait(ids)
    with fleet.database() as database:
        return {database.get(sid).filename: sid for sid in ids}


def test_a_batch_through_workers_gives_the_scan_digests(fleet: Fleet, batch_ids: dict[str, str],
                                                         sample_scans: Callable[[str], ScanOutcome]) -> None:
    assert sorted(batch_ids) == sorted(BATCH)
    with fleet.database() as database:
        for name, sid in batch_ids.items():
            record = database.get(sid)
            expected = sample_scans(name).report
            assert (record.state, record.failure) == (SubmissionState.DONE, None), name
            assert record.report_digest == expected["report_digest"], name
            assert record.verdict == expected["verdict"]["label"], name
            stored = database.report(sid)
            assert stored is not None and stored["report_digest"] == expected["report_digest"]
            assert database.findings(sid) == stored["findings"]
            assert database.load_extraction(sid) is not None
        assert database.cases() == ["OP-FLEET"]


def test_every_queue_did_its_part(fleet: Fleet, batch_ids: dict[str, str]) -> None:
    """Routing: each worker ran only the tasks of its queue, and each queue's tasks ran."""
    for worker in fleet.workers:
        log = worker.log.read_text()
        ran = {task for task in ("unpack", "analyze", "report") if f"fwtriage.{task}[" in log}
        assert ran == {worker.queues}, worker.log.name


def test_a_second_submission_of_an_image_runs_no_analyzer(fleet: Fleet, batch_ids: dict[str, str]) -> None:
    with fleet.database() as database:
        first = database.get(batch_ids[BIG])
    again = fleet.wait(fleet.submit(SAMPLES / "out" / BIG))
    (second,) = again.values()
    assert first.analyzer_calls > 0
    assert (second.state, second.analyzer_calls) == (SubmissionState.DONE, 0)
    assert second.cache_hits == first.analyzer_calls + first.cache_hits
    assert second.report_digest == first.report_digest


def test_status_and_report_commands(fleet: Fleet, batch_ids: dict[str, str], tmp_path: Path) -> None:
    sid = batch_ids[BIG]
    status = subprocess.run([str(FWTRIAGE), "status", sid, "--json"], env=fleet.env, capture_output=True,
                            text=True, check=True)
    shown = json.loads(status.stdout)
    assert (shown["state"], shown["verdict"]) == ("done", "backdoor")
    assert shown["progress"]["done"] == shown["progress"]["total"] > 0
    subprocess.run([str(FWTRIAGE), "report", sid, "--out", str(tmp_path)], env=fleet.env, check=True,
                   capture_output=True)
    with fleet.database() as database:
        assert json.loads((tmp_path / "report.json").read_text()) == database.report(sid)
        assert "report.read" in [event.action for event in database.audit_events(sid)]
        assert database.verify_audit() == []
    assert "BACKDOOR" in (tmp_path / "report.html").read_text().upper()
    unknown = subprocess.run([str(FWTRIAGE), "status", "0" * 32], env=fleet.env, capture_output=True, text=True)
    assert unknown.returncode == 2 and "no submission" in unknown.stderr


def test_a_worker_killed_in_an_analysis_task_loses_nothing(backend: str, tmp_path: Path,
                                                            sample_scans: Callable[[str], ScanOutcome]) -> None:
    """SIGKILL the only analysis worker while it holds an unacknowledged task; a new worker gets the task again
    (after the broker's visibility timeout) and the submission ends with the scan's digest, each finding once."""
    with database_url(backend) as url:  # its own database: an analysis cache already full would leave nothing to kill
        fleet = Fleet(tmp_path / "home", url, extra_env={"FWTRIAGE_BATCH_FILES": "4",
                                                          "FWTRIAGE_VISIBILITY_TIMEOUT": str(VISIBILITY_SECONDS)})
        _kill_an_analysis_worker_and_finish(fleet, sample_scans(BIG).report)


def _unacked_analyses(broker: redis.Redis) -> int:
    """Analysis tasks delivered and not acknowledged (an unpack task in hand is no analysis to kill)."""
    return sum(b"fwtriage.analyze" in message for message in broker.hvals("unacked"))


def _kill_an_analysis_worker_and_finish(fleet: Fleet, expected: dict) -> None:
    broker = redis.Redis.from_url(fleet.broker_url)
    try:
        fleet.start("unpack,report")
        doomed = fleet.start("analyze")
        (sid,) = fleet.submit(SAMPLES / "out" / BIG)
        deadline = time.monotonic() + 120
        with fleet.database() as database:
            while True:  # in the middle: some batches analysed, a task delivered and not acknowledged
                record = database.get(sid)
                analysing = record.state is SubmissionState.ANALYZING and record.progress_done > 0
                if analysing and _unacked_analyses(broker) > 0:
                    break
                assert record.state not in (SubmissionState.DONE, SubmissionState.FAILED), "finished before the kill"
                assert time.monotonic() < deadline, fleet.logs()
                time.sleep(0.02)
            doomed.kill()
            assert _unacked_analyses(broker) > 0  # the killed task is still the broker's, not lost
            assert database.get(sid).state is SubmissionState.ANALYZING
        time.sleep(VISIBILITY_SECONDS + 1)  # past it, a starting worker hands the orphaned task out again
        fleet.start("analyze")
        record = fleet.wait([sid], seconds=180)[sid]
        assert (record.state, record.report_digest) == (SubmissionState.DONE, expected["report_digest"])
        with fleet.database() as database:
            findings = database.findings(sid)
        assert len(findings) == len(expected["findings"])
        keys = [(f["artifact"]["sha256"], f["rule"], f["title"], json.dumps(f["endpoint"])) for f in findings]
        assert len(set(keys)) == len(keys)
    finally:
        fleet.stop()


def test_rabbitmq_works_as_the_broker(tmp_path: Path, sample_scans: Callable[[str], ScanOutcome]) -> None:
    fleet = Fleet(tmp_path / "home", broker_url=RABBITMQ_URL)
    try:
        fleet.start(concurrency=2)
        (sid,) = fleet.submit(SAMPLES / "out" / "featurephone-sc6531e.pac")
        record = fleet.wait([sid])[sid]
        assert record.report_digest == sample_scans("featurephone-sc6531e.pac").report["report_digest"]
    finally:
        fleet.stop()


def test_an_analysis_batch_out_of_time_reports_what_it_could_not_analyse(tmp_path: Path) -> None:
    """A 0.3 s analysis budget (the soft time limit) for one batch of every blob, on a real worker: the batch stops
    starting analyzers, records the rest as not analysed, and the submission still finishes, marked incomplete with
    the reason, instead of being killed."""
    fleet = Fleet(tmp_path / "home", extra_env={"FWTRIAGE_ANALYZE_SECONDS": "0.3", "FWTRIAGE_BATCH_FILES": "1000"})
    try:
        fleet.start(concurrency=1)
        (sid,) = fleet.submit(SAMPLES / "out" / "linux-rootfs-clean.squashfs")
        record = fleet.wait([sid])[sid]
        with fleet.database() as database:
            report = database.report(sid)
            issues = database.analysis_issues(sid)
    finally:
        fleet.stop()
    assert (record.state, record.verdict) == (SubmissionState.DONE, "incomplete")
    assert report is not None and "not analysed" in report["verdict"]["summary"]
    # stopped inside an analyzer, between them (the budget) or outside them (the batch's limit): never a bug
    assert issues and all(error.startswith("not analysed: ") for *_, error in issues), issues


def test_a_submission_that_cannot_be_queued_is_marked_failed_not_lost(tmp_path: Path) -> None:
    """No broker listening: the image is ingested and recorded, then marked failed with the reason; exit 1."""
    fleet = Fleet(tmp_path / "home")
    fleet.broker_url = "redis://127.0.0.1:9/0"  # nothing listens on port 9 (discard)
    done = subprocess.run([str(FWTRIAGE), "submit", str(SAMPLES / "out" / "boot.img")], env=fleet.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "could not be queued" in done.stderr
    with fleet.database() as database:
        (record,) = database.list_submissions()
    assert record.state is SubmissionState.FAILED and record.failure.startswith("could not be queued")
    assert [event.action for event in database.audit_events(record.id)] == ["submission.received",
                                                                           "submission.failed"]
