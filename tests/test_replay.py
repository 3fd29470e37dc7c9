"""Bitemporal replay on the real PostGIS: as of a date, as known at an instant."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from tests.dbutil import truncate
from tests.kpi_district import (
    BY_UNIT_GROUPS,
    COHORT_2024,
    CORRECTED,
    DISTRICT,
    FLOW_2024,
    LATE,
    NOVEMBER,
    PUBLISHED,
)
from warehouse.event_store import load_records, read_jsonl
from warehouse.replay import Horizon, kpi_report, load_events, parse_known_at, replay_rows

FROM, TO = date(2024, 1, 1), date(2024, 12, 31)


def load(db: Engine, path: Path, records: list[dict[str, Any]], batch_size: int = 20_000) -> dict[str, int]:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return load_records(db, read_jsonl(path), batch_size=batch_size).as_dict()


def empty_log(db: Engine) -> None:
    with db.begin() as conn:
        truncate(conn, "event_log", "dead_letter")


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


def test_as_of_a_date_includes_that_whole_day_and_nothing_after(db: Engine, tmp_path: Path) -> None:
    load(db, tmp_path / "d.jsonl", DISTRICT)
    with db.connect() as conn:
        rows = {r["project_id"]: r for r in replay_rows(conn, Horizon(date(2024, 3, 1)))}
        before = {r["project_id"]: r for r in replay_rows(conn, Horizon(date(2024, 2, 29)))}
    assert sorted(rows) == ["P1", "P2", "P3", "P6", "P7"]  # P4, P5 signed later
    assert (rows["P1"]["stage"], rows["P1"]["landed_on"], rows["P3"]["stage"], rows["P6"]["funds_wan"]) == ("landed", "2024-03-01", "signed", 7000.0)
    assert (before["P1"]["stage"], before["P6"]["funds_wan"]) == ("signed", 0.0)
    assert "P3" not in before


def test_out_of_order_arrival_gives_the_same_state_as_in_order(db: Engine, tmp_path: Path) -> None:
    load(db, tmp_path / "in_order.jsonl", DISTRICT)
    with db.connect() as conn:
        expected = replay_rows(conn, Horizon(date(2024, 12, 31)))
        expected_kpis = kpi_report(conn, date_from=FROM, date_to=TO, by="unit")
    for seed in (1, 2):
        empty_log(db)
        shuffled = list(DISTRICT)
        random.Random(seed).shuffle(shuffled)
        # In three deliveries, the last first, in small batches.
        load(db, tmp_path / "c.jsonl", shuffled[18:], batch_size=3)
        load(db, tmp_path / "a.jsonl", shuffled[:9], batch_size=4)
        load(db, tmp_path / "b.jsonl", shuffled[9:18])
        with db.connect() as conn:
            assert replay_rows(conn, Horizon(date(2024, 12, 31))) == expected
            assert kpi_report(conn, date_from=FROM, date_to=TO, by="unit") == expected_kpis


def test_anomalies_are_kept_in_the_log_and_reported(db: Engine, tmp_path: Path) -> None:
    records: list[dict[str, Any]] = [
        {"event_id": "x-p", "project_id": "X", "type": "produced", "occurred_at": "2024-02-01"},
        {"event_id": "x-s", "project_id": "X", "type": "signed", "occurred_at": "2024-03-01", "payload": {"name": "X", "investment_wan": 1}},
        {"event_id": "y-s", "project_id": "Y", "type": "signed", "occurred_at": "2024-01-01", "payload": {"name": "Y", "investment_wan": 1}},
        {"event_id": "y-c", "project_id": "Y", "type": "cancelled", "occurred_at": "2024-02-01"},
        {"event_id": "y-l", "project_id": "Y", "type": "landed", "occurred_at": "2024-03-01"},
        {"event_id": "z-s", "project_id": "Z", "type": "signed", "occurred_at": "2024-01-01", "payload": {"name": "Z", "investment_wan": 1}},
        {"event_id": "z-t", "project_id": "Z", "type": "started", "occurred_at": "2024-02-01"},
    ]
    assert load(db, tmp_path / "a.jsonl", records) == {"read": 7, "accepted": 7, "duplicates": 0, "rejected": 0}
    with db.connect() as conn:
        rows = {r["project_id"]: r for r in replay_rows(conn, Horizon(date(2024, 12, 31)))}
        assert conn.execute(text("SELECT count(*) FROM event_log")).scalar() == 7
    assert rows["X"]["anomalies"] == ["produced_before_signed: produced on 2024-02-01 before any signing (event x-p)"]
    assert rows["Y"]["anomalies"] == ["landed_after_cancelled: landed on 2024-03-01 after cancellation on 2024-02-01 (event y-l)"]
    assert rows["Z"]["anomalies"] == ["skipped_stage: started on 2024-02-01 without landed (event z-t)"]
    assert (rows["X"]["stage"], rows["Y"]["stage"], rows["Z"]["stage"]) == ("produced", "cancelled", "started")


def test_known_at_reproduces_the_published_bulletin_and_differs_as_corrected(db: Engine, tmp_path: Path) -> None:
    nov_from, nov_to = date(2024, 11, 1), date(2024, 11, 30)
    month_end = parse_known_at("2024-11-30")
    assert month_end == datetime(2024, 11, 30, 16, 0, tzinfo=UTC)
    load(db, tmp_path / "nov.jsonl", NOVEMBER)
    with db.connect() as conn:
        published = kpi_report(conn, date_from=nov_from, date_to=nov_to)
        published_known = kpi_report(conn, date_from=nov_from, date_to=nov_to, known_at=month_end)
        published_by_unit = kpi_report(conn, date_from=nov_from, date_to=nov_to, known_at=month_end, by="unit")
        published_rows = replay_rows(conn, Horizon(nov_to, month_end))
    assert {k: published[k] for k in PUBLISHED} == PUBLISHED
    assert load(db, tmp_path / "late.jsonl", LATE) == {"read": 3, "accepted": 3, "duplicates": 0, "rejected": 0}
    with db.connect() as conn:
        reproduced = kpi_report(conn, date_from=nov_from, date_to=nov_to, known_at=month_end)
        corrected = kpi_report(conn, date_from=nov_from, date_to=nov_to)
        corrected_dec = kpi_report(conn, date_from=nov_from, date_to=nov_to, known_at=parse_known_at("2024-12-31"))
        assert replay_rows(conn, Horizon(nov_to, month_end)) == published_rows
        assert kpi_report(conn, date_from=nov_from, date_to=nov_to, known_at=month_end, by="unit") == published_by_unit
        # Known one second after the month ended: Q1's funds (recorded 00:00:01) count, nothing else yet.
        just_after = kpi_report(conn, date_from=nov_from, date_to=nov_to, known_at=parse_known_at("2024-12-01T00:00:01"))
        # Known before the retraction was recorded: Q4 and the funds are known, the landing still stands.
        before_fix = kpi_report(conn, date_from=nov_from, date_to=nov_to, known_at=parse_known_at("2024-12-03T12:00"))
    assert reproduced == published_known
    assert {k: reproduced[k] for k in PUBLISHED} == PUBLISHED
    assert reproduced["known_at"] == "2024-12-01T00:00:00+08:00"
    assert {k: corrected[k] for k in CORRECTED} == CORRECTED
    assert {k: corrected_dec[k] for k in CORRECTED} == CORRECTED
    assert (just_after["signed"], just_after["funds_wan"], just_after["landed"]) == (2, 400.0, 1)
    assert (before_fix["signed"], before_fix["landed"], before_fix["investment_wan"], before_fix["funds_wan"]) == (3, 1, 7000.0, 400.0)


def test_a_retraction_applies_from_when_it_was_recorded_whatever_its_date(db: Engine, tmp_path: Path) -> None:
    load(db, tmp_path / "nov.jsonl", NOVEMBER + LATE)
    with db.connect() as conn:
        # As of 11-30 (before the retraction's own date, 12-04) the correction still applies.
        rows = {r["project_id"]: r for r in replay_rows(conn, Horizon(date(2024, 11, 30)))}
        known = {r["project_id"]: r for r in replay_rows(conn, Horizon(date(2024, 11, 30), parse_known_at("2024-12-03")))}
        ids = {e.event_id for e in load_events(conn, Horizon(date(2024, 11, 30), parse_known_at("2024-11-30")))}
    assert (rows["Q2"]["stage"], rows["Q2"]["landed_on"]) == ("signed", None)
    assert (known["Q2"]["stage"], known["Q2"]["landed_on"]) == ("landed", "2024-11-20")
    assert ids == {"q1-s", "q2-s", "q2-l", "q2-f"}


def test_events_without_recorded_at_are_known_from_their_arrival(db: Engine, tmp_path: Path) -> None:
    rec = {"event_id": "n-s", "project_id": "N", "type": "signed", "occurred_at": "2024-11-05", "payload": {"name": "N", "investment_wan": 1}}
    load(db, tmp_path / "n.jsonl", [rec])
    with db.connect() as conn:
        assert replay_rows(conn, Horizon(date(2024, 11, 30), parse_known_at("2024-11-30"))) == []
        assert [r["project_id"] for r in replay_rows(conn, Horizon(date(2024, 11, 30), datetime.now(UTC)))] == ["N"]


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
