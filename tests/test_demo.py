"""The README's first command, end to end on a small district: what CI proves about `./run demo`.

The expectations derive from the product's clock (``zhaoshang.clock``), so the test holds on any
day and under any pinned ``ZHAOSHANG_TODAY``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from time import sleep

import openpyxl
import pytest
from sqlalchemy import Engine, text

from events.calendar import add_months, months_between, previous_month_end
from events.model import SHANGHAI
from warehouse.db import DAGSTER_SCHEMA
from zhaoshang import clock

BIN = Path(sys.executable).parent


def _run_demo(out: Path, db_url_str: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN / "zhaoshang"), "demo", "--out", str(out), "--projects", "60", "--no-serve", "--database-url", db_url_str, *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _dagster_runs(db: Engine) -> int:
    """Successful Dagster runs recorded in the warehouse's PostgreSQL (0 before Dagster's first)."""
    with db.connect() as conn:
        if conn.execute(text(f"SELECT to_regclass('{DAGSTER_SCHEMA}.runs')")).scalar() is None:
            return 0
        return int(conn.execute(text(f"SELECT count(*) FROM {DAGSTER_SCHEMA}.runs WHERE status = 'SUCCESS'")).scalar_one())


def _log(db: Engine) -> dict[str, str]:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT event_id, content_hash FROM event_log WHERE source LIKE 'zhaoshang-demo-%'")).all()
    return {r.event_id: r.content_hash for r in rows}


@pytest.mark.slow
def test_demo_end_to_end_and_again(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"), "COLUMNS": "200"}
    today = clock.today()
    demo_end = previous_month_end(today)
    runs_before = _dagster_runs(db)
    first = _run_demo(out, db_url_str, env)
    # The asset build's runs are in PostgreSQL (dagster-postgres), not in SQLite under DAGSTER_HOME.
    assert _dagster_runs(db) > runs_before
    assert not (tmp_path / "dagster_home" / "history").exists()

    report_bytes = (out / "kpi_report.json").read_bytes()
    overall = json.loads(report_bytes)["overall"]
    events = [json.loads(line) for line in (out / "events.jsonl").open(encoding="utf-8")]
    known_until = datetime.combine(demo_end, time(23, 59, 59), tzinfo=SHANGHAI)
    assert max(date.fromisoformat(e["occurred_at"][:10]) for e in events) <= demo_end
    assert max(datetime.fromisoformat(e["recorded_at"]) for e in events) <= known_until
    with db.connect() as conn:
        signed_in_log = conn.execute(
            text("SELECT count(DISTINCT project_id) FROM event_log WHERE type = 'signed' AND occurred_at < :end"),
            {"end": known_until + timedelta(seconds=1)},
        ).scalar_one()
        parcels = conn.execute(text("SELECT count(*) FROM land_inventory WHERE kind = 'idle' AND valid_to IS NULL")).scalar_one()
        months = conn.execute(text("SELECT count(DISTINCT month_end) FROM mart_project_state")).scalar_one()
        last_month = conn.execute(text("SELECT max(month_end) FROM mart_project_state")).scalar_one()
        first_day = conn.execute(text("SELECT min((occurred_at AT TIME ZONE 'Asia/Shanghai')::date) FROM event_log")).scalar_one()
        letters = conn.execute(text("SELECT count(*) FROM dead_letter")).scalar_one()
    assert len(_log(db)) == len(events)  # every streamed event arrived once (the ledgers add their own)
    assert letters == 0
    assert overall["signed"] == signed_in_log  # the generated projects plus the ledgers' own
    assert overall["signed"] >= 20 and overall["landed"] <= overall["signed"]
    assert parcels >= 300
    # One replay per month end, from the first event's month to the last complete month by the clock.
    assert last_month == demo_end
    assert months == months_between(first_day, demo_end)

    public = (out / "maps" / "public" / "promotion.html").read_text(encoding="utf-8")
    assert "招商推介地图" in public and "<script src=\"http" not in public
    assert f"数据截至 {today.isoformat()}" in (out / "maps" / "public" / "index.html").read_text(encoding="utf-8")
    assert (out / "maps" / "internal" / "pipeline.html").is_file()
    assert (out / "bulletins" / f"{demo_end:%Y-%m}.md").is_file()
    assert len(list((out / "matches").glob("*.json"))) == 4
    wb = openpyxl.load_workbook(out / "kpi_by_unit.xlsx")
    assert wb.active is not None and "责任单位" in [c.value for c in wb.active[2]]
    assert str(out / "maps" / "public" / "promotion.html") in first.stdout

    _check_demo_logins(db_url_str, out, first.stdout)

    # Again with the same seed and clock, ending by serving as `./run demo` does: the warehouse gains
    # nothing, the report is byte-identical, and the workspace answers with the new logins.
    log_before = _log(db)
    _serve_demo_once(out, db_url_str, env)
    assert _log(db) == log_before
    assert (out / "kpi_report.json").read_bytes() == report_bytes

    # Two months later: the history extends by the months since; nothing earlier changes or doubles.
    later = add_months(today, 2)
    _run_demo(out, db_url_str, env, "--today", later.isoformat())
    log_later = _log(db)
    assert log_before.items() <= log_later.items() and len(log_later) > len(log_before)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM dead_letter")).scalar_one() == 0
        assert conn.execute(text("SELECT max(month_end) FROM mart_project_state")).scalar_one() == previous_month_end(later)
    assert (out / "bulletins" / f"{previous_month_end(later):%Y-%m}.md").is_file()


def _check_demo_logins(db_url_str: str, out: Path, stdout: str) -> None:
    """One login per role, printed and written; each opens a session in the workspace."""
    from fastapi.testclient import TestClient

    from tests.webutil import app_for, client_login

    logins = [line.split("\t") for line in (out / "demo_logins.txt").read_text(encoding="utf-8").splitlines()]
    assert sorted(role for role, *_ in logins) == ["admin", "leader", "planner", "unit"]
    for role, username, password, _unit in logins:
        assert username in stdout and password in stdout
        with TestClient(app_for(db_url_str)) as client:
            client_login(client, username, password)
            assert client.get("/api/me").json()["role"] == role


def _serve_demo_once(out: Path, db_url_str: str, env: dict[str, str]) -> None:
    from tests.webutil import free_port

    port = free_port()
    cmd = [str(BIN / "zhaoshang"), "demo", "--out", str(out), "--projects", "60", "--port", str(port), "--database-url", db_url_str]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the demo builds, prints the logins, then the workspace's URL
            if f"http://127.0.0.1:{port}/" in line:
                break
        else:
            raise AssertionError(f"the demo ended without serving: {proc.stderr.read()[-3000:] if proc.stderr else ''}")
        import httpx

        for _ in range(100):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                sleep(0.2)
        assert response.status_code == 200 and "登录" in response.text
        logins = (out / "demo_logins.txt").read_text(encoding="utf-8")
        assert "planner" in logins
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_demo_refuses_a_clock_before_its_history(db_url_str: str, tmp_path: Path) -> None:
    cmd = [str(BIN / "zhaoshang"), "demo", "--out", str(tmp_path), "--today", "2019-01-15", "--database-url", db_url_str]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "2019-01-01" in done.stderr and "Traceback" not in done.stderr
