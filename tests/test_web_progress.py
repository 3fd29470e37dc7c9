"""进度上报: a unit officer reports with evidence, a planner approves (the event is appended) or rejects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text

from events.store import Horizon, Incoming
from tests.webutil import UNIT_A, UNIT_B, client_login
from warehouse import read_models
from warehouse.event_store import append_raw
from warehouse.replay import kpi_report
from zhaoshang import clock

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EXE = b"MZ\x90\x00" + b"\x00" * 200


def _sign(engine: Engine, project_id: str, unit: str) -> None:
    day = clock.today() - timedelta(days=90)
    wire = {
        "event_id": f"{project_id}-s", "project_id": project_id, "type": "signed", "occurred_at": day.isoformat(),
        "payload": {"name": f"项目{project_id}", "investment_wan": 5000, "unit": unit},
    }
    with engine.begin() as conn:
        assert append_raw(conn, [Incoming(orjson.dumps(wire), "test", None)]).accepted == 1
    read_models.refresh(engine)


@pytest.fixture
def projects(web_db: Engine) -> Engine:
    _sign(web_db, "P-A", UNIT_A)
    _sign(web_db, "P-B", UNIT_B)
    return web_db


def _report(client: Any, csrf: str, project: str, files: list[tuple[str, bytes, str]], kind: str = "started") -> Any:
    return client.post(
        f"/projects/{project}/report",
        data={"csrf_token": csrf, "kind": kind, "occurred_on": (clock.today() - timedelta(days=3)).isoformat(), "note": "已开工"},
        files=[("evidence", f) for f in files],
        follow_redirects=False,
    )


def _started(engine: Engine) -> int:
    with engine.connect() as conn:
        today = clock.today()
        report = kpi_report(conn, date_from=today - timedelta(days=365), date_to=today)
    return int(report["started"])


def test_officer_reports_started_with_a_pdf_and_planner_approves(client: Any, projects: Engine) -> None:
    csrf = client_login(client, "unit_a")
    before = _started(projects)
    response = _report(client, csrf, "P-A", [("营业执照.pdf", PDF, "application/pdf")])
    assert response.status_code == 303, response.text
    queue = client.get("/reports").text
    assert "P-A" in queue and "待审核" in queue
    assert _started(projects) == before  # a claim is not a fact

    client.cookies.clear()
    csrf = client_login(client, "planner1")
    report_id = client.get("/api/reports?status=pending").json()[0]["report_id"]
    assert client.post(f"/reports/{report_id}/approve", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert _started(projects) == before + 1
    with projects.connect() as conn:
        row = conn.execute(text("SELECT source, payload FROM event_log WHERE type = 'started' AND project_id = 'P-A'")).one()
    assert row.source == "web:planner1"
    assert row.payload["recorded_by"] == "web:unit_a" and row.payload["approved_by"] == "web:planner1"
    assert len(row.payload["evidence_sha256"]) == 1 and len(row.payload["evidence_sha256"][0]) == 64
    with projects.connect() as conn:
        history = read_models.project_at(conn, "P-A", Horizon(clock.today()))
    assert history.state is not None and history.state.started_on is not None


def test_rejected_report_changes_no_figure_and_the_officer_sees_why(client: Any, projects: Engine) -> None:
    csrf = client_login(client, "unit_a")
    _report(client, csrf, "P-A", [("voucher.png", PNG, "image/png")], kind="started")
    client.cookies.clear()
    csrf = client_login(client, "planner1")
    report_id = client.get("/api/reports").json()[0]["report_id"]
    before = _started(projects)
    refused = client.post(f"/reports/{report_id}/reject", data={"csrf_token": csrf, "reason": "凭证不清晰 <b>重传</b>"}, follow_redirects=False)
    assert refused.status_code == 303
    assert _started(projects) == before
    client.cookies.clear()
    client_login(client, "unit_a")
    queue = client.get("/reports").text
    assert "凭证不清晰 &lt;b&gt;重传&lt;/b&gt;" in queue


def test_officer_cannot_report_on_another_units_project_nor_decide(client: Any, projects: Engine) -> None:
    csrf = client_login(client, "unit_a")
    assert client.get("/projects/P-B/report").status_code == 403
    assert _report(client, csrf, "P-B", [("a.pdf", PDF, "application/pdf")]).status_code == 403
    refused = _report(client, csrf, "P-B", [("a.pdf", EXE, "application/pdf")])  # a bad file: still no look at P-B
    assert refused.status_code == 403 and "项目P-B" not in refused.text
    _report(client, csrf, "P-A", [("a.pdf", PDF, "application/pdf")])
    report_id = client.get("/api/reports").json()[0]["report_id"]
    assert client.post(f"/reports/{report_id}/approve", data={"csrf_token": csrf}).status_code == 403
    assert client.post(f"/api/reports/{report_id}/decision", json={"approve": True}, headers={"X-CSRF-Token": csrf}).status_code == 403
    # and never sees another unit's reports
    client.cookies.clear()
    csrf_b = client_login(client, "unit_b")
    _report(client, csrf_b, "P-B", [("b.pdf", PDF, "application/pdf")])
    assert {r["project_id"] for r in client.get("/api/reports").json()} == {"P-B"}


def test_renamed_exe_and_oversized_files_are_refused_with_a_clear_message(client: Any, projects: Engine) -> None:
    csrf = client_login(client, "unit_a")
    exe = _report(client, csrf, "P-A", [("合同.pdf", EXE, "application/pdf")])
    assert exe.status_code == 415 and "合同.pdf" in exe.text and "by its content this file is not PDF" in exe.text
    big = _report(client, csrf, "P-A", [("big.pdf", PDF + b"0" * (10 * 1024 * 1024), "application/pdf")])
    assert big.status_code == 413 and "big.pdf" in big.text and "the limit is" in big.text
    with projects.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM progress_report")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM web_upload")).scalar_one() == 0


def test_leader_reads_but_cannot_report_or_decide(client: Any, projects: Engine) -> None:
    csrf = client_login(client, "leader1")
    assert client.get("/reports").status_code == 200
    assert _report(client, csrf, "P-A", [("a.pdf", PDF, "application/pdf")]).status_code == 403


def test_no_one_approves_their_own_report(client: Any, projects: Engine) -> None:
    csrf = client_login(client, "planner1")
    _report(client, csrf, "P-A", [("a.pdf", PDF, "application/pdf")])
    report_id = client.get("/api/reports").json()[0]["report_id"]
    assert client.post(f"/reports/{report_id}/approve", data={"csrf_token": csrf}).status_code == 409


def test_report_without_csrf_is_refused(client: Any, projects: Engine) -> None:
    client_login(client, "unit_a")
    response = _report(client, "wrong", "P-A", [("a.pdf", PDF, "application/pdf")])
    assert response.status_code == 403


def test_api_report_and_decision_with_bearer_token(client: Any, projects: Engine) -> None:
    from warehouse.users import add_api_token, get_user
    from web.security import new_token, sha256_hex

    tokens = {}
    with projects.begin() as conn:
        for name in ("unit_a", "planner1"):
            user = get_user(conn, name)
            assert user
            tokens[name] = new_token()
            add_api_token(conn, user_id=user.user_id, token_sha256=sha256_hex(tokens[name]), label="test")
    made = client.post(
        "/api/projects/P-A/reports",
        data={"kind": "funds_arrived", "occurred_on": clock.today().isoformat(), "amount_wan": "300"},
        files=[("evidence", ("bank.jpg", b"\xff\xd8\xff\xe0" + b"0" * 50, "image/jpeg"))],
        headers={"Authorization": f"Bearer {tokens['unit_a']}"},
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["status"] == "pending" and body["evidence"][0]["content_type"] == "image/jpeg"
    decided = client.post(
        f"/api/reports/{body['report_id']}/decision", json={"approve": True}, headers={"Authorization": f"Bearer {tokens['planner1']}"}
    )
    assert decided.status_code == 200 and decided.json()["event_id"] == f"progress-report-{body['report_id']}"
    again = client.post(
        f"/api/reports/{body['report_id']}/decision", json={"approve": True}, headers={"Authorization": f"Bearer {tokens['planner1']}"}
    )
    assert again.status_code == 409
