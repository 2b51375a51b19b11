"""Who is calling: an API token (``Authorization: Bearer fwt_...``) or a browser session cookie.

Why both on every route: scripts of a lab use tokens, reviewers use the browser, and the pages' little
JavaScript calls the same JSON routes. A request that changes something with a session cookie must also carry
the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``): a cookie is sent by the browser
whatever page asks, a token header is not. Roles are checked here, lab scope in ``pipeline.queries``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from pipeline.accounts import Principal
from pipeline.signin import WebSession
from pipeline.tables import Role

SESSION_COOKIE = "fwtriage_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotSignedIn(HTTPException):
    """401: no credentials, or credentials that are unknown, revoked or expired."""

    def __init__(self, message: str = "sign in or send an API token (Authorization: Bearer ...)") -> None:
        super().__init__(401, message, headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True)
class Caller:
    principal: Principal
    session: WebSession | None  # None: an API token

    @property
    def actor(self) -> str:
        """The name the audit log records."""
        return self.principal.name


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def client_key(request: Request) -> str:
    """The address failed attempts are counted against (the proxy's, behind one: see FailureThrottle)."""
    return f"address:{request.client.host if request.client else 'unknown'}"


def current_session(request: Request) -> WebSession | None:
    """The browser session of the request's cookie, if it is still open."""
    secret = request.cookies.get(SESSION_COOKIE)
    return request.app.state.services.signin.resume(secret) if secret else None


def caller(request: Request) -> Caller:
    """FastAPI dependency: the authenticated caller, or 401."""
    services = request.app.state.services
    if (token := _bearer(request)) is not None:
        services.throttle.check(client_key(request))
        principal = services.accounts.authenticate(token)
        if principal is None:
            services.throttle.failed(client_key(request))
            raise NotSignedIn("the API token is unknown or revoked")
        return Caller(principal, None)
    session = current_session(request)
    if session is None:
        raise NotSignedIn()
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise HTTPException(403, "missing or wrong CSRF token")
    return Caller(session.principal, session)


def check_csrf(session: WebSession, sent: str | None) -> None:
    """A form post's ``csrf`` field against its session's token."""
    if not hmac.compare_digest((sent or "").encode(), session.csrf.encode()):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def role_required(*roles: Role) -> Callable[[Caller], Caller]:
    """A dependency for routes open to some roles only: the caller, or 403 naming who may."""
    def check(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if who.principal.role not in roles:
            raise HTTPException(403, f"this needs the role {' or '.join(str(r) for r in roles)}; "
                                     f"{who.principal.name} is {who.principal.role}")
        return who
    return check


AnyCaller = Annotated[Caller, Depends(caller)]
LabCaller = Annotated[Caller, Depends(role_required(Role.LAB))]
ReaderCaller = Annotated[Caller, Depends(role_required(Role.LAB, Role.REVIEWER))]
SubmitterCaller = ReaderCaller  # and the caller must belong to a lab: checked where the upload is accepted
ReviewerCaller = Annotated[Caller, Depends(role_required(Role.REVIEWER))]
