"""The steps the Celery tasks call, chained in one process on real samples: they must give the report an
in-process scan gives, and stay idempotent, since a broker delivers a task again when its worker dies.

SQLite is enough here: the steps only talk to ``Database``, whose backends are tested in test_db*.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

import pipeline.scan
from pipeline.analyze.base import Target
from pipeline.analyze.registry import analyzers
from pipeline.analyze.runner import targets_of
from pipeline.config import Detection, Limits, Settings
from pipeline.db import Database, SubmissionState
from pipeline.ingest import CaseMetadata, ingest
from pipeline.model import ExtractionTree
from pipeline.scan import ScanOutcome, ScanRequest, record_submission, scan_image
from pipeline.steps import (
    BatchOutcome,
    BatchPolicy,
    TwinInProgress,
    analyze_step,
    batches_of,
    plan_batches,
    report_step,
    settled_by_the_cache,
    target_message,
    target_of_message,
    unpack_step,
)
from pipeline.store import LocalBlobStore
from pipeline.tables import AnalysisResultRow, AuditEventRow, FindingRow, ReportRow

S = SubmissionState
SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "out"
BACKDOOR = "uimage-rootfs.uimg"  # uImage › squashfs with the planted syncd
CLEAN = "initramfs.cpio.gz"  # a clean control: gzip › cpio of a busybox rootfs
HOSTILE = "hostile-nested-40.gz"  # 40 levels of gzip: the depth limit makes it incomplete
SMALL_BATCHES = BatchPolicy(files=4, bytes=1 << 20)  # several batches even for a small sample
NOT_ANALYSED = "not analysed: the analysis time budget ran out before this file's turn"


# --- batch planning and task messages --------------------------------------------------------------


def _target(number: int, size: int) -> Target:
    return Target(path=Path("/nowhere"), sha256=f"{number:064x}", size=size, label="data")


@given(sizes=st.lists(st.integers(0, 5000), max_size=40), files=st.integers(1, 8), limit=st.integers(1, 10_000))
def test_plan_batches_cuts_the_targets_in_order_within_the_limits(sizes: list[int], files: int, limit: int) -> None:
    targets = [_target(number, size) for number, size in enumerate(sizes)]
    batches = plan_batches(targets, BatchPolicy(files=files, bytes=limit))
    assert [target for batch in batches for target in batch] == targets  # each once, in order
    for batch in batches:
        assert 1 <= len(batch) <= files
        if sum(target.size for target in batch) > limit:
            assert len(batch) == 1  # only a blob larger than the limit on its own goes over it


def test_a_target_survives_the_trip_through_a_task_message(sample_trees: Callable[[str], ExtractionTree],
                                                           samples_store: LocalBlobStore) -> None:
    targets = targets_of(sample_trees("boot.img"), samples_store)  # containers, and a blob at three names
    assert any(t.container for t in targets) and any(len(t.names) > 1 for t in targets)
    for target in targets:
        message = json.loads(json.dumps(target_message(target)))  # what the broker carries
        assert "path" not in message  # each worker finds the blob in its own store
        assert target_of_message(message, samples_store) == target


# --- the steps chained ----------------------------------------------------------------------------


@dataclass
class Worker:
    """What a worker holds: the settings, the shared store and the database, all under one test's home."""

    settings: Settings
    store: LocalBlobStore
    database: Database

    def submit(self, file: str) -> str:
        """What the API does on receipt: ingest the image and record the submission."""
        submission = ingest(SAMPLES / file, self.store, CaseMetadata(case="CASE-STEPS", exhibit=f"SEAL-{file}"))
        record_submission(self.database, submission, actor="lab:intake")
        return submission.id

    def unpack(self, submission_id: str) -> list[list[Target]]:
        """The unpack step, then its batches as the analyze tasks receive them (through JSON)."""
        tree = unpack_step(self.database, self.store, self.settings, submission_id)
        assert tree is not None
        return [[target_of_message(message, self.store) for message in json.loads(json.dumps(batch))]
                for batch in batches_of(tree, self.store, SMALL_BATCHES)]

    def analyze(self, submission_id: str, batches: Sequence[list[Target]],
                seconds: float | None = None) -> list[BatchOutcome]:
        return [analyze_step(self.database, submission_id, batch, seconds) for batch in batches]

    def report(self, submission_id: str) -> dict[str, Any] | None:
        return report_step(self.database, self.store, submission_id, Detection(), self.settings)

    def rows(self, table: Any, submission_id: str | None = None) -> int:
        query = select(func.count()).select_from(table)
        if submission_id is not None:
            query = query.where(table.submission_id == submission_id)
        with self.database.engine.connect() as connection:
            return connection.scalar(query)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    settings = Settings(home=tmp_path / "home", limits=Limits())
    with Database.for_settings(settings) as database:
        yield Worker(settings, LocalBlobStore(settings.store_dir), database)


