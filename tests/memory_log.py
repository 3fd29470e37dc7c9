"""The in-memory log store (``events.memory_store``) loaded with records, and read the way the
warehouse's replay reads its own log: fold the events a horizon sees (``events.projection.fold``),
then rows or KPIs. For semantic tests that need no services; ``tests/store_contract.py`` holds this
store to the PostgreSQL one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from events.kpis import KpiGroup, KpiMode, kpi_report_of
from events.memory_store import MemoryLogStore
from events.projection import fold
from events.store import AppendResult, Horizon, Incoming


def incoming(records: Sequence[dict[str, Any] | str | bytes], source: str = "district.jsonl") -> list[Incoming]:
    """Records as a file's lines would arrive: ``line 1``, ``line 2``…"""
    return [
        Incoming(r if isinstance(r, str | bytes) else json.dumps(r, ensure_ascii=False), source, f"line {i}")
        for i, r in enumerate(records, start=1)
    ]


def load(store: MemoryLogStore, records: Sequence[dict[str, Any] | str | bytes], source: str = "district.jsonl", batch_size: int = 20_000) -> dict[str, int]:
    """Append in batches of ``batch_size`` (one unit each, as ``load_records`` commits), summed up."""
    lines = incoming(records, source)
    total = AppendResult()
    for start in range(0, len(lines), batch_size):
        total.add(store.append(lines[start : start + batch_size]))
    out = total.as_dict()
    assert out["read"] == out["accepted"] + out["duplicates"] + out["rejected"]
    return out


def replay_rows(store: MemoryLogStore, horizon: Horizon) -> list[dict[str, Any]]:
    return [s.to_row(horizon.as_of) for s in fold(store.events(horizon)).values()]


def kpi_report(
    store: MemoryLogStore,
    *,
    date_from: date,
    date_to: date,
    as_of: date | None = None,
    known_at: datetime | None = None,
    mode: KpiMode | str = KpiMode.COHORT,
    by: KpiGroup | str | None = None,
) -> dict[str, Any]:
    horizon = Horizon(as_of or date_to, known_at)
    return kpi_report_of(fold(store.events(horizon)).values(), horizon, date_from=date_from, date_to=date_to, mode=mode, by=by)
