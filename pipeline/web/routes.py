"""The reviewers' pages, served beside the JSON API: sign-in, the review queue, the search, submitting, one
submission with its review forms, the fleet view and the audit log.

Why the review forms post to these routes and not to the JSON API: a decision then needs no JavaScript, and each
form carries its session's CSRF token in a hidden field (``check_csrf``), because the session cookie is sent
whatever page asks. What a principal may see is decided by ``pipeline.queries`` (the lab scope) and who may
decide by ``pipeline.review``; the routes here check a page's role, parse, call, and render or redirect.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import QueryParams

from pipeline.accounts import Principal
from pipeline.api.app import API_PREFIX, Services
from pipeline.api.auth import SESSION_COOKIE, NotSignedIn, check_csrf, client_key, current_session
from pipeline.audit import verify_chain
from pipeline.db import Database
from pipeline.queries import Page, SubmissionFilters, campaign, endpoints, review_queue, search, visible_submission
from pipeline.report.view import endpoint_countries
from pipeline.signin import WebSession
from pipeline.tables import ReviewStatus, Role, SubmissionState
from pipeline.web.pages import (
    ADMINS,
    READERS,
    REVIEWERS,
    STATIC,
    SUBMITTERS,
    Access,
    home_of,
    numbered_findings,
    pager,
    render,
)

router = APIRouter(include_in_schema=False)

LISTING_LIMIT = 50
AUDIT_LIMIT = 100
QUEUE_FILTERS = ("verdict", "review_status", "case", "lab", "text", "min_score")
SEARCH_FILTERS = ("case", "exhibit", "verdict", "state", "review_status", "lab", "min_score", "max_score", "endpoint",
                  "sha256", "text")
WHOLE_NUMBERS = frozenset({"min_score", "max_score", "offset"})
WRONG_SIGN_IN = "wrong user name or password"
STALE_SIGN_IN = "the sign-in form has expired or did not come from this site: sign in again"
SIGNIN_COOKIE = "fwtriage_signin"
SIGNIN_FORM_SECONDS = 3600
FormField = Annotated[str, Form()]


def static_files() -> StaticFiles:
    """The pages' stylesheet and script (mounted at /static by the app): local files, nothing fetched elsewhere."""
    return StaticFiles(directory=STATIC)


def _services(request: Request) -> Services:
    return request.app.state.services


def signed_in(request: Request) -> WebSession:
    """The browser's session, or NotSignedIn (which the app turns into a redirect to the sign-in page)."""
    session = current_session(request)
    if session is None:
        raise NotSignedIn()
    return session


def page_for(access: Access) -> Callable[[WebSession], WebSession]:
    """A dependency for a page some principals only may open: the session, or 403 saying who may."""
    def check(session: Annotated[WebSession, Depends(signed_in)]) -> WebSession:
        p = session.principal
        if not access.admits(p):
            raise HTTPException(403, f"this page is for {access.who}; {p.name} has the role {p.role}"
                                     f"{f' in {p.lab}' if p.lab else ''}")
        return session
    return check


Anyone = Annotated[WebSession, Depends(signed_in)]
Reader = Annotated[WebSession, Depends(page_for(READERS))]
Reviewer = Annotated[WebSession, Depends(page_for(REVIEWERS))]
Submitter = Annotated[WebSession, Depends(page_for(SUBMITTERS))]
Admin = Annotated[WebSession, Depends(page_for(ADMINS))]


# --- signing in and out ------------------------------------------------------------------------------

