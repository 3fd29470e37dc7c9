"""A realistic, reproducible project history for a demo district (events in wire format v1).

Projects are signed at promotion events and by resident teams, land (on a parcel or in a
standard factory when sites are given), start, produce, or are cancelled; funds arrive in
instalments; some facts are recorded late, a few are corrected by retraction, and a few
contradict their history (as real ledgers do) so anomalies show up.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from events.model import SHANGHAI

UNITS = (
    "安平街道",
    "鼓楼街道",
    "白云镇",
    "高峰镇",
    "天龙镇",
    "夏云镇",
    "乐平镇",
    "齐伯镇",
    "夏云工业园区管委会",
    "区工业和信息化局",
    "区商务局",
    "区农业农村局",
)
# Weights: the industrial park committee and the big towns bring most projects.
UNIT_WEIGHTS = (8, 6, 9, 6, 5, 10, 5, 4, 14, 7, 5, 4)

INDUSTRIES = (
    ("装备制造", "100102", (3000, 80000)),
    ("新材料", "100102", (5000, 120000)),
    ("大健康医药", "100102", (3000, 60000)),
    ("航空零部件", "100102", (8000, 150000)),
    ("电子信息", "100101", (2000, 50000)),
    ("食品加工", "100101", (1000, 20000)),
    ("农产品深加工", "100101", (800, 15000)),
    ("现代物流", "100101", (2000, 40000)),
    ("新型建材", "100103", (2000, 40000)),
    ("精细化工", "100103", (5000, 100000)),
    ("新能源汽车零部件", "100102", (5000, 200000)),
    ("文化旅游", None, (1000, 80000)),
)

CHANNELS = (
    "平坝·佛山招商引资推介会",
    "安顺·深圳高新技术产业推介会",
    "贵洽会",
    "长三角驻点招商",
    "珠三角驻点招商",
    "以商招商",
    "网上招商",
    "上门洽谈",
)

NAME_HEADS = ("贵", "黔", "云", "华", "恒", "鑫", "瑞", "盛", "宏", "安", "博", "中", "新", "天", "金", "佳", "德", "航", "曦", "灏")
NAME_TAILS = ("科技", "实业", "材料", "制造", "生物", "智能", "精工", "新能源", "食品", "物流", "装备", "医疗")
PRODUCTS = {
    "装备制造": ("智能装备生产线", "农机装备制造", "数控机床"),
    "新材料": ("高性能复合材料", "铝基新材料", "石墨烯涂层"),
    "大健康医药": ("中药饮片加工", "医用床头柜", "医疗器械"),
    "航空零部件": ("航空叶片制造及装备", "航空精密锻件", "无人机总装"),
    "电子信息": ("电子元器件", "智能终端组装", "数据中心"),
    "食品加工": ("辣椒制品加工", "预制菜中央厨房", "饮用水生产"),
    "农产品深加工": ("食用菌产业", "茶叶精制加工", "生态养殖加工"),
    "现代物流": ("冷链物流园", "电商仓储中心", "公铁联运物流"),
    "新型建材": ("装配式建材", "新型墙体材料", "石材加工"),
    "精细化工": ("精细化工中间体", "电子化学品", "水处理剂"),
    "新能源汽车零部件": ("动力电池配件", "电机电控", "汽车线束"),
    "文化旅游": ("屯堡文化旅游综合体", "康养度假区", "乡村旅游"),
}
INVESTOR_REGIONS = ("广东", "浙江", "上海", "北京", "重庆", "江苏", "福建", "深圳", "四川", "香港")


@dataclass(frozen=True, slots=True)
class Site:
    """A place a project can land: an idle parcel (``kind`` idle, area in 亩) or a factory (floor in m²)."""

    site_id: str
    kind: str  # "idle" or "factory"
    land_use: str | None
    area_mu: float | None
    floor_area_m2: float | None
    lon: float
    lat: float


def _instant(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(rng.randint(8, 18), rng.choice((0, 15, 30, 45))), tzinfo=SHANGHAI)


def _company(rng: random.Random, industry: str) -> str:
    return f"{rng.choice(INVESTOR_REGIONS)}{rng.choice(NAME_HEADS)}{rng.choice(NAME_HEADS)}{rng.choice(NAME_TAILS)}有限公司"


# The signing rate is calibrated on this span: ``n_projects`` projects are signed between ``start``
# and this day, and signing goes on at the same growing rate after it. A fixed point, not today:
# the history up to any day must not depend on the day the demo runs.
CALIBRATED_TO = date(2026, 10, 31)
# More signings in later years, as the seeds' counts grow (17 → 61 → 144): the k-th of n projects
# is signed at start + span * (k/n) ** SIGNING_CURVE.
SIGNING_CURVE = 0.7


def generate_history(
    *,
    seed: int = 2018,
    n_projects: int = 420,
    start: date = date(2019, 1, 1),
    end: date = CALIBRATED_TO,
    sites: Sequence[Site] = (),
    calibrated_to: date = CALIBRATED_TO,
) -> list[dict[str, Any]]:
    """Events (wire dicts, v1) of the projects signed from ``start`` up to ``end``, as known at ``end``.

    ``n_projects`` projects are signed between ``start`` and ``calibrated_to``; the same rate goes
    on after it. Each project's events come from its own random stream (``seed`` and its number),
    so the history is a pure function of the seed and the day: nothing occurs after ``end``, an
    event recorded after ``end``'s last instant is not known yet and left out, and a later ``end``
    keeps every earlier event unchanged (same id, same content) and only adds. With ``sites``,
    landings name a parcel or factory of the right land-use class and no site is taken twice at once.
    """
    span = (calibrated_to - start).days
    known_until = datetime.combine(end, time(23, 59, 59), tzinfo=SHANGHAI)
    free_sites = {s.site_id: s for s in sites}
    # Factories are multi-tenant: each landing takes part of the vacant floor space, never more.
    vacant_m2 = {s.site_id: float(s.floor_area_m2 or 0) for s in sites if s.kind == "factory"}
    events: list[dict[str, Any]] = []
    n = 0
    while True:
        n += 1
        rng = random.Random(f"{seed}:{n}")
        signed_day = start + timedelta(days=int(span * ((n - rng.random()) / n_projects) ** SIGNING_CURVE))
        if signed_day > end:
            return events
        project = _project_history(rng, n, signed_day, free_sites, vacant_m2)
        events.extend(ev for ev, occurred, recorded in project if occurred.date() <= end and recorded <= known_until)


def _project_history(
    rng: random.Random, n: int, signed_day: date, free_sites: dict[str, Site], vacant_m2: dict[str, float]
) -> list[tuple[dict[str, Any], datetime, datetime]]:
    """Every event project ``n`` will ever have (with when it occurs and when it is recorded).

    The whole life is drawn whatever the demo's end, so the random stream and the sites taken do
    not depend on it; the caller keeps what has happened and is known by then.
    """
    pid = f"PB{signed_day.year}-{n:04d}"
    drawn: list[tuple[dict[str, Any], datetime, datetime]] = []

    def emit(type_: str, day: date, payload: dict[str, Any] | None = None, *, late_days: int | None = None) -> str:
        occurred = _instant(day, rng)
        if late_days is None:
            late_days = rng.choices((0, rng.randint(1, 10), rng.randint(30, 75)), weights=(55, 38, 7))[0]
        recorded = occurred + timedelta(days=late_days, hours=rng.randint(0, 8))
        event_id = f"{pid}-{type_}-{len(drawn) + 1:02d}"
        ev: dict[str, Any] = {
            "event_id": event_id,
            "project_id": pid,
            "type": type_,
            "occurred_at": occurred.isoformat(),
            "recorded_at": recorded.isoformat(),
            "schema_version": 1,
            "payload": payload or {},
        }
        drawn.append((ev, occurred, recorded))
        return event_id

    industry, land_use, (lo, hi) = rng.choice(INDUSTRIES)
    investment = round(rng.uniform(lo, hi) * rng.choice((0.5, 1, 1, 1.5)), 0)
    unit = rng.choices(UNITS, weights=UNIT_WEIGHTS)[0]
    foreign = rng.random() < 0.06
    goes_on = rng.random() <= 0.72
    # Still under negotiation: a few projects that have not landed stay confidential.
    confidential = not goes_on and rng.random() < 0.2
    payload: dict[str, Any] = {
        "name": f"{rng.choice(PRODUCTS[industry])}项目",
        "investment_wan": investment,
        "investor": _company(rng, industry),
        "industry": industry,
        "unit": unit,
        "channel": rng.choice(CHANNELS),
        "foreign": foreign,
        "confidential": confidential,
    }
    if foreign:
        payload["foreign_usd_wan"] = round(investment / 7.1, 1)
    emit("signed", signed_day, payload, late_days=rng.choice((0, 0, 1, 3)))

    cancel_at_stage = rng.random() < 0.11
    if not goes_on:
        if cancel_at_stage:
            emit("cancelled", signed_day + timedelta(days=rng.randint(60, 400)), {"reason": rng.choice(("投资方资金链断裂", "未能取得环评批复", "企业战略调整"))})
        return drawn  # signed and nothing more yet (some will look stalled)
    landed_day = signed_day + timedelta(days=rng.randint(20, 240))
    land_payload = _land_payload(rng, free_sites, vacant_m2, land_use, investment)
    landed_id = emit("landed", landed_day, land_payload)
    if rng.random() < 0.03:
        # A landing reported on the wrong day, corrected later: retraction plus the right event.
        fix_day = landed_day + timedelta(days=rng.randint(15, 40))
        emit("retracted", fix_day, {"event_id": landed_id, "reason": "落地时间填报有误"}, late_days=0)
        emit("landed", landed_day + timedelta(days=rng.randint(5, 20)), land_payload, late_days=0)
    _draw_funds(rng, emit, landed_day, investment)
    if cancel_at_stage and rng.random() < 0.6:
        # The cancellation releases the site in the land status; the generator does not hand it
        # out again, since projects overlap in time.
        emit("cancelled", landed_day + timedelta(days=rng.randint(30, 300)), {"reason": rng.choice(("项目用地规划调整", "市场变化暂停投资", "企业迁址"))})
        return drawn
    if rng.random() > 0.82:
        return drawn  # landed, not started: stalls after six months
    started_day = landed_day + timedelta(days=rng.randint(15, 180))
    if rng.random() < 0.015:
        # The ledger reports 开工 without ever recording 落地: an anomaly the bureau must fix.
        drawn[:] = [d for d in drawn if d[0]["event_id"] != landed_id]
    emit("started", started_day)
    if rng.random() <= 0.7:
        emit("produced", started_day + timedelta(days=rng.randint(120, 540)))
    return drawn


def _land_payload(
    rng: random.Random, free_sites: dict[str, Site], vacant_m2: dict[str, float], land_use: str | None, investment_wan: float
) -> dict[str, Any]:
    """The payload of a landing: part of a factory's vacant floor (m²) or of a parcel (mu); empty without a free site."""
    site = _pick_site(rng, free_sites, land_use, investment_wan)
    if site is None:
        return {}
    if site.kind == "factory":
        taken_m2 = float(round(min(vacant_m2[site.site_id], rng.uniform(1500, 9000)), 0))
        vacant_m2[site.site_id] -= taken_m2
        if vacant_m2[site.site_id] < 1500:
            del free_sites[site.site_id]
        return {"factory_id": site.site_id, "floor_area_m2": taken_m2}
    take = site.area_mu if rng.random() < 0.6 else round((site.area_mu or 0) * rng.uniform(0.3, 0.8), 1)
    return {"parcel_id": site.site_id, "land_area_mu": take}


def _draw_funds(rng: random.Random, emit: Callable[[str, date, dict[str, Any]], str], landed_day: date, investment_wan: float) -> None:
    """Up to five arrivals of capital (万元 CNY) after the landing, never more than the investment in all."""
    funds_total = 0.0
    day = landed_day
    for _ in range(rng.randint(1, 5)):
        day = day + timedelta(days=rng.randint(20, 200))
        amount = round(investment_wan * rng.uniform(0.05, 0.3), 0)
        if funds_total + amount > investment_wan:
            break
        funds_total += amount
        emit("funds_arrived", day, {"amount_wan": amount, "currency": "CNY"})


def _pick_site(rng: random.Random, free: dict[str, Site], land_use: str | None, investment_wan: float) -> Site | None:
    if not free:
        return None
    want_factory = investment_wan < 15000 and rng.random() < 0.55
    pool = [s for s in free.values() if (s.kind == "factory") == want_factory and (s.kind == "factory" or land_use is None or s.land_use == land_use)]
    if not pool:
        return None
    site = rng.choice(pool)
    if site.kind == "idle":
        del free[site.site_id]
    return site
