"""The dashboard's SQL (驾驶舱): the monthly trend and the units' latest progress (one unit's KPIs: ``kpi_report(unit=…)``).

Every answer reads the read models the way ``read_models.kpis_at`` does: the versions valid on the
as-of day, except the projects the reading re-folds itself (touched after the read-model position,
or seen differently at ``known_at``); those are added from their folded states with the same rules.
So each figure here equals what ``warehouse.replay.kpi_report`` gives for the same horizon:

- the trend month M equals ``kpi_report(mode=flow, date_from=first day of M, date_to=last day of M
  (the as-of day in the as-of month), as_of, known_at)`` for signed, landed, started, produced and
  funds — one SQL statement for the twelve months, not twelve reports.

Months without progress (红黄绿灯, :func:`months_without_progress`): a unit's *open* projects are
those signed, not yet produced and not cancelled on the as-of day (the projects the stalled rule
watches, ``events.projection.STALLED_AFTER_MONTHS``); the unit's latest progress is the latest
lifecycle change (``last_change_on``: signing, landing, start, cancellation) of any of them; its
months without progress are the whole calendar months from that day to the as-of day. A unit with
no open project has nothing pending and no count (None).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from events.calendar import add_months, month_end, months_before
from events.kpis import (
    UNASSIGNED,
    KpiMode,
    KpiSums,
    accumulate_kpis,
    add_sums,
    zero_sums,
)
from events.projection import STALLED_AFTER_MONTHS, ProjectState
from events.store import Horizon
from warehouse.read_models import _COUNTED, _IN_UNIT, _UNTOUCHED, _VALID_ON, _read, _Reading

TREND_KEYS = ("signed", "landed", "started", "produced", "funds_wan")
_STAGE_COLUMNS = ("signed", "landed", "started", "produced")

# --- the monthly trend --------------------------------------------------------------------------


def trend_months(as_of: date, months: int = 12) -> list[tuple[date, date]]:
    """The ``months`` calendar months ending with the as-of month, as (first day, last day); the
    last one ends on the as-of day (nothing after it is in the state as of that day)."""
    out: list[tuple[date, date]] = []
    for back in range(months - 1, -1, -1):
        first = add_months(as_of, -back)
        out.append((first, min(month_end(first), as_of)))
    return out


# One statement for the trend and the units' activity. ``cur``: the versions valid on the as-of day
# (one index scan, materialised once, only the columns used); ``w``: those with anything in the
# trend's window (most of a long history has nothing). Then one grouped pass per kind: the units'
# open projects (grouped in the "C" collation: a byte sort, the names come back unchanged), each
# stage's entries by month, the CNY fund arrivals by month.
_MONTH = "date_trunc('month', {col}::timestamp)::date"
_STAGE_PASS = (
    "SELECT '{kind}', {month}, NULL, count(*), 0, 0.0::float8, NULL::date FROM w WHERE w.{kind}_on BETWEEN :lo AND :hi GROUP BY 2"
)
_SERIES_SQL = (
    """
WITH cur AS MATERIALIZED (
    SELECT coalesce(nullif(v.unit, ''), :unassigned) COLLATE "C" AS unit, v.reached, v.cancelled_on, v.last_change_on,
           v.signed_on, v.landed_on, v.started_on, v.produced_on, v.funds_on, v.funds_cny_wan
    FROM rm_project_version v {untouched}
    WHERE t.pid IS NULL AND {valid_on} AND {counted} AND {in_unit}
), w AS (
    SELECT * FROM cur
    WHERE cur.signed_on >= :lo OR cur.landed_on >= :lo OR cur.started_on >= :lo OR cur.produced_on >= :lo OR :lo <= ANY(cur.funds_on)
)
SELECT 'open' AS kind, NULL::date AS month, unit, count(*) AS n, count(*) FILTER (WHERE last_change_on <= :stalled_by) AS stalled,
       0.0::float8 AS amount, max(last_change_on) AS latest