def local_path(target: str) -> str:
    """Where to go after signing in: a path of this site only, since ``next`` comes from a link anyone can craft
    (``//host`` and ``/\\host`` are other sites to a browser)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def _signin_form(request: Request, status: int = 200, *, next_path: str = "/", user: str = "",
                 error: str | None = None) -> Response:
    """The sign-in form with a fresh login-CSRF token, in the form and in a cookie only this site can set.

    Why a token before any session: a page elsewhere could otherwise post the form with the attacker's own
    credentials and have a reviewer unknowingly work, and decide, inside the attacker's account.
    """
    token = secrets.token_urlsafe(32)
    response = render(request, "signin.html.j2", None, status, next_path=local_path(next_path), user=user,
                      error=error, signin_token=token)
    response.set_cookie(SIGNIN_COOKIE, token, max_age=SIGNIN_FORM_SECONDS, path="/signin",
                        secure=_services(request).service.secure_cookies, httponly=True, samesite="strict")
    return response


@router.get("/signin")
def signin_page(request: Request, next_path: Annotated[str, Query(alias="next")] = "/") -> Response:
    if current_session(request) is not None:
        return RedirectResponse(local_path(next_path), 303)
    return _signin_form(request, next_path=next_path)


@router.post("/signin")
def sign_in(request: Request, user: FormField = "", password: FormField = "", signin_token: FormField = "",
            next_path: Annotated[str, Form(alias="next")] = "/") -> Response:
    services = _services(request)
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not hmac.compare_digest(signin_token.encode(), expected.encode()):
        return _signin_form(request, 403, next_path=next_path, user=user, error=STALE_SIGN_IN)
    attempts = (client_key(request), f"user:{user.strip().lower()}")
    services.throttle.check(*attempts)
    session = services.signin.sign_in(user, password, client=request.client.host if request.client else "")
    if session is None:
        services.throttle.failed(*attempts)
        return _signin_form(request, 401, next_path=next_path, user=user, error=WRONG_SIGN_IN)
    response = RedirectResponse(local_path(next_path), 303)
    response.set_cookie(SESSION_COOKIE, session.secret, max_age=int(services.service.session_hours * 3600), path="/",
                        secure=services.service.secure_cookies, httponly=True, samesite="strict")
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


@router.post("/signout")
def sign_out(request: Request, session: Anyone, csrf: FormField = "") -> RedirectResponse:
    check_csrf(session, csrf)
    services = _services(request)
    services.signin.sign_out(session.secret)
    response = RedirectResponse("/signin", 303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=services.service.secure_cookies, httponly=True,
                           samesite="strict")
    return response


@router.get("/")
def home(session: Anyone) -> RedirectResponse:
    return RedirectResponse(home_of(session.principal), 303)


# --- listings ----------------------------------------------------------------------------------------

def listing_filters(params: QueryParams, names: tuple[str, ...]) -> SubmissionFilters:
    """A listing's filters from its form's query string; an empty field is no filter (a GET form sends them all)."""
    given: dict[str, Any] = {name: params[name].strip() for name in (*names, "offset") if params.get(name, "").strip()}
    for name in WHOLE_NUMBERS & given.keys():
        if not re.fullmatch(r"[0-9]{1,9}", given[name]):
            raise HTTPException(422, f"{name} is a whole number, not {given[name]!r}")
        given[name] = int(given[name])
    return SubmissionFilters(**given, limit=LISTING_LIMIT)


def _listing(request: Request, session: WebSession, template: str,
             query: Callable[[Database, Principal, SubmissionFilters], Page], names: tuple[str, ...]) -> HTMLResponse:
    filters = listing_filters(request.query_params, names)
    page = query(_services(request).database, session.principal, filters)
    return render(request, template, session, page=page,
                  pager=pager(request, page.total, filters.offset, filters.limit),
                  filters={name: request.query_params.get(name, "") for name in names})


@router.get("/queue")
def queue_page(request: Request, session: Reviewer) -> HTMLResponse:
    return _listing(request, session, "queue.html.j2", review_queue, QUEUE_FILTERS)


@router.get("/submissions")
def submissions_page(request: Request, session: Reader) -> HTMLResponse:
    return _listing(request, session, "submissions.html.j2", search, SEARCH_FILTERS)


@router.get("/submit")
def submit_page(request: Request, session: Submitter) -> HTMLResponse:
    service = _services(request).service
    return render(request, "submit.html.j2", session, upload_url=f"{API_PREFIX}/submissions",
                  max_files=service.max_files_per_upload, max_bytes=service.max_upload_bytes)


# --- one submission and its review -------------------------------------------------------------------

@router.get("/submissions/{submission_id}")
def submission_page(request: Request, submission_id: str, session: Reader) -> HTMLResponse:
    """Identity and progress; once done, the verdicts, the claims with their decisions and forms, and the
    submission's audit trail. Reading a finished report here is audited like a download."""
    services = _services(request)
    database, principal = services.database, session.principal
    record = visible_submission(database, principal, submission_id)
    report = database.report(submission_id, actor=principal.name) if record.state is SubmissionState.DONE else None
    review = services.reviews.state(submission_id)
    notable, info = numbered_findings(report["findings"]) if report else ([], [])
    return render(
        request, "submission.html.j2", session, record=record, lab=database.lab_name(record.lab_id),
        report=report, review=review, notable=notable, info=info,
        countries=endpoint_countries(report["endpoints"]) if report else {},
        can_review=(principal.role is Role.REVIEWER and report is not None
                    and review.status is not ReviewStatus.SIGNED_OFF),
        api=f"{API_PREFIX}/submissions/{record.id}", audit=database.audit_events(submission_id))


