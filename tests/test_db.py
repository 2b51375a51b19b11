"""The submission database, run against SQLite and PostgreSQL alike.

PostgreSQL tests use a throw-away database created for the session and dropped after it, and fail (never
skip) when the server is not reachable: CI starts it (scripts/ensure_services.sh).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, inspect, update
from sqlalchemy.exc import StatementError

from pipeline.config import Settings
from pipeline.db import (
    Base,
    Database,
    IllegalTransition,
    SubmissionRecord,
    SubmissionState,
    UnknownSubmission,
    alembic_config,
)
from pipeline.model import CacheKey, Category, Endpoint, EndpointKind, Evidence, Finding, Scope, Severity
from pipeline.tables import SubmissionRow
from tests.conftest import empty_postgres

S = SubmissionState
WORKING_PATH = (S.UNPACKING, S.ANALYZING, S.REPORTING)


def new_submission(db: Database, **overrides: object) -> SubmissionRecord:
    values: dict = {"filename": "router.bin", "size": 4096, "md5": "a" * 32, "sha1": "b" * 40, "sha256": "c" * 64}
    return db.create_submission(**values | overrides)


def a_report(label: str = "clean", score: int = 0, summary: str = "nothing found", digest: str = "d" * 64,
             findings: list[dict[str, Any]] | None = None,
             behaviours: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The parts of a report that ``finish`` reads (the full contract is tested with real scans elsewhere)."""
    return {"verdict": {"label": label, "score": score, "summary": summary}, "report_digest": digest,
            "findings": findings or [], "behaviours": behaviours or []}


def advance(db: Database, submission_id: str, to: SubmissionState) -> SubmissionRecord:
    """Walk a queued submission along the path up to ``to``."""
    record = db.get(submission_id)
    for state in WORKING_PATH:
        if record.state is to:
            return record
        record = db.set_state(submission_id, state)
    if to is S.FAILED:
        return db.fail(submission_id, "walked there")
    if to is S.DONE:
        return db.finish(submission_id, a_report(), "/reports/x")
    return record


# --- schema and migrations ------------------------------------------------------------------------


def _revisions(database: Database) -> tuple[str | None, str | None]:
    """(revision the database is at, head of the shipped migrations)."""
    with database.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        head = ScriptDirectory.from_config(alembic_config(connection)).get_current_head()
    return current, head


def test_opening_migrates_to_head_and_reopening_changes_nothing(db_url: URL) -> None:
    with Database(db_url) as first:
        inspector = inspect(first.engine)
        assert set(inspector.get_table_names()) == {*Base.metadata.tables, "alembic_version"}
        assert {index["name"] for index in inspector.get_indexes("submission")} == {
            "ix_submission_sha256", "ix_submission_received_at", "ix_submission_case_ref", "ix_submission_lab_id",
            "ix_submission_review_status"}
        assert "case_ref" in {column["name"] for column in inspector.get_columns("submission")}
        current, head = _revisions(first)
        assert current == head == "0005"
        kept = new_submission(first)
    with Database(db_url) as second:
        assert _revisions(second) == ("0005", "0005")
        assert second.get(kept.id) == kept


def test_models_match_the_migrations(db: Database) -> None:
    """A model changed without a new migration fails here."""
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_migrations_downgrade_to_an_empty_schema(db_url: URL) -> None:
    with Database(db_url) as database:
        with database.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        assert set(inspect(database.engine).get_table_names()) == {"alembic_version"}
        assert _revisions(database) == (None, "0005")


