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


_LAND_COLUMNS = ("kind", "site_id", "park", "status", "area_mu", "remaining_area_mu", "floor_area_m2", "vacant_area_m2")


def replace_land_status(conn: Connection, month_end: date, frame: Any) -> int:
    """Replace the month's land status rows from a land status frame (``warehouse.land.land_status``)."""
    conn.execute(text("DELETE FROM mart_land_status WHERE month_end = :m"), {"m": month_end})
    if len(frame) == 0:
        return 0
    df = frame[list(_LAND_COLUMNS) + ["project_ids"]]
    df = df.astype(object).where(df.notna(), None)
    rows = [{**rec, "month_end": month_end, "project_ids": list(rec["project_ids"] or [])} for rec in df.to_dict(orient="records")]
    cols = ", ".join(("month_end", *_LAND_COLUMNS, "project_ids"))
    values = ", ".join(f":{c}" for c in ("month_end", *_LAND_COLUMNS, "project_ids"))
    conn.execute(text(f"INSERT INTO mart_land_status ({cols}) VALUES ({values})"), rows)
    return len(rows)


def invalid_geometries(conn: Connection, kinds: tuple[str, ...] = ("idle", "factory")) -> list[dict[str, Any]]:
    """Current inventory rows whose geometry PostGIS finds invalid, with the reason."""
    rows = conn.execute(
        text(
            "SELECT kind, site_id, ST_IsValidReason(geom) AS reason FROM land_inventory"
            " WHERE valid_to IS NULL AND kind = ANY(:k) AND NOT ST_IsValid(geom) ORDER BY kind, site_id"
        ),
        {"k": list(kinds)},
    ).mappings()
    return [dict(r) for r in rows]


def overlapping_parcels(conn: Connection, min_overlap_m2: float = 1.0) -> list[dict[str, Any]]:
    """Pairs of current idle parcels whose interiors overlap by more than ``min_overlap_m2`` (m², geodesic)."""
    rows = conn.execute(
        text(
            "SELECT a.site_id AS a, b.site_id AS b,"
            " ST_Area(ST_Intersection(ST_MakeValid(a.geom), ST_MakeValid(b.geom))::geography) AS overlap_m2"
            " FROM land_inventory a JOIN land_inventory b"
            "   ON a.kind = 'idle' AND b.kind = 'idle' AND a.valid_to IS NULL AND b.valid_to IS NULL"
            "  AND a.site_id < b.site_id AND a.geom && b.geom AND ST_Intersects(a.geom, b.geom)"
            "  AND NOT ST_Touches(a.geom, b.geom)"
        )
    ).mappings()
    return [dict(r) for r in rows if r["overlap_m2"] is not None and r["overlap_m2"] > min_overlap_m2]
