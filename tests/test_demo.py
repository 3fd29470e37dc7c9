"""The README's first command, end to end on a small district: what CI proves about `./run demo`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, text

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_demo_end_to_end_and_again(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"), "COLUMNS": "200"}
    cmd = [str(BIN / "zhaoshang"), "demo", "--out", str(out), "--projects", "60", "--database-url", db_url_str]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-4000:]

    report = json.loads((out / "kpi_report.json").read_text(encoding="utf-8"))
    overall = report["overall"]
    n_events = sum(1 for _ in (out / "events.jsonl").open(encoding="utf-8"))
    with db.connect() as conn:
        logged = conn.execute(text("SELECT count(*) FROM event_log WHERE source LIKE 'zhaoshang-demo-%'")).scalar_one()
        signed_in_log = conn.execute(
            text("SELECT count(DISTINCT project_id) FROM event_log WHERE type = 'signed' AND occurred_at < '2026-11-01T00:00:00+08:00'")
        ).scalar_one()
        parcels = conn.execute(text("SELECT count(*) FROM land_inventory WHERE kind = 'idle' AND valid_to IS NULL")).scalar_one()
        months = conn.execute(text("SELECT count(DISTINCT month_end) FROM mart_project_state")).scalar_one()
        first_day = conn.execute(text("SELECT min((occurred_at AT TIME ZONE 'Asia/Shanghai')::date) FROM event_log")).scalar_one()
    assert logged == n_events  # every streamed event arrived once (the ledgers add their own)
    assert overall["signed"] == signed_in_log  # 60 generated projects plus the ledgers' own
    assert overall["signed"] >= 60 and overall["landed"] <= overall["signed"]
    assert parcels >= 300
    assert months == (2026 - first_day.year) * 12 + 10 - first_day.month + 1  # one replay per month end up to 2026-10

    public = (out / "maps" / "public" / "promotion.html").read_text(encoding="utf-8")
    assert "招商推介地图" in public and "<script src=\"http" not in public
    assert (out / "maps" / "internal" / "pipeline.html").is_file()
    assert (out / "bulletins" / "2026-10.md").is_file()
    assert len(list((out / "matches").glob("*.json"))) == 4
    wb = openpyxl.load_workbook(out / "kpi_by_unit.xlsx")
    assert wb.active is not None and "责任单位" in [c.value for c in wb.active[2]]
    assert str(out / "maps" / "public" / "promotion.html") in first.stdout

    # Again: deterministic, so the warehouse gains nothing and the KPIs are the same.
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-4000:]
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_log WHERE source LIKE 'zhaoshang-demo-%'")).scalar_one() == n_events
    again = json.loads((out / "kpi_report.json").read_text(encoding="utf-8"))
    assert again["overall"] == overall
