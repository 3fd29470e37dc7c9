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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from events.disclosure import is_confidential
from events.model import CORRECTION_TYPES, Event, EventType, local_date
from events.projection import (
    ProjectState,
    active_events,
    apply_event,
    merge_targets,
    state_from_record,
    state_record,
)


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
    # Every non-retraction event, in the fold's order: a withdrawn `signed` still counts for
    # confidentiality from its day on.
    timeline = sorted((e for e in evs if e.type.value not in CORRECTION_TYPES and e.project_id == project_id), key=Event.sort_key)
    if len(timeline) == len(evs):  # no retraction, no merge: every event is active (most projects)
        return _by_day(project_id, timeline, _always, None, None, _Disclosure([], set()))
    active_ids = {e.event_id for e in active_events(evs)}
    withdrawn_ids = {e.event_id for e in evs if e.type is EventType.SIGNED and e.event_id not in active_ids}
    # A merge, like a retraction, applies whatever its date: every version carries it.
    merged_into = merge_targets(e for e in evs if e.event_id in active_ids and e.project_id == project_id).get(project_id)
    return _by_day(project_id, timeline, active_ids.__contains__, None, None, _Disclosure([], withdrawn_ids), merged_into)


def _always(_event_id: str) -> bool:
    return True


def extend_versions(last: Version, events: Iterable[Event]) -> list[Version]:
    """A project's versions from its open version ``last`` on, once ``events`` are known too.

    The streaming case, without the project's history: ``events`` are the project's own, none a
    ``retracted`` or a ``signed`` one, none withdrawn, each occurred after every event ``last`` was
    computed from and on a day after ``last.valid_from`` (the caller checks; :func:`versions` is
    the general form). Then the full history's versions are those before ``last``, followed by the
    result: ``last`` (closed when a new version follows) and the new versions.
    """
    evs = sorted(events, key=Event.sort_key)
    if any(e.type in (EventType.SIGNED, EventType.RETRACTED, EventType.MERGED) or e.project_id != last.project_id for e in evs):
        raise ValueError("extend_versions takes the project's own lifecycle events, none signed, retracted or merged")
    if evs and local_date(evs[0].occurred_at) <= last.valid_from:
        raise ValueError("extend_versions takes events after the open version's first day")
    # Confidentiality is unchanged: it depends only on the signed events and the retractions.
    return _by_day(last.project_id, evs, _always, state_from_record(last.record), (last.valid_from, last.record), None)


@dataclass(slots=True)
class _Disclosure:
    """What :func:`events.disclosure.is_confidential` needs, gathered day by day."""

    signed: list[Event]
    withdrawn_ids: set[str]


def _by_day(
    project_id: str,
    timeline: list[Event],
    is_active: Callable[[str], bool],
    state: ProjectState | None,
    open_version: tuple[date, dict[str, Any]] | None,
    disclosure: _Disclosure | None,
    merged_into: str | None = None,
) -> list[Version]:
    """The versions from ``open_version`` (its first day and record; None: from nothing) on, with
    ``state`` the state it holds, applying ``timeline`` (non-retraction events in the fold's order)
    day by day. ``disclosure`` None keeps the state's confidentiality as it is."""
    out: list[Version] = []
    start, previous = open_version if open_version is not None else (None, None)
    days = [local_date(e.occurred_at) for e in timeline]
    confidential = False  # is_confidential of no signing
    i = 0
    n = len(timeline)
    while i < n:
        day = days[i]
        signed_today = False
        while i < n and days[i] == day:
            ev = timeline[i]
            if disclosure is not None and ev.type is EventType.SIGNED:
                disclosure.signed.append(ev)
                signed_today = True
            if is_active(ev.event_id):
                if state is None:
                    state = ProjectState(project_id=project_id, merged_into=merged_into)
                apply_event(state, ev, day)
            i += 1
        if disclosure is not None and signed_today:  # the verdict changes only with the signings known
            confidential = is_confidential(disclosure.signed, disclosure.withdrawn_ids)
        if state is None:
            continue
        if disclosure is not None:
            state.confidential = confidential
        record = state_record(state)
        if record == previous:
            continue
        if previous is not None and start is not None:
            out.append(Version(project_id, start, day, previous))
        previous, start = record, day
    if previous is not None and start is not None:
        out.append(Version(project_id, start, None, previous))
    return out
