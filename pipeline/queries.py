"""Questions asked across submissions, always within what the asking principal may see.

Why one module with the scope built in: a lab must never see another lab's data, so every read of the service
goes through ``visible``, which adds the lab condition to the query itself (rather than filtering rows after
reading them, where one forgotten check leaks). A ``lab`` user and a reviewer attached to a lab see that lab's
submissions; a reviewer without a lab sees every lab's; an admin manages accounts and sees no submission.

The review queue puts what needs a human first: unreviewed backdoors, then backdoors under review, then the
rest by score; signed-off submissions last. Each page costs two queries (the page and its total) whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, case, distinct, exists, func, or_, select
from sqlalchemy.orm import Session

from pipeline.accounts import Principal
from pipeline.db import Database, SubmissionRecord, UnknownSubmission
from pipeline.tables import ArtifactRow, FindingRow, LabRow, ReviewStatus, Role, SubmissionRow, SubmissionState

PAGE_LIMIT = 500
SHARED_SEVERITIES = ("high",)  # a file whose finding is this severe is a "culprit" worth following across images


@dataclass(frozen=True)
class SubmissionFilters:
    """What a listing, a search or the queue may be narrowed by (every field optional)."""

    case: str | None = None
    exhibit: str | None = None
    verdict: str | None = None
    state: str | None = None
    review_status: str | None = None
    lab: str | None = None
    min_score: int | None = None
    max_score: int | None = None
    endpoint: str | None = None
    sha256: str | None = None  # of the image or of any file inside it
    text: str | None = None  # in the file name, exhibit or device
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class Listed:
    record: SubmissionRecord
    lab: str | None


@dataclass(frozen=True)
class Page:
    total: int
    items: list[Listed]
    queries: int = 2  # what it cost: the bench reports it


@dataclass(frozen=True)
class SeenEndpoint:
    """An endpoint and the visible submissions whose findings name it."""

    value: str
    kind: str | None
    country: str | None
    submissions: list[dict[str, Any]] = field(default_factory=list)


def visible(query: Select[Any], principal: Principal) -> Select[Any]:
    """``query`` (over the submission table) restricted to the submissions ``principal`` may see."""
    if principal.role is Role.ADMIN:
        return query.where(False)
    if principal.role is Role.LAB or principal.lab_id is not None:
        return query.where(SubmissionRow.lab_id == principal.lab_id)
    return query


def visible_submission(database: Database, principal: Principal, submission_id: str) -> SubmissionRecord:
    """The submission, or UnknownSubmission when it does not exist *or* is not the principal's to see (so a
    lab cannot even learn that another lab's id exists)."""
    with database.reading() as session:
        row = session.scalar(visible(select(SubmissionRow).where(SubmissionRow.id == submission_id), principal))
        if row is None:
            raise UnknownSubmission(submission_id)
        return SubmissionRecord.of(row)


def search(database: Database, principal: Principal, filters: SubmissionFilters) -> Page:
    """Newest first."""
    order = (SubmissionRow.received_at.desc(), SubmissionRow.id.desc())
    return _page(database, principal, filters, order)


def review_queue(database: Database, principal: Principal, filters: SubmissionFilters) -> Page:
    """Riskiest first: unreviewed backdoors, backdoors in review, the rest by score, signed off last."""
    backdoor = SubmissionRow.verdict == "backdoor"
    rank = case(
        (SubmissionRow.review_status == ReviewStatus.SIGNED_OFF, 4),
        (SubmissionRow.state != SubmissionState.DONE, 3),
        (backdoor & (SubmissionRow.review_status == ReviewStatus.UNREVIEWED), 0),
        (backdoor, 1),
        else_=2)
    order = (rank, SubmissionRow.score.desc().nulls_last(), SubmissionRow.received_at.desc(),
             SubmissionRow.id.desc())
    return _page(database, principal, filters, order)


def _page(database: Database, principal: Principal, filters: SubmissionFilters, order: tuple[Any, ...]) -> Page:
    base = visible(_filtered(select(SubmissionRow, LabRow.name).outerjoin(LabRow, LabRow.id == SubmissionRow.lab_id),
                             filters), principal)
    limit = max(1, min(filters.limit, PAGE_LIMIT))
    with database.reading() as session:
        total = session.scalar(select(func.count()).select_from(base.order_by(None).subquery())) or 0
        rows = session.execute(base.order_by(*order).limit(limit).offset(max(0, filters.offset)))
        return Page(total, [Listed(SubmissionRecord.of(row), lab) for row, lab in rows])


