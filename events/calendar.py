"""Month arithmetic on calendar dates (Asia/Shanghai days): pure, no clock.

Bulletins, partitions, snapshots and ledgers all speak of month ends; this is the one place that
computes them.
"""

from __future__ import annotations

import calendar
from datetime import date


def month_end(day: date) -> date:
    """The last day of ``day``'s month: 2024-02-10 → 2024-02-29."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def previous_month_end(day: date) -> date:
    """The month end strictly before ``day``'s month: the last complete month on ``day``."""
    return date.fromordinal(month_start(day).toordinal() - 1)


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s (negative goes back)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier, clamped to that month's end: 2024-08-31, 6 → 2024-02-29."""
    start = add_months(day, -months)
    return start.replace(day=min(day.day, month_end(start).day))


def month_ends(first: date, last: date) -> list[date]:
    """Every month end from ``first``'s month up to ``last``, with ``last`` itself as the final one.

    ``month_ends(2026-01-15, 2026-03-20)`` → 2026-01-31, 2026-02-28, 2026-03-20.
    """
    out: list[date] = []
    start = month_start(first)
    while (end := month_end(start)) < last:
        out.append(end)
        start = add_months(start, 1)
    out.append(last)
    return out


def months_between(first: date, last: date) -> int:
    """How many month ends lie from ``first``'s month to ``last``'s, both included (0 if last is earlier)."""
    return max(0, (last.year - first.year) * 12 + last.month - first.month + 1)
