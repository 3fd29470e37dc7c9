"""Property, end to end on PostGIS: a valid history loaded in any order, in any batches, with
re-sent duplicates, replays to exactly the state the pure fold gives."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from events.model import Event
from events.projection import fold
from tests.dbutil import truncate
from tests.strategies import histories
from warehouse.event_store import Incoming, load_records
from warehouse.replay import Horizon, project_states

RECORDED = datetime(2024, 2, 1, tzinfo=UTC)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), history=histories())
def test_loaded_in_any_order_and_batches_replays_like_the_fold(db: Engine, data: st.DataObject, history: list[Event]) -> None:
    with db.begin() as conn:
        truncate(conn, "event_log", "dead_letter")
    order = data.draw(st.permutations(history))
    resent = data.draw(st.lists(st.sampled_from(history), max_size=5)) if history else []
    wire = []
    for i, ev in enumerate([*order, *resent]):
        rec = ev.to_wire()
        rec["recorded_at"] = (RECORDED + timedelta(minutes=i)).isoformat()  # a re-send may say another time
        wire.append(Incoming(json.dumps(rec, ensure_ascii=False), "prop", f"line {i + 1}"))
    batch_size = data.draw(st.integers(1, 12))
    res = load_records(db, wire, batch_size=batch_size)
    assert (res.read, res.accepted, res.duplicates, res.rejected) == (len(wire), len(history), len(resent), 0)
    with db.connect() as conn:
        got = project_states(conn, Horizon(date(2030, 1, 1)))
    # The log keeps each event as it first arrived: that arrival's recorded_at (confidentiality reads it).
    first_known = {ev.event_id: RECORDED + timedelta(minutes=i) for i, ev in enumerate(order)}
    stamped = [replace(ev, recorded_at=first_known[ev.event_id]) for ev in history]
    assert got == fold(stamped)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), history=histories())
def test_as_of_and_known_at_select_exactly_the_events_the_domain_says(db: Engine, data: st.DataObject, history: list[Event]) -> None:
    """SQL's horizon (``warehouse.horizon.horizon_clause``) equals the domain's (``Horizon.sees``)."""
    with db.begin() as conn:
        truncate(conn, "event_log", "dead_letter")
    recorded = {ev.event_id: RECORDED + timedelta(hours=data.draw(st.integers(0, 48))) for ev in history}
    wire = []
    for i, ev in enumerate(history):
        rec = ev.to_wire()
        rec["recorded_at"] = recorded[ev.event_id].isoformat()
        wire.append(Incoming(json.dumps(rec, ensure_ascii=False), "prop", f"line {i + 1}"))
    load_records(db, wire)
    as_of = date(2024, 1, 1) + timedelta(days=data.draw(st.integers(0, 7)))
    known_at = data.draw(st.one_of(st.none(), st.integers(-1, 49).map(lambda h: RECORDED + timedelta(hours=h))))
    horizon = Horizon(as_of, known_at)
    # As stored: stamped with their recorded_at (confidentiality reads when a signing became known).
    stored = [replace(ev, recorded_at=recorded[ev.event_id]) for ev in history]
    seen = [ev for ev in stored if horizon.sees(ev)]
    with db.connect() as conn:
        assert project_states(conn, horizon) == fold(seen)