def _filtered(query: Select[Any], f: SubmissionFilters) -> Select[Any]:
    equal = {SubmissionRow.case: f.case, SubmissionRow.exhibit: f.exhibit, SubmissionRow.verdict: f.verdict,
             SubmissionRow.state: f.state, SubmissionRow.review_status: f.review_status, LabRow.name: f.lab}
    for column, value in equal.items():
        if value:
            query = query.where(column == value)
    if f.min_score is not None:
        query = query.where(SubmissionRow.score >= f.min_score)
    if f.max_score is not None:
        query = query.where(SubmissionRow.score <= f.max_score)
    if f.endpoint:
        query = query.where(exists().where(FindingRow.submission_id == SubmissionRow.id,
                                           func.lower(FindingRow.endpoint) == f.endpoint.strip().lower()))
    if f.sha256:
        digest = f.sha256.strip().lower()
        query = query.where(or_(SubmissionRow.sha256 == digest,
                                exists().where(ArtifactRow.submission_id == SubmissionRow.id,
                                               ArtifactRow.sha256 == digest)))
    if f.text:
        pattern = f"%{_escape_like(f.text.strip())}%"
        query = query.where(or_(*(column.ilike(pattern, escape="\\") for column in
                                  (SubmissionRow.filename, SubmissionRow.exhibit, SubmissionRow.device))))
    return query


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def endpoints(database: Database, principal: Principal, limit: int = PAGE_LIMIT) -> list[SeenEndpoint]:
    """Every endpoint named by a finding of a visible submission, the most widely seen first."""
    submissions = visible(select(SubmissionRow.id), principal).subquery()
    with database.reading() as session:
        rows = session.execute(
            select(FindingRow.endpoint, FindingRow.submission_id, SubmissionRow.exhibit, SubmissionRow.case,
                   SubmissionRow.filename, FindingRow.body)
            .join(SubmissionRow, SubmissionRow.id == FindingRow.submission_id)
            .where(FindingRow.endpoint.is_not(None), FindingRow.submission_id.in_(select(submissions.c.id)))
            .order_by(FindingRow.endpoint, FindingRow.submission_id, FindingRow.position))
        return _endpoints_of(rows, limit)


def _endpoints_of(rows: Any, limit: int) -> list[SeenEndpoint]:
    seen: dict[str, SeenEndpoint] = {}
    listed: dict[str, set[str]] = defaultdict(set)
    for value, submission_id, exhibit, case_ref, filename, body in rows:
        details = body.get("endpoint") or {}
        entry = seen.setdefault(value, SeenEndpoint(value, details.get("kind"), details.get("country")))
        if submission_id not in listed[value]:
            listed[value].add(submission_id)
            entry.submissions.append({"id": submission_id, "exhibit": exhibit, "case": case_ref,
                                      "filename": filename})
    ranked = sorted(seen.values(), key=lambda e: (-len(e.submissions), e.value))
    return ranked[:limit]


@dataclass(frozen=True)
class Campaign:
    """What links devices: endpoints several submissions talk to, one image seized several times, and one
    incriminated file found inside different images."""

    shared_endpoints: list[SeenEndpoint]
    shared_images: list[dict[str, Any]]
    shared_files: list[dict[str, Any]]


def campaign(database: Database, principal: Principal, limit: int = 100) -> Campaign:
    shared = [e for e in endpoints(database, principal) if len(e.submissions) > 1][:limit]
    ids = visible(select(SubmissionRow.id), principal).subquery()
    with database.reading() as session:
        return Campaign(shared, _shared_images(session, ids, limit), _shared_files(session, ids, limit))


def _shared_images(session: Session, ids: Any, limit: int) -> list[dict[str, Any]]:
    repeated = (select(SubmissionRow.sha256).where(SubmissionRow.id.in_(select(ids.c.id)))
                .group_by(SubmissionRow.sha256).having(func.count() > 1)
                .order_by(func.count().desc(), SubmissionRow.sha256).limit(limit)).subquery()
    rows = session.execute(select(SubmissionRow.sha256, SubmissionRow.id, SubmissionRow.exhibit,
                                  SubmissionRow.case.label("case"),
                                  SubmissionRow.filename, SubmissionRow.verdict)
                           .where(SubmissionRow.sha256.in_(select(repeated.c.sha256)),
                                  SubmissionRow.id.in_(select(ids.c.id)))
                           .order_by(SubmissionRow.sha256, SubmissionRow.received_at))
    return _grouped(rows, "sha256")


def _shared_files(session: Session, ids: Any, limit: int) -> list[dict[str, Any]]:
    """Blobs with a severe finding present in at least two different images."""
    culprits = (select(FindingRow.sha256)
                .join(SubmissionRow, SubmissionRow.id == FindingRow.submission_id)
                .where(FindingRow.severity.in_(SHARED_SEVERITIES), FindingRow.submission_id.in_(select(ids.c.id)))
                .group_by(FindingRow.sha256).having(func.count(distinct(SubmissionRow.sha256)) > 1)
                .order_by(func.count(distinct(SubmissionRow.sha256)).desc(), FindingRow.sha256)
                .limit(limit)).subquery()
    rows = session.execute(
        select(FindingRow.sha256, FindingRow.submission_id.label("id"), SubmissionRow.exhibit,
               SubmissionRow.case.label("case"), FindingRow.path, func.min(FindingRow.rule).label("rule"))
        .join(SubmissionRow, SubmissionRow.id == FindingRow.submission_id)
        .where(FindingRow.sha256.in_(select(culprits.c.sha256)), FindingRow.submission_id.in_(select(ids.c.id)),
               FindingRow.severity.in_(SHARED_SEVERITIES))
        .group_by(FindingRow.sha256, FindingRow.submission_id, SubmissionRow.exhibit, SubmissionRow.case,
                  FindingRow.path)
        .order_by(FindingRow.sha256, FindingRow.submission_id))
    return _grouped(rows, "sha256")


def _grouped(rows: Any, key: str) -> list[dict[str, Any]]:
    """Rows (key first) as one entry per key with its submissions, in the order met."""
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        first, *rest = row
        names = list(row._fields[1:])
        groups.setdefault(first, {key: first, "submissions": []})["submissions"].append(dict(zip(names, rest,
                                                                                                  strict=True)))
    return list(groups.values())
