"""The authorisation matrix: every route of the API and of the web UI, for every kind of caller, against a
submission of lab "beta". It proves that a lab never sees another lab's data (404, exactly like an id that does
not exist, and nothing of it in any listing), that each role reaches only its routes, and that a new route cannot
be added without a line here (the route lists are compared with the routers')."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipeline.accounts import Accounts
from pipeline.api.app import create_app
from pipeline.api.auth import SESSION_COOKIE
from pipeline.api.routes import router as api_router
from pipeline.api.throttle import FailureThrottle
from pipeline.config import Settings
from pipeline.db import SubmissionRecord
from pipeline.scan import ScanOutcome
from pipeline.web.routes import router as web_router
from tests.service import PASSWORD, SIGNIN_TOKEN, Person, add_people, build_services, finished

BACKDOOR = "featurephone-sc6531e.pac"
PEOPLE = ("alpha-intake", "beta-intake", "alpha-reviewer", "chief-reviewer", "root")
CALLERS = ("anonymous", "revoked", *PEOPLE)
OK, CREATED, SEE_OTHER, UNAUTHENTICATED, FORBIDDEN, HIDDEN = 200, 201, 303, 401, 403, 404


def _by_person(alpha_intake: int, beta_intake: int, alpha_reviewer: int, chief_reviewer: int,
               root: int) -> dict[str, int]:
    return dict(zip(PEOPLE, (alpha_intake, beta_intake, alpha_reviewer, chief_reviewer, root), strict=True))


LISTING = _by_person(OK, OK, OK, OK, FORBIDDEN)
READING = _by_person(HIDDEN, OK, HIDDEN, OK, FORBIDDEN)  # the target belongs to beta
REVIEWING = _by_person(FORBIDDEN, FORBIDDEN, HIDDEN, OK, FORBIDDEN)

API_RULES: dict[str, dict[str, int]] = {
    "GET /me": _by_person(OK, OK, OK, OK, OK),
    "POST /submissions": _by_person(CREATED, CREATED, CREATED, FORBIDDEN, FORBIDDEN),  # chief has no lab
    "GET /submissions": LISTING, "GET /endpoints": LISTING, "GET /campaign": LISTING,
    "GET /queue": _by_person(FORBIDDEN, FORBIDDEN, OK, OK, FORBIDDEN),
    "GET /audit": _by_person(FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "GET /audit?submission={id}": _by_person(HIDDEN, OK, HIDDEN, OK, OK),
    "GET /submissions/{id}": READING, "GET /submissions/{id}/report.json": READING,
    "GET /submissions/{id}/report.html": READING, "GET /submissions/{id}/report.pdf": READING,
    "GET /submissions/{id}/review": READING,
    "POST /submissions/{id}/review/decisions": REVIEWING, "POST /submissions/{id}/review/verdict": REVIEWING,
    "POST /submissions/{id}/review/signoff": REVIEWING,
}

WEB_RULES: dict[str, dict[str, int]] = {
    "GET /signin": _by_person(SEE_OTHER, SEE_OTHER, SEE_OTHER, SEE_OTHER, SEE_OTHER),  # signed in: sent on
    "POST /signin": _by_person(UNAUTHENTICATED, UNAUTHENTICATED, UNAUTHENTICATED, UNAUTHENTICATED, UNAUTHENTICATED),
    "POST /signout": _by_person(SEE_OTHER, SEE_OTHER, SEE_OTHER, SEE_OTHER, SEE_OTHER),
    "GET /": _by_person(SEE_OTHER, SEE_OTHER, SEE_OTHER, SEE_OTHER, SEE_OTHER),
    "GET /queue": _by_person(FORBIDDEN, FORBIDDEN, OK, OK, FORBIDDEN),
    "GET /submissions": LISTING, "GET /fleet": LISTING, "GET /endpoints": LISTING,
    "GET /submit": _by_person(OK, OK, OK, FORBIDDEN, FORBIDDEN),
    "GET /submissions/{id}": READING,
    "POST /submissions/{id}/decisions": _by_person(FORBIDDEN, FORBIDDEN, HIDDEN, SEE_OTHER, FORBIDDEN),
    "POST /submissions/{id}/verdict": _by_person(FORBIDDEN, FORBIDDEN, HIDDEN, SEE_OTHER, FORBIDDEN),
    "POST /submissions/{id}/signoff": _by_person(FORBIDDEN, FORBIDDEN, HIDDEN, SEE_OTHER, FORBIDDEN),
    "GET /audit": _by_person(FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
}
PUBLIC_WEB = {"GET /signin": OK, "POST /signin": UNAUTHENTICATED}  # what the anonymous get there


def _served(router: Any) -> set[str]:
    return {f"{method} {route.path.replace('{submission_id}', '{id}')}" for route in router.routes
            for method in route.methods}


def test_the_matrices_cover_every_route() -> None:
    assert _served(api_router) == {name.split("?")[0] for name in API_RULES}
    assert _served(web_router) == set(WEB_RULES)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, sample_scans: Callable[[str], ScanOutcome]) -> Iterator[tuple]:
    """One service for the whole matrix: the people, a revoked token, a finished submission in each lab."""
    report = sample_scans(BACKDOOR).report
    services = build_services(Settings(home=tmp_path_factory.mktemp("matrix")), max_upload_bytes=1 << 20)
    services.throttle = FailureThrottle(max_failures=100)  # the revoked token, wrong passwords: one address
    with TestClient(create_app(services), follow_redirects=False) as client:
        people = add_people(services.database)
        accounts = Accounts(services.database)
        revoked = accounts.issue_token("beta-intake", "test")
        accounts.revoke_token(revoked.id, "test")
        beta = finished(services.database, report, people["beta-intake"].lab_id, exhibit="SEAL-BETA-ONLY")
        finished(services.database, report, people["alpha-intake"].lab_id, exhibit="SEAL-ALPHA")
        yield client, people, revoked.secret, beta, report


def _target(client: TestClient, route: str, caller: str, people: dict[str, Person], beta: SubmissionRecord,
            report: dict) -> str:
    """The beta submission, or for a sign-off that would succeed, a fresh one with a verdict (signing off
    closes a review)."""
    if not route.endswith("/signoff") or caller != "chief-reviewer":
        return beta.id
    services = client.app.state.services
    fresh = finished(services.database, report, people["beta-intake"].lab_id).id
    services.reviews.set_verdict(fresh, services.accounts.authenticate(people[caller].token), "clean")
    return fresh


def _no_beta_data(response: Any, route: str, beta: SubmissionRecord) -> None:
    """What alpha is shown holds nothing of beta's (a 404 only repeats the id alpha asked for)."""
    assert "SEAL-BETA-ONLY" not in response.text and beta.sha256 not in response.text
    if "{id}" not in route:
        assert beta.id not in response.text


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", API_RULES)
def test_api_authorisation(matrix: tuple, route: str, caller: str) -> None:
    """Every API route, for every kind of caller.

    Outcome: anonymous callers and revoked tokens get 401 on every API route; another lab's submission answers 404
    and shows in no listing; each role reaches only its routes.
    """
    client, people, revoked, beta, report = matrix
    special = {"anonymous": {}, "revoked": {"Authorization": f"Bearer {revoked}"}}
    headers = special[caller] if caller in special else people[caller].headers
    method, path = route.split(" ")
    url = "/api/v1" + path.replace("{id}", _target(client, route, caller, people, beta, report))
    bodies = {"/decisions": {"json": {"subject": "finding:0", "decision": "confirmed"}},
              "/verdict": {"json": {"verdict": "suspicious"}}, "/signoff": {"json": {}}}
    body = next((b for suffix, b in bodies.items() if path.endswith(suffix)), {})
    if route == "POST /submissions":
        body = {"files": [("files", ("m.bin", io.BytesIO(b"matrix"), "application/octet-stream"))]}
    response = client.request(method, url, headers=headers, **body)
    expected = UNAUTHENTICATED if caller in special else API_RULES[route][caller]
    assert response.status_code == expected, response.text
    if caller.startswith("alpha-"):
        _no_beta_data(response, route, beta)
    if response.status_code >= 400:
        assert set(json.loads(response.text)["error"]) == {"status", "message"}


