"""Monthly partitions (Asia/Shanghai months), from the month of the first event in the warehouse
to the last complete month by the product's clock."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, datetime, time
from typing import Any

import dagster as dg
from sqlalchemy import text

from events.calendar import month_end as calendar_month_end
from events.model import SHANGHAI
from warehouse.db import make_engine, resolve_url
from zhaoshang import clock

TIMEZONE = "Asia/Shanghai"

DEFAULT_FIRST_MONTH = "2019-01-01"


def first_event_month(database_url: str | None) -> str:
    """'YYYY-MM-01' of the earliest event; the default when the warehouse is empty or unreachable.

    Definitions must load even when the database is down (``dagster dev`` shows the graph anyway).
    """
    try:
        engine = make_engine(resolve_url(database_url), connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                first = conn.execute(
                    text("SELECT min((occurred_at AT TIME ZONE 'Asia/Shanghai')::date) FROM event_log")
                ).scalar()
        finally:
            engine.dispose()
    except Exception:
        return DEFAULT_FIRST_MONTH
    return first.replace(day=1).isoformat() if first else DEFAULT_FIRST_MONTH


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
