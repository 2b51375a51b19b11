"""The database tables (SQLAlchemy 2 models): what one fwtriage installation remembers.

Why these tables and not one JSON blob per submission: reviewers and the fleet views ask questions across
submissions ("which exhibits contain this busybox?", "every submission talking to this address", "what did
reviewer X decide?"), so the extraction tree, the findings and the behaviours are rows with indexes. The
report itself is kept whole beside them: it is the contract a lab receives, and its digest must not depend
on how the rows are read back.

``pipeline/db.py`` owns every read and write; the migrations in ``pipeline/migrations`` create exactly these
tables (a test fails when they disagree).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class SubmissionState(StrEnum):
    QUEUED = "queued"  # recorded, waiting for a worker
    UNPACKING = "unpacking"
    ANALYZING = "analyzing"
    REPORTING = "reporting"
    DONE = "done"  # final: verdict and report recorded
    FAILED = "failed"  # final: ``failure`` says why


def utc_now() -> datetime:
    return datetime.now(UTC)


def _enum_values(members: type[StrEnum]) -> list[str]:
    """Store an enum by its value ("signed_off"), not its Python name."""
    return [member.value for member in members]


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


def _submission_fk() -> Any:
    """A column naming its submission; deleting a submission deletes what hangs off it."""
    return ForeignKey("submission.id", ondelete="CASCADE")


class CaseRow(Base):
    """A case (an investigation) that submissions are filed under; created by its first submission."""

    __tablename__ = "case"

    ref: Mapped[str] = mapped_column(Text, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class ReviewStatus(StrEnum):
    """Where a submission stands with its human reviewers (the machine's verdict is kept apart, unchanged)."""

    UNREVIEWED = "unreviewed"  # no decision yet
    IN_REVIEW = "in_review"  # decisions recorded, not signed off
    AWAITING_SECOND = "awaiting_second"  # signed off once; the lab wants a second reviewer for a backdoor
    SIGNED_OFF = "signed_off"  # final: ``human_verdict`` is the lab's conclusion


class Role(StrEnum):
    LAB = "lab"  # submits images, sees its own lab's submissions only
    REVIEWER = "reviewer"  # reviews the queue of its lab, or of every lab when it has none
    ADMIN = "admin"  # manages labs, users and tokens


class LabRow(Base):
    """A laboratory that submits images; its people see its submissions and no other lab's."""

    __tablename__ = "lab"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    second_signoff: Mapped[bool] = mapped_column(Boolean, default=False)  # a backdoor verdict needs two reviewers
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class UserRow(Base):
    """Someone (or a lab's system) who uses the service, with one role."""

    __tablename__ = "user_account"  # "user" is a reserved word in PostgreSQL

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="role", native_enum=False, create_constraint=True, length=16,
             values_callable=_enum_values))
    lab_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("lab.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_hash: Mapped[str | None] = mapped_column(Text)  # scrypt, for the browser; None: tokens only


class ApiTokenRow(Base):
    """An API token, kept as its sha256 only: the token itself is shown once, when it is issued."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SubmissionRow(Base):
    """One received image and how far its triage went; the report's ``submission`` part comes from here."""

    __tablename__ = "submission"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    sha1: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # "has this image been seen before?"
    # "case" is a reserved word in SQL, hence the column name
    case: Mapped[str | None] = mapped_column("case_ref", Text, ForeignKey("case.ref"), index=True)
    exhibit: Mapped[str | None] = mapped_column(Text)
    device: Mapped[str | None] = mapped_column(Text)
    examiner: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # listings are newest first
    state: Mapped[SubmissionState] = mapped_column(
        Enum(SubmissionState, name="state", native_enum=False, create_constraint=True, length=16,
             values_callable=_enum_values),
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
    lab_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("lab.id"), index=True)  # who submitted it
    analyzer_calls: Mapped[int] = mapped_column(Integer, default=0)  # analyzers actually run for it
    cache_hits: Mapped[int] = mapped_column(Integer, default=0)  # (blob, analyzer) results reused
    review_status: Mapped[ReviewStatus] = mapped_column(
        Enum(ReviewStatus, name="review_status", native_enum=False, create_constraint=True, length=16,
             values_callable=_enum_values),
        default=ReviewStatus.UNREVIEWED, server_default=ReviewStatus.UNREVIEWED.value, index=True)
    human_verdict: Mapped[str | None] = mapped_column(String(16))  # the reviewers' verdict, beside the machine's
    signed_off_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AnalysisResultRow(Base):
    """One analyzer's findings on one blob (JSON, ``Finding.to_dict``), under the key that decides them."""

    __tablename__ = "analysis_result"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    analyzer: Mapped[str] = mapped_column(String(64), primary_key=True)
    analyzer_version: Mapped[str] = mapped_column(String(32), primary_key=True)
    config: Mapped[str] = mapped_column(String(256), primary_key=True)
    findings: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class ExtractionRow(Base):
    """What unpacking concluded about one submission's image as a whole (its nodes are ``artifact`` rows)."""

    __tablename__ = "extraction"
    __table_args__ = (Index("ix_extraction_reuse", "image_sha256", "unpack_config"),)

    submission_id: Mapped[str] = mapped_column(String(64), _submission_fk(), primary_key=True)
    image_sha256: Mapped[str] = mapped_column(String(64))
    # digest of what decides the tree (fwtriage version, limits); with the image's sha256, when it can be reused
    unpack_config: Mapped[str] = mapped_column(String(64))
    reusable: Mapped[bool] = mapped_column(Boolean)  # no limit hit, no extractor failure: another run would agree
    complete: Mapped[bool] = mapped_column(Boolean)
    coverage: Mapped[dict[str, Any]] = mapped_column(JSON)
    platform: Mapped[dict[str, Any]] = mapped_column(JSON)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class ArtifactRow(Base):
    """One node of a submission's extraction tree; ``parent`` is the tree edge (a foreign key to its container)."""

    __tablename__ = "artifact"
    __table_args__ = (
        ForeignKeyConstraint(["submission_id", "parent"], ["artifact.submission_id", "artifact.id"],
                             name="fk_artifact_parent", ondelete="CASCADE"),
    )

    submission_id: Mapped[str] = mapped_column(String(64), _submission_fk(), primary_key=True)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    parent: Mapped[int | None] = mapped_column(Integer)
    lineage: Mapped[list[str]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # "which exhibits contain this file?"
    size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    depth: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    offset: Mapped[int | None] = mapped_column(BigInteger)
    extractor: Mapped[str | None] = mapped_column(Text)
    link_target: Mapped[str | None] = mapped_column(Text)
    coverage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)


class AnalysisIssueRow(Base):
    """An analyzer that could not analyse one blob of a submission (failures are never cached as results)."""

    __tablename__ = "analysis_issue"

    submission_id: Mapped[str] = mapped_column(String(64), _submission_fk(), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    analyzer: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)


class AnalysisBatchRow(Base):
    """An analysis batch of a submission already counted: a batch delivered twice must not count twice."""

    __tablename__ = "analysis_batch"

    submission_id: Mapped[str] = mapped_column(String(64), _submission_fk(), primary_key=True)
    batch: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the batch's blob hashes


class FindingRow(Base):
    """One finding of a submission's report, as the report states it (``body``), indexed for searches."""

    __tablename__ = "finding"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(String(64), _submission_fk(), index=True)
    position: Mapped[int] = mapped_column(Integer)  # its index in the report's ``findings``
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(Text, index=True)
    analyzer: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    endpoint: Mapped[str | None] = mapped_column(Text, index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class BehaviourRow(Base):
    """One exfiltration behaviour of a submission's report: data → channel → endpoint, with its confidence."""

    __tablename__ = "behaviour"

    submission_id: Mapped[str] = mapped_column(String(64), _submission_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)  # its index in the report's ``behaviours`` (strongest first)
    rule: Mapped[str] = mapped_column(Text, index=True)
    title: Mapped[str] = mapped_column(Text)
    confidence: Mapped[str] = mapped_column(String(16))
    data: Mapped[list[str]] = mapped_column(JSON)
    channels: Mapped[list[str]] = mapped_column(JSON)
    endpoints: Mapped[list[str]] = mapped_column(JSON)
    countries: Mapped[list[str]] = mapped_column(JSON)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class ReportRow(Base):
    """A submission's report JSON (the ``fwtriage.report/1`` contract), kept whole: HTML and PDF derive from it."""

    __tablename__ = "report"

    submission_id: Mapped[str] = mapped_column(String(64), _submission_fk(), primary_key=True)
    report_digest: Mapped[str] = mapped_column(String(64), index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class ReviewRow(Base):
    """A reviewer's decision on a submission: confirm or dismiss a behaviour or finding, or set the verdict."""

    __tablename__ = "review"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(String(64), _submission_fk(), index=True)
    reviewer: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)  # "verdict", "behaviour:<id>" or "finding:<position>"
    decision: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class WebSessionRow(Base):
    """A signed-in browser: the cookie holds a random secret, the table only its sha256 (as for API tokens),
    so sessions can be listed, expired and ended server-side; ``csrf`` is the token its forms must carry."""

    __tablename__ = "web_session"

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("user_account.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEventRow(Base):
    """One entry of the append-only audit log; ``hash`` chains it to the entry before (``prev_hash``)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64), index=True)
    # no foreign key: the log outlives what it speaks of
    submission_id: Mapped[str | None] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