@pytest.mark.parametrize("caller", ("anonymous", *PEOPLE))
@pytest.mark.parametrize("route", WEB_RULES)
def test_web_authorisation(matrix: tuple, route: str, caller: str) -> None:
    """The pages, each caller with its own browser session (and its CSRF token on every form).

    Outcome: without a session every page sends to the sign-in page; another lab's submission answers 404; each
    role reaches only its pages.
    """
    client, people, _, beta, report = matrix
    services = client.app.state.services
    session = None if caller == "anonymous" else services.signin.sign_in(caller, PASSWORD)
    method, path = route.split(" ")
    url = path.replace("{id}", _target(client, route, caller, people, beta, report))
    form = {"csrf": session.csrf if session else ""}
    client.cookies.clear()
    if path == "/signin":  # the form first (its token and cookie), then whoever this caller is
        token = SIGNIN_TOKEN.search(client.get("/signin").text)
        assert token is not None
        form = {"user": caller, "password": "not the password", "signin_token": token.group(1)}
    elif path.endswith("/decisions"):
        form |= {"subject": "finding:0", "decision": "confirmed"}
    elif path.endswith("/verdict"):
        form |= {"verdict": "suspicious"}
    if session:
        client.cookies.set(SESSION_COOKIE, session.secret)
    response = client.request(method, url, data=form if method == "POST" else None)
    client.cookies.clear()
    if caller == "anonymous":
        expected = PUBLIC_WEB.get(route, SEE_OTHER)
        assert response.status_code == expected, response.text
        if expected == SEE_OTHER:
            assert response.headers["location"].startswith("/signin?next=")
        return
    assert response.status_code == WEB_RULES[route][caller], response.text
    if caller.startswith("alpha-"):
        _no_beta_data(response, route, beta)
