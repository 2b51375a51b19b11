"""Receiving an image: hash it, keep the original read-only, and later prove it was not altered.

Why one pass: an image can be many gigabytes, and a lab's chain of custody
needs md5, sha1 and sha256 (md5 and sha1 because seizure records and older
tools quote them). The bytes are read once, hashed three ways while they are
copied into the content-addressed store, where they become read-only under
their sha256. When a report is built, ``verify_custody`` re-hashes the stored
copy so the report can state that the analysed bytes are the received ones.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.model import Submission, rfc3339
from pipeline.store import CHUNK, BlobStore


@dataclass(frozen=True)
class CaseMetadata:
    """What the lab states about an image: its case, exhibit (seal) number, device and examiner."""

    case: str | None = None
    exhibit: str | None = None
    device: str | None = None
    examiner: str | None = None


@dataclass(frozen=True)
class Custody:
    """The stored copy re-hashed at a given time, and whether it still matches what was received."""

    verified_at: str
    md5: str
    sha1: str
    sha256: str
    intact: bool

    def to_dict(self) -> dict[str, object]:
        return {"verified_at": self.verified_at, "md5": self.md5, "sha1": self.sha1, "sha256": self.sha256,
                "intact": self.intact}


class ImageUnreadable(Exception):
    """The submitted image cannot be opened or read: a problem of the input, not of fwtriage."""


def _chunks(image: Path) -> Iterator[bytes]:
    """The image's bytes in chunks; any error opening or reading it becomes ImageUnreadable."""
    try:
        with open(image, "rb") as source:
            while chunk := source.read(CHUNK):
                yield chunk
    except OSError as exc:
        raise ImageUnreadable(f"cannot read {image}: {exc.strerror or exc}") from exc


def utc_now() -> str:
    """An RFC 3339 UTC timestamp, to the second (what reports and the database record)."""
    return rfc3339(datetime.now(UTC))


def new_submission_id() -> str:
    return uuid.uuid4().hex


def ingest(image: Path, store: BlobStore, metadata: CaseMetadata | None = None,
           submission_id: str | None = None) -> Submission:
    """Hash ``image`` (md5, sha1, sha256 in one pass) while storing it read-only.

    Raises ImageUnreadable if the image cannot be read; an OSError of the store (a full disk) is not the
    input's fault and propagates as it is.
    """
    metadata = metadata or CaseMetadata()
    md5, sha1 = hashlib.md5(usedforsecurity=False), hashlib.sha1(usedforsecurity=False)
    with store.writer() as writer:
        for chunk in _chunks(image):
            writer.write(chunk)
            md5.update(chunk)
            sha1.update(chunk)
        size = writer.size
        sha256 = store.commit(writer)
    return Submission(
        id=submission_id or new_submission_id(), filename=image.name, size=size, md5=md5.hexdigest(),
        sha1=sha1.hexdigest(), sha256=sha256, received_at=utc_now(), case=metadata.case,
        exhibit=metadata.exhibit, device=metadata.device, examiner=metadata.examiner,
    )


def verify_custody(store: BlobStore, submission: Submission) -> Custody:
    """Re-hash the stored original; ``intact`` is False if any of the three hashes changed or it is gone."""
    hashes = [hashlib.md5(usedforsecurity=False), hashlib.sha1(usedforsecurity=False), hashlib.sha256()]
    try:
        with open(store.path(submission.sha256), "rb") as stored:
            while chunk := stored.read(CHUNK):
                for digest in hashes:
                    digest.update(chunk)
    except OSError:
        return Custody(utc_now(), "", "", "", intact=False)
    md5, sha1, sha256 = (h.hexdigest() for h in hashes)
    intact = (md5, sha1, sha256) == (submission.md5, submission.sha1, submission.sha256)
    return Custody(utc_now(), md5, sha1, sha256, intact)
