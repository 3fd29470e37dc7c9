"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from events.model import SHANGHAI, Event, EventType

PROJECTS = ("P1", "P2", "P3", "P4")
BASE = datetime(2024, 1, 1, tzinfo=SHANGHAI)
ZONES = (SHANGHAI, UTC, timezone(timedelta(hours=-5)))
KINDS = ("signed", "landed", "started", "produced", "cancelled", "funds_arrived", "retracted", "merged")


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """Several projects, every event type, few distinct days (so same-day and same-instant events
    are common), instants written in different zones, retractions of earlier events and of
    retractions, merges of duplicates (and their retraction), repeated stages (anomalies)."""
    n = draw(st.integers(min_value=1, max_value=30))
    events: list[Event] = []
    for i in range(n):
        pid = draw(st.sampled_from(PROJECTS[: draw(st.integers(1, len(PROJECTS)))]))
        kind = draw(st.sampled_from(KINDS))
        minutes = draw(st.sampled_from((0, 30, 8 * 60, 16 * 60, 23 * 60 + 59)))
        day = draw(st.integers(0, 6))
        occurred = (BASE + timedelta(days=day, minutes=minutes)).astimezone(draw(st.sampled_from(ZONES)))
        payload: dict[str, Any] = {}
        if kind == "signed":
            payload = {
                "name": f"项目{i}",
                "investment_wan": draw(st.sampled_from((0, 500.0, 1234.5, 8000))),
                "unit": draw(st.sampled_from(("白云镇", "安平街道", None))),
                "industry": draw(st.sampled_from(("新材料", "装备制造"))),
            }
            secret = draw(st.sampled_from((None, True, False)))  # events.disclosure: withdrawn signings count too
            if secret is not None:
                payload["confidential"] = secret
        elif kind == "funds_arrived":
            payload = {"amount_wan": draw(st.sampled_from((1.0, 250.5, 1000))), "currency": draw(st.sampled_from(("CNY", "USD")))}
        elif kind == "cancelled":
            payload = {"reason": "企业战略调整"}
        elif kind == "landed":
            payload = {"parcel_id": f"PB-{i}", "land_area_mu": 12.5}
        elif kind == "merged":
            # A duplicate merged into another project (known or not); retractions may withdraw it.
            into = draw(st.sampled_from([p for p in PROJECTS if p != pid]))
            payload = {"into": into, "reason": "重复签约"}
        elif kind == "retracted":
            if n == 1:
                continue
            # Any other event of the history, earlier or later, a retraction too (cycles included).
            target = draw(st.sampled_from([j for j in range(n) if j != i]))
            payload = {"event_id": f"e{target:02d}", "reason": "更正"}
        events.append(Event(f"e{i:02d}", pid, EventType(kind), occurred, None, 1, payload))
    return events
