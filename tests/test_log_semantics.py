"""The log's semantics on the in-memory store, no services: duplicates and conflicts, the replay's
horizon (as of a date, as known at an instant), retractions, and what the fold makes of a history.

``tests/test_store_contract.py`` holds the memory store and the PostgreSQL one to the same
contract; what only PostgreSQL does (COPY, concurrent writers, retries of dead letters, the SQL
reading of instants) stays in ``test_warehouse_event_store.py`` and ``test_replay.py``.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from typing import Any

import pytest

from events.canonical import canonicalize
from events.memory_store import MemoryLogStore
from events.store import Horizon
from tests.kpi_district import CORRECTED, DISTRICT, LATE, NOVEMBER, PUBLISHED
from tests.memory_log import kpi_report, load, replay_rows
from warehouse.replay import parse_known_at

FROM, TO = date(2024, 1, 1), date(2024, 12, 31)
EVERYTHING = Horizon(date(2100, 1, 1))


def signed(eid: str = "e1", inv: float = 5000, **over: Any) -> dict[str, Any]:
    rec = {"event_id": eid, "project_id": "P1", "type": "signed", "occurred_at": "2024-03-01",
           "payload": {"name": "航空叶片制造及装备项目", "investment_wan": inv, "unit": "夏云工业园区管委会"}}
    rec.update(over)
    return rec


def stored(store: MemoryLogStore) -> dict[str, Any]:
    return {e.event_id: e for e in store.events(EVERYTHING)}


def split_reason(reason: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A conflict's reason: (the stored version, this version), as JSON."""
    stored_text, this_text = reason.split("; stored version: ")[1].split("; this version: ")
    return json.loads(stored_text), json.loads(this_text)


# -- appending: duplicates and conflicts -------------------------------------------------------


def test_same_event_resent_with_another_recorded_at_is_a_duplicate() -> None:
    store = MemoryLogStore()
    assert load(store, [signed(recorded_at="2024-03-01T10:00:00+08:00")], "a.jsonl") == {"read": 1, "accepted": 1, "duplicates": 0, "rejected": 0}
    again = [signed(recorded_at="2024-05-01T10:00:00+08:00", occurred_at="2024-02-29T16:00:00Z"), signed()]
    assert load(store, again, "b.jsonl") == {"read": 2, "accepted": 0, "duplicates": 2, "rejected": 0}
    assert stored(store)["e1"].recorded_at == datetime(2024, 3, 1, 2, 0, tzinfo=UTC)


def test_duplicates_within_one_file() -> None:
    assert load(MemoryLogStore(), [signed(), signed(), signed("e2")]) == {"read": 3, "accepted": 2, "duplicates": 1, "rejected": 0}


def test_conflict_with_the_log_is_dead_lettered_naming_both_versions() -> None:
    store = MemoryLogStore()
    load(store, [signed(inv=5000)], "first.jsonl")
    assert load(store, [signed("e0"), signed(inv=6000)], "second.jsonl") == {"read": 2, "accepted": 1, "duplicates": 0, "rejected": 1}
    [dl] = store.dead_letters()
    assert (dl.event_id, dl.source, dl.position) == ("e1", "second.jsonl", "line 2")
    assert dl.reason.startswith("conflict: event_id 'e1' is already in the log with different content; stored version: {")
    old, new = split_reason(dl.reason)
    assert (old["payload"]["investment_wan"], old["stored_from"], new["payload"]["investment_wan"]) == (5000, "first.jsonl@line 1", 6000)
    assert json.loads(dl.raw) == signed(inv=6000)
    assert stored(store)["e1"].payload["investment_wan"] == 5000


def test_conflict_within_one_batch() -> None:
    store = MemoryLogStore()
    assert load(store, [signed(inv=5000), signed(inv=7000)]) == {"read": 2, "accepted": 1, "duplicates": 0, "rejected": 1}
    [dl] = store.dead_letters()
    assert dl.position == "line 2" and "event_id 'e1'" in dl.reason
    old, new = split_reason(dl.reason)
    assert (old["payload"]["investment_wan"], new["payload"]["investment_wan"]) == (5000, 7000)


@pytest.mark.parametrize("batch_size", [20_000, 1])
def test_a_conflicting_version_does_not_turn_a_later_duplicate_into_a_conflict(batch_size: int) -> None:
    """The log holds A; a file brings A' then A again: A' is a conflict, A a duplicate, whatever the batching."""
    store = MemoryLogStore()
    load(store, [signed(inv=5000)], "first.jsonl")
    assert load(store, [signed(inv=9000), signed(inv=5000)], "mixed.jsonl", batch_size=batch_size) == {
        "read": 2, "accepted": 0, "duplicates": 1, "rejected": 1}
    [dl] = store.dead_letters()
    assert dl.position == "line 1" and "stored version" in dl.reason


def test_a_line_that_is_not_utf8_is_dead_lettered() -> None:
    store = MemoryLogStore()
    assert load(store, [json.dumps(signed(), ensure_ascii=False).encode("gbk")]) == {"read": 1, "accepted": 0, "duplicates": 0, "rejected": 1}
    [dl] = store.dead_letters()
    assert dl.raw.endswith("\ufffd(not UTF-8)")


