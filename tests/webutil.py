"""Workspace test helpers: the users of each role, a live server, a real browser (Debian's Chromium)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from maps.browser import BASE_FLAGS, chromium_path
from warehouse.db import make_engine
from warehouse.users import add_user
from web.app import create_app
from web.config import WebConfig
from web.passwords import hash_password

PASSWORD = "test-pass-123"
UNIT_A = "夏云工业园区管委会"
UNIT_B = "安平街道"

# username -> (role, unit)
ROLE_USERS: dict[str, tuple[str, str | None]] = {
    "admin1": ("admin", None),
    "planner1": ("planner", None),
    "unit_a": ("unit", UNIT_A),
    "unit_b": ("unit", UNIT_B),
    "leader1": ("leader", None),
}

_HASH: list[str] = []


def password_hash() -> str:
    if not _HASH:  # Argon2 is deliberately slow: hash the shared test password once
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


def add_role_users(engine: Engine) -> None:
    """The users of :data:`ROLE_USERS` (password :data:`PASSWORD`), replacing any of the same name."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM web_user WHERE username = ANY(:u)"), {"u": list(ROLE_USERS)})
        for name, (role, unit) in ROLE_USERS.items():
            add_user(conn, username=name, password_hash=password_hash(), role=role, unit=unit, display_name=name, created_by="test")


def web_config(today: date | None = None, **overrides: Any) -> WebConfig:
    from zhaoshang import clock

    return WebConfig(today=(lambda: today) if today else clock.today, **overrides)


def app_for(database_url: URL, **overrides: Any) -> Any:
    return create_app(web_config(**overrides), make_engine(database_url))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(app: Any) -> LiveServer:
    """The app under uvicorn on a free loopback port, in a thread of the test process."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the workspace did not start")
        time.sleep(0.05)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread)


def launch_browser() -> Iterator[Any]:
    """Playwright driving Debian's Chromium (no browser download). Pages load nothing but the
    app's own assets: the Content Security Policy says so, and :func:`external_requests` checks it."""
    from playwright.sync_api import sync_playwright

    flags = [f for f in BASE_FLAGS if f != "--headless"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=flags)
        try:
            yield browser
        finally:
            browser.close()


def login(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()


def client_login(client: Any, username: str, password: str = PASSWORD) -> str:
    """Log a ``TestClient`` in; returns the session's CSRF token (for writes)."""
    import re

    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, "the login page has a CSRF token"
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token.group(1)}, follow_redirects=False)
    assert response.status_code == 303, response.text
    page = client.get("/dashboard")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "a signed-in page carries the session's CSRF token"
    return match.group(1)


def external_requests(page: Any) -> list[str]:
    """A list that fills with every request of ``page`` leaving loopback (should stay empty)."""
    seen: list[str] = []
    page.on("request", lambda req: seen.append(req.url) if not req.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    return seen
