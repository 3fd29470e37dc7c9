"""The one garbage-collector policy (warehouse.collector): paused, young generations after each
batch that wrote, everything once a minute, the caller's setting restored."""

from __future__ import annotations

import gc

import pytest

import warehouse.collector as collector_module
from warehouse.collector import gc_paused


def test_ticks_collect_young_after_writes_and_everything_once_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    calls: list[int] = []
    monkeypatch.setattr(collector_module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(collector_module.gc, "collect", lambda generation=2: calls.append(generation) or 0)
    with gc_paused() as collector:
        assert not gc.isenabled()
        collector.tick(wrote=True)
        now[0] += 0.5
        collector.tick(wrote=False)  # nothing written, under a second: nothing to do
        now[0] += 0.6
        collector.tick(wrote=False)  # a second since the last: the young generations
        now[0] += 60
        collector.tick(wrote=True)  # a minute: everything
        collector.tick(wrote=True)
    assert calls == [1, 1, 2, 1]
    assert gc.isenabled()


def test_a_pause_nests_and_keeps_a_disabled_collector_disabled() -> None:
    with gc_paused(), gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
