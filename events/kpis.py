"""KPIs of a pipeline, as the bureaus report them (see ``shared/seeds``).

``cohort``: the projects signed in [from, to], and how far they got by the as-of date.
``flow``: the stage entries whose date lies in [from, to], whatever the signing date
(the seeds' 新增投产项目 is a flow figure).
Rates are fractions of ``signed``; amounts are 万元.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from typing import Any

from events.choices import member
from events.projection import ProjectState
from events.store import Horizon

KPI_KEYS = (
    "signed",
    "landed",
    "started",
    "produced",
    "cancelled",
    "landing_rate",
    "start_rate",
    "production_rate",
    "investment_wan",
    "funds_wan",
    "stalled",
)

KPI_LABELS_ZH = {
    "signed": "签约项目",
    "landed": "落地项目",
    "started": "开工项目",
    "produced": "投产项目",
    "cancelled": "取消项目",
    "landing_rate": "落地率",
    "start_rate": "开工率",
    "production_rate": "投产率",
    "investment_wan": "总投资(万元)",
    "funds_wan": "到位资金(万元)",
    "stalled": "停滞项目",
}

GROUP_LABEL_ZH = {"unit": "责任单位", "industry": "行业", "channel": "签约渠道"}
UNASSIGNED = "(未填)"



class KpiMode(StrEnum):
    """Which projects a report counts (the module's docstring)."""

    COHORT = "cohort"
    FLOW = "flow"


class KpiGroup(StrEnum):
    """The project field a ranked report groups by (:data:`GROUP_LABEL_ZH`)."""

    UNIT = "unit"
    INDUSTRY = "industry"
    CHANNEL = "channel"


def _in(day: date | None, lo: date, hi: date) -> bool:
    return day is not None and lo <= day <= hi


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def _finish(counts: dict[str, float]) -> dict[str, Any]:
    signed = int(counts["signed"])
    out: dict[str, Any] = {
        "signed": signed,
        "landed": int(counts["landed"]),
        "started": int(counts["started"]),
        "produced": int(counts["produced"]),
        "cancelled": int(counts["cancelled"]),
    }
    out["landing_rate"] = _rate(out["landed"], signed)
    out["start_rate"] = _rate(out["started"], signed)
    out["production_rate"] = _rate(out["produced"], signed)
    out["investment_wan"] = round(counts["investment_wan"], 4)
    out["funds_wan"] = round(counts["funds_wan"], 4)
    out["stalled"] = int(counts["stalled"])
    return out


def _contribution(s: ProjectState, mode: KpiMode, lo: date, hi: date, as_of: date) -> dict[str, float] | None:
    """What one project adds to the totals, or None when it is outside the report (a merged duplicate always is)."""
    if s.merged_into is not None:
        return None
    if mode == "cohort":
        if not _in(s.signed_on, lo, hi):
            return None
        return {
            "signed": 1,
            "landed": s.reached >= 2,
            "started": s.reached >= 3,
            "produced": s.reached >= 4,
            "cancelled": s.cancelled_on is not None,
            "investment_wan": s.investment_wan,
            "funds_wan": s.funds_wan,
            "stalled": s.is_stalled(as_of),
        }
    funds = sum(f.amount_wan for f in s.funds if f.currency == "CNY" and lo <= f.arrived_on <= hi)
    signed = _in(s.signed_on, lo, hi)
    contrib = {
        "signed": signed,
        "landed": _in(s.landed_on, lo, hi),
        "started": _in(s.started_on, lo, hi),
        "produced": _in(s.produced_on, lo, hi),
        "cancelled": _in(s.cancelled_on, lo, hi),
        "investment_wan": s.investment_wan if signed else 0.0,
        "funds_wan": funds,
        "stalled": s.is_stalled(as_of),
    }
    return contrib if any(contrib.values()) else None


KpiSums = dict[str, float]
"""The additive part of a KPI report: counts and 万元 sums (``_finish`` derives the rates)."""

_SUM_KEYS = ("signed", "landed", "started", "produced", "cancelled", "investment_wan", "funds_wan", "stalled")


def zero_sums() -> KpiSums:
    return dict.fromkeys(_SUM_KEYS, 0.0)


def add_sums(into: KpiSums, more: dict[str, float]) -> None:
    for k, v in more.items():
        into[k] += float(v)


def accumulate_kpis(
    states: Iterable[ProjectState],
    *,
    date_from: date,
    date_to: date,
    as_of: date,
    mode: KpiMode,
    by: KpiGroup | None,
) -> tuple[KpiSums, dict[str, KpiSums]]:
    """The totals and the per-group sums of the projects in the report (before rates and ranking).

    Sums add: a read model adds these for the projects it re-folds to its own sums of the others.
    """
    total = zero_sums()
    groups: dict[str, KpiSums] = defaultdict(zero_sums)
    for s in states:
        c = _contribution(s, mode, date_from, date_to, as_of)
        if c is None:
            continue
        add_sums(total, c)
        if by is not None:
            add_sums(groups[getattr(s, by) or UNASSIGNED], c)
    return total, dict(groups)


def finish_kpis(total: KpiSums, groups: dict[str, KpiSums], by: KpiGroup | None) -> dict[str, Any]:
    """Rates, rounding and the ranking (季排名: by funds, then investment, then key)."""
    if by is None:
        return _finish(total)
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1]["funds_wan"], -kv[1]["investment_wan"], kv[0]))
    return {
        "by": by.value,
        "groups": [{"key": key, "rank": i + 1, **_finish(vals)} for i, (key, vals) in enumerate(ranked)],
        "total": _finish(total),
    }