def _accepted(batch: Sequence[Target]) -> int:
    """The (blob, analyzer) pairs of a batch: what analysing it from scratch costs in analyzer calls."""
    return sum(1 for target in batch for analyzer in analyzers() if analyzer.accepts(target))


@pytest.mark.parametrize("file", [BACKDOOR, CLEAN, HOSTILE])
def test_the_steps_chained_give_the_report_of_an_in_process_scan(
        worker: Worker, file: str, manifest: dict, sample_scans: Callable[[str], ScanOutcome],
        sample_trees: Callable[[str], ExtractionTree]) -> None:
    submission_id = worker.submit(file)
    batches = worker.unpack(submission_id)
    unpacked = worker.database.get(submission_id)
    assert len(batches) > 1
    assert (unpacked.state, unpacked.progress_done, unpacked.progress_total) == (
        S.ANALYZING, 0, sum(len(batch) for batch in batches))
    outcomes = worker.analyze(submission_id, batches)
    report = worker.report(submission_id)

    assert report is not None
    assert report["report_digest"] == sample_scans(file).report["report_digest"]
    assert report["verdict"]["label"] == manifest[file]["expect"]["verdict"]
    done = worker.database.get(submission_id)
    assert (done.state, done.verdict, done.report_digest) == (S.DONE, report["verdict"]["label"],
                                                              report["report_digest"])
    assert done.analyzer_calls == sum(o.calls for o in outcomes) == sum(_accepted(batch) for batch in batches)
    assert done.progress_done == done.progress_total
    assert worker.database.load_extraction(submission_id) == sample_trees(file)
    assert worker.database.report(submission_id) == report
    assert worker.database.findings(submission_id) == report["findings"]


