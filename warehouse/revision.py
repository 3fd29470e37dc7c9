"""The schema revision this code needs, and the one a database is at: one query, no Alembic import.

Every command but ``zhaoshang setup`` checks it before its first query, so it must start fast;
Alembic (``warehouse.migrate``) loads only where a migration runs. A test holds
:data:`SCHEMA_REVISION` to the migrations' head.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.exc import ProgrammingError

SCHEMA_REVISION = "0019_kpi_covering"


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at, None before the first migration (one query)."""
    try:
        return conn.execute(text("SELECT max(version_num) FROM alembic_version")).scalar()
    except ProgrammingError:  # no such table: never migrated (the transaction is left to roll back)
        conn.rollback()
        return None