def ev(eid: str, type_: str = "started", **payload: Any) -> bytes:
    return json.dumps({"event_id": eid, "project_id": "P1", "type": type_, "occurred_at": "2024-03-01", "payload": payload}, ensure_ascii=False).encode()


def test_dead_letters_are_kept_once_per_source_and_record() -> None:
    store = MemoryLogStore()
    valid = [ev("v1", "signed", name="新材料项目", investment_wan=5000), ev("v2", "landed", land_area_mu=12.5), ev("v3")]
    bad = [b"{not json", b"[1]", ev("b1", "signed", name="x")]  # broken, not an object, investment missing
    for _ in range(3):
        assert load(store, [*valid, *bad, *bad], "in.jsonl", batch_size=4)["rejected"] == 6  # each bad line read is rejected ...
    assert len(store.dead_letters()) == 3  # ... and kept once
    # Another source with the same bad record: a letter of its own.
    load(store, [b"{not json"], "kafka:events")
    assert len(store.dead_letters()) == 4


@pytest.mark.parametrize(
    ("first", "again"),
    [
        (ev("n1", "signed", name="x", investment_wan=1000), ev("n1", "signed", name="x", investment_wan=1000.0)),
        (ev("n1", "funds_arrived", amount_wan=250.0), ev("n1", "funds_arrived", amount_wan=250)),
        (ev("n1", "landed", land_area_mu=30, floor_area_m2=5000.0), ev("n1", "landed", land_area_mu=30.0, floor_area_m2=5e3)),
        (ev("n1", "started", note=[1, {"k": 2.0}]), ev("n1", "started", note=[1.0, {"k": 2}])),
        (ev("n1", "signed", name="x", investment_wan=1, location={"lon": 106, "lat": 26.5}),
         ev("n1", "signed", name="x", investment_wan=1.0, location={"lon": 106.0, "lat": 26.5})),
    ],
)
def test_numerically_equal_numbers_are_a_duplicate_not_a_conflict(first: bytes, again: bytes) -> None:
    assert canonicalize(first).content_hash == canonicalize(again).content_hash
    store = MemoryLogStore()
    assert load(store, [first], "a.jsonl")["accepted"] == 1
    assert load(store, [again], "b.jsonl") == {"read": 1, "accepted": 0, "duplicates": 1, "rejected": 0}


# -- replay: horizon, retractions, the fold ---------------------------------------------------


def test_as_of_a_date_includes_that_whole_day_and_nothing_after() -> None:
    store = MemoryLogStore()
    load(store, DISTRICT)
    rows = {r["project_id"]: r for r in replay_rows(store, Horizon(date(2024, 3, 1)))}
    before = {r["project_id"]: r for r in replay_rows(store, Horizon(date(2024, 2, 29)))}
    assert sorted(rows) == ["P1", "P2", "P3", "P6", "P7"]  # P4, P5 signed later
    assert (rows["P1"]["stage"], rows["P1"]["landed_on"], rows["P3"]["stage"], rows["P6"]["funds_wan"]) == ("landed", "2024-03-01", "signed", 7000.0)
    assert (before["P1"]["stage"], before["P6"]["funds_wan"]) == ("signed", 0.0)
    assert "P3" not in before


def test_out_of_order_arrival_gives_the_same_state_as_in_order() -> None:
    in_order = MemoryLogStore()
    load(in_order, DISTRICT)
    expected = replay_rows(in_order, Horizon(TO))
    expected_kpis = kpi_report(in_order, date_from=FROM, date_to=TO, by="unit")
    for seed in (1, 2):
        shuffled = list(DISTRICT)
        random.Random(seed).shuffle(shuffled)
        store = MemoryLogStore()
        # In three deliveries, the last first, in small batches.
        load(store, shuffled[18:], "c.jsonl", batch_size=3)
        load(store, shuffled[:9], "a.jsonl", batch_size=4)
        load(store, shuffled[9:18], "b.jsonl")
        assert replay_rows(store, Horizon(TO)) == expected
        assert kpi_report(store, date_from=FROM, date_to=TO, by="unit") == expected_kpis


