"""Human review of a finished report: decisions on each claim, the reviewers' verdict, and the sign-off.

Why decisions are rows and never updates: a court may ask who concluded what, when, and what they saw first.
Every decision is appended (``review`` table) and audited in the same transaction; the latest decision on a
subject is the current one. The machine's verdict is never overwritten: the reviewers' verdict is kept beside it
(``submission.human_verdict``), so the report can show both.

The sign-off makes the reviewers' verdict final. A lab may require two different reviewers to sign off a
``backdoor`` verdict (``lab.second_signoff``): the first sign-off then leaves the submission ``awaiting_second``,
and a change of verdict in between starts the sign-off over. Once signed off, a submission takes no more decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pipeline.accounts import Principal
from pipeline.db import Database, UnknownSubmission
from pipeline.tables import (
    BehaviourRow,
    FindingRow,
    LabRow,
    ReviewRow,
    ReviewStatus,
    Role,
    SubmissionRow,
    SubmissionState,
    utc_now,
)

VERDICTS = ("backdoor", "suspicious", "clean", "incomplete")
CLAIM_DECISIONS = ("confirmed", "dismissed")
VERDICT_SUBJECT = "verdict"
SIGNOFF_SUBJECT = "signoff"
NOTE_LIMIT = 4000


class ReviewRefused(ValueError):
    """A decision that cannot be recorded as asked; ``conflict`` marks one refused because of the submission's
    state (not reviewable yet, already signed off), as opposed to a malformed request."""

    def __init__(self, message: str, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


@dataclass(frozen=True)
class Decision:
    id: int
    reviewer: str
    subject: str
    decision: str
    note: str
    at: datetime


@dataclass(frozen=True)
class ReviewState:
    """A submission's review as it stands: the current decision on each subject and the sign-offs."""

    status: ReviewStatus
    machine_verdict: str | None
    human_verdict: str | None
    signed_off_at: datetime | None
    second_signoff_required: bool
    current: dict[str, Decision]  # subject → its latest decision (claims and the verdict)
    signoffs: list[Decision]  # of the current verdict, in order
    history: list[Decision]  # every decision, in order

    def to_dict(self) -> dict[str, Any]:
        def plain(decision: Decision) -> dict[str, Any]:
            return {"id": decision.id, "reviewer": decision.reviewer, "subject": decision.subject,
                    "decision": decision.decision, "note": decision.note, "at": decision.at.isoformat()}
        return {"status": str(self.status), "machine_verdict": self.machine_verdict,
                "human_verdict": self.human_verdict,
                "signed_off_at": self.signed_off_at.isoformat() if self.signed_off_at else None,
                "second_signoff_required": self.second_signoff_required,
                "current": {subject: plain(d) for subject, d in self.current.items()},
                "signoffs": [plain(d) for d in self.signoffs], "history": [plain(d) for d in self.history]}


class Reviews:
    """Reads and records reviews of submissions through a ``Database``'s sessions."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def state(self, submission_id: str) -> ReviewState:
        with self.database.reading() as session:
            return _state(session, submission_id)

    def report_section(self, submission_id: str) -> dict[str, Any] | None:
        """The report's ``review`` part as the reviewers have left it, None before any decision.

        A stored report is the machine's, frozen with its digest; ``review`` lies outside the digest, so a report
        handed out (API, web, CLI) carries the review as it stands when it is read.
        """
        state = self.state(submission_id)
        if not state.history:
            return None
        last = state.signoffs[-1] if state.signoffs else None
        return {"status": str(state.status), "verdict": state.human_verdict, "machine_verdict": state.machine_verdict,
                "reviewer": ", ".join(signoff.reviewer for signoff in state.signoffs) or None,
                "decided_at": (state.signed_off_at or state.history[-1].at).isoformat(),
                "note": last.note if last else None,
                "decisions": [{"subject": d.subject, "decision": d.decision, "reviewer": d.reviewer,
                               "at": d.at.isoformat(), "note": d.note} for d in state.current.values()]}

    def decide(self, submission_id: str, reviewer: Principal, subject: str, decision: str,
               note: str = "") -> ReviewState:
        """Confirm or dismiss one claim of the report: ``behaviour:<id>`` or ``finding:<position>``."""
        if decision not in CLAIM_DECISIONS:
            raise ReviewRefused(f"a claim is {' or '.join(CLAIM_DECISIONS)}, not {decision!r}")
        with self.database.writing() as session:
            row = _open_for_review(session, submission_id, reviewer)
            _check_claim(session, submission_id, subject)
            self.database.insert_review(session, submission_id, reviewer.name, subject, decision, _note(note))
            if row.review_status is ReviewStatus.UNREVIEWED:
                _set_status(session, submission_id, ReviewStatus.IN_REVIEW)
            return _state(session, submission_id)

    def set_verdict(self, submission_id: str, reviewer: Principal, verdict: str, note: str = "") -> ReviewState:
        """The reviewers' verdict (the machine's stays as it was); a change restarts a pending sign-off."""
        if verdict not in VERDICTS:
            raise ReviewRefused(f"a verdict is one of {', '.join(VERDICTS)}, not {verdict!r}")
        with self.database.writing() as session:
            _open_for_review(session, submission_id, reviewer)
            self.database.insert_review(session, submission_id, reviewer.name, VERDICT_SUBJECT, verdict, _note(note))
            _set_status(session, submission_id, ReviewStatus.IN_REVIEW, human_verdict=verdict)
            return _state(session, submission_id)

    def sign_off(self, submission_id: str, reviewer: Principal, note: str = "") -> ReviewState:
        """Sign the reviewers' verdict off; final at once, or after a second reviewer where the lab wants one."""
        with self.database.writing() as session:
            row = _open_for_review(session, submission_id, reviewer)
            if row.human_verdict is None:
                raise ReviewRefused("set the reviewers' verdict before signing off", conflict=True)
            before = _state(session, submission_id)
            if any(signoff.reviewer == reviewer.name for signoff in before.signoffs):
                raise ReviewRefused(f"{reviewer.name} has already signed this verdict off; a second reviewer must",
                                    conflict=True)
            self.database.insert_review(session, submission_id, reviewer.name, SIGNOFF_SUBJECT, row.human_verdict,
                                        _note(note))
            needed = 2 if before.second_signoff_required and row.human_verdict == "backdoor" else 1
            if len(before.signoffs) + 1 >= needed:
                _set_status(session, submission_id, ReviewStatus.SIGNED_OFF, signed_off_at=utc_now())
            else:
                _set_status(session, submission_id, ReviewStatus.AWAITING_SECOND)
            return _state(session, submission_id)


