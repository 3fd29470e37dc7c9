"""The workspace in a real browser (Playwright driving Debian's Chromium): logging in per role."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.webutil import ROLE_USERS, login


@pytest.mark.parametrize("username", sorted(ROLE_USERS))
def test_each_role_logs_in_and_out_in_the_browser(browser: Any, web_server: str, web_db: Engine, username: str) -> None:
    page = browser.new_page()
    try:
        login(page, web_server, username)
        assert page.locator(".who .user").inner_text().startswith(username)
        page.click("form[action='/logout'] button")
        page.wait_for_url(f"{web_server}/login")
        assert page.request.get(f"{web_server}/api/me").status == 401
    finally:
        page.close()


def test_language_switch_keeps_the_page(browser: Any, web_server: str, web_db: Engine) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{web_server}/login")
        assert page.locator("h1").inner_text() == "登录"
        page.click("a.lang")
        assert page.locator("h1").inner_text() == "Log in"
    finally:
        page.close()
