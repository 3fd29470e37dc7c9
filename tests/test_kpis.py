"""Seed-style KPIs on the hand-built district of ``tests/kpi_district.py`` (its true answer is worked out there)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from events.kpis import KPI_KEYS, compute_kpis
from events.projection import fold
from events.store import Horizon
from events.validation import validate_record
from tests.kpi_district import AS_OF, BY_UNIT_GROUPS, COHORT_2024, DISTRICT, FLOW_2024, FROM, TO, record


def states_as_of(day: date) -> dict[str, Any]:
    horizon = Horizon(day)
    return fold(e for e in map(validate_record, DISTRICT) if horizon.sees(e))


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
    rec = record("u-s", "U", "signed", "2024-05-05", {"name": "无责任单位项目", "investment_wan": 1})
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
