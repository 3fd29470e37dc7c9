"""Property, on PostGIS: every (as_of, known_at) answer of the read models equals the pure full fold.

Random histories (tests/strategies.py: every type, anomalies, retractions of retractions, same-day
events) arrive out of order, with re-sent duplicates and late records (``recorded_at`` in any
order), the projection brought up to date at a random point of the arrival; states, replay rows
and KPIs (both modes, with and without grouping) at random horizons must equal the fold of exactly
the events the domain's horizon sees.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from events.kpis import compute_kpis
from events.model import Event
from events.projection import fold
from events.store import Horizon
from tests.dbutil import truncate
from tests.strategies import histories
from warehouse import read_models
from warehouse.event_store import Incoming, load_records

RECORDED = datetime(2024, 1, 1, tzinfo=UTC)
TABLES = ("event_log", "dead_letter", "rm_project_version", "rm_project_record")


def _wire(events: list[Event], recorded: dict[str, datetime], start: int) -> list[Incoming]:
    out = []
    for i, ev in enumerate(events):
        rec = ev.to_wire()
        rec["recorded_at"] = recorded[ev.event_id].isoformat()
        out.append(Incoming(json.dumps(rec, ensure_ascii=False), "prop", f"line {start + i + 1}"))
    return out


def _horizons(data: st.DataObject) -> list[Horizon]:
    out = []
    for _ in range(data.draw(st.integers(1, 4))):
        as_of = date(2023, 12, 31) + timedelta(days=data.draw(st.integers(0, 9)))
        known_at = data.draw(st.one_of(st.none(), st.integers(-1, 24 * 12).map(lambda h: RECORDED + timedelta(hours=h))))
        out.append(Horizon(as_of, known_at))
    return out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), history=histories())
def test_read_models_answer_like_the_full_fold(db: Engine, data: st.DataObject, history: list[Event]) -> None:
    with db.begin() as conn:
        truncate(conn, *TABLES)
        conn.exec_driver_sql("UPDATE rm_position SET seq = 0")
    # Late records: the instant each fact became known, in any order against when it occurred.
    recorded = {ev.event_id: RECORDED + timedelta(hours=data.draw(st.integers(0, 24 * 12))) for ev in history}
    order = data.draw(st.permutations(history))
    resent = data.draw(st.lists(st.sampled_from(history), max_size=4)) if history else []
    arrivals = [*order, *resent]
    split = data.draw(st.integers(0, len(arrivals)))
    load_records(db, _wire(arrivals[:split], recorded, 0), batch_size=data.draw(st.integers(1, 8)))
    read_models.refresh(db)
    load_records(db, _wire(arrivals[split:], recorded, split), batch_size=data.draw(st.integers(1, 8)))
    if data.draw(st.booleans()):
        read_models.refresh(db)

    stamped = [Event(e.event_id, e.project_id, e.type, e.occurred_at, recorded[e.event_id], e.schema_version, e.payload) for e in history]
    for horizon in _horizons(data):
        expected = fold([e for e in stamped if horizon.sees(e)])
        with db.begin() as conn:
            assert read_models.states_at(conn, horizon) == expected, horizon
            assert read_models.rows_at(conn, horizon) == [s.to_row(horizon.as_of) for s in expected.values()], horizon
            lo = date(2024, 1, 1) + timedelta(days=data.draw(st.integers(0, 4)))
            hi = lo + timedelta(days=data.draw(st.integers(0, 5)))
            for mode in ("cohort", "flow"):
                for by in (None, "unit", "industry"):
                    want = compute_kpis(expected.values(), date_from=lo, date_to=hi, as_of=horizon.as_of, mode=mode, by=by)
                    got = read_models.kpis_at(
                        conn, date_from=lo, date_to=hi, as_of=horizon.as_of, known_at=horizon.known_at, mode=mode, by=by
                    )
                    assert got == want, (horizon, mode, by)

    read_models.refresh(db)
    with db.begin() as conn:
        _, differences = read_models.check(conn)
    assert differences == []
