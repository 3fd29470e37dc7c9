"""The KPI reports a monthly bulletin document is made of, read from the warehouse.

A bulletin ranks the units on the year to date (cohort, by unit) as published (known at the end
of the month's last day) and as corrected (known now); its narrative and charts read flow reports
of single months (what was signed, landed, paid in that month) as the chosen version knows them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Connection

from events.calendar import add_months, month_end
from events.kpis import KpiMode
from events.model import end_of_day
from warehouse.replay import kpi_report

BulletinVersion = Literal["published", "corrected"]
TREND_MONTHS = 12


def _month_flow(conn: Connection, first_day: date, known_at: datetime | None) -> dict[str, Any]:
    """What happened in one month (flow: stage entries and funds in it), as of its last day."""
    return kpi_report(conn, date_from=first_day, date_to=month_end(first_day), known_at=known_at, mode=KpiMode.FLOW)


def bulletin_reports(conn: Connection, month_end_day: date, version: BulletinVersion) -> dict[str, Any]:
    """The reports of ``reports.bulletin_document.BulletinReports`` for the month ending ``month_end_day``.

    ``published``/``corrected``: year to date by unit (cohort). ``month``, ``previous_month``,
    ``last_year_month``: flow reports of those months; ``trend``: the flow reports of the
    :data:`TREND_MONTHS` months up to this one, oldest first. The last four as ``version`` knows them.
    """
    published_at = end_of_day(month_end_day)
    year_start = date(month_end_day.year, 1, 1)
    published = kpi_report(conn, date_from=year_start, date_to=month_end_day, known_at=published_at, by="unit")
    corrected = kpi_report(conn, date_from=year_start, date_to=month_end_day, by="unit")
    known_at = published_at if version == "published" else None
    first = month_end_day.replace(day=1)
    trend = [_month_flow(conn, add_months(first, -back), known_at) for back in range(TREND_MONTHS - 1, -1, -1)]
    return {
        "published": published,
        "corrected": corrected,
        "month": trend[-1],
        "previous_month": trend[-2],
        "last_year_month": _month_flow(conn, add_months(first, -12), known_at),
        "trend": trend,
    }
