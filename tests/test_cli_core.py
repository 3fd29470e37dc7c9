"""The core commands' JSON (what scripts and other issues rely on), the workbook, database URLs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from typer.testing import CliRunner

from events.kpis import KPI_KEYS
from tests.kpi_district import BY_UNIT_GROUPS, COHORT_2024, DISTRICT, FLOW_2024, LATE, NOVEMBER, PUBLISHED
from warehouse.db import drop_database, make_engine
from zhaoshang.cli import app

runner = CliRunner()

ROW_KEYS = [
    "project_id", "name", "stage", "signed_on", "landed_on", "started_on", "produced_on", "cancelled_on",
    "investment_wan", "funds_wan", "funds_usd_wan", "unit", "industry", "channel", "investor", "confidential",
    "stalled", "anomalies", "merged_into",
]
META_KEYS = ["from", "to", "as_of", "known_at", "mode"]


def zs(url: str, *args: str, code: int = 0) -> Any:
    """Run ``zhaoshang ARGS --database-url URL``; parse stdout as JSON when ``--json`` was given."""
    result = runner.invoke(app, [*args, "--database-url", url])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    # Exit 1 (something rejected) still prints the counts: only a usage error (2) prints no JSON.
    return json.loads(result.stdout) if "--json" in args and code != 2 else result


def write(path: Path, records: list[Any]) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records), encoding="utf-8")
    return str(path)


def test_events_load_json_and_reload(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    path = write(tmp_path / "district.jsonl", [*DISTRICT, "not json", '{"event_id": "bad"}'])
    # Exit 1: two lines rejected (README, exit codes).
    first = zs(db_url_str, "events", "load", path, "--source", "平坝区台账", "--json", code=1)
    assert first == {"read": 28, "accepted": 26, "duplicates": 0, "rejected": 2}
    assert list(first) == ["read", "accepted", "duplicates", "rejected"]
    again = zs(db_url_str, "events", "load", path, "--json", "--batch-size", "5", code=1)
    assert again == {"read": 28, "accepted": 0, "duplicates": 26, "rejected": 2}
    with db.connect() as conn:
        assert conn.execute(text("SELECT DISTINCT source FROM event_log")).scalars().all() == ["平坝区台账"]
    human = zs(db_url_str, "events", "load", path, code=1)
    assert "read 28" in human.stderr and "accepted 0" in human.stderr and "rejected 2" in human.stderr


def test_replay_json_rows(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    zs(db_url_str, "events", "load", write(tmp_path / "d.jsonl", DISTRICT), "--json")
    rows = zs(db_url_str, "replay", "--as-of", "2024-12-31", "--json")
    assert [r["project_id"] for r in rows] == ["P1", "P2", "P3", "P4", "P5", "P6", "P7"]
    assert all(list(r) == ROW_KEYS for r in rows)
    p2 = rows[1]
    assert p2 == {
        "project_id": "P2", "name": "P2项目", "stage": "landed", "signed_on": "2024-02-15", "landed_on": "2024-05-10",
        "started_on": None, "produced_on": None, "cancelled_on": None, "investment_wan": 5000.0, "funds_wan": 1000.0,
        "funds_usd_wan": 100.0, "unit": "白云镇", "industry": "装备制造", "channel": "长三角驻点招商", "investor": None,
        "confidential": False, "stalled": True, "anomalies": [], "merged_into": None,
    }
    assert (rows[2]["stage"], rows[2]["cancelled_on"]) == ("cancelled", "2024-08-01")
    early = zs(db_url_str, "replay", "--as-of", "2023-12-31", "--json")
    assert [(r["project_id"], r["stage"]) for r in early] == [("P6", "started"), ("P7", "signed")]
    table = zs(db_url_str, "replay", "--as-of", "2024-12-31")
    assert "P2项目" in table.stdout and "停滞" in table.stdout


def test_report_kpis_json_keys_and_values(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    zs(db_url_str, "events", "load", write(tmp_path / "d.jsonl", DISTRICT), "--json")
    cohort = zs(db_url_str, "report", "kpis", "--from", "2024-01-01", "--to", "2024-12-31", "--json")
    assert list(cohort) == META_KEYS + list(KPI_KEYS)
    assert cohort == {"from": "2024-01-01", "to": "2024-12-31", "as_of": "2024-12-31", "known_at": None, "mode": "cohort", **COHORT_2024}
    flow = zs(db_url_str, "report", "kpis", "--from", "2024-01-01", "--to", "2024-12-31", "--mode", "flow", "--json")
    assert {k: flow[k] for k in KPI_KEYS} == FLOW_2024 and flow["mode"] == "flow"
    by = zs(db_url_str, "report", "kpis", "--from", "2024-01-01", "--to", "2024-12-31", "--by", "unit", "--json")
    assert list(by) == [*META_KEYS, "by", "groups", "total"]
    assert by["groups"] == BY_UNIT_GROUPS and by["total"] == COHORT_2024 and by["by"] == "unit"
    assert all(list(g) == ["key", "rank", *KPI_KEYS] for g in by["groups"])
    later = zs(db_url_str, "report", "kpis", "--from", "2024-01-01", "--to", "2024-12-31", "--as-of", "2025-01-31", "--json")
    assert (later["as_of"], later["funds_wan"]) == ("2025-01-31", 16500.0)
    table = zs(db_url_str, "report", "kpis", "--from", "2024-01-01", "--to", "2024-12-31", "--by", "unit", "--lang", "both")
    assert "落地率" in table.stdout and "夏云工业园区管委会" in table.stdout and "80.0%" in table.stdout


def test_report_kpis_known_at_reproduces_the_bulletin(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    args = ["report", "kpis", "--from", "2024-11-01", "--to", "2024-11-30", "--json"]
    zs(db_url_str, "events", "load", write(tmp_path / "nov.jsonl", NOVEMBER), "--json")
    published = zs(db_url_str, *args, "--known-at", "2024-11-30")
    zs(db_url_str, "events", "load", write(tmp_path / "late.jsonl", LATE), "--json")
    assert zs(db_url_str, *args, "--known-at", "2024-11-30") == published
    assert {k: published[k] for k in PUBLISHED} == PUBLISHED
    corrected = zs(db_url_str, *args)
    assert (corrected["signed"], corrected["landed"], corrected["funds_wan"]) == (3, 0, 400.0)


def test_xlsx_is_a_readable_workbook(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    zs(db_url_str, "events", "load", write(tmp_path / "d.jsonl", DISTRICT), "--json")
    book = tmp_path / "季排名.xlsx"
    zs(db_url_str, "report", "kpis", "--from", "2024-01-01", "--to", "2024-12-31", "--by", "unit", "--xlsx", str(book), "--json")
    ws = load_workbook(book).active
    assert ws is not None
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert rows[0][0] == "招商引资项目推进情况 2024-01-01 ~ 2024-12-31，截至 2024-12-31"
    assert rows[1][:4] == ["排名", "责任单位", "签约项目", "落地项目"]
    assert rows[2] == ["rank", "unit", *KPI_KEYS]
    assert rows[3] == [1, "夏云工业园区管委会", 1, 1, 1, 0, 0, 1, 1, 0, 30000, 6000, 0]
    assert rows[5][:2] == [3, "安平街道"]
    assert rows[6] == [None, "合计", 5, 4, 2, 1, 1, 0.8, 0.4, 0.2, 73000, 12500, 1]
    flat = tmp_path / "flat.xlsx"
    zs(db_url_str, "report", "kpis", "--from", "2024-01-01", "--to", "2024-12-31", "--xlsx", str(flat))
    frows = [list(r) for r in load_workbook(flat).active.iter_rows(values_only=True)]  # type: ignore[union-attr]
    assert frows[2] == list(KPI_KEYS) and frows[3] == [5, 4, 2, 1, 1, 0.8, 0.4, 0.2, 73000, 12500, 1]


def test_xlsx_into_a_missing_directory_fails_plainly(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    result = zs(db_url_str, "report", "kpis", "--from", "2024-01-01", "--to", "2024-12-31", "--xlsx", str(tmp_path / "no" / "x.xlsx"), code=2)
    assert "cannot write" in result.stderr


def test_retry_with_a_fix_saved_with_a_byte_order_mark(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    bad = {"event_id": "b1", "project_id": "B", "type": "funds_arrived", "occurred_at": "2024-03-01", "payload": {}}
    zs(db_url_str, "events", "load", write(tmp_path / "in.jsonl", [bad]), "--json", code=1)
    fix = tmp_path / "fix.json"
    fix.write_bytes(b"\xef\xbb\xbf" + json.dumps({**bad, "payload": {"amount_wan": 5}}).encode())
    out = zs(db_url_str, "deadletters", "retry", "--id", "1", "--replace-with", str(fix), "--json")
    assert (out["accepted"], out["still_failing"]) == (1, 0)


def test_deadletters_list_and_retry_with_a_fix(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    bad = {"event_id": "d1", "project_id": "D", "type": "signed", "occurred_at": "2024-03-01", "payload": {"investment_wan": 800}}
    zs(db_url_str, "events", "load", write(tmp_path / "in.jsonl", [bad, "[1]"]), "--json", code=1)
    listed = zs(db_url_str, "deadletters", "list", "--json")
    assert [(d["id"], d["source_position"], d["status"]) for d in listed] == [(1, "line 1", "open"), (2, "line 2", "open")]
    assert "field 'payload.name': is required" in listed[0]["reason"]
    fix = tmp_path / "fix.json"
    fix.write_text(json.dumps({**bad, "payload": {"name": "补录项目", "investment_wan": 800}}, ensure_ascii=False), encoding="utf-8")
    out = zs(db_url_str, "deadletters", "retry", "--id", "1", "--replace-with", str(fix), "--json")
    assert out == {"retried": 1, "accepted": 1, "duplicates": 0, "still_failing": 0, "failures": []}
    assert [d["id"] for d in zs(db_url_str, "deadletters", "list", "--json")] == [2]
    everything = zs(db_url_str, "deadletters", "list", "--all", "--json")
    assert [(d["id"], d["status"], d["resolution"]) for d in everything] == [(1, "resolved", "accepted"), (2, "open", None)]
    rows = zs(db_url_str, "replay", "--as-of", "2024-12-31", "--json")
    assert [(r["project_id"], r["name"]) for r in rows] == [("D", "补录项目")]
    again = zs(db_url_str, "deadletters", "retry", "--json", code=1)  # one still failing
    assert (again["retried"], again["still_failing"], again["failures"][0]["id"]) == (1, 1, 2)
    result = zs(db_url_str, "deadletters", "retry", "--id", "1", "--json", code=2)
    assert "no open dead letter with id 1" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "--as-of", "2024-13-01"], "--as-of expects a date"),
        (["report", "kpis", "--from", "2024-12-31", "--to", "2024-01-01"], "is after --to"),
        # --mode stock, --by county: refused by typer itself now (tests/test_cli_conventions.py).
        (["report", "kpis", "--from", "2024-01-01", "--to", "2024-12-31", "--known-at", "soon"], "--known-at"),
        (["events", "load", "/nonexistent/x.jsonl"], "no such file"),
    ],
)
def test_bad_arguments_fail_plainly(db_url_str: str, args: list[str], message: str) -> None:
    result = zs(db_url_str, *args, code=2)
    assert message in result.stderr


def libpq_forms(url: URL) -> list[str]:
    db = url.database
    return [
        f"postgresql:///{db}?host=/var/run/postgresql",
        f"postgres:///{db}?host=/var/run/postgresql",
        f"postgresql://127.0.0.1:5432/{db}",
    ]


def test_libpq_urls_work(db: Engine, database_url: URL, tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", DISTRICT[:6])
    counts = [zs(u, "events", "load", path, "--json") for u in libpq_forms(database_url)]
    assert counts[0] == {"read": 6, "accepted": 6, "duplicates": 0, "rejected": 0}
    assert counts[1] == counts[2] == {"read": 6, "accepted": 0, "duplicates": 6, "rejected": 0}
    rows = zs(libpq_forms(database_url)[2], "replay", "--as-of", "2024-12-31", "--json")
    assert [r["project_id"] for r in rows] == ["P1"]


def test_setup_creates_a_database_that_does_not_exist_yet(database_url: URL, tmp_path: Path) -> None:
    fresh = database_url.set(database=f"{database_url.database}_new_{uuid.uuid4().hex[:6]}")
    libpq = f"postgresql:///{fresh.database}?host=/var/run/postgresql"
    try:
        # Only set-up creates and migrates (tests/test_schema.py: other commands say to run it).
        zs(libpq, "setup")
        counts = zs(libpq, "events", "load", write(tmp_path / "d.jsonl", DISTRICT), "--json")
        assert counts == {"read": 26, "accepted": 26, "duplicates": 0, "rejected": 0}
        engine = make_engine(fresh)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM event_log")).scalar() == 26
                assert conn.execute(text("SELECT extname FROM pg_extension WHERE extname = 'postgis'")).scalar() == "postgis"
        finally:
            engine.dispose()
    finally:
        drop_database(fresh)


def test_not_a_postgresql_url(tmp_path: Path) -> None:
    result = zs("sqlite:///x.db", "replay", "--as-of", "2024-12-31", code=2)
    assert "not a PostgreSQL URL" in result.stderr
