"""Monthly partitions (Asia/Shanghai months), from a configured first month to the last complete
month by the product's clock."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, datetime, time
from typing import Any

import dagster as dg
from sqlalchemy import Connection

from events.calendar import month_end as calendar_month_end
from events.calendar import month_start
from events.model import SHANGHAI, local_date
from warehouse.replay import log_high_water
from zhaoshang import clock

TIMEZONE = "Asia/Shanghai"

def partitions_start(first: date) -> str:
    """'YYYY-MM-01' of the first month of the partitions: ``first``'s (the settings' ``ZHAOSHANG_PARTITIONS_START``).

    A fixed setting, not the warehouse's first event: definitions load with no I/O. Runs start at
    the first month that has events (:func:`first_event_month`), so earlier months stay empty.
    """
    return month_start(first).isoformat()


def first_event_month(conn: Connection) -> str | None:
    """'YYYY-MM-01' of the earliest event in the log (Asia/Shanghai), None when it is empty. Run time only."""
    first = log_high_water(conn)["first_occurred_at"]
    return month_start(local_date(first)).isoformat() if first else None


def monthly_partitions(start: str) -> dg.MonthlyPartitionsDefinition:
    """Months (Asia/Shanghai) from ``start`` to the last complete month at the effective time.

    The effective time is Dagster's: real time in ``dagster dev`` and its monthly schedule, so they
    move on to a new month by themselves; our own runs set it from the product's clock with
    :func:`partitions_as_of`.
    """
    return dg.MonthlyPartitionsDefinition(start_date=start, end_offset=0, timezone=TIMEZONE)


def partitions_as_of(today: date) -> AbstractContextManager[Any]:
    """Partitions seen on ``today`` (the clock's day): the last one is the month before it."""
    return dg.partition_loading_context(effective_dt=datetime.combine(today, time(0), tzinfo=SHANGHAI))


def partitions_by_clock() -> AbstractContextManager[Any]:
    """Partitions as the product's clock sees them today (``ZHAOSHANG_TODAY`` when pinned)."""
    return partitions_as_of(clock.today())


def month_end(partition_key: str) -> date:
    """'2024-03-01' → 2024-03-31."""
    return calendar_month_end(date.fromisoformat(partition_key))


def partition_keys_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[str]:
    """The months this run covers (one, or a range under a single-run backfill)."""
    if isinstance(context, dg.AssetCheckExecutionContext):
        ctx = context.op_execution_context
        return list(ctx.partition_keys) if ctx.has_partition_key_range or ctx.has_partition_key else []
    return list(context.partition_keys)
