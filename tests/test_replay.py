"""Bitemporal replay through the warehouse's SQL on the real PostGIS: the KPI report of the
hand-built district, and what only this path has. The replay's semantics (horizon, retractions,
anomalies, arrival order) run on the in-memory store in ``test_log_semantics.py``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from tests.kpi_district import (
    BY_UNIT_GROUPS,
    COHORT_2024,
    DISTRICT,
    FLOW_2024,
)
from warehouse.event_store import load_records, read_jsonl
from warehouse.replay import Horizon, kpi_report, parse_known_at, replay_rows

FROM, TO = date(2024, 1, 1), date(2024, 12, 31)


def load(db: Engine, path: Path, records: list[dict[str, Any]], batch_size: int = 20_000) -> dict[str, int]:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return load_records(db, read_jsonl(path), batch_size=batch_size).as_dict()


def test_kpis_of_the_hand_built_district(db: Engine, tmp_path: Path) -> None:
    load(db, tmp_path / "d.jsonl", DISTRICT)
    with db.connect() as conn:
        cohort = kpi_report(conn, date_from=FROM, date_to=TO)
        flow = kpi_report(conn, date_from=FROM, date_to=TO, mode="flow")
        by_unit = kpi_report(conn, date_from=FROM, date_to=TO, by="unit")
        later = kpi_report(conn, date_from=FROM, date_to=TO, as_of=date(2025, 1, 31))
    meta = {"from": "2024-01-01", "to": "2024-12-31", "as_of": "2024-12-31", "known_at": None}
    assert cohort == {**meta, "mode": "cohort", **COHORT_2024}
    assert flow == {**meta, "mode": "flow", **FLOW_2024}
    assert by_unit == {**meta, "mode": "cohort", "by": "unit", "groups": BY_UNIT_GROUPS, "total": COHORT_2024}
    assert later["as_of"] == "2025-01-31" and later["funds_wan"] == 16500.0  # P5's January instalment


def test_parse_known_at_forms() -> None:
    assert parse_known_at("2024-11-30T18:00") == datetime(2024, 11, 30, 10, 0, tzinfo=UTC)
    assert parse_known_at(" 2024-11-30 ") == datetime(2024, 11, 30, 16, 0, tzinfo=UTC)
    assert parse_known_at("2024-11-30T18:00:00Z") == datetime(2024, 11, 30, 18, 0, tzinfo=UTC)
    assert Horizon(date(2024, 11, 30), parse_known_at("2024-11-30")).describe() == "as of 2024-11-30, known at 2024-12-01T00:00:00+08:00"


def test_the_garbage_collector_is_back_on_after_a_replay(db: Engine, tmp_path: Path) -> None:
    import gc

    load(db, tmp_path / "d.jsonl", DISTRICT)
    assert gc.isenabled()
    with db.connect() as conn:
        replay_rows(conn, Horizon(date(2024, 12, 31)))
    assert gc.isenabled()
    gc.disable()
    try:
        with db.connect() as conn:
            replay_rows(conn, Horizon(date(2024, 12, 31)))
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
