"""The submission database: SQLAlchemy 2 tables, their Alembic migrations, and the submission state machine.

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
        command.revision(alembic_config(connection), "artifact table", autogenerate=True, rev_id="0002")

then read and tidy it: ``tests/test_db.py`` fails while the models and the migrations disagree.

Why snapshots: every call opens a short session and returns frozen ``SubmissionRecord`` values, so no
caller holds a session, a lock or a lazily loading row across a long unpack.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Enum,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from pipeline.config import Settings
from pipeline.model import CacheKey, Finding

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_FILENAME = "fwtriage.db"
SQLITE_BUSY_MILLISECONDS = 30_000  # a reader waits this long for a scan's write to finish, and vice versa
SQLITE_BEGIN = "fwtriage_sqlite_begin"  # execution option: the kind of BEGIN our SQLite transactions start with
CACHE_QUERY_BLOBS = 500  # blobs per cache lookup query (bound parameters stay well under SQLite's limit)
CACHE_INSERT_ROWS = 500
MIGRATION_LOCK_KEY = 0x66777472696167  # PostgreSQL advisory lock held while migrating ("fwtriag")


class SubmissionState(StrEnum):
    QUEUED = "queued"  # recorded, waiting for a worker
    UNPACKING = "unpacking"
    ANALYZING = "analyzing"
    REPORTING = "reporting"
    DONE = "done"  # final: verdict and report recorded
    FAILED = "failed"  # final: ``failure`` says why


FINAL_STATES = frozenset({SubmissionState.DONE, SubmissionState.FAILED})

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


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored and returned in UTC on every backend.

    PostgreSQL keeps the instant (``timestamptz``) but SQLite has no time zone type and would hand back a
    naive value; normalising on the way in and tagging on the way out makes both return the same aware UTC
    datetime. Naive values are refused: their time zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give it a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    # Named constraints and indexes: later migrations (SQLite batch mode included) can refer to them by name.
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class SubmissionRow(Base):
    """One received image and how far its triage went; the report's ``submission`` part comes from here."""

    __tablename__ = "submission"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    sha1: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # "has this image been seen before?"
    case: Mapped[str | None] = mapped_column("case_ref", Text)  # "case" is a reserved word in SQL
    exhibit: Mapped[str | None] = mapped_column(Text)
    device: Mapped[str | None] = mapped_column(Text)
    examiner: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # listings are newest first
    state: Mapped[SubmissionState] = mapped_column(
        Enum(SubmissionState, name="state", native_enum=False, create_constraint=True, length=16,
             values_callable=lambda states: [state.value for state in states]),
        default=SubmissionState.QUEUED,
    )
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    failure: Mapped[str | None] = mapped_column(Text)
    verdict: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str | None] = mapped_column(Text)
    report_digest: Mapped[str | None] = mapped_column(String(64))
    report_dir: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class AnalysisResultRow(Base):
    """One analyzer's findings on one blob (JSON, ``Finding.to_dict``), under the key that decides them."""

    __tablename__ = "analysis_result"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    analyzer: Mapped[str] = mapped_column(String(64), primary_key=True)
    analyzer_version: Mapped[str] = mapped_column(String(32), primary_key=True)
    config: Mapped[str] = mapped_column(String(256), primary_key=True)
    findings: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


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

    @classmethod
    def of(cls, row: SubmissionRow) -> SubmissionRecord:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


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
    for pragma in ("PRAGMA journal_mode=WAL", f"PRAGMA busy_timeout={SQLITE_BUSY_MILLISECONDS}",
                   "PRAGMA foreign_keys=ON"):
        cursor.execute(pragma)
    cursor.close()


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
    """Run the migrations under a lock, so that workers starting together on a new database migrate it once."""
    with engine.connect() as connection:
        connection.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            command.upgrade(alembic_config(connection), "head")


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

    def create_submission(self, *, filename: str, size: int, md5: str, sha1: str, sha256: str,
                          case: str | None = None, exhibit: str | None = None, device: str | None = None,
                          examiner: str | None = None, received_at: datetime | None = None,
                          submission_id: str | None = None) -> SubmissionRecord:
        """Record a received image as ``queued``; a new id (uuid4 hex) and the current time unless given."""
        now = utc_now()
        row = SubmissionRow(
            id=submission_id or uuid.uuid4().hex, filename=filename, size=size, md5=md5, sha1=sha1,
            sha256=sha256, case=case, exhibit=exhibit, device=device, examiner=examiner,
            received_at=received_at or now, state=SubmissionState.QUEUED, progress_done=0, progress_total=0,
            updated_at=now,
        )
        with self._sessions.begin() as session:
            session.add(row)
            session.flush()
            session.refresh(row)  # read back as stored: received_at in UTC
            return SubmissionRecord.of(row)

    def get(self, submission_id: str) -> SubmissionRecord:
        with self._sessions() as session:
            row = session.get(SubmissionRow, submission_id)
            if row is None:
                raise UnknownSubmission(submission_id)
            return SubmissionRecord.of(row)

    def list_submissions(self, limit: int = 50, *, state: SubmissionState | str | None = None,
                         sha256: str | None = None) -> list[SubmissionRecord]:
        """The most recently received first (ties by id, so the order is stable), optionally filtered."""
        query = select(SubmissionRow).order_by(SubmissionRow.received_at.desc(), SubmissionRow.id.desc())
        if state is not None:
            query = query.where(SubmissionRow.state == SubmissionState(state))
        if sha256 is not None:
            query = query.where(SubmissionRow.sha256 == sha256)
        with self._sessions() as session:
            return [SubmissionRecord.of(row) for row in session.scalars(query.limit(limit))]

    def set_state(self, submission_id: str, state: SubmissionState | str) -> SubmissionRecord:
        """Move along queued → unpacking → analyzing → reporting; ``finish`` and ``fail`` enter the final states."""
        target = SubmissionState(state)
        if target in FINAL_STATES:
            raise ValueError(f"{target} is entered with finish() or fail(), which record the outcome")
        return self._transition(submission_id, target)

    def set_progress(self, submission_id: str, done: int, total: int) -> SubmissionRecord:
        """Record how many of the current stage's items are done, out of how many known so far."""
        if not 0 <= done <= total:
            raise ValueError(f"progress {done}/{total}: need 0 <= done <= total")
        statement = (update(SubmissionRow).where(SubmissionRow.id == submission_id)
                     .values(progress_done=done, progress_total=total).returning(SubmissionRow))
        with self._sessions.begin() as session:
            row = session.scalars(statement).one_or_none()
            if row is None:
                raise UnknownSubmission(submission_id)
            return SubmissionRecord.of(row)

    def finish(self, submission_id: str, verdict: str, score: int, summary: str, report_digest: str,
               report_dir: str | Path) -> SubmissionRecord:
        """Enter ``done`` from ``reporting``, with the verdict and where the report was written."""
        return self._transition(submission_id, SubmissionState.DONE, verdict=str(verdict), score=score,
                                summary=summary, report_digest=report_digest, report_dir=str(report_dir))

    def fail(self, submission_id: str, reason: str) -> SubmissionRecord:
        """Enter ``failed`` from any state that is not final, keeping a reason a reviewer can read."""
        return self._transition(submission_id, SubmissionState.FAILED, failure=reason)

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
        insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        with self._sessions.begin() as session:
            for start in range(0, len(rows), CACHE_INSERT_ROWS):
                session.execute(insert(AnalysisResultRow).on_conflict_do_nothing(),
                                rows[start:start + CACHE_INSERT_ROWS])

    def _transition(self, submission_id: str, target: SubmissionState, **outcome: object) -> SubmissionRecord:
        """Check and change the state in one UPDATE, so two workers racing on one submission cannot both win."""
        statement = (update(SubmissionRow)
                     .where(SubmissionRow.id == submission_id, SubmissionRow.state.in_(entered_from(target)))
                     .values(state=target, **outcome).returning(SubmissionRow))
        with self._sessions.begin() as session:
            row = session.scalars(statement).one_or_none()
            if row is not None:
                return SubmissionRecord.of(row)
            current = session.scalar(select(SubmissionRow.state).where(SubmissionRow.id == submission_id))
        if current is None:
            raise UnknownSubmission(submission_id)
        raise IllegalTransition(submission_id, current, target)
