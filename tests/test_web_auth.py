"""The workspace's doors: login, sessions in the warehouse, CSRF, throttling, roles, headers."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, text

from tests.webutil import PASSWORD, app_for, client_login


def _login_token(client: Any) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert match
    return match.group(1)


def test_login_sets_a_signed_httponly_session_kept_in_the_warehouse(client: Any, web_db: Engine) -> None:
    token = _login_token(client)
    response = client.post("/login", data={"username": "planner1", "password": PASSWORD, "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "zs_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    with web_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM web_session")).scalar_one() == 1
        stored = conn.execute(text("SELECT token_sha256 FROM web_session")).scalar_one()
    assert stored not in cookie  # only the hash is stored


def test_a_session_is_valid_in_another_process_of_the_same_warehouse(client: Any, database_url: Any) -> None:
    from fastapi.testclient import TestClient

    client_login(client, "leader1")
    with TestClient(app_for(database_url)) as other:
        other.cookies.update(client.cookies)
        assert "leader1" in other.get("/login", follow_redirects=True).text or other.get("/login", follow_redirects=False).status_code == 303


def test_wrong_password_and_unknown_user_say_the_same(client: Any) -> None:
    token = _login_token(client)
    wrong = client.post("/login", data={"username": "planner1", "password": "nope-nope-1", "csrf_token": token})
    unknown = client.post("/login", data={"username": "ghost", "password": "nope-nope-1", "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong user name or password" in wrong.text and "wrong user name or password" in unknown.text


def test_login_without_csrf_token_is_refused(client: Any) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "planner1", "password": PASSWORD})
    assert response.status_code == 403
    assert "CSRF" in response.text


def test_login_is_throttled_after_repeated_failures(client: Any) -> None:
    token = _login_token(client)
    for _ in range(5):
        assert client.post("/login", data={"username": "unit_a", "password": "bad-pass-00", "csrf_token": token}).status_code == 401
    blocked = client.post("/login", data={"username": "unit_a", "password": PASSWORD, "csrf_token": token})
    assert blocked.status_code == 429
    assert "too many failed attempts" in blocked.text


def test_disabled_user_loses_the_session(client: Any, web_db: Engine) -> None:
    from warehouse.users import set_disabled

    client_login(client, "planner1")
    assert client.get("/login", follow_redirects=False).status_code == 303  # signed in: login redirects
    with web_db.begin() as conn:
        set_disabled(conn, "planner1", True)
    assert client.get("/login", follow_redirects=False).status_code == 200


def test_logout_needs_csrf_and_ends_the_session(client: Any, web_db: Engine) -> None:
    csrf = client_login(client, "planner1")
    assert client.post("/logout", follow_redirects=False).status_code == 403
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    with web_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM web_session")).scalar_one() == 0


def test_open_redirect_after_login_is_refused(client: Any) -> None:
    token = _login_token(client)
    response = client.post(
        "/login", data={"username": "planner1", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/") and not response.headers["location"].startswith("//")


def test_security_headers_allow_only_own_assets(client: Any) -> None:
    response = client.get("/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "http" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert client.get("/static/vendor/htmx/htmx.min.js").status_code == 200
    assert client.get("/static/vendor/echarts/echarts.min.js").status_code == 200
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 200


def test_api_token_authenticates_and_revocation_by_disable(client: Any, web_db: Engine) -> None:
    from warehouse.users import add_api_token, get_user, set_disabled
    from web.security import new_token, sha256_hex

    token = new_token()
    with web_db.begin() as conn:
        user = get_user(conn, "leader1")
        assert user
        add_api_token(conn, user_id=user.user_id, token_sha256=sha256_hex(token), label="test")
    assert client.get("/api/openapi.json").status_code == 200
    bad = client.get("/api/me", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    ok = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json()["role"] == "leader"
    with web_db.begin() as conn:
        set_disabled(conn, "leader1", True)
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
