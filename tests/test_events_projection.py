"""The fold: business-time order, retractions, anomalies kept, stalled rule."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from events.calendar import months_before
from events.model import Event, Stage
from events.projection import Anomaly, active_events, fold
from events.validation import validate_record


def ev(event_id: str, project_id: str, type_: str, occurred_at: str, payload: dict[str, Any] | None = None, recorded_at: str | None = None) -> Event:
    rec: dict[str, Any] = {"event_id": event_id, "project_id": project_id, "type": type_, "occurred_at": occurred_at, "payload": payload or {}}
    if recorded_at:
        rec["recorded_at"] = recorded_at
    return validate_record(rec)


def signed(eid: str, pid: str, day: str, inv: float = 1000, **extra: Any) -> Event:
    return ev(eid, pid, "signed", day, {"name": f"{pid}项目", "investment_wan": inv, **extra})


HISTORY = [
    signed("a1", "A", "2024-01-10", 10000, unit="白云镇", industry="新材料"),
    ev("a2", "A", "landed", "2024-03-01", {"parcel_id": "PB-01", "land_area_mu": 50}),
    ev("a3", "A", "started", "2024-04-01"),
    ev("a4", "A", "funds_arrived", "2024-05-01", {"amount_wan": 3000}),
    ev("a5", "A", "funds_arrived", "2024-06-01", {"amount_wan": 100, "currency": "USD"}),
    ev("a6", "A", "produced", "2024-09-01"),
    signed("b1", "B", "2024-02-01", 5000, unit="安平街道"),
    ev("b2", "B", "landed", "2024-02-01"),  # same day as signing
    ev("b3", "B", "cancelled", "2024-07-01", {"reason": "企业战略调整"}),
]


def test_in_order_fold() -> None:
    states = fold(HISTORY)
    a, b = states["A"], states["B"]
    assert list(states) == ["A", "B"]
    assert a.stage is Stage.PRODUCED
    assert a.stage_dates() == {
        "signed_on": date(2024, 1, 10),
        "landed_on": date(2024, 3, 1),
        "started_on": date(2024, 4, 1),
        "produced_on": date(2024, 9, 1),
        "cancelled_on": None,
    }
    assert (a.funds_wan, a.funds_usd_wan, a.investment_wan, a.unit, a.industry) == (3000.0, 100.0, 10000.0, "白云镇", "新材料")
    assert a.sites[0].parcel_id == "PB-01" and a.sites[0].land_area_mu == 50
    assert a.anomalies == []
    assert b.stage is Stage.CANCELLED and b.landed_on == date(2024, 2, 1) and b.cancel_reason == "企业战略调整"
    assert b.reached == 2 and b.anomalies == []


def test_out_of_order_arrival_gives_the_same_state() -> None:
    in_order = fold(HISTORY)
    for seed in range(20):
        shuffled = list(HISTORY)
        random.Random(seed).shuffle(shuffled)
        assert fold(shuffled) == in_order
    assert fold(list(reversed(HISTORY))) == in_order


def test_same_day_landed_listed_before_signed_is_no_anomaly() -> None:
    states = fold([ev("x2", "X", "landed", "2024-05-05"), signed("x1", "X", "2024-05-05")])
    assert states["X"].stage is Stage.LANDED and states["X"].anomalies == []


def test_retraction_and_retracted_retraction() -> None:
    base = [signed("s", "R", "2024-01-01"), ev("l", "R", "landed", "2024-02-01")]
    r1 = ev("r1", "R", "retracted", "2024-02-20", {"event_id": "l", "reason": "落地时间填报有误"})
    r2 = ev("r2", "R", "retracted", "2024-03-01", {"event_id": "r1", "reason": "撤回更正有误"})
    r3 = ev("r3", "R", "retracted", "2024-03-05", {"event_id": "r2"})
    assert fold(base)["R"].stage is Stage.LANDED
    withdrawn = fold([*base, r1])["R"]
    assert withdrawn.stage is Stage.SIGNED and withdrawn.landed_on is None and withdrawn.anomalies == []
    restored = fold([*base, r1, r2])["R"]
    assert restored.stage is Stage.LANDED and restored.landed_on == date(2024, 2, 1)
    assert fold([r3, *base, r2, r1])["R"].stage is Stage.SIGNED  # r3 withdraws r2, so r1 stands again
    assert [e.event_id for e in active_events([*base, r1, r2])] == ["s", "l"]
    corrected = fold([*base, r1, ev("l2", "R", "landed", "2024-02-10")])["R"]
    assert corrected.landed_on == date(2024, 2, 10) and corrected.anomalies == []


def test_retraction_of_a_funds_arrival_and_of_an_unknown_event() -> None:
    hist = [
        signed("s", "F", "2024-01-01"),
        ev("f1", "F", "funds_arrived", "2024-02-01", {"amount_wan": 700}),
        ev("f2", "F", "funds_arrived", "2024-03-01", {"amount_wan": 300}),
        ev("r", "F", "retracted", "2024-03-05", {"event_id": "f1"}),
        ev("r-nothing", "F", "retracted", "2024-03-06", {"event_id": "no-such-event"}),
    ]
    assert fold(hist)["F"].funds_wan == 300.0


def test_retracting_the_signing_leaves_a_reported_anomaly() -> None:
    hist = [signed("s", "G", "2024-01-01"), ev("l", "G", "landed", "2024-02-01"), ev("r", "G", "retracted", "2024-03-01", {"event_id": "s"})]
    g = fold(hist)["G"]
    assert g.signed_on is None and g.stage is Stage.LANDED
    assert g.anomalies == [Anomaly("landed_before_signed", "l", "landed on 2024-02-01 before any signing")]


def test_anomalies_are_kept_and_reported() -> None:
    hist = [
        # produced before signed (the ledger got the signing date wrong)
        ev("p", "P", "produced", "2024-02-01"),
        signed("ps", "P", "2024-03-01"),
        # landed after cancelled
        signed("cs", "C", "2024-01-01"),
        ev("cc", "C", "cancelled", "2024-02-01"),
        ev("cl", "C", "landed", "2024-03-01"),
        # a skipped stage: started without landing
        signed("ks", "K", "2024-01-01"),
        ev("kt", "K", "started", "2024-02-01"),
        # a second signing, and funds before any signing
        ev("df", "D", "funds_arrived", "2024-01-01", {"amount_wan": 5}),
        signed("d1", "D", "2024-01-02"),
        signed("d2", "D", "2024-01-03", 99999),
    ]
    s = fold(hist)
    assert s["P"].anomalies == [Anomaly("produced_before_signed", "p", "produced on 2024-02-01 before any signing")]
    assert s["P"].stage is Stage.PRODUCED and s["P"].signed_on == date(2024, 3, 1) and s["P"].produced_on == date(2024, 2, 1)
    assert s["C"].anomalies == [Anomaly("landed_after_cancelled", "cl", "landed on 2024-03-01 after cancellation on 2024-02-01")]
    assert s["C"].stage is Stage.CANCELLED and s["C"].landed_on is None
    assert s["K"].anomalies == [Anomaly("skipped_stage", "kt", "started on 2024-02-01 without landed")]
    assert s["K"].stage is Stage.STARTED and s["K"].landed_on is None
    assert [a.code for a in s["D"].anomalies] == ["funds_before_signed", "duplicate_signed"]
    assert s["D"].investment_wan == 1000 and s["D"].funds_wan == 5
    assert str(s["K"].anomalies[0]) == "skipped_stage: started on 2024-02-01 without landed (event kt)"
    row = s["C"].to_row(date(2024, 12, 31))
    assert row["anomalies"] == ["landed_after_cancelled: landed on 2024-03-01 after cancellation on 2024-02-01 (event cl)"]


def test_backwards_and_duplicate_stages() -> None:
    hist = [
        signed("s", "B", "2024-01-01"),
        ev("l", "B", "landed", "2024-02-01"),
        ev("t", "B", "started", "2024-03-01"),
        ev("l2", "B", "landed", "2024-04-01"),
        ev("t2", "B", "started", "2024-05-01"),
        ev("c", "B", "cancelled", "2024-06-01"),
        ev("c2", "B", "cancelled", "2024-07-01"),
    ]
    b = fold(hist)["B"]
    assert [a.code for a in b.anomalies] == ["landed_after_started", "duplicate_started", "duplicate_cancelled"]
    assert b.landed_on == date(2024, 2, 1) and b.cancelled_on == date(2024, 6, 1)
    p = fold([signed("s", "Q", "2024-01-01"), ev("p", "Q", "produced", "2024-02-01"), ev("c", "Q", "cancelled", "2024-03-01")])["Q"]
    assert p.stage is Stage.PRODUCED
    assert [a.code for a in p.anomalies] == ["skipped_stage", "cancelled_after_produced"]


def test_stalled_rule_six_months_without_a_stage_change() -> None:
    assert months_before(date(2024, 12, 31), 6) == date(2024, 6, 30)
    assert months_before(date(2024, 8, 31), 6) == date(2024, 2, 29)
    assert months_before(date(2024, 3, 15), 6) == date(2023, 9, 15)
    s = fold([signed("s", "S", "2024-01-10"), ev("l", "S", "landed", "2024-06-30"), ev("f", "S", "funds_arrived", "2024-12-01", {"amount_wan": 1})])["S"]
    assert s.last_change_on == date(2024, 6, 30)  # funds are no stage change
    assert s.is_stalled(date(2024, 12, 29)) is False  # six months back is 06-29: changed since
    assert s.is_stalled(date(2024, 12, 30)) is True  # six months back is 06-30: exactly six months
    produced = fold([signed("s", "T", "2020-01-01"), ev("p", "T", "produced", "2020-02-01")])["T"]
    cancelled = fold([signed("s", "U", "2020-01-01"), ev("c", "U", "cancelled", "2020-02-01")])["U"]
    assert produced.is_stalled(date(2024, 1, 1)) is False and cancelled.is_stalled(date(2024, 1, 1)) is False


def test_replay_row_shape() -> None:
    row = fold(HISTORY)["A"].to_row(date(2024, 12, 31))
    assert row == {
        "project_id": "A",
        "name": "A项目",
        "stage": "produced",
        "signed_on": "2024-01-10",
        "landed_on": "2024-03-01",
        "started_on": "2024-04-01",
        "produced_on": "2024-09-01",
        "cancelled_on": None,
        "investment_wan": 10000.0,
        "funds_wan": 3000.0,
        "funds_usd_wan": 100.0,
        "unit": "白云镇",
        "industry": "新材料",
        "channel": None,
        "investor": None,
        "confidential": False,
        "stalled": False,
        "anomalies": [],
        "merged_into": None,
    }