def _note(note: str) -> str:
    note = note.strip()
    if len(note) > NOTE_LIMIT:
        raise ReviewRefused(f"a note holds at most {NOTE_LIMIT} characters")
    return note


def _open_for_review(session: Session, submission_id: str, reviewer: Principal) -> SubmissionRow:
    """The submission, checked reviewable by this principal: done, not signed off yet, a reviewer of its lab."""
    if reviewer.role is not Role.REVIEWER:
        raise PermissionError("only reviewers record review decisions")
    row = session.get(SubmissionRow, submission_id)
    if row is None or (reviewer.lab_id is not None and row.lab_id != reviewer.lab_id):
        raise UnknownSubmission(submission_id)
    if row.state is not SubmissionState.DONE:
        raise ReviewRefused(f"submission {submission_id} is {row.state}: only a finished report is reviewed",
                            conflict=True)
    if row.review_status is ReviewStatus.SIGNED_OFF:
        raise ReviewRefused(f"submission {submission_id} was signed off: its review is closed", conflict=True)
    return row


def _check_claim(session: Session, submission_id: str, subject: str) -> None:
    """The subject names a behaviour or a finding of this submission's report."""
    kind, _, key = subject.partition(":")
    if kind == "behaviour":
        found = session.get(BehaviourRow, (submission_id, key)) is not None
    elif kind == "finding" and key.isdigit():
        found = session.scalar(select(FindingRow.id).where(FindingRow.submission_id == submission_id,
                                                           FindingRow.position == int(key))) is not None
    else:
        raise ReviewRefused(f"a claim is behaviour:<id> or finding:<position>, not {subject!r}")
    if not found:
        raise ReviewRefused(f"the report has no {subject}")


def _set_status(session: Session, submission_id: str, status: ReviewStatus, **values: Any) -> None:
    session.execute(update(SubmissionRow).where(SubmissionRow.id == submission_id)
                    .values(review_status=status, **values))


def _state(session: Session, submission_id: str) -> ReviewState:
    row = session.get(SubmissionRow, submission_id)
    if row is None:
        raise UnknownSubmission(submission_id)
    session.refresh(row)
    second = bool(row.lab_id is not None and session.scalar(select(LabRow.second_signoff)
                                                           .where(LabRow.id == row.lab_id)))
    history = [Decision(r.id, r.reviewer, r.subject, r.decision, r.note, r.created_at)
               for r in session.scalars(select(ReviewRow).where(ReviewRow.submission_id == submission_id)
                                        .order_by(ReviewRow.id))]
    current: dict[str, Decision] = {}
    signoffs: list[Decision] = []
    for decision in history:
        if decision.subject == SIGNOFF_SUBJECT:
            signoffs.append(decision)
        else:
            current[decision.subject] = decision
            if decision.subject == VERDICT_SUBJECT:
                signoffs = []  # a new verdict: earlier sign-offs were of another one
    return ReviewState(row.review_status, row.verdict, row.human_verdict, row.signed_off_at, second, current,
                       signoffs, history)
