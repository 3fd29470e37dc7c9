"""The pages of the workflows (重复签约, 招商方案, 月通报, 进度上报 queue) in a real browser, at desktop and
phone width, per role: they render, load nothing from outside, and a role that may not open one is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.webutil import external_requests, login

PAGES = {"/duplicates": "重复签约", "/proposals": "招商方案", "/bulletins": "月通报", "/reports": "进度上报"}
SIZES = {"desktop": (1280, 800), "phone": (375, 812)}


@pytest.mark.parametrize("size", sorted(SIZES))
def test_workflow_pages_render_for_a_planner(browser: Any, district_server: str, size: str) -> None:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    outside = external_requests(page)
    try:
        login(page, district_server, "planner1")
        for path, title in PAGES.items():
            response = page.goto(district_server + path)
            assert response is not None and response.status == 200, path
            assert title in page.locator("h1").inner_text(), path
            page.screenshot(path=str(Path("docs/screenshots") / f"{path.strip('/')}-{size}.png"))
        assert outside == []
    finally:
        context.close()


@pytest.mark.parametrize(("username", "path", "status"), [("unit_a", "/duplicates", 403), ("leader1", "/duplicates", 403), ("leader1", "/proposals", 200), ("unit_a", "/bulletins", 200)])
def test_workflow_pages_per_role(browser: Any, district_server: str, username: str, path: str, status: int) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        login(page, district_server, username)
        response = page.goto(district_server + path)
        assert response is not None and response.status == status
    finally:
        context.close()
