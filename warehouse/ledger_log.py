"""What a ledger import reads from the log: the events of the ledger's projects and of every
project an earlier month of the same ledger imported (so a project missing from a later month is
noticed). A ledger's events carry ``source`` = ``ledger:{series}``."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, text

from events.model import Event, EventType

# One ledger import at a time: two concurrent diffs against the same log would both send the
# same funds difference under different ids.
_LEDGER_LOCK_KEY = 0x7A68_6C65_6467  # "zhledg"

_SCOPE_SQL = """
SELECT event_id, project_id, type, occurred_at, recorded_at, schema_version, payload::text
FROM event_log
WHERE project_id = ANY(:ids)
   OR project_id IN (SELECT DISTINCT project_id FROM event_log WHERE source = :source)
ORDER BY seq
"""


def lock_ledger_imports(conn: Connection) -> None:
    """Serialise ledger imports until the caller's transaction ends."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LEDGER_LOCK_KEY})


def load_ledger_scope(conn: Connection, project_ids: Sequence[str], source: str) -> tuple[list[Event], set[str]]:
    """Every event (retractions included) of ``project_ids`` and of the projects earlier imports of
    the same ledger (``source``) wrote; and the set of the latter."""
    rows = conn.execute(text(_SCOPE_SQL), {"ids": list(project_ids), "source": source})
    events = [
        Event(event_id, project_id, EventType(type_), occurred_at, recorded_at, schema_version, json.loads(payload))
        for event_id, project_id, type_, occurred_at, recorded_at, schema_version, payload in rows
    ]
    earlier = set(conn.execute(text("SELECT DISTINCT project_id FROM event_log WHERE source = :source"), {"source": source}).scalars())
    return events, earlier
