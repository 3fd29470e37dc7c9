"""The workspace's test warehouse: a small demo district (land, parks, 120 projects) plus the cases a
workspace must handle — a confidential project, hostile names, a late correction, a retraction.

Loaded once per test session into its own database (``web_district`` fixtures in conftest), so page
and API tests read a realistic warehouse without loading it per test. Tests that write use their
own projects (ids starting ``T-``) or the emptied ``db``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine

from events.calendar import previous_month_end
from events.model import SHANGHAI
from events.store import Incoming
from tests.webutil import UNIT_A, UNIT_B
from warehouse import read_models
from warehouse.event_store import load_records

HOSTILE_NAMES = ('<script>alert("x")</script>项目', '"><img src=x onerror=alert(1)>', "'; DROP TABLE event_log; --")
CONFIDENTIAL_NAME = "机密洽谈项目·勿公开"


@dataclass(frozen=True)
class WebDistrict:
    today: date
    history_end: date
    confidential_project: str  # project id, in UNIT_B
    hostile_projects: tuple[str, ...]  # project ids, in UNIT_A
    unit_a_project: str  # an ordinary project of UNIT_A
    unit_b_project: str  # an ordinary project of UNIT_B
    published_at: datetime  # an instant before the late correction was recorded
    events: int


def _event(event_id: str, project_id: str, type_: str, occurred: date, payload: dict[str, Any], recorded: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "project_id": project_id,
        "type": type_,
        "occurred_at": occurred.isoformat(),
        "recorded_at": recorded.isoformat(),
        "payload": payload,
    }


def _extra_events(end: date) -> tuple[list[dict[str, Any]], dict[str, str], datetime]:
    signed_on = end - timedelta(days=200)
    at = datetime.combine(end - timedelta(days=150), datetime.min.time(), SHANGHAI)
    events: list[dict[str, Any]] = []
    ids: dict[str, str] = {}
    base = {"investment_wan": 12000, "investor": "某测试投资公司", "industry": "新材料"}
    events.append(_event("T-conf-s", "T-CONF", "signed", signed_on, {**base, "name": CONFIDENTIAL_NAME, "unit": UNIT_B, "confidential": True}, at))
    ids["confidential"] = "T-CONF"
    for i, name in enumerate(HOSTILE_NAMES):
        pid = f"T-EVIL-{i}"
        events.append(_event(f"{pid}-s", pid, "signed", signed_on, {**base, "name": name, "unit": UNIT_A, "investor": name}, at))
        ids[f"hostile{i}"] = pid
    events.append(_event("T-A-s", "T-A", "signed", signed_on, {**base, "name": "园区测试项目A", "unit": UNIT_A}, at))
    events.append(_event("T-A-l", "T-A", "landed", signed_on + timedelta(days=30), {"land_area_mu": 50}, at))
    events.append(_event("T-B-s", "T-B", "signed", signed_on, {**base, "name": "街道测试项目B", "unit": UNIT_B}, at))
    # A start recorded late (after the "published" instant), and a retracted landing: corrections.
    late = at + timedelta(days=60)
    events.append(_event("T-A-st", "T-A", "started", signed_on + timedelta(days=60), {}, late))
    events.append(_event("T-B-l", "T-B", "landed", signed_on + timedelta(days=40), {"land_area_mu": 20}, at))
    events.append(_event("T-B-r", "T-B", "retracted", signed_on + timedelta(days=41), {"event_id": "T-B-l", "reason": "录入错误 entered by mistake"}, late))
    ids["unit_a"], ids["unit_b"] = "T-A", "T-B"
    return events, ids, at + timedelta(days=30)


def load_web_district(engine: Engine, out_dir: Path, today: date, *, projects: int = 120) -> WebDistrict:
    from demo.district import load_demo_district
    from demo.history import generate_history

    end = previous_month_end(today)
    district, _ = load_demo_district(engine, out_dir)
    history = generate_history(n_projects=projects, start=date(2019, 1, 1), end=end, sites=district.sites())
    extra, ids, published_at = _extra_events(end)
    records = [Incoming(orjson.dumps(ev), "test:web-district", str(i)) for i, ev in enumerate([*history, *extra])]
    result = load_records(engine, records)
    read_models.refresh(engine)
    return WebDistrict(
        today=today,
        history_end=end,
        confidential_project=ids["confidential"],
        hostile_projects=tuple(ids[f"hostile{i}"] for i in range(len(HOSTILE_NAMES))),
        unit_a_project=ids["unit_a"],
        unit_b_project=ids["unit_b"],
        published_at=published_at,
        events=result.accepted,
    )


def dashboard_event(eid: str, pid: str, type_: str, on: date, payload: dict[str, Any], recorded: datetime) -> Incoming:
    record = {"event_id": eid, "project_id": pid, "type": type_, "occurred_at": on.isoformat(), "recorded_at": recorded.isoformat(), "payload": payload}
    return Incoming(orjson.dumps(record), "test:dashboard", eid)


def hostile_unit_events(end: date) -> list[Incoming]:
    """Projects whose responsible units are hostile names (and a formula), some behind the read models."""
    at = datetime.combine(end - timedelta(days=90), datetime.min.time(), SHANGHAI)
    base = {"investment_wan": 5000, "investor": "某公司", "industry": "新材料"}
    units = [*HOSTILE_NAMES, "=HYPERLINK(\"http://x\",\"y\")"]
    out = []
    for i, unit in enumerate(units):
        signed = end - timedelta(days=60 + 30 * i)
        out.append(dashboard_event(f"H{i}-s", f"H{i}", "signed", signed, {**base, "name": f"项目{i}", "unit": unit}, at))
        out.append(dashboard_event(f"H{i}-f", f"H{i}", "funds_arrived", signed + timedelta(days=5), {"amount_wan": 100 * (i + 1)}, at))
        if i % 2:
            out.append(dashboard_event(f"H{i}-l", f"H{i}", "landed", signed + timedelta(days=10), {"land_area_mu": 10}, at))
    return out
