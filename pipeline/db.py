"""The submission database: every read and write of the tables (``pipeline/tables.py``), their Alembic
migrations, the submission state machine and the audit log's appends.

Why a database: a submission outlives the process that received it. ``fwtriage scan`` records it in SQLite
under ``FWTRIAGE_HOME`` (the embedded default); a deployment points ``FWTRIAGE_DB_URL`` at PostgreSQL and
its Celery workers move the same rows forward. Both run the code below, so both see the same states.

Why migrations run on opening: there is then no separate "migrate" step to forget when a new version is
installed. Each schema change is one Alembic revision in ``pipeline/migrations/versions/`` (``0001``,
``0002``, ...), shipped inside the package; no ``alembic.ini`` is needed. To draft the next revision from
the models, against a database already at head::

    from alembic import command
    from pipeline.db import Database, alembic_config
    with Database(url) as db, db.engine.connect() as connection:
        command.revision(alembic_config(connection), "what changes", autogenerate=True, rev_id="0006")

then read and tidy it: ``tests/test_db.py`` fails while the models and the migrations disagree.

Why snapshots: every call opens a short session and returns frozen ``SubmissionRecord`` values, so no
caller holds a session, a lock or a lazily loading row across a long unpack.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, delete, event, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from pipeline.audit import GENESIS_HASH, AuditEntry, entry_hash, verify_chain
from pipeline.config import Settings
from pipeline.model import (
    Artifact,
    CacheKey,
    Coverage,
    ExtractionIssue,
    ExtractionNote,
    ExtractionTree,
    Finding,
    IssueKind,
    Platform,
    Submission,
    rfc3339,
)
from pipeline.tables import (
    AnalysisBatchRow,
    AnalysisIssueRow,
    AnalysisResultRow,
    ArtifactRow,
    AuditEventRow,
    Base,
    BehaviourRow,
    CaseRow,
    ExtractionRow,
    FindingRow,
    LabRow,
    ReportRow,
    ReviewRow,
    ReviewStatus,
    SubmissionRow,
    SubmissionState,
    utc_now,
)

__all__ = ["Base", "Database", "IllegalTransition", "SubmissionRecord", "SubmissionState", "UnknownSubmission"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_FILENAME = "fwtriage.db"
SQLITE_BUSY_MILLISECONDS = 30_000  # a reader waits this long for a scan's write to finish, and vice versa
SQLITE_BEGIN = "fwtriage_sqlite_begin"  # execution option: the kind of BEGIN our SQLite transactions start with
CACHE_QUERY_BLOBS = 500  # blobs per cache lookup query (bound parameters stay well under SQLite's limit)
CACHE_INSERT_ROWS = 500
MIGRATION_LOCK_KEY = 0x66777472696167  # PostgreSQL advisory lock held while migrating ("fwtriag")
AUDIT_LOCK_KEY = 0x66777461756474  # PostgreSQL advisory lock held while appending to the audit log ("fwtaudt")
IMAGE_LOCK_CLASS = 0x66776931  # with an image's key: the two-integer advisory lock held while claiming it ("fwi1")


FINAL_STATES = frozenset({SubmissionState.DONE, SubmissionState.FAILED})
UNFINISHED = (SubmissionState.QUEUED, SubmissionState.UNPACKING, SubmissionState.ANALYZING,
              SubmissionState.REPORTING)
_IN_PROGRESS = tuple(state for state in UNFINISHED if state is not SubmissionState.QUEUED)  # a worker holds it

# The forward path, one step at a time; any state that is not final may also go to FAILED.
NEXT_STATE: Mapping[SubmissionState, SubmissionState] = {
    SubmissionState.QUEUED: SubmissionState.UNPACKING,
    SubmissionState.UNPACKING: SubmissionState.ANALYZING,
    SubmissionState.ANALYZING: SubmissionState.REPORTING,
    SubmissionState.REPORTING: SubmissionState.DONE,
}


def entered_from(target: SubmissionState) -> frozenset[SubmissionState]:
    """The states from which ``target`` may be entered, ``target`` itself included.

    Re-entering the current state is allowed on purpose: workers acknowledge a task only once it is done,
    so a task whose worker died is delivered again and repeats its ``set_state``/``finish``/``fail``. That
    repetition must succeed (last write wins) instead of failing a submission that is progressing fine.
    """
    if target is SubmissionState.FAILED:
        return frozenset((set(SubmissionState) - FINAL_STATES) | {SubmissionState.FAILED})
    return frozenset({target} | {source for source, nxt in NEXT_STATE.items() if nxt is target})


class IllegalTransition(Exception):
    """A submission was asked to move to a state its state machine does not allow from where it is."""

    def __init__(self, submission_id: str, current: SubmissionState, target: SubmissionState) -> None:
        self.submission_id, self.current, self.target = submission_id, current, target
        if current in FINAL_STATES:
            why = f"{current} is final"
        else:
            why = "allowed: " + ", ".join(state for state in SubmissionState if current in entered_from(state))
        super().__init__(f"submission {submission_id}: cannot go from {current} to {target} ({why})")


class UnknownSubmission(LookupError):
    """No submission has this id."""


@dataclass(frozen=True)
class SubmissionRecord:
    """A submission as stored, detached from any session: safe to keep, pass between threads or print."""

    id: str
    filename: str
    size: int
    md5: str
    sha1: str
    sha256: str
    case: str | None
    exhibit: str | None
    device: str | None
    examiner: str | None
    received_at: datetime
    state: SubmissionState
    progress_done: int
    progress_total: int
    failure: str | None
    verdict: str | None
    score: int | None
    summary: str | None
    report_digest: str | None
    report_dir: str | None
    updated_at: datetime
    lab_id: int | None
    analyzer_calls: int
    cache_hits: int
    review_status: ReviewStatus
    human_verdict: str | None
    signed_off_at: datetime | None

    @classmethod
    def of(cls, row: SubmissionRow) -> SubmissionRecord:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})

    def status(self) -> dict[str, Any]:
        """Where the submission stands, as data: what ``fwtriage status --json`` prints and the API returns."""
        return {"id": self.id, "filename": self.filename, "state": str(self.state),
                "progress": {"done": min(self.progress_done, self.progress_total), "total": self.progress_total},
                "verdict": self.verdict, "score": self.score, "summary": self.summary,
                "failure": self.failure, "report_digest": self.report_digest,
                "review": {"status": str(self.review_status), "human_verdict": self.human_verdict,
                           "signed_off_at": self.signed_off_at.isoformat() if self.signed_off_at else None},
                "analyzer_calls": self.analyzer_calls, "cache_hits": self.cache_hits,
                "received_at": self.received_at.isoformat(), "updated_at": self.updated_at.isoformat()}

    def submission(self) -> Submission:
        """The submission as the pipeline and its report know it (received_at in RFC 3339, to the second)."""
        return Submission(id=self.id, filename=self.filename, size=self.size, md5=self.md5, sha1=self.sha1,
                          sha256=self.sha256, received_at=rfc3339(self.received_at), case=self.case,
                          exhibit=self.exhibit, device=self.device, examiner=self.examiner)


def alembic_config(connection: Connection) -> Config:
    """An Alembic configuration that runs our migrations on ``connection``; no ``alembic.ini`` involved."""
    config = Config(attributes={"connection": connection})
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def _normalised_url(url: str | URL) -> URL:
    """``postgresql://`` means psycopg 3 here: the driver we depend on, not SQLAlchemy's default psycopg2."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg") if parsed.drivername == "postgresql" else parsed


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets a reader and a writer (a scan) work at once; the busy timeout makes writers queue, not fail."""
    dbapi_connection.isolation_level = None  # the driver's own implicit BEGIN is replaced by _begin_sqlite
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MILLISECONDS}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """WAL mode, waiting for the lock: SQLite answers "database is locked" at once, without its busy handler,
    to a connection that switches a new database to WAL while another (a worker starting at the same moment)
    holds it, so the wait is ours."""
    deadline = time.monotonic() + SQLITE_BUSY_MILLISECONDS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _begin_sqlite(connection: Connection) -> None:
    """Start every transaction explicitly, so DDL is transactional and migrations can take the write lock first.

    Python's sqlite3 driver only opens a transaction before INSERT/UPDATE/DELETE, which would leave
    ``CREATE TABLE`` outside of it. The migration begins with ``BEGIN IMMEDIATE``, which waits for the write
    lock up front: of two processes opening a new database at once, the second waits for the first's
    migration and then finds nothing to do, instead of colliding with it.
    """
    connection.exec_driver_sql(f"BEGIN {connection.get_execution_options().get(SQLITE_BEGIN, 'DEFERRED')}")


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url)
    event.listen(engine, "connect", _configure_sqlite)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def _upgrade_to_head(engine: Engine) -> None:
    """Run the migrations under a lock, so that workers starting together on a new database migrate it once.

    On SQLite, foreign keys are off while migrating: a batch migration rebuilds a table by dropping it, which
    with them on would cascade into every row that refers to it (a submission's tree, findings, reviews...).
    They are checked once the migration is done and switched back on; the pragma only takes effect outside a
    transaction, hence the raw connection.
    """
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        connection.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        try:
            with connection.begin():
                if not sqlite:
                    connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
                command.upgrade(alembic_config(connection), "head")
                if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                    raise RuntimeError(f"the migration left rows that break foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


class Database:
    """The submissions of one fwtriage installation; opening it brings its schema up to date."""

    def __init__(self, url: str | URL) -> None:
        self.engine = _create_engine(_normalised_url(url))
        try:
            _upgrade_to_head(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Writers take SQLite's write lock when they begin: a transaction that reads and then writes (the audit
        # chain's last hash, a state check) waits its turn instead of failing on a lock upgrade.
        self._writes = sessionmaker(self.engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}),
                                    expire_on_commit=False)

    @classmethod
    def for_settings(cls, settings: Settings) -> Database:
        """``FWTRIAGE_DB_URL`` when set, else the embedded SQLite file ``fwtriage.db`` under the fwtriage home."""
        if settings.db_url:
            return cls(settings.db_url)
        settings.home.mkdir(parents=True, exist_ok=True)
        return cls(URL.create("sqlite", database=str(settings.home / SQLITE_FILENAME)))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A short session for reads (modules that own tables of their own, like accounts, use it too)."""
        with self._sessions() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One write transaction, committed on exit; on SQLite it holds the write lock from its start."""
        with self._writes.begin() as session:
            yield session

    # --- submissions ----------------------------------------------------------------------------------

    def create_submission(self, *, filename: str, size: int, md5: str, sha1: str, sha256: str,
                          case: str | None = None, exhibit: str | None = None, device: str | None = None,
                          examiner: str | None = None, received_at: datetime | None = None,
                          submission_id: str | None = None, actor: str = "fwtriage",
                          lab_id: int | None = None) -> SubmissionRecord:
        """Record a received image as ``queued`` (filing it under its case); a new id and the time unless given."""
        now = utc_now()
        row = SubmissionRow(
            id=submission_id or uuid.uuid4().hex, filename=filename, size=size, md5=md5, sha1=sha1,
            sha256=sha256, case=case, exhibit=exhibit, device=device, examiner=examiner,
            received_at=received_at or now, state=SubmissionState.QUEUED, progress_done=0, progress_total=0,
            updated_at=now, lab_id=lab_id, analyzer_calls=0, cache_hits=0,
            review_status=ReviewStatus.UNREVIEWED,
        )
        with self.writing() as session:
            if case is not None:
                session.execute(self._insert(CaseRow).values(ref=case, created_at=now).on_conflict_do_nothing())
            session.add(row)
            session.flush()
            session.refresh(row)  # read back as stored: received_at in UTC
            self.append_event(session, actor, "submission.received", row.id,
                               {"filename": filename, "sha256": sha256, "size": size, "case": case,
                                "exhibit": exhibit})
            return SubmissionRecord.of(row)

    def get(self, submission_id: str) -> SubmissionRecord:
        with self._sessions() as session:
            row = session.get(SubmissionRow, submission_id)
            if row is None:
                raise UnknownSubmission(submission_id)
            return SubmissionRecord.of(row)

    def list_submissions(self, limit: int = 50, *, state: SubmissionState | str | None = None,
                         sha256: str | None = None, case: str | None = None) -> list[SubmissionRecord]:
        """The most recently received first (ties by id, so the order is stable), optionally filtered."""
        query = select(SubmissionRow).order_by(SubmissionRow.received_at.desc(), SubmissionRow.id.desc())
        if state is not None:
            query = query.where(SubmissionRow.state == SubmissionState(state))
        if sha256 is not None:
            query = query.where(SubmissionRow.sha256 == sha256)
        if case is not None:
            query = query.where(SubmissionRow.case == case)
        with self._sessions() as session:
            return [SubmissionRecord.of(row) for row in session.scalars(query.limit(limit))]

    def idle_submissions(self, idle: timedelta) -> list[SubmissionRecord]:
        """Unfinished submissions whose row has not changed for ``idle``, the longest idle first: those a fault
        may have stranded (a task that gave up while the database was down could not even record its failure)."""
        query = (select(SubmissionRow).where(SubmissionRow.state.in_(UNFINISHED),
                                             SubmissionRow.updated_at <= utc_now() - idle)
                 .order_by(SubmissionRow.updated_at, SubmissionRow.id))
        with self._sessions() as session:
            return [SubmissionRecord.of(row) for row in session.scalars(query)]

    def lab_name(self, lab_id: int | None) -> str | None:
        """The name of a submission's lab (None for one submitted outside any lab)."""
        if lab_id is None:
            return None
        with self._sessions() as session:
            return session.scalar(select(LabRow.name).where(LabRow.id == lab_id))

    def cases(self) -> list[str]:
        with self._sessions() as session:
            return list(session.scalars(select(CaseRow.ref).order_by(CaseRow.ref)))

    def set_state(self, submission_id: str, state: SubmissionState | str) -> SubmissionRecord:
        """Move along queued → unpacking → analyzing → reporting; ``finish`` and ``fail`` enter the final states."""
        target = SubmissionState(state)
        if target in FINAL_STATES:
            raise ValueError(f"{target} is entered with finish() or fail(), which record the outcome")
        with self.writing() as session:
            return self._transition(session, submission_id, target)

    def set_progress(self, submission_id: str, done: int, total: int) -> SubmissionRecord:
        """Record how many of the current stage's items are done, out of how many known so far."""
        if not 0 <= done <= total:
            raise ValueError(f"progress {done}/{total}: need 0 <= done <= total")
        return self._update(submission_id, progress_done=done, progress_total=total)

    def count_analysis(self, submission_id: str, calls: int, hits: int = 0, files: int = 0,
                       batch: str | None = None) -> SubmissionRecord:
        """Add analyzer runs, cache hits and analysed files (progress) to the submission's counters; atomic,
        since analysis batches of one submission finish concurrently on several workers.

        A ``batch`` (its digest) delivered again adds only its analyzer runs (real work, zero when its results
        were cached by the first delivery): its files and cache hits were counted the first time.
        """
        with self.writing() as session:
            if batch is not None:
                first = session.scalar(self._insert(AnalysisBatchRow).values(submission_id=submission_id, batch=batch)
                                       .on_conflict_do_nothing().returning(AnalysisBatchRow.batch)) is not None
                hits, files = (hits, files) if first else (0, 0)
            return self._update_in(session, submission_id, analyzer_calls=SubmissionRow.analyzer_calls + calls,
                                   cache_hits=SubmissionRow.cache_hits + hits,
                                   progress_done=SubmissionRow.progress_done + files)

    def finish(self, submission_id: str, report: dict[str, Any], report_dir: str | Path | None = None,
               actor: str = "fwtriage") -> SubmissionRecord:
        """Enter ``done`` from ``reporting``: keep the report whole, its findings and behaviours as rows, the
        verdict on the submission, and an audit entry; all in one transaction, replacing any earlier attempt's."""
        verdict = report["verdict"]
        with self.writing() as session:
            record = self._transition(
                session, submission_id, SubmissionState.DONE, verdict=str(verdict["label"]),
                score=verdict["score"], summary=verdict["summary"], report_digest=report["report_digest"],
                report_dir=str(report_dir) if report_dir is not None else None,
                progress_done=SubmissionRow.progress_total)
            for table in (ReportRow, FindingRow, BehaviourRow):
                session.execute(delete(table).where(table.submission_id == submission_id))
            session.add(ReportRow(submission_id=submission_id, report_digest=report["report_digest"], body=report,
                                  created_at=utc_now()))
            _insert_rows(session, FindingRow, [_finding_row(submission_id, position, entry)
                                               for position, entry in enumerate(report["findings"])])
            _insert_rows(session, BehaviourRow, [_behaviour_row(submission_id, position, behaviour)
                                                 for position, behaviour in enumerate(report["behaviours"])])
            self.append_event(session, actor, "report.written", submission_id,
                               {"report_digest": report["report_digest"], "verdict": verdict["label"],
                                "score": verdict["score"]})
            return record

    def fail(self, submission_id: str, reason: str, actor: str = "fwtriage") -> SubmissionRecord:
        """Enter ``failed`` from any state that is not final, keeping a reason a reviewer can read."""
        with self.writing() as session:
            record = self._transition(session, submission_id, SubmissionState.FAILED, failure=reason)
            self.append_event(session, actor, "submission.failed", submission_id, {"reason": reason})
            return record

    def note_requeued(self, submission_id: str, step: str, actor: str) -> SubmissionRecord:
        """Record that an idle submission was queued again at ``step`` (the row counts as changed, so a second
        sweep soon after leaves it to the task just queued)."""
        with self.writing() as session:
            record = self._update_in(session, submission_id, updated_at=utc_now())
            self.append_event(session, actor, "submission.requeued", submission_id,
                              {"step": step, "state": str(record.state)})
            return record

    # --- extraction tree ------------------------------------------------------------------------------

    def save_extraction(self, submission_id: str, tree: ExtractionTree, unpack_config: str = "") -> None:
        """Store a submission's extraction tree (nodes and edges), replacing an earlier attempt's.

        ``unpack_config`` digests what decided the tree (see ``reusable_extraction``); a tree cut short by a
        limit or an extractor failure is never offered for reuse, since another run might get further.
        """
        reusable = bool(unpack_config) and not any(issue.kind in (IssueKind.LIMIT, IssueKind.FAILURE)
                                                   for issue in tree.errors)
        with self.writing() as session:
            session.execute(delete(ArtifactRow).where(ArtifactRow.submission_id == submission_id))
            session.execute(delete(ExtractionRow).where(ExtractionRow.submission_id == submission_id))
            session.add(ExtractionRow(
                submission_id=submission_id, image_sha256=tree.image_sha256, unpack_config=unpack_config,
                reusable=reusable, complete=tree.complete,
                coverage=asdict(tree.coverage), platform=asdict(tree.platform),
                errors=[_plain(asdict(issue)) for issue in tree.errors],
                notes=[_plain(asdict(note)) for note in tree.notes], created_at=utc_now()))
            session.flush()
            # parents first: each row's edge must point at a row already there
            _insert_rows(session, ArtifactRow, [_artifact_row(submission_id, artifact)
                                                for artifact in sorted(tree.artifacts, key=lambda a: a.id)])

    def load_extraction(self, submission_id: str) -> ExtractionTree | None:
        """A submission's extraction tree as it was saved; None when it has not been unpacked yet."""
        with self._sessions() as session:
            head = session.get(ExtractionRow, submission_id)
            if head is None:
                return None
            rows = session.scalars(select(ArtifactRow).where(ArtifactRow.submission_id == submission_id)
                                   .order_by(ArtifactRow.id))
            artifacts = [Artifact.from_dict({column: getattr(row, column) for column in _ARTIFACT_COLUMNS})
                         for row in rows]
            return ExtractionTree(
                image_sha256=head.image_sha256, artifacts=artifacts,
                errors=[ExtractionIssue.from_dict(issue) for issue in head.errors],
                notes=[ExtractionNote.from_dict(note) for note in head.notes],
                platform=Platform(**head.platform), coverage=Coverage(**head.coverage))

    def reusable_extraction(self, image_sha256: str, unpack_config: str) -> str | None:
        """The submission whose saved tree of this image, unpacked under this configuration, can be reused:
        the same bytes unpacked by the same version with the same limits give the same tree."""
        query = (select(ExtractionRow.submission_id)
                 .where(ExtractionRow.image_sha256 == image_sha256, ExtractionRow.unpack_config == unpack_config,
                        ExtractionRow.reusable.is_(True))
                 .order_by(ExtractionRow.created_at).limit(1))
        with self._sessions() as session:
            return session.scalar(query)

    def claim_image(self, record: SubmissionRecord) -> str | None:
        """Move a submission to unpacking unless another submission of the same image is under way; return that
        twin's id (this one stays queued, so two copies never wait for each other), or None once this one holds
        the image.

        The look for a twin and the claim are one transaction serialised per image (PostgreSQL: an advisory lock
        on the sha256; SQLite: the write lock every ``writing`` transaction starts with): two copies taken by two
        workers at the same instant cannot both find no twin and both unpack.
        """
        twins = (select(SubmissionRow.id)
                 .where(SubmissionRow.sha256 == record.sha256, SubmissionRow.state.in_(_IN_PROGRESS),
                        SubmissionRow.id != record.id)
                 .order_by(SubmissionRow.received_at, SubmissionRow.id).limit(1))
        with self.writing() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(select(func.pg_advisory_xact_lock(IMAGE_LOCK_CLASS, _image_lock_key(record.sha256))))
            twin = session.scalar(twins)
            if twin is None and record.state in entered_from(SubmissionState.UNPACKING):
                self._transition(session, record.id, SubmissionState.UNPACKING)
            return twin

    def submissions_containing(self, sha256: str) -> list[str]:
        """Ids of the submissions whose image is, or contains, the blob ``sha256``."""
        with self._sessions() as session:
            inner = select(ArtifactRow.submission_id).where(ArtifactRow.sha256 == sha256)
            outer = select(SubmissionRow.id).where(SubmissionRow.sha256 == sha256)
            return sorted(set(session.scalars(inner)) | set(session.scalars(outer)))

    # --- analysis -------------------------------------------------------------------------------------

    def record_analysis_issues(self, submission_id: str, issues: Sequence[tuple[str, str, str, str]]) -> None:
        """Keep (sha256, path, analyzer, error) failures of a submission's analysis; a repeat replaces the error."""
        if not issues:
            return
        rows = [{"submission_id": submission_id, "sha256": sha256, "path": path, "analyzer": analyzer,
                 "error": error} for sha256, path, analyzer, error in issues]
        with self.writing() as session:
            for row in rows:
                statement = self._insert(AnalysisIssueRow).values(**row)
                session.execute(statement.on_conflict_do_update(
                    index_elements=["submission_id", "sha256", "analyzer"], set_={"error": statement.excluded.error,
                                                                                   "path": statement.excluded.path}))

    def analysis_issues(self, submission_id: str) -> list[tuple[str, str, str, str]]:
        """The failures recorded for a submission, as (sha256, path, analyzer, error), sorted."""
        with self._sessions() as session:
            rows = session.scalars(select(AnalysisIssueRow).where(AnalysisIssueRow.submission_id == submission_id)
                                   .order_by(AnalysisIssueRow.sha256, AnalysisIssueRow.analyzer))
            return [(row.sha256, row.path, row.analyzer, row.error) for row in rows]

    def cached_findings(self, keys: Sequence[CacheKey]) -> dict[CacheKey, list[Finding]]:
        """The findings already stored for ``keys`` (the analysis cache); keys never analysed are absent."""
        wanted = set(keys)
        found: dict[CacheKey, list[Finding]] = {}
        blobs = sorted({key.sha256 for key in wanted})
        with self._sessions() as session:
            for start in range(0, len(blobs), CACHE_QUERY_BLOBS):
                query = select(AnalysisResultRow).where(
                    AnalysisResultRow.sha256.in_(blobs[start:start + CACHE_QUERY_BLOBS]))
                for row in session.scalars(query):
                    key = CacheKey(row.sha256, row.analyzer, row.analyzer_version, row.config)
                    if key in wanted:
                        found[key] = [Finding.from_dict(item) for item in json.loads(row.findings)]
        return found

    def remember_findings(self, results: Mapping[CacheKey, list[Finding]]) -> None:
        """Store new results; a key another worker stored meanwhile is left as it is (same key, same findings)."""
        rows = [{"sha256": key.sha256, "analyzer": key.analyzer, "analyzer_version": key.version,
                 "config": key.config, "findings": json.dumps([f.to_dict() for f in findings]),
                 "created_at": utc_now()} for key, findings in results.items()]
        with self.writing() as session:
            for start in range(0, len(rows), CACHE_INSERT_ROWS):
                session.execute(self._insert(AnalysisResultRow).on_conflict_do_nothing(),
                                rows[start:start + CACHE_INSERT_ROWS])

    # --- reports, findings, reviews -------------------------------------------------------------------

    def report(self, submission_id: str, actor: str | None = None) -> dict[str, Any] | None:
        """A finished submission's report JSON (None before it is done); with an ``actor``, the read is audited."""
        with (self.writing() if actor else self._sessions()) as session:
            row = session.get(ReportRow, submission_id)
            if row is None:
                if session.get(SubmissionRow, submission_id) is None:
                    raise UnknownSubmission(submission_id)
                return None
            if actor:
                self.append_event(session, actor, "report.read", submission_id,
                                   {"report_digest": row.report_digest})
            return row.body

    def findings(self, submission_id: str) -> list[dict[str, Any]]:
        """A finished submission's findings, in the report's order."""
        with self._sessions() as session:
            return [row.body for row in session.scalars(
                select(FindingRow).where(FindingRow.submission_id == submission_id).order_by(FindingRow.position))]

    def behaviours(self, submission_id: str) -> list[dict[str, Any]]:
        with self._sessions() as session:
            return [row.body for row in session.scalars(
                select(BehaviourRow).where(BehaviourRow.submission_id == submission_id)
                .order_by(BehaviourRow.position))]

    def add_review(self, submission_id: str, reviewer: str, subject: str, decision: str, note: str = "") -> int:
        """Record a reviewer's decision (and audit it); decisions are kept in order, never overwritten."""
        with self.writing() as session:
            return self.insert_review(session, submission_id, reviewer, subject, decision, note)

    def insert_review(self, session: Session, submission_id: str, reviewer: str, subject: str, decision: str,
                      note: str = "") -> int:
        """``add_review`` inside the caller's transaction (which may change the submission's review status too)."""
        if session.get(SubmissionRow, submission_id) is None:
            raise UnknownSubmission(submission_id)
        row = ReviewRow(submission_id=submission_id, reviewer=reviewer, subject=subject, decision=decision,
                        note=note, created_at=utc_now())
        session.add(row)
        session.flush()
        self.append_event(session, reviewer, "review.recorded", submission_id,
                          {"review": row.id, "subject": subject, "decision": decision, "note": note})
        return row.id

    def reviews(self, submission_id: str) -> list[dict[str, Any]]:
        with self._sessions() as session:
            rows = session.scalars(select(ReviewRow).where(ReviewRow.submission_id == submission_id)
                                   .order_by(ReviewRow.id))
            return [{"id": r.id, "reviewer": r.reviewer, "subject": r.subject, "decision": r.decision,
                     "note": r.note, "at": r.created_at} for r in rows]

    # --- audit log ------------------------------------------------------------------------------------

    def audit_events(self, submission_id: str | None = None) -> list[AuditEntry]:
        """The audit log in order, or the entries about one submission."""
        query = select(AuditEventRow).order_by(AuditEventRow.id)
        if submission_id is not None:
            query = query.where(AuditEventRow.submission_id == submission_id)
        with self._sessions() as session:
            return [AuditEntry(r.id, r.at, r.actor, r.action, r.submission_id, r.detail, r.prev_hash, r.hash)
                    for r in session.scalars(query)]

    def verify_audit(self) -> list[str]:
        """Problems in the audit chain (an entry edited, removed or inserted); empty when it is intact."""
        return verify_chain(self.audit_events())

    def append_event(self, session: Session, actor: str, action: str, submission_id: str | None,
                      detail: dict[str, Any]) -> None:
        """Append to the hash chain inside the caller's transaction; appends are serialised so links never fork
        (PostgreSQL: an advisory lock; SQLite: the write lock every ``writing`` transaction starts with)."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(func.pg_advisory_xact_lock(AUDIT_LOCK_KEY)))
        prev = session.scalar(select(AuditEventRow.hash).order_by(AuditEventRow.id.desc()).limit(1)) or GENESIS_HASH
        at = utc_now()
        session.add(AuditEventRow(at=at, actor=actor, action=action, submission_id=submission_id, detail=detail,
                                  prev_hash=prev, hash=entry_hash(prev, at, actor, action, submission_id, detail)))
        session.flush()

    # --- helpers --------------------------------------------------------------------------------------

    def _insert(self, table: type[Base]) -> Any:
        """An INSERT that understands ON CONFLICT, in this database's dialect."""
        return (postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert)(table)

    def _update(self, submission_id: str, **values: Any) -> SubmissionRecord:
        with self.writing() as session:
            return self._update_in(session, submission_id, **values)

    @staticmethod
    def _update_in(session: Session, submission_id: str, **values: Any) -> SubmissionRecord:
        statement = update(SubmissionRow).where(SubmissionRow.id == submission_id).values(**values)
        row = session.scalars(statement.returning(SubmissionRow)).one_or_none()
        if row is None:
            raise UnknownSubmission(submission_id)
        return SubmissionRecord.of(row)

    @staticmethod
    def _transition(session: Session, submission_id: str, target: SubmissionState,
                    **outcome: object) -> SubmissionRecord:
        """Check and change the state in one UPDATE, so two workers racing on one submission cannot both win."""
        statement = (update(SubmissionRow)
                     .where(SubmissionRow.id == submission_id, SubmissionRow.state.in_(entered_from(target)))
                     .values(state=target, **outcome).returning(SubmissionRow))
        row = session.scalars(statement).one_or_none()
        if row is not None:
            return SubmissionRecord.of(row)
        current = session.scalar(select(SubmissionRow.state).where(SubmissionRow.id == submission_id))
        if current is None:
            raise UnknownSubmission(submission_id)
        raise IllegalTransition(submission_id, current, target)


_ARTIFACT_COLUMNS = ("id", "parent", "lineage", "sha256", "size", "kind", "depth", "format", "description",
                     "offset", "extractor", "link_target", "coverage", "attributes")


def _image_lock_key(sha256: str) -> int:
    """An image's advisory lock key: its hash's first 32 bits as a signed integer (a collision between two images
    only makes one claim wait for the other's few milliseconds)."""
    return int.from_bytes(bytes.fromhex(sha256[:8]), "big", signed=True)


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """Enum members as their values, so JSON columns hold plain strings."""
    return {key: str(value) if isinstance(value, str) else value for key, value in data.items()}


def _artifact_row(submission_id: str, artifact: Artifact) -> dict[str, Any]:
    data = artifact.to_dict()
    row = {column: data[column] for column in _ARTIFACT_COLUMNS}
    row["kind"] = str(artifact.kind)
    row["submission_id"] = submission_id
    return row


def _finding_row(submission_id: str, position: int, entry: dict[str, Any]) -> dict[str, Any]:
    return {"submission_id": submission_id, "position": position, "sha256": entry["artifact"]["sha256"],
            "path": entry["artifact"]["path"], "rule": entry["rule"], "analyzer": entry["analyzer"],
            "category": entry["category"], "severity": entry["severity"],
            "endpoint": (entry.get("endpoint") or {}).get("value"), "body": entry}


def _behaviour_row(submission_id: str, position: int, behaviour: dict[str, Any]) -> dict[str, Any]:
    return {"submission_id": submission_id, "id": behaviour["id"], "position": position, "rule": behaviour["rule"],
            "title": behaviour["title"], "confidence": behaviour["confidence"], "data": behaviour["data"],
            "channels": behaviour["channels"], "endpoints": behaviour["endpoints"],
            "countries": behaviour["countries"], "body": behaviour}


def _insert_rows(session: Session, table: type[Base], rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CACHE_INSERT_ROWS):
        session.execute(insert(table), rows[start:start + CACHE_INSERT_ROWS])
