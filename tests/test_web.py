"""The reviewers' pages: signing in and the session cookie, the role of each page and
the lab scope, the review forms and their CSRF field, audited report reads, hostile names escaped, the fleet view.

Submissions are recorded straight into the database with the report of a real scan of a bundled sample (none goes
through an upload, so the service's triage thread never starts one): every state a test sees is one it made."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pipeline.accounts import Accounts
from pipeline.api.app import Services, create_app, services_for
from pipeline.config import Detection, Limits, Service, Settings
from pipeline.db import SQLITE_FILENAME, Database
from pipeline.review import Reviews
from pipeline.scan import ScanOutcome
from pipeline.signin import SignIn
from pipeline.tables import ReviewStatus, Role, utc_now
from tests.service import post_signin

PASSWORD = "a long enough passphrase"
BACKDOOR = "featurephone-sc6531e.pac"
CLEAN = "featurephone-sc6531e-clean.pac"
HOSTILE = "<script>alert(1)</script>.bin"
SHARED_ENDPOINT = "203.0.113.45"  # named by the backdoor sample's findings
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass
class World:
    """The service of one test: its app, and the ids of its two labs."""

    services: Services
    app: FastAPI
    labs: dict[str, int]

    @property
    def database(self) -> Database:
        return self.services.database

    @property
    def reviews(self) -> Reviews:
        return self.services.reviews

    def submit(self, report: dict[str, Any], lab: str, *, filename: str | None = None, exhibit: str = "SEAL-1",
               age_minutes: int = 0, finished: bool = True) -> str:
        """A submission of ``lab`` recorded as received ``age_minutes`` ago; finished with ``report``, or left
        half-way through its analysis."""
        sub = report["submission"]
        record = self.database.create_submission(
            filename=filename or sub["filename"], size=sub["size"], md5=sub["md5"], sha1=sub["sha1"],
            sha256=sub["sha256"], case="CASE-WEB", exhibit=exhibit, device="handset", examiner="J. Doe",
            received_at=utc_now() - timedelta(minutes=age_minutes), lab_id=self.labs[lab])
        for state in ("unpacking", "analyzing"):
            self.database.set_state(record.id, state)
        if finished:
            self.database.set_state(record.id, "reporting")
            self.database.finish(record.id, report)
        else:
            self.database.set_progress(record.id, 3, 8)
        return record.id


@dataclass
class Browser:
    """A signed-in browser: its own cookie jar, and the CSRF token its pages carry."""

    client: TestClient
    csrf: str

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path, follow_redirects=False)

    def post(self, path: str, **form: str) -> httpx.Response:
        return self.client.post(path, data={"csrf": self.csrf, **form}, follow_redirects=False)


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A database file holding two labs and a user of each role (the lab user in north), made once (a password
    hash costs 0.1 s) and copied by each test; with the labs' ids."""
    home = tmp_path_factory.mktemp("web-people")
    with Database.for_settings(Settings(home=home)) as database:
        accounts, signin = Accounts(database), SignIn(database)
        labs = {name: accounts.add_lab(name, "setup") for name in ("north", "south")}
        for user, role, lab in (("rita", Role.REVIEWER, None), ("nora", Role.LAB, "north"), ("ada", Role.ADMIN, None)):
            accounts.add_user(user, role, "setup", lab=lab)
            signin.set_password(user, PASSWORD, "setup")
    return home / SQLITE_FILENAME, labs


@pytest.fixture
def world(tmp_path: Path, people: tuple[Path, dict[str, int]]) -> Iterator[World]:
    database_file, labs = people
    settings = Settings(home=tmp_path / "home", limits=Limits())
    settings.home.mkdir()
    shutil.copyfile(database_file, settings.home / SQLITE_FILENAME)
    services = services_for(settings, Service(), Detection())
    app = create_app(services)
    with TestClient(app):  # runs the app's lifespan: the database is closed at the end
        yield World(services, app, labs)


@pytest.fixture
def reports(sample_scans: Callable[[str], ScanOutcome]) -> Callable[[str], dict[str, Any]]:
    return lambda file: sample_scans(file).report


