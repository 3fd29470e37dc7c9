"""The SQL form of ``events.store.Horizon.sees``: which ``event_log`` rows a replay at (as_of, known_at) sees.

Two parts, because the read models also need the events one horizon sees and another does not:
business time (occurred before the end of the as-of day; retractions whatever their date) and
knowledge (recorded at or before ``known_at``).
"""

from __future__ import annotations

from typing import Any

from events.store import Horizon

OCCURRED = "(occurred_at < :before OR type IN ('retracted', 'merged'))"  # events.model.CORRECTION_TYPES
KNOWN = "(CAST(:known_at AS timestamptz) IS NULL OR recorded_at <= :known_at)"
NOT_YET_KNOWN = "recorded_at > :known_at"  # the negation of KNOWN where known_at is set, as an index can use it


def horizon_params(horizon: Horizon) -> dict[str, Any]:
    return {"before": horizon.occurred_before, "known_at": horizon.known_at}


def horizon_clause(horizon: Horizon) -> tuple[str, dict[str, Any]]:
    """A condition on ``event_log`` rows equal to :meth:`Horizon.sees`, and its bound parameters."""
    return f"{OCCURRED} AND {KNOWN}", horizon_params(horizon)
