"""Who is asking, and may they: sessions, API tokens, CSRF, roles and the unit scope.

- A session is a random token; the cookie holds it with an HMAC signature (the key is shared by
  every process through the warehouse), the warehouse holds its SHA-256, the user and a CSRF token.
- Pages and the API under a session accept a write only with the session's CSRF token (form field
  ``csrf_token`` or header ``X-CSRF-Token``); the login form, before any session, uses a signed
  pre-session cookie and a token derived from it (double submit).
- Other systems call ``/api`` with ``Authorization: Bearer <token>`` (``zhaoshang users token``): no
  cookie, so no CSRF.
- Roles: ``admin`` and ``planner`` see and do everything (admins also users and dead letters), a
  ``unit`` officer sees and acts on the projects of one responsible unit, a ``leader`` reads everything
  and changes nothing; anonymous users reach ``/public`` and the login page only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine

from warehouse import users
from warehouse.users import User

SESSION_COOKIE = "zs_session"
PRE_SESSION_COOKIE = "zs_pre"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

READ_ROLES = frozenset({"admin", "planner", "unit", "leader"})
WRITE_ROLES = frozenset({"admin", "planner", "unit"})
BUREAU_ROLES = frozenset({"admin", "planner"})
ADMIN_ROLES = frozenset({"admin"})


class LoginRequired(Exception):
    """No session on a page that needs one: the app redirects to the login page (API: 401)."""


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def sign(secret: str, value: str) -> str:
    mac = hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()
    return f"{value}.{mac}"


def unsign(secret: str, signed: str | None) -> str | None:
    if not signed or "." not in signed:
        return None
    value, _, mac = signed.rpartition(".")
    expected = hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()
    return value if hmac.compare_digest(mac, expected) else None


def pre_session_csrf(secret: str, pre_token: str) -> str:
    """The login form's CSRF token: derived from the signed pre-session cookie."""
    return hmac.new(secret.encode(), f"login:{pre_token}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """The user behind a request (``user`` None: anonymous) and how they came (session or token)."""

    user: User | None
    csrf_token: str | None = None
    via: str = "anonymous"
    session_token: str | None = None

    @property
    def role(self) -> str:
        return self.user.role if self.user else "public"

    @property
    def name(self) -> str:
        """Who made a write, as the log's ``source`` records it: ``web:<username>``."""
        return f"web:{self.user.username}" if self.user else "web:anonymous"

    @property
    def unit_scope(self) -> str | None:
        """The one responsible unit a ``unit`` officer is limited to; None: every unit."""
        return self.user.unit if self.user and self.user.role == "unit" else None

    def may_see_unit(self, unit: str | None) -> bool:
        scope = self.unit_scope
        return scope is None or unit == scope

    def has(self, roles: frozenset[str]) -> bool:
        return self.user is not None and self.user.role in roles


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def secret_of(request: Request) -> str:
    secret: str = request.app.state.signing_secret
    return secret


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def current_principal(request: Request) -> Principal:
    """The request's principal (cached on the request: several dependencies ask)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = _resolve(request)
    request.state.principal = principal
    return principal


def _resolve(request: Request) -> Principal:
    engine = engine_of(request)
    token = _bearer(request)
    if token is not None:
        with engine.connect() as conn:
            user = users.token_user(conn, sha256_hex(token))
        if user is None:
            raise HTTPException(401, "invalid or revoked API token", headers={"WWW-Authenticate": "Bearer"})
        return Principal(user, via="token")
    session_token = unsign(secret_of(request), request.cookies.get(SESSION_COOKIE))
    if session_token is None:
        return Principal(None)
    with engine.connect() as conn:
        found = users.session_user(conn, sha256_hex(session_token))
    if found is None:
        return Principal(None)
    user, csrf = found
    return Principal(user, csrf_token=csrf, via="session", session_token=session_token)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def _require(roles: frozenset[str]) -> Any:
    def dependency(request: Request, principal: CurrentPrincipal) -> Principal:
        if principal.user is None:
            if request.url.path.startswith("/api"):
                raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Bearer"})
            raise LoginRequired()
        if principal.user.role not in roles:
            raise HTTPException(403, "your role may not do this")
        return principal

    return Depends(dependency)


Reader = Annotated[Principal, _require(READ_ROLES)]
Writer = Annotated[Principal, _require(WRITE_ROLES)]
Bureau = Annotated[Principal, _require(BUREAU_ROLES)]
Admin = Annotated[Principal, _require(ADMIN_ROLES)]


async def _submitted_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette caches it: the route's Form() parameters read the same
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def verify_csrf(request: Request, principal: CurrentPrincipal) -> None:
    """Refuse a write under a session without its CSRF token (403); bearer tokens need none."""
    if principal.via == "token":
        return
    submitted = await _submitted_csrf(request)
    if principal.via == "session":
        expected = principal.csrf_token
    else:
        pre = unsign(secret_of(request), request.cookies.get(PRE_SESSION_COOKIE))
        expected = pre_session_csrf(secret_of(request), pre) if pre else None
    if not submitted or not expected or not hmac.compare_digest(submitted, expected):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again")


CsrfChecked = Depends(verify_csrf)


def require_unit(principal: Principal, unit: str | None) -> None:
    """403 unless the principal may see a project of ``unit``."""
    if not principal.may_see_unit(unit):
        raise HTTPException(403, "this project belongs to another responsible unit")
