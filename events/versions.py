"""Valid-time versions of project states: what a read model keeps so that "as of any date" needs no fold.

A project's state as of a day D (known now) is the fold of its events that occurred by the end of
D, plus every retraction (retractions apply whatever the date). It can change only on a day on
which one of its events occurred, so the states on those days, each valid until the next different
one, answer every D. :func:`versions` computes them from the events alone; the warehouse stores
them and a property test holds them to :func:`events.projection.fold`.

Retractions may name an event of another project: :func:`subjects` says which project each event
speaks about (a retraction: the project of the event it finally withdraws), so each project is
folded with exactly the events that can change it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from events.disclosure import is_confidential
from events.model import CORRECTION_TYPES, Event, EventType, local_date
from events.projection import ProjectState, active_events, apply_event, merge_targets, state_record


@dataclass(frozen=True, slots=True)
class Version:
    """A project's state from ``valid_from`` (a day, included) to ``valid_to`` (excluded; None: open)."""

    project_id: str
    valid_from: date
    valid_to: date | None
    record: dict[str, Any]  # events.projection.state_record


def subjects(events: Iterable[Event]) -> dict[str, str]:
    """event_id → the project whose state the event can change.

    A lifecycle event speaks of its own project; a retraction of the project of the event it
    withdraws, following chains of retractions; one whose target is unknown, of its own project.
    """
    evs = list(events)
    by_id = {e.event_id: e for e in evs}
    out: dict[str, str] = {}
    for ev in evs:
        seen: set[str] = set()
        cur = ev
        while cur.type is EventType.RETRACTED and cur.event_id not in seen:
            seen.add(cur.event_id)
            target = by_id.get(cur.payload.get("event_id", ""))
            if target is None:
                break
            cur = target
        out[ev.event_id] = cur.project_id
    return out


def group_by_subject(events: Iterable[Event]) -> dict[str, list[Event]]:
    """The events each project's fold needs (:func:`subjects`), by project."""
    evs = list(events)
    owner = subjects(evs)
    grouped: dict[str, list[Event]] = defaultdict(list)
    for ev in evs:
        grouped[owner[ev.event_id]].append(ev)
    return dict(grouped)


def versions(project_id: str, events: Iterable[Event]) -> list[Version]:
    """The valid-time versions of one project's state, from the events that can change it (known now).

    Equal to ``fold([e for e in events if e.type is RETRACTED or e occurred by the end of D])``
    for every day D, computed in one pass: which events are withdrawn depends only on the
    retractions (they apply whatever their date), and the events that occurred by a day are a
    prefix of the fold's order. Consecutive days with equal states make one version; days on which
    the project has no state (nothing visible yet, or everything withdrawn) have none.
    """
    evs = list(events)
    active = active_events(evs)
    active_ids = {e.event_id for e in active}
    withdrawn_ids = {e.event_id for e in evs if e.type is EventType.SIGNED and e.event_id not in active_ids}
    # A merge, like a retraction, applies whatever its date: every version carries it.
    merged_into = merge_targets(e for e in active if e.project_id == project_id).get(project_id)
    # Every non-retraction event, in the fold's order, with its local day: a withdrawn `signed`
    # still counts for confidentiality from its day on.
    timeline = sorted(
        ((local_date(e.occurred_at), e) for e in evs if e.type.value not in CORRECTION_TYPES and e.project_id == project_id),
        key=lambda pair: pair[1].sort_key(),
    )
    state: ProjectState | None = None
    signed: list[Event] = []
    out: list[Version] = []
    previous: dict[str, Any] | None = None
    start: date | None = None
    i = 0
    while i < len(timeline):
        day = timeline[i][0]
        while i < len(timeline) and timeline[i][0] == day:
            ev = timeline[i][1]
            if ev.type is EventType.SIGNED:
                signed.append(ev)
            if ev.event_id in active_ids:
                if state is None:
                    state = ProjectState(project_id=project_id, merged_into=merged_into)
                apply_event(state, ev, day)
            i += 1
        if state is None:
            continue
        state.confidential = is_confidential(signed, withdrawn_ids)
        record = state_record(state)
        if record == previous:
            continue
        if previous is not None and start is not None:
            out.append(Version(project_id, start, day, previous))
        previous, start = record, day
    if previous is not None and start is not None:
        out.append(Version(project_id, start, None, previous))
    return out