def _back_to(submission_id: str, anchor: str) -> RedirectResponse:
    """After a decision, the submission's page again, at the item decided (Post/Redirect/Get)."""
    return RedirectResponse(f"/submissions/{quote(submission_id, safe='')}#{quote(anchor, safe='@')}", 303)


@router.post("/submissions/{submission_id}/decisions")
def decide(request: Request, submission_id: str, session: Reviewer, csrf: FormField = "", subject: FormField = "",
           decision: FormField = "", note: FormField = "") -> RedirectResponse:
    check_csrf(session, csrf)
    _services(request).reviews.decide(submission_id, session.principal, subject, decision, note)
    return _back_to(submission_id, subject.replace(":", "-", 1))


@router.post("/submissions/{submission_id}/verdict")
def set_verdict(request: Request, submission_id: str, session: Reviewer, csrf: FormField = "",
                verdict: FormField = "", note: FormField = "") -> RedirectResponse:
    check_csrf(session, csrf)
    _services(request).reviews.set_verdict(submission_id, session.principal, verdict, note)
    return _back_to(submission_id, "verdict")


@router.post("/submissions/{submission_id}/signoff")
def sign_off(request: Request, submission_id: str, session: Reviewer, csrf: FormField = "",
             note: FormField = "") -> RedirectResponse:
    check_csrf(session, csrf)
    _services(request).reviews.sign_off(submission_id, session.principal, note)
    return _back_to(submission_id, "signoff")


# --- across submissions, and the audit log -----------------------------------------------------------

@router.get("/fleet")
def fleet_page(request: Request, session: Reader) -> HTMLResponse:
    return render(request, "fleet.html.j2", session, campaign=campaign(_services(request).database, session.principal))


@router.get("/endpoints")
def endpoints_page(request: Request, session: Reader) -> HTMLResponse:
    return render(request, "endpoints.html.j2", session,
                  endpoints=endpoints(_services(request).database, session.principal))


@router.get("/audit")
def audit_page(request: Request, session: Admin, offset: Annotated[int, Query(ge=0)] = 0) -> HTMLResponse:
    """The whole log, newest first, under the verdict of its hash chain (checked on the very entries listed)."""
    entries = _services(request).database.audit_events()
    problems = verify_chain(entries)
    newest = entries[::-1][offset:offset + AUDIT_LIMIT]
    return render(request, "audit.html.j2", session, entries=newest, total=len(entries), problems=problems,
                  pager=pager(request, len(entries), offset, AUDIT_LIMIT))
