"""The JSON API, ``/api/v1``: submit images, follow them, read reports, search, review.

Every route names the roles it is open to (``pipeline.api.auth``) and reads through ``pipeline.queries``, whose
lab scope makes another lab's submission answer 404, exactly like one that does not exist. Report reads and
review decisions are audited (hash-chained log) by the database calls they go through.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from pipeline.api.auth import AnyCaller, Caller, ReaderCaller, ReviewerCaller, SubmitterCaller
from pipeline.api.submissions import accept_upload
from pipeline.db import SubmissionRecord
from pipeline.queries import (
    PAGE_LIMIT,
    Page,
    SubmissionFilters,
    campaign,
    endpoints,
    review_queue,
    search,
    visible_submission,
)
from pipeline.report.html import content_policy, render_html
from pipeline.review import NOTE_LIMIT
from pipeline.tables import Role

router = APIRouter()


def submission_json(record: SubmissionRecord, lab: str | None = None) -> dict[str, Any]:
    """A submission as the API shows it: its status, its case fields and where to go next."""
    data = record.status()
    data.update(sha256=record.sha256, size=record.size, case=record.case, exhibit=record.exhibit,
                device=record.device, examiner=record.examiner, lab=lab,
                links={"self": f"/api/v1/submissions/{record.id}", "page": f"/submissions/{record.id}",
                       "report": f"/api/v1/submissions/{record.id}/report.json"})
    return data


def _page_json(page: Page, filters: SubmissionFilters) -> dict[str, Any]:
    return {"total": page.total, "limit": filters.limit, "offset": filters.offset,
            "items": [submission_json(item.record, item.lab) for item in page.items]}


def filters_of(case: str | None = None, exhibit: str | None = None, verdict: str | None = None,
               state: str | None = None, review_status: str | None = None, lab: str | None = None,
               min_score: Annotated[int | None, Query(ge=0, le=100)] = None,
               max_score: Annotated[int | None, Query(ge=0, le=100)] = None,
               endpoint: str | None = None,
               sha256: Annotated[str | None, Query(pattern="^[0-9a-fA-F]{64}$")] = None,
               q: Annotated[str | None, Query(max_length=200)] = None,
               limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 50,
               offset: Annotated[int, Query(ge=0)] = 0) -> SubmissionFilters:
    """The search filters of a query string (``q`` matches file name, exhibit or device)."""
    return SubmissionFilters(case=case, exhibit=exhibit, verdict=verdict, state=state, review_status=review_status,
                             lab=lab, min_score=min_score, max_score=max_score, endpoint=endpoint, sha256=sha256,
                             text=q, limit=limit, offset=offset)


Filters = Annotated[SubmissionFilters, Depends(filters_of)]


@router.get("/me", summary="Who the credentials stand for")
def me(who: AnyCaller) -> dict[str, Any]:
    p = who.principal
    return {"user": p.name, "role": str(p.role), "lab": p.lab}


@router.post("/submissions", status_code=201, summary="Upload one or more images (multipart field 'files')",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["files"],
                 "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                                "case": {"type": "string"}, "exhibit": {"type": "string"},
                                "device": {"type": "string"}, "examiner": {"type": "string"}}}}}}})
async def submit(request: Request, who: SubmitterCaller) -> dict[str, Any]:
    """Streamed to the store and hashed as it arrives; one submission per file, queued for triage."""
    records = await accept_upload(request, who)
    return {"submissions": [submission_json(record, who.principal.lab) for record in records]}


@router.get("/submissions", summary="List and search submissions, newest first")
def list_submissions(request: Request, who: ReaderCaller, filters: Filters) -> dict[str, Any]:
    """Filters: case, exhibit, verdict, state, review_status, lab, min_score, max_score, endpoint, sha256 (of the
    image or of any file inside it), q (in the file name, exhibit or device)."""
    return _page_json(search(_database(request), who.principal, filters), filters)


@router.get("/queue", summary="The review queue, riskiest first")
def queue(request: Request, who: ReviewerCaller, filters: Filters) -> dict[str, Any]:
    """Unreviewed backdoors first, then backdoors in review, then the rest by score; signed off last."""
    return _page_json(review_queue(_database(request), who.principal, filters), filters)


@router.get("/submissions/{submission_id}", summary="State, progress, verdict and review status")
def get_submission(request: Request, submission_id: str, who: ReaderCaller) -> dict[str, Any]:
    return submission_json(visible_submission(_database(request), who.principal, submission_id), who.principal.lab)


def _report(request: Request, submission_id: str, who: Caller) -> dict[str, Any]:
    """The finished report with its review as it stands (the read audited), 409 while the submission is not done."""
    database = _database(request)
    record = visible_submission(database, who.principal, submission_id)
    report = database.report(submission_id, actor=who.actor)
    if report is None:
        why = f": {record.failure}" if record.failure else ""
        raise HTTPException(409, f"submission {submission_id} has no report ({record.state}{why})")
    return report | {"review": request.app.state.services.reviews.report_section(submission_id)}


@router.get("/submissions/{submission_id}/report.json", summary="The report (fwtriage.report/1 contract)")
def report_json(request: Request, submission_id: str, who: ReaderCaller) -> JSONResponse:
    return JSONResponse(_report(request, submission_id, who))


@router.get("/submissions/{submission_id}/report.html", response_class=HTMLResponse,
            summary="The readable report, self-contained")
def report_html(request: Request, submission_id: str, who: ReaderCaller) -> HTMLResponse:
    return HTMLResponse(render_html(_report(request, submission_id, who)),
                        headers={"Content-Security-Policy": content_policy()})


@router.get("/submissions/{submission_id}/report.pdf", response_class=Response, summary="The report as a PDF")
async def report_pdf(request: Request, submission_id: str, who: ReaderCaller) -> Response:
    report = _report(request, submission_id, who)
    from pipeline.report.pdf import pdf_bytes  # WeasyPrint takes most of a second to import

    body = await asyncio.to_thread(pdf_bytes, report)
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="fwtriage-{submission_id}.pdf"'})


@router.get("/endpoints", summary="Every endpoint seen, with the submissions that contain it")
def list_endpoints(request: Request, who: ReaderCaller,
                   limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = PAGE_LIMIT) -> dict[str, Any]:
    seen = endpoints(_database(request), who.principal, limit)
    return {"endpoints": [{"value": e.value, "kind": e.kind, "country": e.country, "submissions": e.submissions}
                          for e in seen]}


@router.get("/campaign", summary="What links devices: shared endpoints, images and incriminated files")
def get_campaign(request: Request, who: ReaderCaller) -> dict[str, Any]:
    found = campaign(_database(request), who.principal)
    return {"shared_endpoints": [{"value": e.value, "kind": e.kind, "country": e.country,
                                  "submissions": e.submissions} for e in found.shared_endpoints],
            "shared_images": found.shared_images, "shared_files": found.shared_files}


@router.get("/submissions/{submission_id}/review", summary="The review as it stands, with its history")
def get_review(request: Request, submission_id: str, who: ReaderCaller) -> dict[str, Any]:
    visible_submission(_database(request), who.principal, submission_id)
    return request.app.state.services.reviews.state(submission_id).to_dict()


class ClaimDecision(BaseModel):
    subject: str = Field(description='"behaviour:<id>" or "finding:<position in the report>"', max_length=200)
    decision: str = Field(description='"confirmed" or "dismissed"', max_length=16)
    note: str = Field("", max_length=NOTE_LIMIT)


class VerdictDecision(BaseModel):
    verdict: str = Field(description="backdoor, suspicious, clean or incomplete", max_length=16)
    note: str = Field("", max_length=NOTE_LIMIT)


class SignOff(BaseModel):
    note: str = Field("", max_length=NOTE_LIMIT)


@router.post("/submissions/{submission_id}/review/decisions", summary="Confirm or dismiss a behaviour or finding")
def decide(request: Request, submission_id: str, body: ClaimDecision, who: ReviewerCaller) -> dict[str, Any]:
    return request.app.state.services.reviews.decide(submission_id, who.principal, body.subject, body.decision,
                                                     body.note).to_dict()


@router.post("/submissions/{submission_id}/review/verdict", summary="Set the reviewers' verdict")
def set_verdict(request: Request, submission_id: str, body: VerdictDecision, who: ReviewerCaller) -> dict[str, Any]:
    return request.app.state.services.reviews.set_verdict(submission_id, who.principal, body.verdict,
                                                          body.note).to_dict()


@router.post("/submissions/{submission_id}/review/signoff", summary="Sign the reviewers' verdict off")
def sign_off(request: Request, submission_id: str, body: SignOff, who: ReviewerCaller) -> dict[str, Any]:
    return request.app.state.services.reviews.sign_off(submission_id, who.principal, body.note).to_dict()


@router.get("/audit", summary="The audit log (admin: all of it; others: one visible submission's entries)")
def audit(request: Request, who: AnyCaller, submission: str | None = None,
          limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 100,
          offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    database = _database(request)
    if submission is not None:
        if who.principal.role is Role.ADMIN:
            database.get(submission)
        else:
            visible_submission(database, who.principal, submission)
    elif who.principal.role is not Role.ADMIN:
        raise HTTPException(403, "the whole audit log is for admins; ask for one submission's (?submission=ID)")
    entries = database.audit_events(submission)
    newest = list(reversed(entries))[offset:offset + limit]
    return {"total": len(entries), "intact": not database.verify_audit() if submission is None else None,
            "entries": [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                         "submission": e.submission_id, "detail": e.detail, "hash": e.hash} for e in newest]}


def _database(request: Request) -> Any:
    return request.app.state.services.database
