"""Jinja2 pages with autoescape on: data is always text (never ``|safe`` on anything from data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from web.i18n import lang_of, translator
from web.security import (
    BUREAU_ROLES,
    PRE_SESSION_COOKIE,
    Principal,
    current_principal,
    pre_session_csrf,
    secret_of,
    unsign,
)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.autoescape = True


def _json_attr(value: Any) -> Markup:
    """A value as JSON for an HTML attribute (``data-x='{{ v|json_attr }}'``): escaped for the attribute."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#39;")
    return Markup(escaped)  # noqa: S704 - escaped just above


templates.env.filters["json_attr"] = _json_attr


def nav_items(principal: Principal) -> list[tuple[str, str, str]]:
    """(path, zh, en) of the pages this principal may open, in menu order."""
    if principal.user is None:
        return [("/public", "推介地图", "Promotion map")]
    items = [
        ("/dashboard", "驾驶舱", "Dashboard"),
        ("/projects", "项目库", "Projects"),
        ("/land", "土地", "Land"),
        ("/match", "智能选址", "Site matching"),
        ("/proposals", "招商方案", "Proposals"),
        ("/bulletins", "月通报", "Bulletins"),
        ("/reports", "进度上报", "Progress reports"),
        ("/public", "推介", "Public site"),
    ]
    if principal.has(BUREAU_ROLES):
        items.append(("/ledger", "台账导入", "Ledger upload"))
        items.append(("/duplicates", "重复签约", "Duplicates"))
    if principal.user.role == "admin":
        items.append(("/deadletters", "死信", "Dead letters"))
    return items


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with what every page needs: who is asking, the language, the CSRF token, the menu."""
    principal = current_principal(request)
    lang = lang_of(request)
    csrf = principal.csrf_token
    if csrf is None:
        pre = unsign(secret_of(request), request.cookies.get(PRE_SESSION_COOKIE))
        csrf = pre_session_csrf(secret_of(request), pre) if pre else ""
    base = {
        "request": request,
        "principal": principal,
        "lang": lang,
        "t": translator(lang),
        "csrf_token": csrf,
        "nav": nav_items(principal),
        "today": request.app.state.config.today(),
    }
    return templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code)
