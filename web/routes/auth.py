"""登录 login, logout and the language switch."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from warehouse import users
from web.i18n import LANG_COOKIE, LANGS
from web.passwords import dummy_verify, verify_password
from web.security import (
    PRE_SESSION_COOKIE,
    SESSION_COOKIE,
    CsrfChecked,
    CurrentPrincipal,
    engine_of,
    new_token,
    pre_session_csrf,
    secret_of,
    sha256_hex,
    sign,
    unsign,
)
from web.templating import page

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path of this site (no scheme, no host, no ``//``): an open redirect is a phishing tool."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(request: Request, *, error: str = "", username: str = "", next_path: str = "/", status_code: int = 200) -> Response:
    secret = secret_of(request)
    pre = unsign(secret, request.cookies.get(PRE_SESSION_COOKIE))
    fresh = pre is None
    if pre is None:
        pre = new_token()
    response = page(
        request, "login.html", status_code=status_code, error=error, username=username, next_path=next_path,
        csrf_token=pre_session_csrf(secret, pre),
    )
    if fresh:
        response.set_cookie(
            PRE_SESSION_COOKIE, sign(secret, pre), httponly=True, samesite="lax",
            secure=request.app.state.config.secure_cookies, max_age=3600,
        )
    return response


@router.get("/login")
def login_form(request: Request, principal: CurrentPrincipal, next: str | None = None) -> Response:  # noqa: A002 - the query's name
    if principal.user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, next_path=_safe_next(next))


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    config = request.app.state.config
    engine = engine_of(request)
    client = _client(request)
    username = username.strip()
    with engine.begin() as conn:
        by_user, by_client = users.recent_failures(conn, username=username, client=client, window=config.throttle_window)
    if by_user >= config.throttle_per_user or by_client >= config.throttle_per_client:
        minutes = int(config.throttle_window.total_seconds() // 60)
        return _login_page(
            request, username=username, next_path=_safe_next(next_path), status_code=429,
            error=f"尝试次数过多,请 {minutes} 分钟后再试 · too many failed attempts, try again in {minutes} minutes",
        )
    with engine.connect() as conn:
        user = users.get_user(conn, username)
    if user is None:
        dummy_verify(password)
        ok = False
    else:
        ok = not user.disabled and verify_password(user.password_hash, password)
    with engine.begin() as conn:
        users.record_attempt(conn, username=username, client=client, ok=ok)
        if ok and user is not None:
            token = new_token()
            users.create_session(conn, user_id=user.user_id, token_sha256=sha256_hex(token), csrf_token=new_token(), ttl=config.session_ttl)
    if not ok or user is None:
        return _login_page(
            request, username=username, next_path=_safe_next(next_path), status_code=401,
            error="用户名或密码错误 · wrong user name or password",
        )
    response = RedirectResponse(_safe_next(next_path) if next_path != "/" else "/dashboard", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, sign(secret_of(request), token), httponly=True, samesite="lax",
        secure=config.secure_cookies, max_age=int(config.session_ttl.total_seconds()),
    )
    response.delete_cookie(PRE_SESSION_COOKIE)
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, principal: CurrentPrincipal) -> Response:
    if principal.session_token:
        with engine_of(request).begin() as conn:
            users.end_session(conn, sha256_hex(principal.session_token))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str | None = None) -> Response:  # noqa: A002
    if code not in LANGS:
        raise HTTPException(404, f"language {code!r}: zh or en")
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, code, samesite="lax", max_age=365 * 86400, secure=request.app.state.config.secure_cookies)
    return response
