"""A small hand-built district whose true KPIs are worked out here, shared by the KPI, replay and CLI tests.

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

from datetime import date
from typing import Any

U_BAIYUN, U_ANPING, U_XIAYUN = "白云镇", "安平街道", "夏云工业园区管委会"


def record(eid: str, pid: str, type_: str, day: str, payload: dict[str, Any] | None = None, recorded: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"event_id": eid, "project_id": pid, "type": type_, "occurred_at": day, "payload": payload or {}}
    rec["recorded_at"] = recorded or (day + "T18:00:00+08:00" if len(day) == 10 else day)
    return rec


def signed_record(eid: str, pid: str, day: str, inv: float, unit: str, industry: str, channel: str) -> dict[str, Any]:
    return record(eid, pid, "signed", day, {"name": f"{pid}项目", "investment_wan": inv, "unit": unit, "industry": industry, "channel": channel})


DISTRICT: list[dict[str, Any]] = [
    signed_record("p1-s", "P1", "2024-01-10", 10000, U_BAIYUN, "新材料", "平坝·佛山招商引资推介会"),
    record("p1-l", "P1", "landed", "2024-03-01", {"parcel_id": "PB-2024-01", "land_area_mu": 60}),
    record("p1-t", "P1", "started", "2024-04-01"),
    record("p1-f1", "P1", "funds_arrived", "2024-05-01", {"amount_wan": 3000}),
    record("p1-f2", "P1", "funds_arrived", "2024-08-01", {"amount_wan": 2000, "currency": "CNY"}),
    record("p1-p", "P1", "produced", "2024-09-01"),
    signed_record("p2-s", "P2", "2024-02-15", 5000, U_BAIYUN, "装备制造", "长三角驻点招商"),
    record("p2-l", "P2", "landed", "2024-05-10", {"factory_id": "CF-03", "floor_area_m2": 4000}),
    record("p2-f1", "P2", "funds_arrived", "2024-06-01", {"amount_wan": 1000}),
    record("p2-f2", "P2", "funds_arrived", "2024-07-01", {"amount_wan": 100, "currency": "USD"}),
    signed_record("p3-s", "P3", "2024-03-01", 8000, U_ANPING, "食品加工", "平坝·佛山招商引资推介会"),
    record("p3-l", "P3", "landed", "2024-04-01"),
    record("p3-f", "P3", "funds_arrived", "2024-04-15", {"amount_wan": 500}),
    record("p3-c", "P3", "cancelled", "2024-08-01", {"reason": "投资方资金链断裂"}),
    signed_record("p4-s", "P4", "2024-11-01", 20000, U_ANPING, "新材料", "以商招商"),
    signed_record("p5-s", "P5", "2024-06-01", 30000, U_XIAYUN, "航空零部件", "贵洽会"),
    record("p5-l", "P5", "landed", "2024-07-01"),
    record("p5-t", "P5", "started", "2024-08-01"),
    record("p5-f1", "P5", "funds_arrived", "2024-10-01", {"amount_wan": 6000}),
    record("p5-f2", "P5", "funds_arrived", "2025-01-15", {"amount_wan": 4000}),
    signed_record("p6-s", "P6", "2023-05-01", 50000, U_XIAYUN, "航空零部件", "贵洽会"),
    record("p6-l", "P6", "landed", "2023-07-01"),
    record("p6-t", "P6", "started", "2023-10-01"),
    record("p6-f", "P6", "funds_arrived", "2024-03-01", {"amount_wan": 7000}),
    record("p6-p", "P6", "produced", "2024-06-15"),
    signed_record("p7-s", "P7", "2023-02-01", 4000, U_BAIYUN, "食品加工", "网上招商"),
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


# A monthly bulletin (月通报) for November 2024, published at the end of the month, and what
# arrived after it: a late signing, a late funds arrival, and a retraction of a landing.
NOVEMBER: list[dict[str, Any]] = [
    {"event_id": "q1-s", "project_id": "Q1", "type": "signed", "occurred_at": "2024-11-05T10:00:00+08:00",
     "recorded_at": "2024-11-05T10:00:00+08:00", "payload": {"name": "Q1", "investment_wan": 1000, "unit": "白云镇"}},
    {"event_id": "q2-s", "project_id": "Q2", "type": "signed", "occurred_at": "2024-11-10",
     "recorded_at": "2024-11-10T09:00:00+08:00", "payload": {"name": "Q2", "investment_wan": 2000, "unit": "安平街道"}},
    {"event_id": "q2-l", "project_id": "Q2", "type": "landed", "occurred_at": "2024-11-20", "recorded_at": "2024-11-21T09:00:00+08:00"},
    {"event_id": "q2-f", "project_id": "Q2", "type": "funds_arrived", "occurred_at": "2024-11-25",
     "recorded_at": "2024-11-30T23:59:59+08:00", "payload": {"amount_wan": 300}},
]
LATE: list[dict[str, Any]] = [
    {"event_id": "q4-s", "project_id": "Q4", "type": "signed", "occurred_at": "2024-11-28", "recorded_at": "2024-12-03T09:00:00+08:00",
     "payload": {"name": "Q4", "investment_wan": 4000, "unit": "白云镇"}},
    {"event_id": "q1-f", "project_id": "Q1", "type": "funds_arrived", "occurred_at": "2024-11-29", "recorded_at": "2024-12-01T00:00:01+08:00",
     "payload": {"amount_wan": 100}},
    {"event_id": "q2-r", "project_id": "Q2", "type": "retracted", "occurred_at": "2024-12-04", "recorded_at": "2024-12-04T09:00:00+08:00",
     "payload": {"event_id": "q2-l", "reason": "落地时间填报有误"}},
]
PUBLISHED = {"signed": 2, "landed": 1, "started": 0, "produced": 0, "cancelled": 0, "landing_rate": 0.5, "start_rate": 0.0,
             "production_rate": 0.0, "investment_wan": 3000.0, "funds_wan": 300.0, "stalled": 0}
CORRECTED = {"signed": 3, "landed": 0, "started": 0, "produced": 0, "cancelled": 0, "landing_rate": 0.0, "start_rate": 0.0,
             "production_rate": 0.0, "investment_wan": 7000.0, "funds_wan": 400.0, "stalled": 0}
