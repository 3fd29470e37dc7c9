"""Seed-style KPIs on a small hand-built district whose true answer is worked out here.

The district, 2024 (as of 2024-12-31):

| project | unit | signed | landed | started | produced | cancelled | investment | CNY funds by 12-31 |
|---|---|---|---|---|---|---|---|---|
| P1 | 白云镇 | 01-10 | 03-01 | 04-01 | 09-01 | | 10000 | 3000 + 2000 |
| P2 | 白云镇 | 02-15 | 05-10 | | | | 5000 | 1000 (+100 万美元, not CNY) |
| P3 | 安平街道 | 03-01 | 04-01 | | | 08-01 | 8000 | 500 |
| P4 | 安平街道 | 11-01 | | | | | 20000 | 0 |
| P5 | 夏云工业园区管委会 | 06-01 | 07-01 | 08-01 | | | 30000 | 6000 (+4000 on 2025-01-15, after the as-of date) |
| P6 | 夏云工业园区管委会 | 2023-05-01 | 2023-07-01 | 2023-10-01 | 2024-06-15 | | 50000 | 7000 on 2024-03-01 |
| P7 | 白云镇 | 2023-02-01 | | | | | 4000 | 0 |

Cohort 2024 (P1–P5): signed 5, landed 4 (P1 P2 P3 P5; P3 landed before it was cancelled),
started 2, produced 1, cancelled 1; 落地率 0.8, 开工率 0.4, 投产率 0.2; investment 73000;
funds 5000 + 1000 + 500 + 6000 = 12500; stalled: P2 only (last change 05-10 ≤ 06-30) → 1.

Flow 2024: stage entries in 2024 whatever the signing date: signed 5, landed 4, started 2,
produced 2 (P1 and the 2023 project P6: seed 000's 新增投产 is this figure), cancelled 1,
investment 73000 (signed in 2024), funds 12500 + 7000 = 19500, stalled 2 (P2 and P7).

By unit (cohort): 夏云工业园区管委会 funds 6000 / investment 30000; 白云镇 6000 / 15000;
安平街道 500 / 28000 → ranking 夏云, 白云 (tie on funds, less investment), 安平.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from events.kpis import KPI_KEYS, compute_kpis
from events.model import end_of_day
from events.projection import fold
from events.validation import validate_record

U_BAIYUN, U_ANPING, U_XIAYUN = "白云镇", "安平街道", "夏云工业园区管委会"


def _e(eid: str, pid: str, type_: str, day: str, payload: dict[str, Any] | None = None, recorded: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"event_id": eid, "project_id": pid, "type": type_, "occurred_at": day, "payload": payload or {}}
    rec["recorded_at"] = recorded or (day + "T18:00:00+08:00" if len(day) == 10 else day)
    return rec


def _signed(eid: str, pid: str, day: str, inv: float, unit: str, industry: str, channel: str) -> dict[str, Any]:
    return _e(eid, pid, "signed", day, {"name": f"{pid}项目", "investment_wan": inv, "unit": unit, "industry": industry, "channel": channel})


DISTRICT: list[dict[str, Any]] = [
    _signed("p1-s", "P1", "2024-01-10", 10000, U_BAIYUN, "新材料", "平坝·佛山招商引资推介会"),
    _e("p1-l", "P1", "landed", "2024-03-01", {"parcel_id": "PB-2024-01", "land_area_mu": 60}),
    _e("p1-t", "P1", "started", "2024-04-01"),
    _e("p1-f1", "P1", "funds_arrived", "2024-05-01", {"amount_wan": 3000}),
    _e("p1-f2", "P1", "funds_arrived", "2024-08-01", {"amount_wan": 2000, "currency": "CNY"}),
    _e("p1-p", "P1", "produced", "2024-09-01"),
    _signed("p2-s", "P2", "2024-02-15", 5000, U_BAIYUN, "装备制造", "长三角驻点招商"),
    _e("p2-l", "P2", "landed", "2024-05-10", {"factory_id": "CF-03", "floor_area_m2": 4000}),
    _e("p2-f1", "P2", "funds_arrived", "2024-06-01", {"amount_wan": 1000}),
    _e("p2-f2", "P2", "funds_arrived", "2024-07-01", {"amount_wan": 100, "currency": "USD"}),
    _signed("p3-s", "P3", "2024-03-01", 8000, U_ANPING, "食品加工", "平坝·佛山招商引资推介会"),
    _e("p3-l", "P3", "landed", "2024-04-01"),
    _e("p3-f", "P3", "funds_arrived", "2024-04-15", {"amount_wan": 500}),
    _e("p3-c", "P3", "cancelled", "2024-08-01", {"reason": "投资方资金链断裂"}),
    _signed("p4-s", "P4", "2024-11-01", 20000, U_ANPING, "新材料", "以商招商"),
    _signed("p5-s", "P5", "2024-06-01", 30000, U_XIAYUN, "航空零部件", "贵洽会"),
    _e("p5-l", "P5", "landed", "2024-07-01"),
    _e("p5-t", "P5", "started", "2024-08-01"),
    _e("p5-f1", "P5", "funds_arrived", "2024-10-01", {"amount_wan": 6000}),
    _e("p5-f2", "P5", "funds_arrived", "2025-01-15", {"amount_wan": 4000}),
    _signed("p6-s", "P6", "2023-05-01", 50000, U_XIAYUN, "航空零部件", "贵洽会"),
    _e("p6-l", "P6", "landed", "2023-07-01"),
    _e("p6-t", "P6", "started", "2023-10-01"),
    _e("p6-f", "P6", "funds_arrived", "2024-03-01", {"amount_wan": 7000}),
    _e("p6-p", "P6", "produced", "2024-06-15"),
    _signed("p7-s", "P7", "2023-02-01", 4000, U_BAIYUN, "食品加工", "网上招商"),
]

AS_OF = date(2024, 12, 31)
FROM, TO = date(2024, 1, 1), date(2024, 12, 31)

COHORT_2024 = {
    "signed": 5,
    "landed": 4,
    "started": 2,
    "produced": 1,
    "cancelled": 1,
    "landing_rate": 0.8,
    "start_rate": 0.4,
    "production_rate": 0.2,
    "investment_wan": 73000.0,
    "funds_wan": 12500.0,
    "stalled": 1,
}
FLOW_2024 = {
    "signed": 5,
    "landed": 4,
    "started": 2,
    "produced": 2,
    "cancelled": 1,
    "landing_rate": 0.8,
    "start_rate": 0.4,
    "production_rate": 0.4,
    "investment_wan": 73000.0,
    "funds_wan": 19500.0,
    "stalled": 2,
}
BY_UNIT_GROUPS = [
    {"key": U_XIAYUN, "rank": 1, "signed": 1, "landed": 1, "started": 1, "produced": 0, "cancelled": 0, "landing_rate": 1.0,
     "start_rate": 1.0, "production_rate": 0.0, "investment_wan": 30000.0, "funds_wan": 6000.0, "stalled": 0},
    {"key": U_BAIYUN, "rank": 2, "signed": 2, "landed": 2, "started": 1, "produced": 1, "cancelled": 0, "landing_rate": 1.0,
     "start_rate": 0.5, "production_rate": 0.5, "investment_wan": 15000.0, "funds_wan": 6000.0, "stalled": 1},
    {"key": U_ANPING, "rank": 3, "signed": 2, "landed": 1, "started": 0, "produced": 0, "cancelled": 1, "landing_rate": 0.5,
     "start_rate": 0.0, "production_rate": 0.0, "investment_wan": 28000.0, "funds_wan": 500.0, "stalled": 0},
]


def states_as_of(day: date) -> dict[str, Any]:
    before = end_of_day(day)
    events = [validate_record(r) for r in DISTRICT]
    return fold(e for e in events if e.occurred_at < before)


def test_cohort_kpis() -> None:
    got = compute_kpis(states_as_of(AS_OF).values(), date_from=FROM, date_to=TO)
    assert got == COHORT_2024
    assert tuple(got) == KPI_KEYS


def test_flow_kpis_count_the_2023_project_produced_in_2024() -> None:
    got = compute_kpis(states_as_of(AS_OF).values(), date_from=FROM, date_to=TO, mode="flow")
    assert got == FLOW_2024
    assert got["produced"] - COHORT_2024["produced"] == 1


def test_ranking_by_responsible_unit() -> None:
    got = compute_kpis(states_as_of(AS_OF).values(), date_from=FROM, date_to=TO, by="unit")
    assert got == {"by": "unit", "groups": BY_UNIT_GROUPS, "total": COHORT_2024}


def test_by_industry_and_channel() -> None:
    states = states_as_of(AS_OF).values()
    ind = compute_kpis(states, date_from=FROM, date_to=TO, by="industry")
    assert [(g["key"], g["signed"], g["funds_wan"], g["investment_wan"]) for g in ind["groups"]] == [
        ("航空零部件", 1, 6000.0, 30000.0),
        ("新材料", 2, 5000.0, 30000.0),
        ("装备制造", 1, 1000.0, 5000.0),
        ("食品加工", 1, 500.0, 8000.0),
    ]
    ch = compute_kpis(states, date_from=FROM, date_to=TO, by="channel")
    assert [(g["key"], g["signed"], g["funds_wan"]) for g in ch["groups"]] == [
        ("贵洽会", 1, 6000.0),
        ("平坝·佛山招商引资推介会", 2, 5500.0),
        ("长三角驻点招商", 1, 1000.0),
        ("以商招商", 1, 0.0),
    ]


def test_a_project_without_a_unit_is_grouped_as_unassigned() -> None:
    rec = _e("u-s", "U", "signed", "2024-05-05", {"name": "无责任单位项目", "investment_wan": 1})
    states = fold([validate_record(rec)])
    got = compute_kpis(states.values(), date_from=FROM, date_to=TO, by="unit")
    assert [g["key"] for g in got["groups"]] == ["(未填)"]


def test_one_quarter_and_a_later_as_of_date() -> None:
    # Q1 2024 cohort: P1, P2, P3; as of 03-31 only P1 has landed (P3 lands 04-01).
    q1 = compute_kpis(states_as_of(date(2024, 3, 31)).values(), date_from=date(2024, 1, 1), date_to=date(2024, 3, 31))
    assert {k: q1[k] for k in ("signed", "landed", "started", "landing_rate", "investment_wan", "funds_wan")} == {
        "signed": 3, "landed": 1, "started": 0, "landing_rate": round(1 / 3, 4), "investment_wan": 23000.0, "funds_wan": 0.0,
    }
    # The same cohort as of 2025-01-31 sees P5's January funds? No: P5 was signed in June, not in Q1.
    later = compute_kpis(states_as_of(date(2025, 1, 31)).values(), date_from=FROM, date_to=TO, as_of=date(2025, 1, 31))
    assert later["funds_wan"] == 16500.0  # P5's 4000 arrived 2025-01-15
    assert later["stalled"] == 1  # P2 still (last change 2024-05-10 ≤ 2024-07-31)


def test_empty_period_has_no_rates() -> None:
    got = compute_kpis(states_as_of(AS_OF).values(), date_from=date(2020, 1, 1), date_to=date(2020, 12, 31))
    assert got["signed"] == 0 and got["landing_rate"] is None and got["start_rate"] is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="after"):
        compute_kpis([], date_from=TO, date_to=FROM)
    with pytest.raises(ValueError, match="mode"):
        compute_kpis([], date_from=FROM, date_to=TO, mode="stock")  # type: ignore[arg-type]


def test_recorded_dates_are_all_on_the_day() -> None:
    assert all(datetime.fromisoformat(r["recorded_at"]).date().isoformat() == r["occurred_at"][:10] for r in DISTRICT)
