"""进度上报 in a real browser (Playwright on Debian's Chromium): an officer reports 开工 with a PDF, a planner
approves, the dashboard's 开工 count and the project's timeline change; a rejection changes nothing; an officer
cannot report on another unit's project nor approve; a renamed .exe and an oversized file are refused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine

from events.store import Incoming
from tests.webutil import UNIT_A, UNIT_B, login
from warehouse import read_models
from warehouse.event_store import append_raw
from zhaoshang import clock

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
DASH = "/dashboard?date_from=2000-01-01"


@pytest.fixture
def two_projects(web_db: Engine) -> Engine:
    day = clock.today() - timedelta(days=120)
    records = [
        {"event_id": f"{pid}-s", "project_id": pid, "type": "signed", "occurred_at": day.isoformat(),
         "payload": {"name": f"浏览器测试{pid}", "investment_wan": 3000, "unit": unit}}
        for pid, unit in (("W-A", UNIT_A), ("W-B", UNIT_B))
    ] + [{"event_id": "W-A-l", "project_id": "W-A", "type": "landed", "occurred_at": (day + timedelta(days=10)).isoformat(), "payload": {}}]
    with web_db.begin() as conn:
        append_raw(conn, [Incoming(orjson.dumps(r), "test", None) for r in records])
    read_models.refresh(web_db)
    return web_db


def _started(page: Any, base: str) -> str:
    page.goto(base + DASH)
    return str(page.locator("[data-kpi=started]").get_attribute("data-value"))


def _report_started(page: Any, base: str, project: str, name: str, content: bytes, tmp: Path) -> None:
    page.goto(f"{base}/projects/{project}/report")
    page.select_option("select[name=kind]", "started")
    page.fill("input[name=occurred_on]", (clock.today() - timedelta(days=2)).isoformat())
    path = tmp / name
    path.write_bytes(content)
    page.set_input_files("input[name=evidence]", str(path))
    page.click("#report-form button[type=submit]")
    page.wait_for_load_state()


def test_report_approve_and_the_figures_follow(browser: Any, web_server: str, two_projects: Engine, tmp_path: Path) -> None:
    officer = browser.new_page()
    try:
        login(officer, web_server, "unit_a")
        before = _started(officer, web_server)
        officer.goto(f"{web_server}/projects/W-A")
        officer.click("#report-progress")
        officer.wait_for_url("**/projects/W-A/report")
        _report_started(officer, web_server, "W-A", "营业执照.pdf", PDF, tmp_path)
        assert "/reports" in officer.url
        assert officer.locator("tr[data-status=pending]").count() == 1
        assert officer.locator("button.approve").count() == 0  # an officer decides nothing

        planner_context = browser.new_context()
        planner = planner_context.new_page()
        login(planner, web_server, "planner1")
        planner.goto(f"{web_server}{DASH}")
        assert planner.locator("#pending-reports strong").inner_text() == "1"
        planner.goto(f"{web_server}/reports?status=pending")
        planner.click("button.approve")
        planner.wait_for_load_state()
        assert planner.locator("tr[data-status=approved]").count() == 1
        assert int(_started(planner, web_server)) == int(before) + 1
        planner.goto(f"{web_server}/projects/W-A")
        timeline = planner.locator("body").inner_text()
        assert "开工" in timeline and "web:planner1" in timeline
        planner.screenshot(path=str(Path("docs/screenshots") / "report-approved-desktop.png"))
        planner_context.close()
    finally:
        officer.close()


def test_rejected_report_changes_no_figure(browser: Any, web_server: str, two_projects: Engine, tmp_path: Path) -> None:
    context_o, context_p = browser.new_context(), browser.new_context()
    officer, planner = context_o.new_page(), context_p.new_page()
    try:
        login(officer, web_server, "unit_a")
        before = _started(officer, web_server)
        _report_started(officer, web_server, "W-A", "voucher.pdf", PDF, tmp_path)
        login(planner, web_server, "planner1")
        planner.goto(f"{web_server}/reports?status=pending")
        planner.fill("form[action$='/reject'] input[name=reason]", "凭证与项目不符")
        planner.click("button.reject")
        planner.wait_for_load_state()
        assert _started(planner, web_server) == before
        officer.goto(f"{web_server}/reports")
        assert "凭证与项目不符" in officer.locator("tr[data-status=rejected]").inner_text()
    finally:
        context_o.close()
        context_p.close()


def test_officer_refused_for_other_unit_and_bad_files(browser: Any, web_server: str, two_projects: Engine, tmp_path: Path) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        login(page, web_server, "unit_a")
        response = page.goto(f"{web_server}/projects/W-B/report")
        assert response is not None and response.status == 403
        _report_started(page, web_server, "W-A", "合同.pdf", b"MZ\x90\x00" + b"\x00" * 400, tmp_path)
        assert "by its content this file is not" in page.locator("#report-error").inner_text()
        _report_started(page, web_server, "W-A", "huge.pdf", PDF + b"0" * (10 * 1024 * 1024 + 1), tmp_path)
        assert "the limit is" in page.locator("#report-error").inner_text()
        page.set_viewport_size({"width": 375, "height": 812})
        page.screenshot(path=str(Path("docs/screenshots") / "report-phone.png"))
    finally:
        context.close()
