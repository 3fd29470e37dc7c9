"""A project's timeline as a planner reads it: every event, what withdrew it, and which came late.

Pure (no I/O): the warehouse hands over the events with where each came from
(``warehouse.project_search.project_detail``). Withdrawal follows ``events.projection.active_events``:
an event is withdrawn by an active retraction; a retraction itself retracted withdraws nothing.

A record is *late* (补录) when it became known after the end of the month it occurred in: the
monthly bulletin of that month (as known at its end) could not count it, so a later answer for
the same month differs from the one published.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from events.calendar import month_end
from events.model import Event, EventType, local_date


@dataclass(frozen=True, slots=True)
class Sourced:
    """A stored event with where it came from (``event_log.source``: a file, a topic, ``web:<user>``)."""

    event: Event
    source: str
    source_position: str | None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of a timeline. ``withdrawn_by``: the active retraction that withdraws this event;
    ``target``: for a retraction, the event it names; ``late``: known after its month's end."""

    item: Sourced
    withdrawn_by: Event | None
    target: str | None
    late: bool

    @property
    def event(self) -> Event:
        return self.item.event


def is_late(ev: Event) -> bool:
    """Known after the end of the (Asia/Shanghai) month it occurred in; retractions are corrections, never late."""
    if ev.type is EventType.RETRACTED or ev.recorded_at is None:
        return False
    occurred_on: date = local_date(ev.occurred_at)
    return local_date(ev.recorded_at) > month_end(occurred_on)


def _active_retractions(events: list[Event]) -> set[str]:
    """The ids of the retractions that withdraw their target (as ``active_events`` decides)."""
    targets = {e.event_id: str(e.payload.get("event_id", "")) for e in events if e.type is EventType.RETRACTED}
    by_target: dict[str, list[str]] = defaultdict(list)
    for rid, target in targets.items():
        by_target[target].append(rid)
    memo: dict[str, bool] = {}

    def active(rid: str, seen: frozenset[str]) -> bool:
        if rid in memo:
            return memo[rid]
        if rid in seen:  # a cycle of retractions: each stands
            return True
        withdrawn = any(active(r, seen | {rid}) for r in by_target.get(rid, ()))
        memo[rid] = not withdrawn
        return memo[rid]

    return {rid for rid in targets if active(rid, frozenset())}


def timeline(items: list[Sourced]) -> list[TimelineEntry]:
    """The entries in the fold's order (business time), each with its withdrawal and lateness."""
    events = [i.event for i in items]
    active = _active_retractions(events)
    withdrawer: dict[str, Event] = {}
    for ev in sorted(events, key=lambda e: (e.recorded_at or e.occurred_at, e.event_id)):
        if ev.event_id in active:
            withdrawer.setdefault(str(ev.payload.get("event_id", "")), ev)  # the first known retraction names the reason
    out = [
        TimelineEntry(
            item=i,
            withdrawn_by=withdrawer.get(i.event.event_id),
            target=str(i.event.payload.get("event_id")) if i.event.type is EventType.RETRACTED else None,
            late=is_late(i.event),
        )
        for i in items
    ]
    out.sort(key=lambda e: e.event.sort_key())
    return out