def test_redelivered_steps_do_their_work_once(worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    submission_id = worker.submit(BACKDOOR)
    batches = worker.unpack(submission_id)
    with monkeypatch.context() as patched:  # the unpack task again after its worker saved the tree and died
        patched.setattr(pipeline.scan, "unpack_guarded", _must_not_run)
        again = unpack_step(worker.database, worker.store, worker.settings, submission_id)
    assert again == worker.database.load_extraction(submission_id)

    first = worker.analyze(submission_id, batches)
    cached = worker.rows(AnalysisResultRow)
    assert worker.database.analysis_issues(submission_id) == []  # failures are retried; there are none here
    repeated = analyze_step(worker.database, submission_id, batches[0])
    assert (repeated.calls, repeated.reused) == (0, first[0].calls + first[0].reused)
    assert worker.rows(AnalysisResultRow) == cached

    report = worker.report(submission_id)
    assert report is not None and report["verdict"]["label"] == "backdoor"
    calls = worker.database.get(submission_id).analyzer_calls
    assert unpack_step(worker.database, worker.store, worker.settings, submission_id) is None
    assert analyze_step(worker.database, submission_id, batches[-1]).calls == 0
    assert worker.report(submission_id) == report
    assert worker.database.get(submission_id).analyzer_calls == calls
    assert (worker.rows(ReportRow, submission_id), worker.rows(FindingRow, submission_id)) == (
        1, len(report["findings"]))
    assert [e.action for e in worker.database.audit_events(submission_id)] == ["submission.received",
                                                                               "report.written"]


def _must_not_run(*_: object, **__: object) -> None:
    raise AssertionError("the image was unpacked again")


def test_a_second_submission_of_the_same_image_is_served_from_the_cache(worker: Worker) -> None:
    first_id = worker.submit(BACKDOOR)
    worker.analyze(first_id, worker.unpack(first_id))
    first = worker.report(first_id)

    second_id = worker.submit(BACKDOOR)
    outcomes = worker.analyze(second_id, worker.unpack(second_id))
    second = worker.report(second_id)
    assert [o.calls for o in outcomes] == [0] * len(outcomes)
    record = worker.database.get(second_id)
    assert record.analyzer_calls == 0
    assert record.cache_hits == sum(o.reused for o in outcomes) > 0
    assert first is not None and second is not None
    assert second["report_digest"] == first["report_digest"]
    assert second["submission"]["id"] == second_id != first_id


def test_a_known_build_is_settled_by_the_cache_and_goes_straight_to_its_report(worker: Worker) -> None:
    first_id = worker.submit(BACKDOOR)
    first_tree = unpack_step(worker.database, worker.store, worker.settings, first_id)
    assert first_tree is not None
    assert not settled_by_the_cache(worker.database, worker.store, first_id, first_tree)  # nothing cached yet
    worker.analyze(first_id, worker.unpack(first_id))
    first = worker.report(first_id)

    second_id = worker.submit(BACKDOOR)
    tree = unpack_step(worker.database, worker.store, worker.settings, second_id)
    assert tree is not None and settled_by_the_cache(worker.database, worker.store, second_id, tree)
    second = worker.report(second_id)  # no analysis batch ran
    assert first is not None and second is not None and second["report_digest"] == first["report_digest"]
    record = worker.database.get(second_id)
    pairs = sum(_accepted([target]) for target in targets_of(tree, worker.store))
    assert (record.analyzer_calls, record.cache_hits, record.progress_done) == (0, pairs, record.progress_total)


def test_a_copy_of_an_image_being_triaged_waits_for_it(worker: Worker) -> None:
    first_id, copy_id = worker.submit(BACKDOOR), worker.submit(BACKDOOR)
    batches = worker.unpack(first_id)
    with pytest.raises(TwinInProgress, match=first_id):
        unpack_step(worker.database, worker.store, worker.settings, copy_id, wait_for_twin=True)
    assert worker.database.get(copy_id).state is S.QUEUED
    worker.analyze(first_id, batches)
    assert worker.report(first_id) is not None
    tree = unpack_step(worker.database, worker.store, worker.settings, copy_id, wait_for_twin=True)
    assert tree is not None and settled_by_the_cache(worker.database, worker.store, copy_id, tree)


def test_copies_waiting_for_each_other_cannot_deadlock(worker: Worker) -> None:
    """Only a submission under way is waited for, and a waiting one stays queued: of copies received in the same
    second (ids in any order), whichever starts first is waited for by the others, never the reverse."""
    copies = [worker.submit(BACKDOOR) for _ in range(3)]
    started = copies[-1]  # all queued: nobody is under way, so the first to claim the image does not wait
    assert worker.database.claim_image(worker.database.get(started)) is None
    assert worker.database.get(started).state is S.UNPACKING
    for copy_id in copies[:-1]:
        with pytest.raises(TwinInProgress, match=started):
            unpack_step(worker.database, worker.store, worker.settings, copy_id, wait_for_twin=True)
    assert unpack_step(worker.database, worker.store, worker.settings, started, wait_for_twin=True) is not None


def test_an_identical_image_under_another_name_reuses_the_extraction(
        worker: Worker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """300 phones with one build: unpacked once; the tree is renamed after each file, so each report is the report
    a fresh scan of that file gives."""
    first_id = worker.submit(BACKDOOR)
    worker.analyze(first_id, worker.unpack(first_id))
    assert worker.report(first_id) is not None
    renamed = tmp_path / "exhibit-17.bin"
    renamed.write_bytes((SAMPLES / BACKDOOR).read_bytes())
    submission = ingest(renamed, worker.store)
    record_submission(worker.database, submission)
    with monkeypatch.context() as patched:
        patched.setattr(pipeline.scan, "unpack_guarded", _must_not_run)
        tree = unpack_step(worker.database, worker.store, worker.settings, submission.id)
    assert tree is not None and tree.root.lineage == ("exhibit-17.bin",)
    assert all(a.lineage[0] == "exhibit-17.bin" for a in tree.artifacts)
    worker.analyze(submission.id, [[target_of_message(m, worker.store) for m in batch]
                                   for batch in batches_of(tree, worker.store, SMALL_BATCHES)])
    report = worker.report(submission.id)
    fresh_settings = Settings(home=tmp_path / "fresh", limits=Limits())
    fresh = scan_image(ScanRequest(renamed), tmp_path / "fresh-report", store=LocalBlobStore(fresh_settings.store_dir),
                       settings=fresh_settings, detection=Detection())
    assert report is not None and report["report_digest"] == fresh.report["report_digest"]


def test_an_extraction_cut_short_by_a_limit_is_not_reused(worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    first_id = worker.submit(HOSTILE)  # the depth limit stops it: another run (other limits) could go further
    worker.unpack(first_id)
    unpacked: list[str] = []
    original = pipeline.scan.unpack_guarded
    monkeypatch.setattr(pipeline.scan, "unpack_guarded",
                        lambda submission, *rest: unpacked.append(submission.id) or original(submission, *rest))
    second_id = worker.submit(HOSTILE)
    worker.unpack(second_id)
    assert unpacked == [second_id]


def test_the_report_step_analyses_a_batch_that_never_ran(worker: Worker,
                                                         sample_scans: Callable[[str], ScanOutcome]) -> None:
    """A batch lost with its worker and never redelivered: the report must still hold its findings."""
    submission_id = worker.submit(BACKDOOR)
    batches = worker.unpack(submission_id)
    lost = next(batch for batch in batches if any("/usr/sbin/syncd" in t.names for t in batch))
    ran = worker.analyze(submission_id, [batch for batch in batches if batch is not lost])
    before = worker.database.get(submission_id).analyzer_calls
    assert before == sum(o.calls for o in ran)

    report = worker.report(submission_id)
    assert report is not None
    assert report["report_digest"] == sample_scans(BACKDOOR).report["report_digest"]
    assert report["verdict"]["label"] == "backdoor"
    assert worker.database.get(submission_id).analyzer_calls - before == _accepted(lost) > 0
    assert analyze_step(worker.database, submission_id, lost).calls == 0  # the safety net cached its results


def test_an_exhausted_time_budget_leaves_files_not_analysed_and_the_verdict_incomplete(
        worker: Worker, sample_scans: Callable[[str], ScanOutcome]) -> None:
    assert sample_scans(CLEAN).report["verdict"]["label"] == "clean"
    submission_id = worker.submit(CLEAN)
    batches = worker.unpack(submission_id)
    # A nanosecond's budget: each batch's cache lookup alone outlasts it, so no analyzer may start.
    outcomes = worker.analyze(submission_id, batches, seconds=1e-9)
    assert [(o.calls, o.issues) for o in outcomes] == [(0, _accepted(batch)) for batch in batches]
    issues = worker.database.analysis_issues(submission_id)
    assert len(issues) == sum(_accepted(batch) for batch in batches)
    assert {error for *_, error in issues} == {NOT_ANALYSED}

    report = worker.report(submission_id)
    assert report is not None
    assert worker.database.get(submission_id).analyzer_calls == 0  # settled: the report step does not retry them
    assert report["extraction"]["complete"] is True
    assert report["verdict"]["label"] == "incomplete"
    assert "the analysis is incomplete" in report["verdict"]["summary"]
    assert NOT_ANALYSED in report["verdict"]["summary"]
    assert sorted((i["sha256"], i["path"], i["analyzer"], i["error"]) for i in report["analysis"]["issues"]) == [
        (sha256, path, analyzer, error) for sha256, path, analyzer, error in issues]
    assert report["findings"] == []


def test_steps_of_a_failed_submission_stop(worker: Worker) -> None:
    submission_id = worker.submit(HOSTILE)
    batches = worker.unpack(submission_id)
    worker.database.fail(submission_id, "report task failed: OperationalError")
    assert unpack_step(worker.database, worker.store, worker.settings, submission_id) is None
    assert worker.report(submission_id) is None
    assert worker.rows(ReportRow, submission_id) == 0
    assert worker.database.get(submission_id).state is S.FAILED
    assert batches  # the tree was unpacked before the failure: the stop is the state's doing
    with worker.database.engine.connect() as connection:
        actions = connection.scalars(select(AuditEventRow.action).order_by(AuditEventRow.id)).all()
    assert actions == ["submission.received", "submission.failed"]
