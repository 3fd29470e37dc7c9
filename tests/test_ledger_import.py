"""Ledger import against the real warehouse, through the library and the CLI."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from demo.ledgers import import_demo_ledgers
from events.model import local_date
from ingestion.ledger_events import LedgerOrderError
from ingestion.ledger_import import import_ledger
from tests.ledger_fixtures import GBK_CSV, MONTH1_TOTALS, write_month1, write_month2
from warehouse.replay import Horizon, kpi_report, parse_known_at, project_states
from zhaoshang.cli import app

KPI_FIELDS = ("signed", "landed", "started", "produced", "cancelled", "investment_wan", "funds_wan")


def _count(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM event_log")).scalar_one())


def test_import_matches_the_ledger_totals_and_reimport_adds_nothing(db: Engine, tmp_path: Path) -> None:
    path = write_month1(tmp_path)
    first = import_ledger(db, path)
    assert first.as_of == date(2018, 3, 31) and first.as_of_from == "title"
    assert first.append is not None and first.append.accepted == 10 and first.append.rejected == 0
    assert first.reconcile is not None and first.reconcile["mismatches"] == []
    assert first.totals_row_mismatches() == []
    with db.connect() as conn:
        report = kpi_report(conn, date_from=date(2018, 1, 1), date_to=date(2018, 3, 31))
        recorded = conn.execute(text("SELECT DISTINCT recorded_at FROM event_log")).scalars().all()
        sources = conn.execute(text("SELECT DISTINCT source FROM event_log")).scalars().all()
        position = conn.execute(text("SELECT source_position FROM event_log WHERE project_id = 'PB-002' LIMIT 1")).scalar_one()
    assert {k: report[k] for k in KPI_FIELDS} == MONTH1_TOTALS
    assert [local_date(r) for r in recorded] == [date(2018, 3, 31)]
    assert sources == ["ledger:平坝区招商引资项目台账"]
    assert position == "台账_2018-03.xlsx[项目台账] row 4 as of 2018-03-31"
    before = _count(db)
    again = import_ledger(db, path)
    assert again.plan.events == [] and again.append is not None and again.append.accepted == 0
    assert _count(db) == before


def test_second_month_corrects_and_known_at_reproduces_month_one(db: Engine, tmp_path: Path) -> None:
    import_ledger(db, write_month1(tmp_path))
    n1 = _count(db)
    second = import_ledger(db, write_month2(tmp_path))
    assert second.as_of == date(2018, 4, 30)
    assert second.plan.events_by_type() == {"funds_arrived": 1, "retracted": 1, "started": 1}
    assert second.append is not None and second.append.accepted == 3
    assert _count(db) == n1 + 3
    assert second.reconcile is not None and second.reconcile["mismatches"] == []
    with db.connect() as conn:
        now = kpi_report(conn, date_from=date(2018, 1, 1), date_to=date(2018, 4, 30))
        then = kpi_report(conn, date_from=date(2018, 1, 1), date_to=date(2018, 4, 30), known_at=parse_known_at("2018-03-31"))
        state_now = project_states(conn, Horizon(date(2018, 4, 30)))["PB-001"]
        state_then = project_states(conn, Horizon(date(2018, 4, 30), parse_known_at("2018-03-31")))["PB-001"]
    assert now["funds_wan"] == 4700.0
    assert {k: then[k] for k in KPI_FIELDS} == MONTH1_TOTALS
    assert (state_now.started_on, state_then.started_on) == (date(2018, 3, 7), date(2018, 3, 5))
    # month 1 once more, after month 2: refused rather than undoing month 2
    with pytest.raises(LedgerOrderError):
        import_ledger(db, write_month1(tmp_path))


def test_cli_import_gbk_csv_json(db_url_str: str, db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_bytes(GBK_CSV.encode("gbk"))
    runner = CliRunner()
    res = runner.invoke(app, ["ledger", "import", str(path), "--database-url", db_url_str, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["as_of"] == "2019-06-30" and out["as_of_from"] == "title"
    assert out["rows"] == {"read": 4, "projects": 2, "skipped": 2, "rejected": 0}
    assert out["unmapped_headers"] == ["项目负责人"]
    assert out["events"]["by_type"] == {"funds_arrived": 1, "landed": 1, "signed": 2}
    assert out["reconcile"]["mismatches"] == []
    assert out["append"]["accepted"] == 4
    # --as-of overrides the title; a later date with no change adds nothing
    res2 = runner.invoke(app, ["ledger", "import", str(path), "--as-of", "2019-07-31", "--database-url", db_url_str, "--json"])
    assert res2.exit_code == 0, res2.output
    assert json.loads(res2.stdout)["events"]["planned"] == 0


def test_cli_human_report_names_rejected_rows_and_dry_run_writes_nothing(db_url_str: str, db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "项目名称,总投资(万元),签约时间,开工时间\n甲项目,1000,2018.1.5,2018.13.1\n乙项目,2000,2018.2.1,\n合计,3000,,\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    res = runner.invoke(app, ["ledger", "import", str(path), "--as-of", "2018-03-31", "--dry-run", "--database-url", db_url_str])
    assert res.exit_code == 1, res.output  # a row rejected (README, exit codes), even in a dry run
    assert "row 2" in res.output and "2018.13.1" in res.output
    assert "rows read 3" in res.output
    assert _count(db) == 0


def test_cli_errors_are_clear(db_url_str: str, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["ledger", "import", str(tmp_path / "nope.xlsx"), "--database-url", db_url_str])
    assert res.exit_code == 2 and "no such file" in res.output
    junk = tmp_path / "x.csv"
    junk.write_text("a,b\n1,2\n", encoding="utf-8")
    res = runner.invoke(app, ["ledger", "import", str(junk), "--database-url", db_url_str])
    assert res.exit_code == 2 and "no header row" in res.output
    mapping = tmp_path / "m.yaml"
    mapping.write_text("columns:\n  某列: nonsense\n", encoding="utf-8")
    res = runner.invoke(app, ["ledger", "import", str(junk), "--mapping", str(mapping), "--database-url", db_url_str])
    assert res.exit_code == 2 and "unknown field" in res.output


def test_cli_mapping_file(db_url_str: str, db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "custom.csv"
    path.write_text("引资项目,协议引资额（亿元）,签订日,包保领导\n甲项目,0.5,2020.1.2,王五\n", encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("columns:\n  引资项目: name\n  协议引资额: investment_wan\n  签订日: signed_on\n", encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(
        app, ["ledger", "import", str(path), "--mapping", str(mapping), "--as-of", "2020-01-31", "--database-url", db_url_str, "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["unmapped_headers"] == ["包保领导"]
    assert out["reconcile"]["ledger"]["investment_wan"] == 5000.0
    assert out["reconcile"]["warehouse"]["investment_wan"] == 5000.0


def test_demo_ledgers_two_months(db: Engine, tmp_path: Path) -> None:
    # another bureau's ledger in the same warehouse: its projects are not "missing" from the demo's
    import_ledger(db, write_month1(tmp_path))
    sept, octo = import_demo_ledgers(db, tmp_path / "demo")
    assert sept.as_of == date(2026, 9, 30) and octo.as_of == date(2026, 10, 31)
    for imp in (sept, octo):
        assert imp.table.rejected == [] and imp.table.accounted()
        assert imp.reconcile is not None and imp.reconcile["mismatches"] == [], imp.reconcile
        assert imp.totals_row_mismatches() == []
        assert imp.append is not None and imp.append.rejected == 0
    assert "missing" not in sept.plan.counts()
    counts = octo.plan.counts()
    assert counts["corrected"] == 2 and counts["missing"] == 1 and counts["funds"] >= 1
    missing = [c.project_id for c in octo.plan.changes if c.kind == "missing"]
    assert missing[0].startswith("TZ")
    with db.connect() as conn:
        states = project_states(conn, Horizon(date(2026, 10, 31)))
    assert states[missing[0]].stage.value == "produced", "a project missing from the list is not cancelled"
    again = import_ledger(db, tmp_path / "demo" / "项目台账_2026-10.xlsx")
    assert again.plan.events == []


def test_publish_needs_a_bootstrap(db_url_str: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["ledger", "import", str(write_month1(tmp_path)), "--publish", "--database-url", db_url_str], env={"ZHAOSHANG_KAFKA_BOOTSTRAP": ""}
    )
    assert res.exit_code == 2 and "--bootstrap" in res.output
