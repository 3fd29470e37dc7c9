"""死信 dead letters as the workspace pages them: a count and one page, or one letter.

Re-driving stays in ``warehouse.event_store.retry_dead_letters`` (the same as ``zhaoshang
deadletters retry``); this module only reads.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

_COLUMNS = (
    "id, source, source_position, event_id, reason, raw, fixed_raw, status, attempts, created_at, resolved_at, resolution"
)


def _where(status: str | None) -> tuple[str, dict[str, Any]]:
    if status is None:
        return "", {}
    return " WHERE status = :status", {"status": status}


def page_dead_letters(conn: Connection, *, status: str | None, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(how many letters have ``status`` (None: any), the ``limit`` of them after ``offset``, newest first)."""
    where, params = _where(status)
    total = conn.execute(text(f"SELECT count(*) FROM dead_letter{where}"), params).scalar_one()
    rows = conn.execute(
        text(f"SELECT {_COLUMNS} FROM dead_letter{where} ORDER BY id DESC LIMIT :limit OFFSET :offset"),
        {**params, "limit": limit, "offset": offset},
    ).mappings().all()
    return int(total), [dict(r) for r in rows]


def dead_letter(conn: Connection, letter_id: int) -> dict[str, Any] | None:
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM dead_letter WHERE id = :id"), {"id": letter_id}).mappings().first()
    return dict(row) if row else None
