"""Receiving images over HTTP: the upload streamed into the store, each file recorded and its triage started.

Why the metadata is checked before anything is recorded: a seal number with a stray control character, or a
case reference of a megabyte, would end up in reports handed to a court. The case fields get the CLI's
treatment (trimmed, empty means absent) and a bound: at most ``FIELD_CHARS`` printable characters. A request
with any other field is refused too, so a typo ("exibit") is not silently dropped.

Why a submission is recorded before it is dispatched, and failed when it cannot be: once the lab has its id, the
submission must never vanish: a broker that cannot be reached leaves it ``failed`` with the reason.
"""

from __future__ import annotations

import logging
import unicodedata
import uuid

from fastapi import HTTPException, Request

from pipeline.api.auth import Caller
from pipeline.api.upload import UploadLimits, receive_form
from pipeline.db import SubmissionRecord
from pipeline.ingest import CaseMetadata, utc_now
from pipeline.model import Submission
from pipeline.scan import record_submission

logger = logging.getLogger(__name__)
CASE_FIELDS = ("case", "exhibit", "device", "examiner")
FIELD_CHARS = 200


class BadMetadata(HTTPException):
    def __init__(self, message: str) -> None:
        super().__init__(422, message)


def case_metadata(fields: dict[str, str]) -> CaseMetadata:
    """The case fields of a form, checked; BadMetadata (422) names the first problem."""
    unknown = sorted(set(fields) - set(CASE_FIELDS) - {"csrf"})
    if unknown:
        raise BadMetadata(f"unknown field {unknown[0]!r}: the fields are {', '.join(CASE_FIELDS)}")
    values: dict[str, str | None] = {}
    for name in CASE_FIELDS:
        value = fields.get(name, "").strip()
        if len(value) > FIELD_CHARS:
            raise BadMetadata(f"{name} is longer than {FIELD_CHARS} characters")
        if any(unicodedata.category(char).startswith("C") for char in value):
            raise BadMetadata(f"{name} holds a control or invisible formatting character")
        values[name] = value or None
    return CaseMetadata(**values)


async def accept_upload(request: Request, who: Caller) -> list[SubmissionRecord]:
    """Stream the request's files into the store, record one submission per file under the caller's lab, and
    start each one's triage."""
    services = request.app.state.services
    if who.principal.lab_id is None:
        raise HTTPException(403, f"{who.principal.name} belongs to no lab: a submission is filed under a lab")
    limits = UploadLimits(file_bytes=services.service.max_upload_bytes, files=services.service.max_files_per_upload)
    form = await receive_form(request, services.store, limits, check_fields=case_metadata)
    if not form.files:
        raise BadMetadata("no file: send the images as multipart form field 'files'")
    metadata = case_metadata(form.fields)
    records = []
    for received in form.files:
        submission = Submission(
            id=uuid.uuid4().hex, filename=received.filename, size=received.size, md5=received.md5,
            sha1=received.sha1, sha256=received.sha256, received_at=utc_now(), case=metadata.case,
            exhibit=metadata.exhibit, device=metadata.device, examiner=metadata.examiner)
        records.append(record_submission(services.database, submission, actor=who.actor,
                                         lab_id=who.principal.lab_id))
    for record in records:
        try:
            services.dispatcher.dispatch(record.id)
        except Exception as exc:  # recorded but not started: say so on the submission, never lose it silently
            logger.exception("submission %s could not be dispatched", record.id)
            services.database.fail(record.id, f"could not be queued: {type(exc).__name__}: {exc}", actor=who.actor)
    return [services.database.get(record.id) for record in records]