def browser(world: World, user: str) -> Browser:
    client = TestClient(world.app)
    signed = post_signin(client, user, PASSWORD, "/")
    assert signed.status_code == 303, signed.text
    home = client.get("/")
    meta = CSRF_META.search(home.text)
    assert meta is not None, home.text
    return Browser(client, meta.group(1))


def behaviour_subject(report: dict[str, Any]) -> str:
    return f"behaviour:{report['behaviours'][0]['id']}"


# --- signing in ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/queue", "/submissions/0123abcd", "/audit"])
def test_a_page_without_a_session_sends_to_the_sign_in_page(world: World, path: str) -> None:
    response = TestClient(world.app).get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/signin?next={path}"


def test_a_wrong_password_is_refused_with_401_and_no_cookie(world: World) -> None:
    client = TestClient(world.app)
    response = post_signin(client, "rita", "not the password", "/queue")
    assert response.status_code == 401
    assert "wrong user name or password" in response.text
    assert "fwtriage_session" not in response.headers.get("set-cookie", "")
    assert 'name="next" value="/queue"' in response.text


def test_signing_in_sets_an_http_only_strict_cookie_and_goes_to_next(world: World) -> None:
    client = TestClient(world.app)
    response = post_signin(client, "rita", PASSWORD, "/submissions?verdict=clean")
    assert response.status_code == 303
    assert response.headers["location"] == "/submissions?verdict=clean"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("fwtriage_session=")).lower()
    assert cookie.startswith("fwtriage_session=")
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert f"max-age={int(Service().session_hours * 3600)}" in cookie
    assert "secure" not in cookie  # Service().secure_cookies is off: a loopback laptop has no TLS
    page = client.get("/queue")
    assert page.status_code == 200
    assert '<span class="user">rita</span>' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self';")


