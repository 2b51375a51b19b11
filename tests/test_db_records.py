"""What the database keeps beside the submission row, on SQLite and PostgreSQL alike: extraction trees and their
edges, analysis failures and counters, cases, reports with their findings and behaviours, reviews, and the
hash-chained audit log (including what it detects when someone rewrites it behind the application's back).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import URL, DateTime, bindparam, delete, func, select, text
from sqlalchemy.exc import IntegrityError

from pipeline.audit import GENESIS_HASH
from pipeline.db import Database, SubmissionState, UnknownSubmission, alembic_config
from pipeline.model import Artifact, ArtifactKind, ExtractionTree
from pipeline.scan import ScanOutcome
from pipeline.tables import ArtifactRow, AuditEventRow, BehaviourRow, CaseRow, FindingRow, ReportRow
from tests.test_db import a_report, advance, new_submission

S = SubmissionState
Trees = Callable[[str], ExtractionTree]
Scans = Callable[[str], ScanOutcome]

NESTED = "nested-update.zip"  # zip › tar.gz › tar › uImage › squashfs: five levels, symlinks, escaping-link notes
ROM = "featurephone-mt6261.bin"  # an undecodable ALICE region (an extraction error), the platform, partitions


def _rows(database: Database, table: Any, submission_id: str) -> int:
    with database.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table).where(table.submission_id == submission_id))


def _node(artifact_id: int, parent: int | None) -> Artifact:
    """A minimal tree node: the image when it has no parent, else a file inside its parent."""
    if parent is None:
        return Artifact(artifact_id, None, ("image.bin",), "c" * 64, 4096, ArtifactKind.IMAGE, 0)
    return Artifact(artifact_id, parent, ("image.bin", f"member-{artifact_id}"), f"{artifact_id:064x}", 16,
                    ArtifactKind.FILE, 1, format="text")


# --- extraction trees -----------------------------------------------------------------------------


def test_the_round_trip_samples_hold_every_kind_of_tree_record(sample_trees: Trees) -> None:
    """The two samples below are chosen for what they contain; this keeps them honest if the samples change."""
    nested, rom = sample_trees(NESTED), sample_trees(ROM)
    assert nested.max_depth >= 4 and nested.notes and nested.complete
    assert any(a.kind is ArtifactKind.SYMLINK and a.link_target for a in nested.artifacts)
    assert any(a.coverage is not None for a in nested.artifacts)
    assert any(a.attributes for a in nested.artifacts)
    assert rom.errors and not rom.complete and rom.platform.chipset == "MT6261"
    assert any(a.kind is ArtifactKind.PARTITION and a.offset for a in rom.artifacts)


@pytest.mark.parametrize("file", [NESTED, ROM])
def test_a_sample_tree_is_loaded_back_as_it_was_saved(db: Database, sample_trees: Trees, file: str) -> None:
    tree = sample_trees(file)
    submission = new_submission(db, sha256=tree.image_sha256)
    assert db.load_extraction(submission.id) is None
    db.save_extraction(submission.id, tree)
    assert db.load_extraction(submission.id) == tree


def test_an_artifact_whose_parent_is_missing_is_refused(db: Database) -> None:
    first, second = new_submission(db), new_submission(db)
    kept = ExtractionTree("c" * 64, [_node(0, None), _node(1, 0)])
    db.save_extraction(first.id, ExtractionTree("c" * 64, [_node(0, None), *(_node(i, 0) for i in range(1, 8))]))
    db.save_extraction(second.id, kept)
    orphan = ExtractionTree("c" * 64, [_node(0, None), _node(1, 0), _node(2, 9)])
    across = ExtractionTree("c" * 64, [_node(0, None), _node(5, 3)])  # 3 exists, but in the other submission
    for refused in (orphan, across):
        with pytest.raises(IntegrityError):
            db.save_extraction(second.id, refused)
        assert db.load_extraction(second.id) == kept  # a refused save leaves the earlier tree whole


def test_saving_again_replaces_the_tree(db: Database, sample_trees: Trees) -> None:
    first, second = sample_trees(NESTED), sample_trees(ROM)
    submission = new_submission(db)
    db.save_extraction(submission.id, first)
    db.save_extraction(submission.id, second)
    assert db.load_extraction(submission.id) == second
    assert _rows(db, ArtifactRow, submission.id) == len(second.artifacts)
    only_in_first = {a.sha256 for a in first.artifacts} - {a.sha256 for a in second.artifacts}
    assert only_in_first and all(db.submissions_containing(sha256) == [] for sha256 in only_in_first)


def test_submissions_are_found_by_their_image_and_by_a_blob_inside(db: Database, sample_trees: Trees) -> None:
    tree = sample_trees(NESTED)
    syncd = next(a for a in tree.artifacts if a.name == "/usr/sbin/syncd")
    unpacked = new_submission(db, sha256=tree.image_sha256)
    db.save_extraction(unpacked.id, tree)
    queued = new_submission(db, sha256=tree.image_sha256)  # the same image, not unpacked yet
    alone = new_submission(db, sha256=syncd.sha256)  # the daemon submitted on its own
    new_submission(db)
    assert db.submissions_containing(tree.image_sha256) == sorted([unpacked.id, queued.id])
    assert db.submissions_containing(syncd.sha256) == sorted([unpacked.id, alone.id])
    assert db.submissions_containing("f" * 64) == []


# --- analysis issues and counters -----------------------------------------------------------------


def test_analysis_issues_are_kept_once_per_blob_and_analyzer_with_the_newest_error(db: Database) -> None:
    submission, other = new_submission(db), new_submission(db)
    db.record_analysis_issues(submission.id, [("b" * 64, "/bin/x", "elf", "truncated section table"),
                                              ("a" * 64, "/bin/y", "yara", "scan timed out")])
    db.record_analysis_issues(submission.id, [("b" * 64, "/sbin/x", "elf", "internal error: ValueError: bad")])
    db.record_analysis_issues(submission.id, [])
    db.record_analysis_issues(other.id, [("b" * 64, "/bin/x", "elf", "another submission's failure")])
    assert db.analysis_issues(submission.id) == [("a" * 64, "/bin/y", "yara", "scan timed out"),
                                                 ("b" * 64, "/sbin/x", "elf", "internal error: ValueError: bad")]
    assert db.analysis_issues(other.id) == [("b" * 64, "/bin/x", "elf", "another submission's failure")]


def test_a_batch_delivered_twice_counts_its_files_and_hits_once(db: Database) -> None:
    submission, other = new_submission(db), new_submission(db)
    first = db.count_analysis(submission.id, calls=5, hits=2, files=4, batch="1" * 64)
    again = db.count_analysis(submission.id, calls=0, hits=7, files=4, batch="1" * 64)
    assert (first.analyzer_calls, first.cache_hits, first.progress_done) == (5, 2, 4)
    assert (again.analyzer_calls, again.cache_hits, again.progress_done) == (5, 2, 4)
    # the same batch of blobs in another submission is that submission's own first delivery
    assert db.count_analysis(other.id, calls=0, hits=7, files=4, batch="1" * 64).cache_hits == 7


def test_analysis_counters_add_up_exactly_when_batches_finish_at_once(db: Database) -> None:
    submission = new_submission(db)
    threads, rounds = 8, 25
    start = threading.Barrier(threads)

    def batch_finishing(_: int) -> None:
        start.wait()
        for _ in range(rounds):
            db.count_analysis(submission.id, calls=1, hits=2, files=3)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(batch_finishing, range(threads)))
    counted = db.get(submission.id)
    assert (counted.analyzer_calls, counted.cache_hits, counted.progress_done) == (
        threads * rounds, 2 * threads * rounds, 3 * threads * rounds)


# --- cases ----------------------------------------------------------------------------------------


def test_a_case_is_created_by_its_first_submission_and_submissions_are_listed_by_case(db: Database) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    first = new_submission(db, case="CASE-2026/17", received_at=t0)
    new_submission(db, case="CASE-2026/18", received_at=t0 + timedelta(hours=1))
    second = new_submission(db, case="CASE-2026/17", received_at=t0 + timedelta(hours=2))
    new_submission(db, received_at=t0 + timedelta(hours=3))
    assert db.cases() == ["CASE-2026/17", "CASE-2026/18"]
    with db.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(CaseRow)) == 2
    assert [r.id for r in db.list_submissions(case="CASE-2026/17")] == [second.id, first.id]
    assert db.list_submissions(case="CASE-2026/99") == []


def test_workers_filing_into_one_new_case_at_once_create_it_once(db_url: URL) -> None:
    workers = 4
    start = threading.Barrier(workers)

    def receive(_: int) -> str:
        with Database(db_url) as database:
            start.wait()
            return new_submission(database, case="CASE-RACE").id

    with ThreadPoolExecutor(workers) as pool:
        received = set(pool.map(receive, range(workers)))
    with Database(db_url) as database:
        assert database.cases() == ["CASE-RACE"]
        assert {r.id for r in database.list_submissions(case="CASE-RACE")} == received


# --- reports, findings, behaviours ----------------------------------------------------------------


def test_finishing_with_a_real_report_stores_it_once_even_when_delivered_twice(db: Database,
                                                                                sample_scans: Scans) -> None:
    report = sample_scans(NESTED).report
    assert len(report["findings"]) > 10 and len(report["behaviours"]) > 1
    submission = new_submission(db)
    advance(db, submission.id, S.REPORTING)
    assert db.report(submission.id) is None
    for _ in range(2):  # the report task delivered again after its worker died
        done = db.finish(submission.id, report, report_dir="/reports/x")
    assert (done.state, done.verdict, done.score, done.summary, done.report_digest, done.report_dir) == (
        S.DONE, report["verdict"]["label"], report["verdict"]["score"], report["verdict"]["summary"],
        report["report_digest"], "/reports/x")
    assert db.report(submission.id) == report
    assert db.findings(submission.id) == report["findings"]
    assert sorted(db.behaviours(submission.id), key=lambda b: b["id"]) == sorted(report["behaviours"],
                                                                                  key=lambda b: b["id"])
    assert (_rows(db, ReportRow, submission.id), _rows(db, FindingRow, submission.id),
            _rows(db, BehaviourRow, submission.id)) == (1, len(report["findings"]), len(report["behaviours"]))
    with db.engine.connect() as connection:
        indexed = connection.execute(select(FindingRow.rule, FindingRow.sha256, FindingRow.endpoint)
                                     .where(FindingRow.submission_id == submission.id)
                                     .order_by(FindingRow.position)).all()
    assert [tuple(row) for row in indexed] == [(f["rule"], f["artifact"]["sha256"], (f["endpoint"] or {}).get("value"))
                                               for f in report["findings"]]


def test_a_redelivered_finish_replaces_the_earlier_attempt(db: Database) -> None:
    finding = {"rule": "ioc:ipv4", "analyzer": "iocs", "category": "endpoint", "severity": "medium",
               "artifact": {"path": "image › /bin/x", "sha256": "e" * 64},
               "endpoint": {"value": "203.0.113.7"}}
    submission = new_submission(db)
    advance(db, submission.id, S.REPORTING)
    db.finish(submission.id, a_report("suspicious", 40, "one address", "1" * 64, findings=[finding, finding]))
    db.finish(submission.id, a_report(digest="2" * 64))
    assert db.findings(submission.id) == []
    assert db.report(submission.id)["report_digest"] == db.get(submission.id).report_digest == "2" * 64


def test_reading_a_report_of_an_unknown_submission_is_an_error(db: Database) -> None:
    with pytest.raises(UnknownSubmission):
        db.report("nope")
    with pytest.raises(UnknownSubmission):
        db.report("nope", actor="reviewer:ana")
    assert db.audit_events() == []


# --- reviews --------------------------------------------------------------------------------------


def test_reviews_are_kept_in_order_each_with_its_audit_entry(db: Database) -> None:
    submission = new_submission(db)
    decisions = [("reviewer:ana", "behaviour:exfil@9ee57b50f2f1", "confirm", "IMEI sent in clear"),
                 ("reviewer:bo", "finding:3", "dismiss", ""),
                 ("reviewer:ana", "verdict", "confirm", "backdoor")]
    ids = [db.add_review(submission.id, *decision) for decision in decisions]
    assert ids == sorted(ids) and len(set(ids)) == 3
    reviews = db.reviews(submission.id)
    assert [(r["id"], r["reviewer"], r["subject"], r["decision"], r["note"]) for r in reviews] == [
        (review_id, *decision) for review_id, decision in zip(ids, decisions, strict=True)]
    assert all(r["at"].tzinfo is not None for r in reviews)
    recorded = [e for e in db.audit_events(submission.id) if e.action == "review.recorded"]
    assert [(e.actor, e.detail) for e in recorded] == [
        (reviewer, {"review": review_id, "subject": subject, "decision": decision, "note": note})
        for review_id, (reviewer, subject, decision, note) in zip(ids, decisions, strict=True)]
    with pytest.raises(UnknownSubmission):
        db.add_review("nope", "reviewer:ana", "verdict", "confirm")
    assert len(db.audit_events()) == 4  # received + three reviews: the refused one left no trace


# --- the audit log --------------------------------------------------------------------------------


def _history(db: Database) -> tuple[str, str]:
    """One submission received, reported, read and reviewed; another received and failed."""
    reviewed = new_submission(db, actor="lab:intake")
    advance(db, reviewed.id, S.DONE)
    db.report(reviewed.id, actor="reviewer:ana")
    db.report(reviewed.id)  # a read without an actor (the pipeline's own) is not audited
    db.add_review(reviewed.id, "reviewer:ana", "verdict", "confirm")
    failed = new_submission(db, actor="lab:intake")
    db.fail(failed.id, "squashfs: truncated inode table")
    return reviewed.id, failed.id


def test_the_audit_log_records_each_event_in_one_unbroken_chain(db: Database) -> None:
    reviewed, failed = _history(db)
    events = db.audit_events()
    assert [(e.action, e.actor, e.submission_id) for e in events] == [
        ("submission.received", "lab:intake", reviewed),
        ("report.written", "fwtriage", reviewed),
        ("report.read", "reviewer:ana", reviewed),
        ("review.recorded", "reviewer:ana", reviewed),
        ("submission.received", "lab:intake", failed),
        ("submission.failed", "fwtriage", failed)]
    assert events[0].detail == {"filename": "router.bin", "sha256": "c" * 64, "size": 4096, "case": None,
                                "exhibit": None}
    assert events[1].detail == {"report_digest": "d" * 64, "verdict": "clean", "score": 0}
    assert events[2].detail == {"report_digest": "d" * 64}
    assert events[5].detail == {"reason": "squashfs: truncated inode table"}
    assert [e.prev_hash for e in events] == [GENESIS_HASH] + [e.hash for e in events[:-1]]
    assert [e.action for e in db.audit_events(failed)] == ["submission.received", "submission.failed"]
    assert all(e.at.tzinfo is not None for e in events)
    assert db.verify_audit() == []


def test_an_entry_edited_in_the_database_is_detected(db: Database) -> None:
    _history(db)
    edited = db.audit_events()[3]
    forged = json.dumps(edited.detail | {"decision": "dismiss"})
    with db.engine.begin() as connection:
        connection.execute(text(f"UPDATE audit_event SET detail = '{forged}' WHERE id = {edited.id}"))
    assert db.audit_events()[3].detail["decision"] == "dismiss"
    assert db.verify_audit() == [f"entry {edited.id}: its content no longer matches its hash (it was edited)"]


def test_an_entry_edited_and_rehashed_breaks_the_link_to_the_next(db: Database) -> None:
    _history(db)
    events = db.audit_events()
    with db.engine.begin() as connection:
        connection.execute(text(f"UPDATE audit_event SET hash = '{'f' * 64}' WHERE id = {events[2].id}"))
    assert db.verify_audit() == [f"entry {events[2].id}: its content no longer matches its hash (it was edited)",
                                 f"entry {events[3].id}: does not follow the entry before it (one was removed or "
                                 "changed)"]


def test_a_removed_entry_is_detected(db: Database) -> None:
    _history(db)
    events = db.audit_events()
    with db.engine.begin() as connection:
        connection.execute(delete(AuditEventRow).where(AuditEventRow.id == events[2].id))
    assert db.verify_audit() == [
        f"entry {events[3].id}: does not follow the entry before it (one was removed or changed)"]


def test_concurrent_appends_from_several_processes_keep_one_chain(db_url: URL) -> None:
    """Workers each hold their own connection pool (a Database of their own) and append at the same moment."""
    workers, rounds = 4, 5
    start = threading.Barrier(workers)

    def worker(number: int) -> None:
        with Database(db_url) as database:
            start.wait(timeout=60)  # a worker that failed to open breaks the barrier instead of hanging the others
            for _ in range(rounds):
                submission = new_submission(database, actor=f"worker:{number}")
                database.add_review(submission.id, f"reviewer:{number}", "verdict", "confirm")

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(worker, range(workers)))
    with Database(db_url) as database:
        events = database.audit_events()
        assert database.verify_audit() == []
    assert len(events) == workers * rounds * 2
    assert len({e.prev_hash for e in events}) == len(events)  # no two entries claim the same predecessor


# --- the migration to 0003 with data in place ------------------------------------------------------


def _revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _old_row(submission_id: str, case_ref: str | None, received_at: datetime) -> dict[str, Any]:
    return {"id": submission_id, "md5": "1" * 32, "sha1": "2" * 40, "sha256": "3" * 64, "case_ref": case_ref,
            "at": received_at}


def test_upgrading_from_0002_files_existing_submissions_under_their_cases(db_url: URL) -> None:
    t0 = datetime(2025, 11, 2, 9, 30, tzinfo=UTC)
    insert = text(
        "INSERT INTO submission (id, filename, size, md5, sha1, sha256, case_ref, received_at, state, "
        "progress_done, progress_total, verdict, updated_at) VALUES (:id, 'dump.bin', 4096, :md5, :sha1, "
        ":sha256, :case_ref, :at, 'done', 3, 3, 'clean', :at)"
    ).bindparams(bindparam("at", type_=DateTime(timezone=True)))
    with Database(db_url) as database:
        with database.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0002")
            connection.execute(insert, [_old_row("old-1", "CASE-OLD", t0 + timedelta(days=1)),
                                        _old_row("old-2", "CASE-OLD", t0), _old_row("old-3", None, t0)])
        assert _revision(database) == "0002"
    with Database(db_url) as upgraded:  # opening brings the schema to head
        assert _revision(upgraded) == "0005"
        assert upgraded.cases() == ["CASE-OLD"]
        with upgraded.engine.connect() as connection:
            assert connection.execute(select(CaseRow.created_at)).scalar_one() == t0
        kept = {record.id: record for record in upgraded.list_submissions()}
        assert set(kept) == {"old-1", "old-2", "old-3"}
        assert [(r.case, r.analyzer_calls, r.cache_hits, r.state, r.progress_done, r.verdict)
                for r in (kept["old-1"], kept["old-3"])] == [("CASE-OLD", 0, 0, S.DONE, 3, "clean"),
                                                             (None, 0, 0, S.DONE, 3, "clean")]
        assert kept["old-2"].received_at == t0
        assert new_submission(upgraded, case="CASE-OLD").case == "CASE-OLD"
        assert upgraded.cases() == ["CASE-OLD"]
        with pytest.raises(IntegrityError), upgraded.engine.begin() as connection:  # the case reference now holds
            connection.execute(insert, _old_row("new-1", "CASE-NEVER-FILED", t0))
