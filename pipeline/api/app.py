"""The service (``fwtriage serve``): the JSON API under ``/api/v1`` and the reviewers' pages, one FastAPI app.

Why one process for both: the pages are server-rendered from the same queries and checks as the API (one
authorisation path to prove), and a lab deploys one container in front of the fleet. The app holds its
database, store and dispatcher in ``app.state.services``; tests build it with their own.

Every error leaves as JSON ``{"error": {"status": ..., "message": ...}}`` on the API (and a page for the browser),
with the status a client can act on: 401 not signed in, 403 not allowed, 404 unknown (or not yours), 409 not in a
state for this, 413 too large, 422 malformed request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline import __version__
from pipeline.accounts import Accounts
from pipeline.api.dispatch import Dispatcher, FleetDispatcher, LocalDispatcher
from pipeline.api.throttle import FailureThrottle
from pipeline.api.upload import UploadRejected
from pipeline.config import Detection, Service, Settings
from pipeline.db import Database, UnknownSubmission
from pipeline.review import ReviewRefused, Reviews
from pipeline.signin import SignIn
from pipeline.store import BlobStore, LocalBlobStore

API_PREFIX = "/api/v1"


@dataclass
class Services:
    """What every route reaches through ``request.app.state.services``."""

    settings: Settings
    service: Service
    detection: Detection
    database: Database
    store: BlobStore
    dispatcher: Dispatcher
    throttle: FailureThrottle = field(default_factory=FailureThrottle)

    @property
    def accounts(self) -> Accounts:
        return Accounts(self.database)

    @property
    def signin(self) -> SignIn:
        return SignIn(self.database, self.service.session_hours)

    @property
    def reviews(self) -> Reviews:
        return Reviews(self.database)


def services_for(settings: Settings, service: Service, detection: Detection) -> Services:
    database = Database.for_settings(settings)
    store = LocalBlobStore(settings.store_dir)
    dispatcher: Dispatcher = (FleetDispatcher() if service.dispatch == "fleet"
                              else LocalDispatcher(database, store, settings, detection))
    return Services(settings, service, detection, database, store, dispatcher)


def create_app(services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        services.dispatcher.start()
        try:
            yield
        finally:
            services.dispatcher.close()
            services.database.close()

    app = FastAPI(title="fwtriage", version=__version__, lifespan=lifespan,
                  description="Firmware backdoor triage: submit images, follow their triage, read and review reports.")
    app.state.services = services
    _install_error_handlers(app)
    app.add_middleware(SecurityHeaders)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness for the container's health check: the process answers and its database does."""
        services.database.list_submissions(limit=1)
        return {"status": "ok"}

    from pipeline.api.routes import router as api_router
    from pipeline.web.routes import router as web_router
    from pipeline.web.routes import static_files

    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(web_router)
    app.mount("/static", static_files(), name="static")
    return app


# The pages load their script and style from /static; the self-contained report sets its own (stricter) policy.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SWAGGER_PATHS = ("/docs", "/docs/oauth2-redirect")  # FastAPI's page loads Swagger UI from its CDN


class SecurityHeaders:
    """Headers every answer carries: no framing, no sniffing, no referrer, nothing cached (reports are evidence).

    A plain ASGI middleware that only wraps ``send``: Starlette's ``BaseHTTPMiddleware`` would also wrap
    ``receive``, starting and cancelling a task for each chunk of an upload's body (4,000 per GiB).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if path not in SWAGGER_PATHS:
                    headers.setdefault("Content-Security-Policy", PAGE_POLICY)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if not path.startswith("/static/"):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def error_response(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """JSON for the API, a page (or the sign-in page, for a 401) for the browser."""
    if request.url.path.startswith(API_PREFIX) or request.url.path in ("/openapi.json", "/docs"):
        return JSONResponse({"error": {"status": status, "message": message}}, status, headers=headers)
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target, safe='/')}", 303)
    from pipeline.web.pages import error_page

    return error_page(request, status, message)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
                             for e in exc.errors())
        return error_response(request, 422, f"invalid request: {problems}")

    @app.exception_handler(UnknownSubmission)
    async def unknown(request: Request, exc: UnknownSubmission) -> Response:
        return error_response(request, 404, f"no submission {exc.args[0]}")

    @app.exception_handler(ReviewRefused)
    async def refused(request: Request, exc: ReviewRefused) -> Response:
        return error_response(request, 409 if exc.conflict else 422, str(exc))

    @app.exception_handler(PermissionError)
    async def forbidden(request: Request, exc: PermissionError) -> Response:
        return error_response(request, 403, str(exc))

    @app.exception_handler(UploadRejected)
    async def rejected(request: Request, exc: UploadRejected) -> Response:
        return error_response(request, exc.status, str(exc))
