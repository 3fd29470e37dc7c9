"""招商方案 proposals: every SQL statement about saved matches and their share links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, text


@dataclass(frozen=True, slots=True)
class Proposal:
    proposal_id: int
    title: str
    investor: str
    requirement: dict[str, Any]
    result: dict[str, Any]
    as_of: date
    created_by: str
    created_at: datetime
    share_token: str | None
    share_expires_at: datetime | None
    share_revoked_at: datetime | None
    share_live: bool  # a token, not revoked, not expired (by the database's clock)


_SELECT = "SELECT *, (share_token IS NOT NULL AND share_revoked_at IS NULL AND share_expires_at > now()) AS share_live FROM proposal"


def _proposal(row: Any) -> Proposal:
    return Proposal(
        row.proposal_id, row.title, row.investor, dict(row.requirement), dict(row.result), row.as_of, row.created_by, row.created_at,
        row.share_token, row.share_expires_at, row.share_revoked_at, bool(row.share_live),
    )


def save(conn: Connection, *, title: str, investor: str, requirement: dict[str, Any], result: dict[str, Any], as_of: date, created_by: str) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO proposal (title, investor, requirement, result, as_of, created_by)"
                " VALUES (:t, :i, CAST(:req AS jsonb), CAST(:res AS jsonb), :d, :by) RETURNING proposal_id"
            ),
            {"t": title, "i": investor, "req": orjson.dumps(requirement).decode(), "res": orjson.dumps(result).decode(), "d": as_of, "by": created_by},
        ).scalar_one()
    )


def get(conn: Connection, proposal_id: int) -> Proposal | None:
    row = conn.execute(text(_SELECT + " WHERE proposal_id = :id"), {"id": proposal_id}).first()
    return _proposal(row) if row else None


def by_token(conn: Connection, token: str) -> Proposal | None:
    row = conn.execute(text(_SELECT + " WHERE share_token = :t"), {"t": token}).first()
    return _proposal(row) if row else None


def recent(conn: Connection, limit: int = 100) -> list[Proposal]:
    return [_proposal(r) for r in conn.execute(text(_SELECT + " ORDER BY proposal_id DESC LIMIT :n"), {"n": limit}).all()]


def share(conn: Connection, proposal_id: int, *, token: str, valid_for: timedelta) -> None:
    """Issue a new share link (the previous one stops working), valid for ``valid_for`` from now."""
    conn.execute(
        text(
            "UPDATE proposal SET share_token = :t, share_expires_at = now() + make_interval(secs => :s), share_revoked_at = NULL"
            " WHERE proposal_id = :id"
        ),
        {"t": token, "s": valid_for.total_seconds(), "id": proposal_id},
    )


def revoke(conn: Connection, proposal_id: int) -> None:
    conn.execute(text("UPDATE proposal SET share_revoked_at = now() WHERE proposal_id = :id AND share_revoked_at IS NULL"), {"id": proposal_id})
