"""Property, pure: a project's valid-time versions (``events.versions``) equal the fold on every day.

No services: this is what the read models store, held to the reference fold for random histories
(every type, anomalies, retractions of retractions and across projects, withdrawn signings that
still count for confidentiality).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings

from events.model import CORRECTION_TYPES, Event, EventType, end_of_day, local_date
from events.projection import RECORD_FIELDS, fold, state_from_record, state_record
from events.store import Horizon
from events.versions import Version, extend_versions, group_by_subject, versions
from tests.strategies import histories


def _version_on(vs: list, day: date) -> dict | None:
    for v in vs:
        if v.valid_from <= day and (v.valid_to is None or day < v.valid_to):
            return v.record
    return None


@settings(max_examples=300, deadline=None)
@given(history=histories())
def test_versions_equal_the_fold_on_every_day(history: list[Event]) -> None:
    grouped = group_by_subject(history)
    projects = {e.project_id for e in history}
    for pid in projects:
        vs = versions(pid, grouped.get(pid, []))
        # Versions are ordered, do not overlap, and consecutive ones differ.
        for a, b in zip(vs, vs[1:], strict=False):
            assert a.valid_to is not None and a.valid_to <= b.valid_from and a.record != b.record
        for offset in range(-1, 10):
            day = date(2024, 1, 1) + timedelta(days=offset)
            visible = [e for e in history if Horizon(day).sees(e)]  # corrections (retracted, merged) whatever their date
            state = fold(visible).get(pid)
            assert _version_on(vs, day) == (state_record(state) if state is not None else None), (pid, day)
            if state is not None:
                # A store may keep a record as its values in RECORD_FIELDS order (warehouse.read_models does).
                record = state_record(state)
                assert tuple(record) == RECORD_FIELDS
                assert state_record(state_from_record(dict(zip(RECORD_FIELDS, record.values(), strict=True)))) == record


@settings(max_examples=500, deadline=None)
@given(history=histories())
def test_extending_the_open_version_equals_versioning_the_whole_history(history: list[Event]) -> None:
    # What the projector does when a project's new events come after its stored ones (the stream's
    # case): the versions of the earlier events, their open version extended by the later ones,
    # are the versions of the whole history. Every cut where extend_versions applies is tried.
    lifecycle = [e for e in history if e.type.value not in CORRECTION_TYPES]  # the projector re-versions whole on a correction
    for pid in {e.project_id for e in lifecycle}:
        own = sorted((e for e in lifecycle if e.project_id == pid), key=Event.sort_key)
        whole = versions(pid, own)
        for cut in range(1, len(own)):
            earlier, later = own[:cut], own[cut:]
            before = versions(pid, earlier)
            if not before or any(e.type is EventType.SIGNED for e in later):
                continue
            if later[0].occurred_at <= earlier[-1].occurred_at or local_date(later[0].occurred_at) <= before[-1].valid_from:
                continue
            assert [*before[:-1], *extend_versions(before[-1], later)] == whole, (pid, cut)


def test_extending_refuses_what_it_cannot_extend_exactly() -> None:
    last = Version("P1", date(2024, 1, 2), None, {})
    signed = Event("e1", "P1", EventType.SIGNED, end_of_day(date(2024, 1, 5)))
    with pytest.raises(ValueError):
        extend_versions(last, [signed])
    same_day = Event("e2", "P1", EventType.STARTED, end_of_day(date(2024, 1, 1)))
    with pytest.raises(ValueError):
        extend_versions(last, [same_day])
