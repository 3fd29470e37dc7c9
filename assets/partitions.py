"""Monthly partitions, starting from the month of the first event in the warehouse."""

from __future__ import annotations

import calendar
from datetime import date

import dagster as dg
from sqlalchemy import text

from warehouse.db import make_engine, resolve_url

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
    return dg.MonthlyPartitionsDefinition(start_date=start, end_offset=0)


def month_end(partition_key: str) -> date:
    """'2024-03-01' → 2024-03-31."""
    first = date.fromisoformat(partition_key)
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def partition_keys_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[str]:
    """The months this run covers (one, or a range under a single-run backfill)."""
    if isinstance(context, dg.AssetCheckExecutionContext):
        ctx = context.op_execution_context
        return list(ctx.partition_keys) if ctx.has_partition_key_range or ctx.has_partition_key else []
    return list(context.partition_keys)
