"""Tables the Dagster assets build from the log: monthly project states, bulletins, snapshots.

They are projections: rebuilt from the event log for a month at a time, never edited by hand.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, text

_STATE_COLUMNS = (
    "project_id",
    "name",
    "stage",
    "signed_on",
    "landed_on",
    "started_on",
    "produced_on",
    "cancelled_on",
    "investment_wan",
    "funds_wan",
    "unit",
    "industry",
    "channel",
    "stalled",
    "confidential",
)


def replace_project_states(conn: Connection, month_end: date, rows: list[dict[str, Any]]) -> int:
    """Replace the month's rows (``rows`` as from ``ProjectState.to_row``)."""
    conn.execute(text("DELETE FROM mart_project_state WHERE month_end = :m"), {"m": month_end})
    if not rows:
        return 0
    payload = [
        {**{c: r.get(c) for c in _STATE_COLUMNS}, "month_end": month_end, "anomalies": json.dumps(r.get("anomalies", []), ensure_ascii=False)}
        for r in rows
    ]
    cols = ", ".join(("month_end", *_STATE_COLUMNS, "anomalies"))
    values = ", ".join(f":{c}" for c in ("month_end", *_STATE_COLUMNS)) + ", CAST(:anomalies AS jsonb)"
    conn.execute(text(f"INSERT INTO mart_project_state ({cols}) VALUES ({values})"), payload)
    return len(payload)


def project_states_for(conn: Connection, month_end: date) -> list[dict[str, Any]]:
    rows = conn.execute(
        text("SELECT * FROM mart_project_state WHERE month_end = :m ORDER BY project_id"), {"m": month_end}
    ).mappings()
    return [dict(r) for r in rows]


def replace_bulletin(conn: Connection, month_end: date, version: str, known_at: datetime, report: dict[str, Any]) -> None:
    conn.execute(
        text(
            "INSERT INTO mart_bulletin (month_end, version, known_at, report) VALUES (:m, :v, :k, CAST(:r AS jsonb))"
            " ON CONFLICT (month_end, version) DO UPDATE SET known_at = EXCLUDED.known_at, report = EXCLUDED.report, built_at = now()"
        ),
        {"m": month_end, "v": version, "k": known_at, "r": json.dumps(report, ensure_ascii=False, default=str)},
    )


def open_dead_letters(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM dead_letter WHERE status = 'open'")).scalar_one())


def snapshot_dead_letters(conn: Connection) -> tuple[int | None, int]:
    """Record the open dead-letter count; returns (previous snapshot's count or None, current count)."""
    previous = conn.execute(text("SELECT open_count FROM dead_letter_snapshot ORDER BY id DESC LIMIT 1")).scalar()
    current = open_dead_letters(conn)
    conn.execute(text("INSERT INTO dead_letter_snapshot (open_count) VALUES (:c)"), {"c": current})
    return previous, current


def months_touched_since(conn: Connection, seq: int) -> tuple[int, date | None]:
    """The log's newest seq, and the earliest business date among events appended after ``seq``.

    A late event changes its own month and every later month, so the caller refreshes from there.
    """
    row = conn.execute(
        text(
            "SELECT coalesce(max(seq), :s) AS hw,"
            " min((occurred_at AT TIME ZONE 'Asia/Shanghai')::date) FILTER (WHERE type <> 'retracted') AS first_day,"
            " min((recorded_at AT TIME ZONE 'Asia/Shanghai')::date) FILTER (WHERE type = 'retracted') AS first_retraction"
            " FROM event_log WHERE seq > :s"
        ),
        {"s": seq},
    ).one()
    days = [d for d in (row.first_day, row.first_retraction) if d is not None]
    # A retraction withdraws an event of unknown date here: refresh from the withdrawn event's date.
    if row.first_retraction is not None:
        target = conn.execute(
            text(
                "SELECT min((t.occurred_at AT TIME ZONE 'Asia/Shanghai')::date) FROM event_log r"
                " JOIN event_log t ON t.event_id = r.payload->>'event_id' WHERE r.seq > :s AND r.type = 'retracted'"
            ),
            {"s": seq},
        ).scalar()
        if target is not None:
            days.append(target)
    return int(row.hw), (min(days) if days else None)
