"""The product's one clock: what day it is in Asia/Shanghai.

Every date-dependent default (the monthly partitions' end, a land load's ``valid_from``, as-of
defaults, the demo's end, the maps' "数据截至", a ledger without a date) asks ``today()`` here, in
an entry point (the CLI, the Dagster definitions, the workspace), and passes the date down:
lower layers take dates as arguments and never read the calendar.

``ZHAOSHANG_TODAY=YYYY-MM-DD`` pins the day for a run (tests, a bulletin reproduced as of a past
month, the demo's ``--today``). Instants stamped by the warehouse itself (when an event arrived,
when a mart was built) are facts of the system, not business dates, and keep real time.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

from events.model import local_date

TODAY_VARIABLE = "ZHAOSHANG_TODAY"


class ClockError(ValueError):
    """A pinned day that is not a calendar date."""


def pinned_today() -> date | None:
    """The day ``ZHAOSHANG_TODAY`` pins, or None when the clock follows real time.

    The one read of that variable (``zhaoshang.settings.Settings.today`` documents and validates it):
    the clock is asked by code below the entry points, and :func:`pin` changes it mid-process.
    """
    raw = os.environ.get(TODAY_VARIABLE, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ClockError(f"{TODAY_VARIABLE}={raw!r} is not a date (YYYY-MM-DD)") from None


def today() -> date:
    """Today in Asia/Shanghai, or the pinned day."""
    return pinned_today() or local_date(datetime.now(UTC))


def pin(day: date) -> None:
    """Pin the clock for this process and the processes it starts (``demo --today``)."""
    os.environ[TODAY_VARIABLE] = day.isoformat()
