"""The schema revision this code needs, and the one a database is at: one query, no Alembic import.

Every command but ``zhaoshang setup`` checks it before its first query, so it must start fast;
Alembic (``warehouse.migrate``) loads only where a migration runs. A test holds
:data:`SCHEMA_REVISION` to the migrations' head.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

SCHEMA_REVISION = "0010_read_models"


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at, None before the first migration (one query)."""
    return conn.execute(
        text("SELECT CASE WHEN to_regclass('public.alembic_version') IS NULL THEN NULL ELSE (SELECT max(version_num) FROM alembic_version) END")
    ).scalar()