def kpi_arguments(
    date_from: date, date_to: date, as_of: date | None, mode: KpiMode | str, by: KpiGroup | str | None
) -> tuple[date, KpiMode, KpiGroup | None]:
    """The checked form of a report's arguments: (as_of, mode, by)."""
    if date_from > date_to:
        raise ValueError(f"--from {date_from} is after --to {date_to}")
    return as_of or date_to, member(KpiMode, mode, "mode"), None if by is None else member(KpiGroup, by, "by")


def compute_kpis(
    states: Iterable[ProjectState],
    *,
    date_from: date,
    date_to: date,
    as_of: date | None = None,
    mode: KpiMode | str = KpiMode.COHORT,
    by: KpiGroup | str | None = None,
) -> dict[str, Any]:
    """KPIs over folded states (folded as of ``as_of``, default ``date_to``).

    Without ``by``: a flat dict of :data:`KPI_KEYS`. With ``by``: ``{"groups": [...], "total": {...}}``,
    groups ranked (季排名) by funds, then investment, then key.
    """
    day, kpi_mode, group = kpi_arguments(date_from, date_to, as_of, mode, by)
    total, groups = accumulate_kpis(states, date_from=date_from, date_to=date_to, as_of=day, mode=kpi_mode, by=group)
    return finish_kpis(total, groups, group)


def kpi_report_of(
    states: Iterable[ProjectState],
    horizon: Horizon,
    *,
    date_from: date,
    date_to: date,
    mode: KpiMode | str = KpiMode.COHORT,
    by: KpiGroup | str | None = None,
) -> dict[str, Any]:
    """KPIs of states folded at ``horizon``, with that horizon, so a bulletin says what it is.
    Whatever store the events came from (``warehouse.replay.kpi_report`` reads the warehouse's)."""
    report = compute_kpis(states, date_from=date_from, date_to=date_to, as_of=horizon.as_of, mode=mode, by=by)
    return {**kpi_meta(horizon, date_from=date_from, date_to=date_to, mode=mode), **report}


def kpi_meta(horizon: Horizon, *, date_from: date, date_to: date, mode: KpiMode | str) -> dict[str, Any]:
    """What a KPI report says of itself: its period, its horizon and its mode (JSON-ready)."""
    return {
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "as_of": horizon.as_of.isoformat(),
        "known_at": horizon.known_at.isoformat() if horizon.known_at else None,
        "mode": member(KpiMode, mode, "mode").value,  # a plain string in the JSON and the workbooks
    }
