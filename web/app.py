"""The workspace application: ``create_app(config)`` → a FastAPI app (ASGI, served by uvicorn).

Nothing is kept in the process but a connection pool and the signing key read at start-up:
sessions, throttling and uploads live in the warehouse, so any number of processes serve one
warehouse. Every script and stylesheet comes from ``/static`` of the app itself (the Content
Security Policy allows nothing else): bureau intranets have no internet.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine, text
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warehouse import users
from warehouse.read_models import current_version
from warehouse.users import officer_units
from web.config import WebConfig
from web.security import LoginRequired
from web.templating import page

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
LEAFLET_DIR = Path(__file__).resolve().parent.parent / "maps" / "vendor" / "leaflet" / "dist"

# One module per page; each holds ``router`` (its pages) and may hold ``api`` (its JSON under /api).
ROUTE_MODULES = (
    "web.routes.auth",
    "web.routes.home",
    "web.routes.projects",
    "web.routes.progress",
    "web.routes.duplicates",
    "web.routes.proposals",
    "web.routes.ledger",
    "web.routes.land",
    "web.routes.match",
    "web.routes.public",
    "web.routes.deadletters",
    "web.routes.dashboard",
    "web.routes.bulletins",
)

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class SecurityHeaders:
    """Headers on every response: CSP (own assets only), no framing, no MIME sniffing, no referrer leaks."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for name, value in (
                    (b"content-security-policy", CSP.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ):
                    if name not in names:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api")


def create_app(config: WebConfig, engine: Engine) -> FastAPI:
    """The app over the warehouse behind ``engine`` (an application engine on a current schema:
    the entry point checks the revision, ``zhaoshang.common.engine_of``)."""
    with engine.connect() as conn:
        secret = users.signing_secret(conn)
    app = FastAPI(
        title="zhaoshang workspace API · 招商工作台接口",
        version="1",
        description="States, KPIs, land and events of the warehouse, with the same authorization as the pages. "
        "Authenticate with `Authorization: Bearer <token>` (`zhaoshang users token`) or a session cookie plus `X-CSRF-Token` for writes.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.config = config
    app.state.engine = engine
    app.state.signing_secret = secret
    app.mount("/static/vendor/leaflet", StaticFiles(directory=str(LEAFLET_DIR)), name="leaflet")
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for name in ROUTE_MODULES:
        module = importlib.import_module(name)
        app.include_router(module.router)
        if hasattr(module, "api"):
            app.include_router(module.api, prefix="/api")

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if _wants_json(request) or request.headers.get("hx-request"):
            detail: Any = exc.detail
            if exc.status_code == 422 and isinstance(detail, str):
                # One shape for every 422, the one the OpenAPI schema declares (a list of loc/msg/type).
                detail = [{"loc": [], "msg": detail, "type": "value_error"}]
            return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
        return page(request, "error.html", status_code=exc.status_code, status=exc.status_code, detail=str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # The shape the OpenAPI schema declares for 422 (FastAPI's ValidationError: loc, msg, type).
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in exc.errors()]
        if _wants_json(request):
            return JSONResponse({"detail": errors}, status_code=422)
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return page(request, "error.html", status_code=422, status=422, detail=detail)

    app.add_middleware(SecurityHeaders)
    if config.warm_caches:
        threading.Thread(target=_warm, args=(app,), name="warm-caches", daemon=True).start()
    return app


def _warm(app: FastAPI) -> None:
    """Build today's land view and public view in the background (a failure only means a cold first
    request), then keep the default answers of the current read-model version computed."""
    from events.store import Horizon
    from web.landview import land_views_of, prepared_of
    from web.public_view import cache_of

    config: WebConfig = app.state.config
    day = config.today()
    try:
        prepared_of(land_views_of(app.state).get(Horizon(day)))
        cache_of(app.state).get(app.state.engine, day)
    except Exception:
        log.exception("warming the land and public views failed; the first request builds them")
    warmed: tuple[object, ...] | None = None
    while True:
        try:
            warmed = warm_answers(app.state.engine, config.today(), warmed)
        except Exception:
            log.exception("warming the workspace's answers failed; the first requests compute them")
        time.sleep(config.warm_every_s)


WARM_LOCK = "zhaoshang.web.warm-answers"


def warm_answers(engine: Engine, day: date, warmed: tuple[object, ...] | None) -> tuple[object, ...] | None:
    """Today's default dashboards, KPIs and first list pages (everyone's and each officer's unit's),
    unless ``warmed`` says they are of the current version and day already. One process computes
    them while the others wait for the lock and then read them from the warehouse (``web.answers``).
    Returns what was warmed, None while the read models lag (nothing is reused then)."""
    from web.routes import dashboard, projects

    with engine.connect() as lock_conn:
        with lock_conn.begin():
            version = current_version(lock_conn)
            units = officer_units(lock_conn)
        if version is None:
            return None
        now = (version, day, tuple(units))
        if now == warmed:
            return warmed
        lock_conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": WARM_LOCK})
        try:
            for warm in (dashboard.warm, projects.warm):
                with engine.connect() as conn:
                    warm(conn, day, units)
        finally:
            lock_conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": WARM_LOCK})
            lock_conn.commit()
    return now
