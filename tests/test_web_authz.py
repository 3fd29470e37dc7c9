"""Authorization from the outside, over every route the app has (so a page added later is covered):
anonymous users reach only /public, the login and share links; a leader changes nothing; a unit
officer never meets another unit's project; hostile names are text on every page."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute

from tests.web_district import HOSTILE_NAMES, WebDistrict
from tests.webutil import client_login

OPEN_PREFIXES = ("/public", "/login", "/lang/", "/share/", "/static", "/api/public", "/api/openapi.json", "/api/docs")
# Writes a leader may make: its own session, and a match (it changes nothing; the form is CSRF-protected).
LEADER_MAY_POST = {"/login", "/logout", "/match", "/api/match"}


def _routes(client: Any) -> list[tuple[str, set[str]]]:
    """(full path, methods) of every endpoint of the app, through the routers it includes (FastAPI
    wraps each with its prefix)."""
    found: list[tuple[str, set[str]]] = []

    def walk(routes: Any, prefix: str) -> None:
        for r in routes:
            if isinstance(r, APIRoute):
                found.append((prefix + r.path, set(r.methods or ())))
            elif hasattr(r, "original_router"):
                walk(r.original_router.routes, prefix + r.include_context.prefix)

    walk(client.app.routes, "")
    return found


def _concrete(path: str, district: WebDistrict) -> str:
    values = {"project_id": district.unit_b_project, "kind": "idle", "site_id": "X", "token": "t" * 43, "code": "en"}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "1"), path)


def test_anonymous_reaches_only_public_pages(district_client: Any, web_district: WebDistrict) -> None:
    checked = 0
    for template, methods in _routes(district_client):
        path = _concrete(template, web_district)
        if path.startswith(OPEN_PREFIXES) or path == "/":
            continue
        for method in methods:
            response = district_client.request(method, path, follow_redirects=False)
            if path.startswith("/api"):
                assert response.status_code in (401, 403), (method, path, response.status_code)
            else:
                assert response.status_code in (303, 401, 403), (method, path, response.status_code)
                if response.status_code == 303:
                    assert response.headers["location"].startswith("/login")
            checked += 1
    assert checked > 30


def test_leader_cannot_write_anywhere(district_client: Any, web_district: WebDistrict) -> None:
    csrf = client_login(district_client, "leader1")
    checked = 0
    for template, methods in _routes(district_client):
        path = _concrete(template, web_district)
        if path in LEADER_MAY_POST or path.startswith(("/share/", "/lang/")):
            continue
        for method in methods - {"GET", "HEAD"}:
            response = district_client.request(method, path, headers={"X-CSRF-Token": csrf}, data={"csrf_token": csrf}, follow_redirects=False)
            assert response.status_code in (403, 422), (method, path, response.status_code, response.text[:200])
            if response.status_code == 422:  # refused by validation before the role check: still nothing written
                assert "csrf" not in response.text.lower()
            checked += 1
    assert checked > 10


def test_unit_officer_never_meets_another_units_project(district_client: Any, web_district: WebDistrict) -> None:
    client_login(district_client, "unit_a")
    other = web_district.unit_b_project
    secret = web_district.confidential_project  # of UNIT_B too
    for path in (f"/projects/{other}", f"/api/projects/{other}", f"/projects/{other}/report"):
        assert district_client.get(path).status_code == 403, path
    for path in (
        "/projects", f"/projects?q={other}", "/projects.csv", "/api/projects?limit=200", "/dashboard", "/api/kpis?by=unit",
        "/dashboard/ranking.xlsx", "/reports", "/api/reports", "/land", "/api/land/sites.geojson",
    ):
        response = district_client.get(path)
        assert response.status_code == 200, path
        body = response.content
        for pid in (other, secret):
            quoted = f'"{pid}"'.encode() in body and pid not in path  # a search echoes what was typed, nothing more
            assert not quoted and f">{pid}<".encode() not in body and f"/projects/{pid}".encode() not in body, (path, pid)


def test_hostile_names_are_text_on_every_internal_page(district_client: Any, web_district: WebDistrict) -> None:
    client_login(district_client, "planner1")
    pages = ["/dashboard", "/projects", "/projects?q=T-EVIL", "/reports", "/duplicates", "/land", "/public"]
    pages += [f"/projects/{pid}" for pid in web_district.hostile_projects]
    for path in pages:
        response = district_client.get(path)
        assert response.status_code == 200, path
        for name in HOSTILE_NAMES:
            if "<" in name or '"' in name:
                assert name not in response.text, (path, name)  # only ever escaped
        assert "<img src=x onerror" not in response.text