def test_anomalies_are_kept_in_the_log_and_reported() -> None:
    records: list[dict[str, Any]] = [
        {"event_id": "x-p", "project_id": "X", "type": "produced", "occurred_at": "2024-02-01"},
        {"event_id": "x-s", "project_id": "X", "type": "signed", "occurred_at": "2024-03-01", "payload": {"name": "X", "investment_wan": 1}},
        {"event_id": "y-s", "project_id": "Y", "type": "signed", "occurred_at": "2024-01-01", "payload": {"name": "Y", "investment_wan": 1}},
        {"event_id": "y-c", "project_id": "Y", "type": "cancelled", "occurred_at": "2024-02-01"},
        {"event_id": "y-l", "project_id": "Y", "type": "landed", "occurred_at": "2024-03-01"},
        {"event_id": "z-s", "project_id": "Z", "type": "signed", "occurred_at": "2024-01-01", "payload": {"name": "Z", "investment_wan": 1}},
        {"event_id": "z-t", "project_id": "Z", "type": "started", "occurred_at": "2024-02-01"},
    ]
    store = MemoryLogStore()
    assert load(store, records) == {"read": 7, "accepted": 7, "duplicates": 0, "rejected": 0}
    rows = {r["project_id"]: r for r in replay_rows(store, Horizon(TO))}
    assert len(stored(store)) == 7
    assert rows["X"]["anomalies"] == ["produced_before_signed: produced on 2024-02-01 before any signing (event x-p)"]
    assert rows["Y"]["anomalies"] == ["landed_after_cancelled: landed on 2024-03-01 after cancellation on 2024-02-01 (event y-l)"]
    assert rows["Z"]["anomalies"] == ["skipped_stage: started on 2024-02-01 without landed (event z-t)"]
    assert (rows["X"]["stage"], rows["Y"]["stage"], rows["Z"]["stage"]) == ("produced", "cancelled", "started")


def test_known_at_reproduces_the_published_bulletin_and_differs_as_corrected() -> None:
    nov_from, nov_to = date(2024, 11, 1), date(2024, 11, 30)
    month_end = parse_known_at("2024-11-30")
    store = MemoryLogStore()
    load(store, NOVEMBER, "nov.jsonl")
    published = kpi_report(store, date_from=nov_from, date_to=nov_to)
    published_known = kpi_report(store, date_from=nov_from, date_to=nov_to, known_at=month_end)
    published_by_unit = kpi_report(store, date_from=nov_from, date_to=nov_to, known_at=month_end, by="unit")
    published_rows = replay_rows(store, Horizon(nov_to, month_end))
    assert {k: published[k] for k in PUBLISHED} == PUBLISHED
    assert load(store, LATE, "late.jsonl") == {"read": 3, "accepted": 3, "duplicates": 0, "rejected": 0}
    reproduced = kpi_report(store, date_from=nov_from, date_to=nov_to, known_at=month_end)
    corrected = kpi_report(store, date_from=nov_from, date_to=nov_to)
    corrected_dec = kpi_report(store, date_from=nov_from, date_to=nov_to, known_at=parse_known_at("2024-12-31"))
    assert replay_rows(store, Horizon(nov_to, month_end)) == published_rows
    assert kpi_report(store, date_from=nov_from, date_to=nov_to, known_at=month_end, by="unit") == published_by_unit
    # Known one second after the month ended: Q1's funds (recorded 00:00:01) count, nothing else yet.
    just_after = kpi_report(store, date_from=nov_from, date_to=nov_to, known_at=parse_known_at("2024-12-01T00:00:01"))
    # Known before the retraction was recorded: Q4 and the funds are known, the landing still stands.
    before_fix = kpi_report(store, date_from=nov_from, date_to=nov_to, known_at=parse_known_at("2024-12-03T12:00"))
    assert reproduced == published_known
    assert {k: reproduced[k] for k in PUBLISHED} == PUBLISHED
    assert reproduced["known_at"] == "2024-12-01T00:00:00+08:00"
    assert {k: corrected[k] for k in CORRECTED} == CORRECTED
    assert {k: corrected_dec[k] for k in CORRECTED} == CORRECTED
    assert (just_after["signed"], just_after["funds_wan"], just_after["landed"]) == (2, 400.0, 1)
    assert (before_fix["signed"], before_fix["landed"], before_fix["investment_wan"], before_fix["funds_wan"]) == (3, 1, 7000.0, 400.0)


def test_a_retraction_applies_from_when_it_was_recorded_whatever_its_date() -> None:
    store = MemoryLogStore()
    load(store, NOVEMBER + LATE)
    # As of 11-30 (before the retraction's own date, 12-04) the correction still applies.
    rows = {r["project_id"]: r for r in replay_rows(store, Horizon(date(2024, 11, 30)))}
    known = {r["project_id"]: r for r in replay_rows(store, Horizon(date(2024, 11, 30), parse_known_at("2024-12-03")))}
    ids = {e.event_id for e in store.events(Horizon(date(2024, 11, 30), parse_known_at("2024-11-30")))}
    assert (rows["Q2"]["stage"], rows["Q2"]["landed_on"]) == ("signed", None)
    assert (known["Q2"]["stage"], known["Q2"]["landed_on"]) == ("landed", "2024-11-20")
    assert ids == {"q1-s", "q2-s", "q2-l", "q2-f"}


def test_events_without_recorded_at_are_known_from_their_arrival() -> None:
    store = MemoryLogStore()
    load(store, [{"event_id": "n-s", "project_id": "N", "type": "signed", "occurred_at": "2024-11-05", "payload": {"name": "N", "investment_wan": 1}}])
    assert replay_rows(store, Horizon(date(2024, 11, 30), parse_known_at("2024-11-30"))) == []
    assert [r["project_id"] for r in replay_rows(store, Horizon(date(2024, 11, 30), datetime.now(UTC)))] == ["N"]
