"""Dagster assets materialized in-process against the real PostGIS on a small hand-built district."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import Engine, text

from assets.definitions import build_definitions
from assets.partitions import month_end, monthly_partitions, partitions_by_clock
from assets.pipeline import build_pipeline_assets, project_event_log
from assets.resources import OutputResource, WarehouseResource
from events.calendar import month_start, months_between, previous_month_end
from warehouse.event_store import Incoming, append_raw
from warehouse.replay import Horizon, replay_rows
from zhaoshang import clock


def ev(eid: str, pid: str, type_: str, occurred: str, payload: dict[str, Any] | None = None, recorded: str | None = None) -> str:
    record: dict[str, Any] = {"event_id": eid, "project_id": pid, "type": type_, "occurred_at": occurred, "payload": payload or {}}
    record["recorded_at"] = recorded or occurred
    return json.dumps(record, ensure_ascii=False)


def signed(eid: str, pid: str, day: str, unit: str, inv: float, **kw: Any) -> str:
    return ev(eid, pid, "signed", day, {"name": f"项目{pid}", "investment_wan": inv, "unit": unit, "industry": "新材料", **kw})


HISTORY = [
    signed("a1", "A", "2024-01-05", "白云镇", 10000),
    ev("a2", "A", "landed", "2024-02-10"),
    ev("a3", "A", "funds_arrived", "2024-02-20", {"amount_wan": 3000}),
    ev("a4", "A", "started", "2024-03-15"),
    signed("b1", "B", "2024-01-20", "夏云镇", 5000),
    ev("b2", "B", "landed", "2024-03-02", recorded="2024-04-10"),  # reported late: not in March's published bulletin
    ev("b3", "B", "funds_arrived", "2024-03-05", {"amount_wan": 1000}, recorded="2024-04-10"),
    signed("c1", "C", "2024-02-01", "白云镇", 8000),
    ev("c2", "C", "cancelled", "2024-03-20", {"reason": "企业战略调整"}),
]


def load(engine: Engine, lines: list[str]) -> None:
    with engine.begin() as conn:
        res = append_raw(conn, [Incoming(line, "test", f"line {i}") for i, line in enumerate(lines, 1)])
    assert res.rejected == 0, res.reasons


def resources(db: Engine, out: Path) -> dict[str, Any]:
    url = db.url.render_as_string(hide_password=False)
    return {"warehouse": WarehouseResource(database_url=url), "output": OutputResource(root=str(out))}


def pipeline(start: str = "2024-01-01") -> list[Any]:
    return build_pipeline_assets(monthly_partitions(start))


def run_range(db: Engine, out: Path, first: str, last: str, selection: list[Any] | None = None) -> dg.ExecuteInProcessResult:
    assets = pipeline()
    return dg.materialize(
        assets,
        resources=resources(db, out),
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        raise_on_error=True,
    )


def test_backfill_of_three_months_equals_replay(db: Engine, tmp_path: Path) -> None:
    load(db, HISTORY)
    result = run_range(db, tmp_path, "2024-01-01", "2024-03-01")
    assert result.success
    with db.connect() as conn:
        for key in ("2024-01-01", "2024-02-01", "2024-03-01"):
            m_end = month_end(key)
            expected = {r["project_id"]: r for r in replay_rows(conn, Horizon(m_end))}
            got = {
                r.project_id: r
                for r in conn.execute(text("SELECT * FROM mart_project_state WHERE month_end = :m"), {"m": m_end})
            }
            assert set(got) == set(expected)
            for pid, row in expected.items():
                assert got[pid].stage == row["stage"]
                assert got[pid].funds_wan == row["funds_wan"]
                assert (got[pid].landed_on.isoformat() if got[pid].landed_on else None) == row["landed_on"]
        stages_march = dict(conn.execute(text("SELECT project_id, stage FROM mart_project_state WHERE month_end = '2024-03-31'")).all())
    assert stages_march == {"A": "started", "B": "landed", "C": "cancelled"}


def test_bulletin_published_vs_corrected(db: Engine, tmp_path: Path) -> None:
    load(db, HISTORY)
    result = run_range(db, tmp_path, "2024-03-01", "2024-03-01")
    assert result.success
    data = json.loads((tmp_path / "bulletins" / "2024-03.json").read_text(encoding="utf-8"))
    pub = {g["key"]: g for g in data["published"]["groups"]}
    cor = {g["key"]: g for g in data["corrected"]["groups"]}
    # B's landing and funds were recorded on 2024-04-10: the March bulletin as published did not know them.
    assert pub["夏云镇"]["landed"] == 0 and pub["夏云镇"]["funds_wan"] == 0
    assert cor["夏云镇"]["landed"] == 1 and cor["夏云镇"]["funds_wan"] == 1000
    assert [g["key"] for g in data["published"]["groups"]] == ["白云镇", "夏云镇"]
    assert data["difference"] == [
        {
            "unit": "夏云镇",
            "changes": {"landed": {"published": 0, "corrected": 1}, "funds_wan": {"published": 0.0, "corrected": 1000.0}},
        }
    ]
    md = (tmp_path / "bulletins" / "2024-03.md").read_text(encoding="utf-8")
    assert "白云镇" in md and "月通报" in md
    mat = result.asset_materializations_for_node("monthly_bulletin")[0]
    assert "白云镇" in mat.metadata["bulletin"].value  # type: ignore[attr-defined]


def _check(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    evals = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    assert evals, name
    return evals[-1]


def test_checks_pass_on_clean_data(db: Engine, tmp_path: Path) -> None:
    load(db, HISTORY)
    result = run_range(db, tmp_path, "2024-03-01", "2024-03-01")
    assert _check(result, "no_project_anomalies").passed
    assert _check(result, "funnel_monotone").passed
    assert _check(result, "dead_letters_not_growing").passed


def test_checks_fail_on_data_built_to_break_them(db: Engine, tmp_path: Path) -> None:
    load(db, HISTORY)
    run_range(db, tmp_path, "2024-03-01", "2024-03-01")  # first snapshot of dead letters
    load(
        db,
        [
            signed("d1", "D", "2024-01-10", "白云镇", 100),
            ev("d2", "D", "started", "2024-02-10"),  # skipped 落地 twice: 3 started > 2 landed
            signed("f1", "F", "2024-01-11", "白云镇", 100),
            ev("f2", "F", "started", "2024-02-12"),
            ev("e1", "E", "produced", "2024-02-11"),  # produced before any signing: anomaly
        ],
    )
    with db.begin() as conn:
        append_raw(conn, [Incoming("{broken json", "test", "line 99")])
    result = run_range(db, tmp_path, "2024-03-01", "2024-03-01")
    anomalies = _check(result, "no_project_anomalies")
    assert not anomalies.passed and anomalies.severity == dg.AssetCheckSeverity.WARN
    # The listing is Markdown with the data escaped (events.escape.markdown_cell): "_" comes as "\_".
    assert "produced_before_signed" in anomalies.metadata["anomalies"].value.replace("\\_", "_")  # type: ignore[attr-defined]
    funnel = _check(result, "funnel_monotone")
    assert not funnel.passed and "cohort 2024" in funnel.metadata["violations"].value  # type: ignore[attr-defined]
    assert not _check(result, "dead_letters_not_growing").passed


def test_event_log_observation(db: Engine, tmp_path: Path) -> None:
    load(db, HISTORY)
    from dagster._core.definitions.observe import observe  # not re-exported at the top level in 1.13

    result = observe([project_event_log], resources=resources(db, tmp_path))
    obs = result.asset_observations_for_node("project_event_log")[0]
    assert obs.metadata["events"].value == len(HISTORY)  # type: ignore[attr-defined]
    assert obs.tags["dagster/data_version"] == str(len(HISTORY))


def test_sensor_requests_months_touched_by_new_events(db: Engine, tmp_path: Path) -> None:
    load(db, HISTORY)
    url = db.url.render_as_string(hide_password=False)
    defs = build_definitions(url, output_root=str(tmp_path))
    sensor = defs.get_sensor_def("new_events_sensor")
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, cursor=None, resources={"warehouse": WarehouseResource(database_url=url)})
        first = sensor(ctx)
        assert isinstance(first, dg.SensorResult)
        assert first.run_requests and first.run_requests[0].tags["dagster/asset_partition_range_start"] == "2024-01-01"
        cursor = first.cursor
        # A late event for February: February and every later month must be rebuilt, not January.
        load(db, [ev("a9", "A", "funds_arrived", "2024-02-25", {"amount_wan": 50}, recorded="2024-06-01")])
        ctx2 = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"warehouse": WarehouseResource(database_url=url)})
        second = sensor(ctx2)
        assert isinstance(second, dg.SensorResult)
        assert second.run_requests[0].tags["dagster/asset_partition_range_start"] == "2024-02-01"
        ctx3 = dg.build_sensor_context(instance=instance, cursor=second.cursor, resources={"warehouse": WarehouseResource(database_url=url)})
        assert isinstance(sensor(ctx3), dg.SkipReason)


def test_partitions_run_from_the_setting_to_the_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHAOSHANG_PARTITIONS_START", "2024-01-01")
    defs = build_definitions(output_root=str(tmp_path))
    job = defs.resolve_job_def("refresh_months")
    with partitions_by_clock():
        keys = job.partitions_def.get_partition_keys()  # type: ignore[union-attr]
    assert keys[0] == "2024-01-01"
    # Up to the last complete month by the product's clock, whatever day the suite runs on.
    assert date.fromisoformat(keys[-1]) == month_start(previous_month_end(clock.today()))


def test_definitions_load_with_no_io(tmp_path: Path) -> None:
    """Loading ``assets.definitions`` (what ``dagster dev`` does) opens no connection to the warehouse."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        env = {**os.environ, "ZHAOSHANG_DATABASE_URL": f"postgresql://nobody@127.0.0.1:{port}/nowhere", "DAGSTER_HOME": str(tmp_path)}
        code = "import assets.definitions as d; print(len(d.defs.resolve_all_asset_keys()))"
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert int(done.stdout.strip()) >= 8
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked


@pytest.mark.parametrize("today", ["2027-03-01", "2026-12-31", "2028-02-29", "2028-03-01"])
def test_partitions_end_at_the_last_complete_month_of_the_pinned_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, today: str
) -> None:
    monkeypatch.setenv("ZHAOSHANG_TODAY", today)
    monkeypatch.setenv("ZHAOSHANG_PARTITIONS_START", "2024-01-01")
    defs = build_definitions(output_root=str(tmp_path))
    with partitions_by_clock():
        keys = defs.resolve_job_def("refresh_months").partitions_def.get_partition_keys()  # type: ignore[union-attr]
    expected_last = month_start(previous_month_end(date.fromisoformat(today)))
    assert keys[0] == "2024-01-01" and keys[-1] == expected_last.isoformat()
    assert len(keys) == months_between(date(2024, 1, 1), expected_last)


@pytest.mark.parametrize("name", ["monthly_bulletin_job_schedule"])
def test_schedule_exists(db: Engine, name: str) -> None:
    defs = build_definitions(db.url.render_as_string(hide_password=False))
    assert defs.get_schedule_def(name).cron_schedule.startswith("0 6 1 *")  # type: ignore[union-attr]
