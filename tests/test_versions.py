"""Property, pure: a project's valid-time versions (``events.versions``) equal the fold on every day.

No services: this is what the read models store, held to the reference fold for random histories
(every type, anomalies, retractions of retractions and across projects, withdrawn signings that
still count for confidentiality).
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings

from events.model import Event
from events.projection import fold, state_record
from events.store import Horizon
from events.versions import group_by_subject, versions
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
