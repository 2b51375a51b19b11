"""Reviews and sign-in on both databases: decisions appended and audited, the sign-off rules, sessions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pipeline.accounts import AccountError, Accounts
from pipeline.db import Database, UnknownSubmission
from pipeline.review import ReviewRefused, Reviews
from pipeline.scan import ScanOutcome
from pipeline.signin import SignIn, hash_password, password_matches
from pipeline.tables import ReviewStatus
from tests.service import PASSWORD, Person, add_people, finished

BACKDOOR = "featurephone-sc6531e.pac"


@pytest.fixture
def people(db: Database) -> dict[str, Person]:
    return add_people(db)


@pytest.fixture
def backdoor_report(sample_scans: Callable[[str], ScanOutcome]) -> dict:
    report = sample_scans(BACKDOOR).report
    assert report["verdict"]["label"] == "backdoor" and report["behaviours"]
    return report


def principal(db: Database, person: Person):
    found = Accounts(db).authenticate(person.token)
    assert found is not None
    return found


def test_a_decision_is_appended_audited_and_current(db: Database, people: dict[str, Person],
                                                    backdoor_report: dict) -> None:
    record = finished(db, backdoor_report, people["beta-intake"].lab_id)
    reviewer = principal(db, people["chief-reviewer"])
    behaviour = backdoor_report["behaviours"][0]["id"]
    reviews = Reviews(db)
    reviews.decide(record.id, reviewer, f"behaviour:{behaviour}", "dismissed", "benign OTA")
    state = reviews.decide(record.id, reviewer, f"behaviour:{behaviour}", "confirmed", "  seen in traffic  ")
    assert state.status is ReviewStatus.IN_REVIEW
    assert state.current[f"behaviour:{behaviour}"].decision == "confirmed"
    assert state.current[f"behaviour:{behaviour}"].note == "seen in traffic"
    assert [d.decision for d in state.history] == ["dismissed", "confirmed"]
    audited = [e for e in db.audit_events(record.id) if e.action == "review.recorded"]
    assert [(e.actor, e.detail["decision"]) for e in audited] == [("chief-reviewer", "dismissed"),
                                                                  ("chief-reviewer", "confirmed")]
    assert db.verify_audit() == []


@pytest.mark.parametrize(("subject", "decision"), [
    ("behaviour:no-such-behaviour", "confirmed"), ("finding:99999", "confirmed"), ("finding:-1", "confirmed"),
    ("verdict", "confirmed"), ("behaviour:x", "maybe")])
def test_a_decision_on_nothing_in_the_report_is_refused(db: Database, people: dict[str, Person],
                                                        backdoor_report: dict, subject: str, decision: str) -> None:
    record = finished(db, backdoor_report, people["beta-intake"].lab_id)
    with pytest.raises(ReviewRefused) as refused:
        Reviews(db).decide(record.id, principal(db, people["chief-reviewer"]), subject, decision)
    assert not refused.value.conflict
    assert db.reviews(record.id) == []


def test_only_reviewers_of_the_lab_review(db: Database, people: dict[str, Person], backdoor_report: dict) -> None:
    record = finished(db, backdoor_report, people["beta-intake"].lab_id)
    with pytest.raises(PermissionError):
        Reviews(db).set_verdict(record.id, principal(db, people["beta-intake"]), "clean")
    with pytest.raises(UnknownSubmission):  # a reviewer of alpha does not even see beta's submission
        Reviews(db).set_verdict(record.id, principal(db, people["alpha-reviewer"]), "clean")


def test_a_report_not_finished_is_not_reviewed(db: Database, people: dict[str, Person]) -> None:
    queued = db.create_submission(filename="x", size=1, md5="0" * 32, sha1="0" * 40, sha256="1" * 64,
                                  lab_id=people["beta-intake"].lab_id)
    with pytest.raises(ReviewRefused) as refused:
        Reviews(db).set_verdict(queued.id, principal(db, people["chief-reviewer"]), "clean")
    assert refused.value.conflict


def test_one_signoff_is_final_where_the_lab_wants_one(db: Database, people: dict[str, Person],
                                                      backdoor_report: dict) -> None:
    record = finished(db, backdoor_report, people["beta-intake"].lab_id)
    reviewer = principal(db, people["chief-reviewer"])
    reviews = Reviews(db)
    with pytest.raises(ReviewRefused, match="verdict before signing off"):
        reviews.sign_off(record.id, reviewer)
    reviews.set_verdict(record.id, reviewer, "backdoor", "confirmed by the IMEI exfiltration")
    state = reviews.sign_off(record.id, reviewer, "checked")
    assert state.status is ReviewStatus.SIGNED_OFF and state.signed_off_at is not None
    assert (state.machine_verdict, state.human_verdict) == ("backdoor", "backdoor")
    assert db.get(record.id).review_status is ReviewStatus.SIGNED_OFF
    with pytest.raises(ReviewRefused, match="signed off") as closed:
        reviews.set_verdict(record.id, reviewer, "clean")
    assert closed.value.conflict


def test_a_backdoor_needs_a_second_reviewer_where_the_lab_says_so(db: Database, people: dict[str, Person],
                                                                   backdoor_report: dict) -> None:
    record = finished(db, backdoor_report, people["alpha-intake"].lab_id)
    first, second = principal(db, people["alpha-reviewer"]), principal(db, people["alpha-reviewer-2"])
    reviews = Reviews(db)
    reviews.set_verdict(record.id, first, "backdoor")
    state = reviews.sign_off(record.id, first)
    assert state.status is ReviewStatus.AWAITING_SECOND and state.second_signoff_required
    with pytest.raises(ReviewRefused, match="already signed"):
        reviews.sign_off(record.id, first)
    reviews.set_verdict(record.id, second, "backdoor", "a new verdict starts the sign-off over")
    assert reviews.sign_off(record.id, second).status is ReviewStatus.AWAITING_SECOND
    state = reviews.sign_off(record.id, first)
    assert state.status is ReviewStatus.SIGNED_OFF
    assert [s.reviewer for s in state.signoffs] == ["alpha-reviewer-2", "alpha-reviewer"]


def test_other_verdicts_need_one_signoff_even_where_backdoors_need_two(db: Database, people: dict[str, Person],
                                                                       backdoor_report: dict) -> None:
    record = finished(db, backdoor_report, people["alpha-intake"].lab_id)
    reviewer = principal(db, people["alpha-reviewer"])
    Reviews(db).set_verdict(record.id, reviewer, "suspicious")
    assert Reviews(db).sign_off(record.id, reviewer).status is ReviewStatus.SIGNED_OFF
    assert db.get(record.id).verdict == "backdoor"  # the machine's verdict is kept as it was


def test_sign_in_sessions_and_sign_out(db: Database, people: dict[str, Person]) -> None:
    signin = SignIn(db)
    assert signin.sign_in("alpha-reviewer", "wrong password!!", "10.0.0.9") is None
    assert signin.sign_in("nobody", PASSWORD) is None
    session = signin.sign_in("alpha-reviewer", PASSWORD, "10.0.0.9")
    assert session is not None and session.principal.lab == "alpha"
    resumed = signin.resume(session.secret)
    assert resumed is not None and resumed.csrf == session.csrf and resumed.principal == session.principal
    assert signin.resume(session.secret + "x") is None
    signin.sign_out(session.secret)
    assert signin.resume(session.secret) is None
    actions = [(e.actor, e.action) for e in db.audit_events() if e.action.startswith("session.")]
    assert actions == [("alpha-reviewer", "session.refused"), ("nobody", "session.refused"),
                       ("alpha-reviewer", "session.started"), ("alpha-reviewer", "session.ended")]


def test_an_expired_session_is_closed(db: Database, people: dict[str, Person]) -> None:
    session = SignIn(db, session_hours=-1).sign_in("root", PASSWORD)
    assert session is not None
    assert SignIn(db).resume(session.secret) is None


def test_passwords_are_hashed_and_checked() -> None:
    stored = hash_password("a long passphrase")
    assert "a long passphrase" not in stored and stored.startswith("scrypt$")
    assert password_matches("a long passphrase", stored)
    assert not password_matches("a long passphrasE", stored)
    assert hash_password("a long passphrase") != stored  # salted
    for broken in (None, "", "scrypt$1$2", "md5$x$y$z$zz$00", stored.replace("$16384$", "$1048576$")):
        assert not password_matches("a long passphrase", broken)


def test_short_passwords_and_unknown_users_are_refused(db: Database, people: dict[str, Person]) -> None:
    with pytest.raises(AccountError, match="at least"):
        SignIn(db).set_password("root", "short", "test")
    with pytest.raises(AccountError, match="no active user"):
        SignIn(db).set_password("nobody", PASSWORD, "test")