FROM cur WHERE reached BETWEEN 1 AND 3 AND cancelled_on IS NULL GROUP BY unit
"""
    + "".join("UNION ALL " + _STAGE_PASS.format(kind=k, month=_MONTH.format(col=f"w.{k}_on")) + "\n" for k in ("signed", "landed", "started", "produced"))
    + "UNION ALL SELECT 'funds_wan', "
    + _MONTH.format(col="f.d")
    + ", NULL, count(*), 0, coalesce(sum(f.a), 0), NULL FROM w CROSS JOIN LATERAL unnest(w.funds_on, w.funds_cny_wan) AS f(d, a)"
    " WHERE f.d BETWEEN :lo AND :hi GROUP BY 2"
)


def _scoped(states: Iterable[ProjectState], unit: str | None) -> list[ProjectState]:
    """The re-folded states the statement's rows stand beside: one unit's (or all), merged duplicates left out."""
    return [s for s in states if (unit is None or s.unit == unit) and s.merged_into is None]


def _trend_sums(rows: list[Any], reading: _Reading, months: list[tuple[date, date]], as_of: date, unit: str | None) -> list[KpiSums]:
    """The statement's month rows plus the re-folded projects, month by month with the KPI rules themselves."""
    sums = [zero_sums() for _ in months]
    index = {first: i for i, (first, _) in enumerate(months)}
    for row in rows:
        into = sums[index[row.month]]
        into[row.kind] += float(row.amount) if row.kind == "funds_wan" else float(row.n)
    states = _scoped(reading.states.values(), unit)
    for i, (first, last) in enumerate(months):
        total, _ = accumulate_kpis(states, date_from=first, date_to=last, as_of=as_of, mode=KpiMode.FLOW, by=None)
        add_sums(sums[i], {k: total[k] for k in TREND_KEYS})
    return sums


def _trend_rows(sums: list[KpiSums], months: list[tuple[date, date]]) -> list[dict[str, Any]]:
    rows = []
    for (first, last), s in zip(months, sums, strict=True):
        row: dict[str, Any] = {"month": first.strftime("%Y-%m"), "date_from": first.isoformat(), "date_to": last.isoformat()}
        row.update({k: int(s[k]) for k in _STAGE_COLUMNS})
        row["funds_wan"] = round(s["funds_wan"], 4)
        rows.append(row)
    return rows


# --- the units' latest progress (红黄绿灯) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitActivity:
    """A responsible unit's open projects on the as-of day (see the module docstring)."""

    unit: str
    open_projects: int
    stalled_projects: int  # open and without a change for STALLED_AFTER_MONTHS months
    latest_change_on: date | None
    months_without_progress: int | None


def months_without_progress(latest: date, as_of: date) -> int:
    """Whole calendar months from ``latest`` to ``as_of``: the largest m with
    ``months_before(as_of, m) >= latest`` (0 when less than a month, or ``latest`` after ``as_of``).
    The same month arithmetic as the stalled rule: stalled ⇔ months_without_progress >= 6."""
    months = max(0, (as_of.year - latest.year) * 12 + as_of.month - latest.month)
    while months > 0 and months_before(as_of, months) < latest:
        months -= 1
    return months


def _activity(rows: list[Any], reading: _Reading, as_of: date, unit: str | None) -> dict[str, UnitActivity]:
    """The statement's per-unit rows plus the re-folded projects' open ones."""
    found: dict[str, list[Any]] = {r.unit: [int(r.n), int(r.stalled), r.latest] for r in rows}
    for s in _scoped(reading.states.values(), unit):
        if not (1 <= s.reached <= 3 and s.cancelled_on is None):
            continue
        entry = found.setdefault(s.unit or UNASSIGNED, [0, 0, None])
        entry[0] += 1
        entry[1] += int(s.is_stalled(as_of))
        if s.last_change_on is not None and (entry[2] is None or s.last_change_on > entry[2]):
            entry[2] = s.last_change_on
    return {
        key: UnitActivity(key, n, stalled, latest, None if latest is None else months_without_progress(latest, as_of))
        for key, (n, stalled, latest) in sorted(found.items())
    }


@dataclass(frozen=True, slots=True)
class Series:
    """The dashboard's time series at one horizon: the monthly trend and the units' activity."""

    trend: list[dict[str, Any]]
    activity: dict[str, UnitActivity]


def series_at(conn: Connection, horizon: Horizon, *, unit: str | None = None, months: int = 12) -> Series:
    """The trend of the ``months`` months to the horizon's day and every unit's activity on it
    (``unit``: that unit's projects only): one reading of the read models, one statement."""
    reading = _read(conn, horizon)
    spans = trend_months(horizon.as_of, months)
    sql = _SERIES_SQL.format(untouched=_UNTOUCHED, valid_on=_VALID_ON, counted=_COUNTED, in_unit=_IN_UNIT)
    params: dict[str, Any] = {
        "d": horizon.as_of, "lo": spans[0][0], "hi": spans[-1][1], "touched": reading.touched, "unit": unit,
        "unassigned": UNASSIGNED, "stalled_by": months_before(horizon.as_of, STALLED_AFTER_MONTHS),
    }  # fmt: skip
    rows = conn.execute(text(sql), params).all()
    trend = _trend_rows(_trend_sums([r for r in rows if r.kind != "open"], reading, spans, horizon.as_of, unit), spans)
    return Series(trend, _activity([r for r in rows if r.kind == "open"], reading, horizon.as_of, unit))