def test_a_sign_in_posted_from_elsewhere_is_refused(world: World) -> None:
    """Login CSRF: a form posted by another site carries neither the sign-in cookie nor its token.

    Outcome: 403 and no session without the sign-in form's own token and cookie.
    """
    client = TestClient(world.app)
    forged = client.post("/signin", data={"user": "rita", "password": PASSWORD}, follow_redirects=False)
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    assert "fwtriage_session" not in forged.headers.get("set-cookie", "")
    client.get("/signin")  # a cookie of its own, but the wrong token
    wrong = client.post("/signin", data={"user": "rita", "password": PASSWORD, "signin_token": "guess"},
                        follow_redirects=False)
    assert wrong.status_code == 403


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_next_never_leaves_the_site(world: World, target: str) -> None:
    """An open redirect through the sign-in page's next parameter.

    Outcome: a target off the site is replaced by /."""
    response = post_signin(TestClient(world.app), "rita", PASSWORD, target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


@pytest.mark.parametrize(("user", "home"), [("rita", "/queue"), ("nora", "/submissions"), ("ada", "/audit")])
def test_home_is_the_first_page_of_the_role(world: World, user: str, home: str) -> None:
    assert browser(world, user).get("/").headers["location"] == home


def test_signing_out_ends_the_session(world: World) -> None:
    rita = browser(world, "rita")
    response = rita.post("/signout")
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    assert rita.get("/queue").headers["location"] == "/signin?next=/queue"


# --- listings and scope -------------------------------------------------------------------------------

def test_the_queue_puts_unreviewed_backdoors_first_and_signed_off_last(world: World, reports: Callable) -> None:
    backdoor, clean = reports(BACKDOOR), reports(CLEAN)
    signed_off = world.submit(backdoor, "north", exhibit="SEAL-SIGNED", age_minutes=1)
    clean_id = world.submit(clean, "north", exhibit="SEAL-CLEAN", age_minutes=2)
    in_review = world.submit(backdoor, "south", exhibit="SEAL-IN-REVIEW", age_minutes=3)
    unreviewed = world.submit(backdoor, "south", exhibit="SEAL-NEW", age_minutes=4)
    reviewer = next(p for p in world.services.accounts.users() if p.name == "rita")  # the forms have their own test
    world.reviews.decide(in_review, reviewer, behaviour_subject(backdoor), "confirmed")
    world.reviews.set_verdict(signed_off, reviewer, "backdoor")
    world.reviews.sign_off(signed_off, reviewer)
    assert world.database.get(signed_off).review_status is ReviewStatus.SIGNED_OFF

    page = browser(world, "rita").get("/queue")
    assert page.status_code == 200
    assert re.findall(r'data-testid="queue-row" data-id="([0-9a-f]+)"', page.text) == [
        unreviewed, in_review, clean_id, signed_off]
    filtered = browser(world, "rita").get("/queue?verdict=clean&min_score=&text=")
    assert re.findall(r'data-testid="queue-row" data-id="([0-9a-f]+)"', filtered.text) == [clean_id]


def test_a_lab_user_sees_its_lab_only_and_no_reviewer_or_admin_page(world: World, reports: Callable) -> None:
    own = world.submit(reports(BACKDOOR), "north", exhibit="SEAL-NORTH")
    other = world.submit(reports(BACKDOOR), "south", exhibit="SEAL-SOUTH")
    nora = browser(world, "nora")
    assert nora.get(f"/submissions/{other}").status_code == 404
    assert nora.get("/queue").status_code == 403
    assert nora.get("/audit").status_code == 403
    listing = nora.get("/submissions")
    assert own in listing.text and other not in listing.text
    page = nora.get(f"/submissions/{own}")
    assert page.status_code == 200
    assert 'data-testid="behaviour"' in page.text
    assert 'data-testid="decision-form"' not in page.text  # decisions are shown to a lab, not taken from it
    assert 'data-testid="signoff-form"' not in page.text
    assert nora.post(f"/submissions/{own}/verdict", verdict="clean").status_code == 403


def test_the_submit_page_is_for_those_who_belong_to_a_lab(world: World) -> None:
    page = browser(world, "nora").get("/submit")
    assert page.status_code == 200
    assert 'action="/api/v1/submissions" enctype="multipart/form-data"' in page.text
    assert 'name="files" multiple' in page.text and '<script src="/static/ui.js' in page.text
    assert browser(world, "rita").get("/submit").status_code == 403  # a reviewer of every lab files under none
    assert TestClient(world.app).get("/static/ui.js").status_code == 200


def test_the_admin_reads_the_audit_log_under_its_verification(world: World, reports: Callable) -> None:
    submitted = world.submit(reports(CLEAN), "north")
    ada = browser(world, "ada")
    page = ada.get("/audit")
    assert page.status_code == 200
    assert 'data-testid="audit-verify" data-intact="true"' in page.text
    actions = re.findall(r'data-testid="audit-row" data-action="([a-z_.]+)"', page.text)
    assert actions[0] == "session.started" and "report.written" in actions  # newest first
    assert ada.get(f"/submissions/{submitted}").status_code == 403
    assert ada.get("/fleet").status_code == 403


# --- one submission and its review --------------------------------------------------------------------

def test_the_review_forms_record_decisions_verdict_and_sign_off(world: World, reports: Callable) -> None:
    report = reports(BACKDOOR)
    submitted = world.submit(report, "north")
    rita = browser(world, "rita")
    page = rita.get(f"/submissions/{submitted}")
    assert page.text.count('data-testid="decision-form"') == len(report["behaviours"]) + len(report["findings"])
    subject = behaviour_subject(report)

    decided = rita.post(f"/submissions/{submitted}/decisions", subject=subject, decision="confirmed",
                        note="AT+CMGS to a number abroad")
    assert decided.status_code == 303
    assert decided.headers["location"] == f"/submissions/{submitted}#{subject.replace(':', '-')}"
    dismissed = rita.post(f"/submissions/{submitted}/decisions", subject="finding:1", decision="dismissed")
    assert dismissed.headers["location"] == f"/submissions/{submitted}#finding-1"
    verdict = rita.post(f"/submissions/{submitted}/verdict", verdict="backdoor", note="as the machine says")
    assert verdict.headers["location"] == f"/submissions/{submitted}#verdict"
    assert world.reviews.state(submitted).status is ReviewStatus.IN_REVIEW
    assert rita.post(f"/submissions/{submitted}/signoff", note="final").headers["location"].endswith("#signoff")

    state = world.reviews.state(submitted)
    assert state.status is ReviewStatus.SIGNED_OFF and state.human_verdict == "backdoor"
    assert state.current[subject].decision == "confirmed" and state.current["finding:1"].decision == "dismissed"
    page = rita.get(f"/submissions/{submitted}")
    assert 'data-testid="signoff-row"><td>rita</td>' in page.text
    assert "decision-form" not in page.text and "signoff-form" not in page.text  # the review is closed
    trail = page.text.split('<section id="audit">')[1]
    assert trail.count('data-action="review.recorded"') == 4
    assert f"subject: {subject}" in trail and "AT+CMGS to a number abroad" in trail
    assert rita.post(f"/submissions/{submitted}/verdict", verdict="clean").status_code == 409


def test_a_form_post_without_the_session_csrf_token_is_refused(world: World, reports: Callable) -> None:
    """A review form posted without, or with a wrong, CSRF token.

    Outcome: 403; nothing recorded."""
    report = reports(BACKDOOR)
    submitted = world.submit(report, "north")
    rita = browser(world, "rita")
    form = {"subject": behaviour_subject(report), "decision": "confirmed", "verdict": "clean"}
    for path in ("decisions", "verdict", "signoff"):
        for csrf in ({}, {"csrf": "not-the-token"}):
            response = rita.client.post(f"/submissions/{submitted}/{path}", data={**form, **csrf},
                                        follow_redirects=False)
            assert response.status_code == 403, (path, csrf)
            assert "CSRF" in response.text
    assert world.reviews.state(submitted).history == []
    assert rita.client.post("/signout", follow_redirects=False).status_code == 403


def test_reading_a_finished_submission_page_is_audited(world: World, reports: Callable) -> None:
    submitted = world.submit(reports(BACKDOOR), "north")
    page = browser(world, "nora").get(f"/submissions/{submitted}")
    reads = [e for e in world.database.audit_events(submitted) if e.action == "report.read"]
    assert [e.actor for e in reads] == ["nora"]
    assert 'data-action="report.read"' in page.text  # the page's own read is in its trail
    assert f'href="/api/v1/submissions/{submitted}/report.pdf"' in page.text


def test_a_submission_in_progress_shows_a_live_progress_bar(world: World, reports: Callable) -> None:
    submitted = world.submit(reports(BACKDOOR), "north", finished=False)
    page = browser(world, "rita").get(f"/submissions/{submitted}")
    assert f'data-poll="/api/v1/submissions/{submitted}"' in page.text
    assert '<progress data-testid="progress" value="3" max="8">' in page.text
    assert [e.action for e in world.database.audit_events(submitted)] == ["submission.received"]
    queue = browser(world, "rita").get("/queue")
    assert '<progress data-testid="progress" value="3" max="8">' in queue.text


def test_a_hostile_file_name_is_escaped_on_every_page(world: World, reports: Callable) -> None:
    """A file name that is HTML/JS (<script>) shown in the queue and the submission page.

    Outcome: escaped text everywhere, no tag."""
    submitted = world.submit(reports(BACKDOOR), "north", filename=HOSTILE)
    rita = browser(world, "rita")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;.bin"
    for path in ("/queue", "/submissions", f"/submissions/{submitted}"):
        page = rita.get(path)
        assert escaped in page.text, path
        assert "<script>alert" not in page.text, path


# --- across submissions ---------------------------------------------------------------------------------

def test_the_fleet_page_lists_an_endpoint_shared_by_two_submissions(world: World, reports: Callable) -> None:
    first = world.submit(reports(BACKDOOR), "north", exhibit="SEAL-A")
    second = world.submit(reports(BACKDOOR), "north", exhibit="SEAL-B")
    elsewhere = world.submit(reports(BACKDOOR), "south", exhibit="SEAL-SOUTH")
    page = browser(world, "nora").get("/fleet")
    assert page.status_code == 200
    row = page.text.split(f'data-testid="shared-endpoint" data-endpoint="{SHARED_ENDPOINT}"')[1].split("</tr>")[0]
    assert f'href="/submissions/{first}"' in row and f'href="/submissions/{second}"' in row
    assert elsewhere not in page.text  # another lab's device, even sharing the endpoint, stays out of sight
    endpoints = browser(world, "rita").get("/endpoints")
    assert f'data-testid="endpoint-row" data-endpoint="{SHARED_ENDPOINT}"' in endpoints.text
    assert elsewhere in endpoints.text