def test_databases_opened_at_once_migrate_once(db_url: URL) -> None:
    """Workers started together on a new database: one migrates, the others wait and find it at head."""
    opener = f"from pipeline.db import Database; Database({db_url.render_as_string(hide_password=False)!r}).close()"
    workers = [subprocess.Popen([sys.executable, "-c", opener], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    failures = [stderr for worker in workers if (stderr := worker.communicate()[1]) and worker.returncode]
    assert failures == []
    with Database(db_url) as database:
        assert _revisions(database) == ("0005", "0005")


def test_snapshot_has_every_column() -> None:
    assert {f.name for f in fields(SubmissionRecord)} == set(SubmissionRow.__mapper__.column_attrs.keys())


# --- records --------------------------------------------------------------------------------------


def test_create_and_get_round_trip_every_field(db: Database) -> None:
    received = datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    created = db.create_submission(
        submission_id="sub-1", filename="MT6261 dump.bin", size=5 * (1 << 30), md5="1" * 32, sha1="2" * 40,
        sha256="3" * 64, case="CASE-2026/17", exhibit="SEAL 0042", device="mini-phone BM10",
        examiner="J. Doe", received_at=received,
    )
    fetched = db.get("sub-1")
    assert fetched == created
    assert fetched.received_at == received
    assert fetched.received_at.utcoffset() == timedelta(0)
    assert (fetched.id, fetched.filename, fetched.size, fetched.md5, fetched.sha1, fetched.sha256) == (
        "sub-1", "MT6261 dump.bin", 5 * (1 << 30), "1" * 32, "2" * 40, "3" * 64)
    assert (fetched.case, fetched.exhibit, fetched.device, fetched.examiner) == (
        "CASE-2026/17", "SEAL 0042", "mini-phone BM10", "J. Doe")
    assert (fetched.state, fetched.progress_done, fetched.progress_total) == (S.QUEUED, 0, 0)
    assert (fetched.failure, fetched.verdict, fetched.score, fetched.summary, fetched.report_digest,
            fetched.report_dir) == (None,) * 6
    assert fetched.updated_at.tzinfo is not None


def test_create_generates_unique_ids_and_the_receipt_time(db: Database) -> None:
    before = datetime.now(UTC)
    first, second = new_submission(db), new_submission(db)
    assert first.id != second.id
    assert len(first.id) == 32 and int(first.id, 16) >= 0
    assert first.received_at >= before
    assert (first.case, first.exhibit, first.device, first.examiner) == (None,) * 4


def test_naive_received_at_is_refused(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        new_submission(db, received_at=datetime(2026, 3, 1, 14, 30))


def test_unknown_submission(db: Database) -> None:
    for call in (lambda: db.get("nope"), lambda: db.set_state("nope", S.UNPACKING),
                 lambda: db.set_progress("nope", 1, 2), lambda: db.fail("nope", "x")):
        with pytest.raises(UnknownSubmission):
            call()


def test_listing_is_newest_first_with_limit_and_filters(db: Database) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    middle = new_submission(db, received_at=t0 + timedelta(hours=1), sha256="e" * 64)
    newest = new_submission(db, received_at=t0 + timedelta(hours=2))
    oldest = new_submission(db, received_at=t0, sha256="e" * 64)
    db.set_state(middle.id, S.UNPACKING)
    assert [r.id for r in db.list_submissions()] == [newest.id, middle.id, oldest.id]
    assert [r.id for r in db.list_submissions(limit=2)] == [newest.id, middle.id]
    assert [r.id for r in db.list_submissions(state=S.QUEUED)] == [newest.id, oldest.id]
    assert [r.id for r in db.list_submissions(sha256="e" * 64)] == [middle.id, oldest.id]


# --- the state machine ----------------------------------------------------------------------------


def test_full_path_to_done(db: Database) -> None:
    submission = new_submission(db)
    assert [db.set_state(submission.id, state).state for state in WORKING_PATH] == list(WORKING_PATH)
    done = db.finish(submission.id, a_report("backdoor", 87, "posts the IMEI to 203.0.113.7", "f" * 64),
                     report_dir=Path("/data/reports/x"))
    assert done == db.get(submission.id)
    assert (done.state, done.verdict, done.score, done.summary, done.report_digest, done.report_dir) == (
        S.DONE, "backdoor", 87, "posts the IMEI to 203.0.113.7", "f" * 64, "/data/reports/x")
    assert done.failure is None


@pytest.mark.parametrize("state", [S.QUEUED, *WORKING_PATH])
def test_every_non_final_state_can_fail_with_a_reason(db: Database, state: SubmissionState) -> None:
    submission = new_submission(db)
    advance(db, submission.id, state)
    failed = db.fail(submission.id, "squashfs: truncated inode table at 0x1f000")
    assert (failed.state, failed.failure) == (S.FAILED, "squashfs: truncated inode table at 0x1f000")
    assert db.get(submission.id) == failed


ILLEGAL: list[tuple[SubmissionState, SubmissionState, Callable[[Database, str], object]]] = [
    (S.DONE, S.ANALYZING, lambda db, sid: db.set_state(sid, S.ANALYZING)),
    (S.DONE, S.FAILED, lambda db, sid: db.fail(sid, "too late")),
    (S.FAILED, S.DONE, lambda db, sid: db.finish(sid, a_report(), "/r")),
    (S.FAILED, S.UNPACKING, lambda db, sid: db.set_state(sid, S.UNPACKING)),
    (S.QUEUED, S.ANALYZING, lambda db, sid: db.set_state(sid, S.ANALYZING)),
    (S.QUEUED, S.DONE, lambda db, sid: db.finish(sid, a_report(), "/r")),
    (S.ANALYZING, S.UNPACKING, lambda db, sid: db.set_state(sid, S.UNPACKING)),
    (S.REPORTING, S.QUEUED, lambda db, sid: db.set_state(sid, S.QUEUED)),
]


@pytest.mark.parametrize(("current", "target", "move"), ILLEGAL, ids=[f"{c}->{t}" for c, t, _ in ILLEGAL])
def test_illegal_transitions_are_refused(db: Database, current: SubmissionState, target: SubmissionState,
                                         move: Callable[[Database, str], object]) -> None:
    submission = new_submission(db)
    before = advance(db, submission.id, current)
    with pytest.raises(IllegalTransition, match=f"cannot go from {current} to {target}") as refused:
        move(db, submission.id)
    assert (refused.value.current, refused.value.target) == (current, target)
    assert db.get(submission.id) == before


def test_final_states_are_entered_only_with_their_outcome(db: Database) -> None:
    submission = new_submission(db)
    for final in (S.DONE, S.FAILED):
        with pytest.raises(ValueError, match="finish\\(\\) or fail\\(\\)"):
            db.set_state(submission.id, final)
    assert db.get(submission.id).state is S.QUEUED


def test_re_entering_the_current_state_is_allowed(db: Database) -> None:
    """A task delivered twice repeats its call; the repetition must not fail the submission."""
    working, done, failed = new_submission(db), new_submission(db), new_submission(db)
    db.set_state(working.id, S.UNPACKING)
    assert db.set_state(working.id, S.UNPACKING).state is S.UNPACKING
    assert db.set_state(working.id, "unpacking").state is S.UNPACKING
    advance(db, done.id, S.DONE)
    assert db.finish(done.id, a_report(), "/reports/x").state is S.DONE
    db.fail(failed.id, "first")
    assert db.fail(failed.id, "again").failure == "again"


def test_copies_claimed_at_the_same_instant_are_unpacked_by_one(db_url: URL) -> None:
    """Workers (each with its own connection) take copies of one image at the same instant: the look for a twin
    and the claim are one step, so exactly one copy starts unpacking and every other names it and stays queued."""
    databases = [Database(db_url) for _ in range(6)]
    try:
        for image in "0123":
            copies = [new_submission(databases[0], sha256=image * 64) for _ in databases]
            barrier = threading.Barrier(len(databases))

            def claim(database: Database, copy: SubmissionRecord, barrier: threading.Barrier = barrier) -> str | None:
                barrier.wait()
                return database.claim_image(copy)

            with ThreadPoolExecutor(len(databases)) as pool:
                twins = list(pool.map(claim, databases, copies))
            started = [copy.id for copy, twin in zip(copies, twins, strict=True) if twin is None]
            assert len(started) == 1
            assert {twin for twin in twins if twin is not None} == set(started)
            states = {copy.id: databases[0].get(copy.id).state for copy in copies}
            assert states == {copy.id: S.UNPACKING if copy.id in started else S.QUEUED for copy in copies}
    finally:
        for database in databases:
            database.close()


def test_progress_counters(db: Database) -> None:
    submission = new_submission(db)
    assert (db.set_progress(submission.id, 3, 10).progress_done, db.get(submission.id).progress_total) == (3, 10)
    for done, total in ((11, 10), (-1, 5)):
        with pytest.raises(ValueError, match="0 <= done <= total"):
            db.set_progress(submission.id, done, total)
    assert (db.get(submission.id).progress_done, db.get(submission.id).progress_total) == (3, 10)


def test_changes_refresh_updated_at(db: Database) -> None:
    submission = new_submission(db)
    stale = datetime(2000, 1, 1, tzinfo=UTC)
    for change in (lambda: db.set_state(submission.id, S.UNPACKING), lambda: db.set_progress(submission.id, 1, 2)):
        with db.engine.begin() as connection:
            connection.execute(update(SubmissionRow).values(updated_at=stale))
        assert change().updated_at > stale


def test_idle_submissions_are_the_unfinished_ones_unchanged_for_long_enough(db: Database) -> None:
    now = datetime.now(UTC)
    queued, analysing, reporting, done, recent = (new_submission(db) for _ in range(5))
    advance(db, analysing.id, S.ANALYZING)
    advance(db, reporting.id, S.REPORTING)
    advance(db, done.id, S.REPORTING)
    db.finish(done.id, a_report("clean", 0, "nothing found", "a" * 64))
    for record, hours in ((queued, 2), (analysing, 5), (reporting, 3), (done, 9)):
        with db.engine.begin() as connection:
            connection.execute(update(SubmissionRow).where(SubmissionRow.id == record.id)
                               .values(updated_at=now - timedelta(hours=hours)))
    idle = db.idle_submissions(timedelta(hours=1))
    assert [(r.id, r.state) for r in idle] == [(analysing.id, S.ANALYZING), (reporting.id, S.REPORTING),
                                               (queued.id, S.QUEUED)]
    assert [r.id for r in db.idle_submissions(timedelta(hours=4))] == [analysing.id]
    assert recent.id in {r.id for r in db.idle_submissions(timedelta(0))}

    requeued = db.note_requeued(analysing.id, "unpack", actor="ops")
    assert requeued.updated_at >= now and requeued.state is S.ANALYZING
    assert analysing.id not in {r.id for r in db.idle_submissions(timedelta(hours=1))}
    [event] = [e for e in db.audit_events(analysing.id) if e.action == "submission.requeued"]
    assert (event.actor, event.detail) == ("ops", {"step": "unpack", "state": "analyzing"})


# --- SQLite specifics and settings ----------------------------------------------------------------


def test_sqlite_is_shared_safely(tmp_path: Path) -> None:
    with Database(URL.create("sqlite", database=str(tmp_path / "f.db"))) as database, \
            database.engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() >= 1000


def test_for_settings_defaults_to_sqlite_under_home(tmp_path: Path) -> None:
    home = tmp_path / "not-yet" / "home"
    with Database.for_settings(Settings(home=home)) as database:
        created = new_submission(database)
    assert (home / "fwtriage.db").is_file()
    with Database(f"sqlite:///{home / 'fwtriage.db'}") as reopened:
        assert reopened.get(created.id) == created


def test_for_settings_uses_fwtriage_db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    monkeypatch.setenv("FWTRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FWTRIAGE_DB_URL", f"sqlite:///{elsewhere}")
    with Database.for_settings(Settings.from_env()):
        pass
    assert elsewhere.is_file()
    assert not (tmp_path / "home" / "fwtriage.db").exists()


def test_plain_postgresql_urls_use_psycopg(postgres_database: URL) -> None:
    plain = postgres_database.set(drivername="postgresql")
    with Database(plain) as database:
        assert database.engine.dialect.driver == "psycopg"
    empty_postgres(postgres_database)


def test_the_analysis_cache_round_trips_findings_and_ignores_a_second_store(db: Database) -> None:
    finding = Finding("ioc:domain", "iocs", Category.ENDPOINT, Severity.MEDIUM, "Hard-coded domain",
                      endpoint=Endpoint("x.example.cn", EndpointKind.DOMAIN, Scope.PUBLIC, "x.example.cn", "CN",
                                        "cctld"),
                      tags=("encoded:base64",), evidence=(Evidence("decoded", "eC5leGFtcGxl", 16, "x.example.cn"),))
    key, empty, absent = (CacheKey("a" * 64, "iocs", "3", "digest"), CacheKey("b" * 64, "elf", "1", ""),
                          CacheKey("a" * 64, "iocs", "4", "digest"))
    db.remember_findings({key: [finding], empty: []})
    db.remember_findings({key: []})  # a racing worker's store of the same key changes nothing
    assert db.cached_findings([key, empty, absent]) == {key: [finding], empty: []}
