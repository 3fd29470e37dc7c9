"""Test-only database helpers."""

from __future__ import annotations

from sqlalchemy import Connection


def truncate(conn: Connection, *tables: str) -> None:
    """Empty ``tables`` in the caller's transaction, the event log included.

    The log's triggers refuse TRUNCATE to every role; a superuser transaction with
    ``session_replication_role = replica`` does not fire ordinary triggers. ``SET LOCAL``: the
    connection goes back to the pool with the triggers armed again.
    """
    if not tables:
        return
    if "event_log" in tables:  # the read models reflect the log: emptied with it, from position 0
        tables = tuple(dict.fromkeys([*tables, "rm_project_version", "rm_project_record"]))
        conn.exec_driver_sql("UPDATE rm_position SET seq = 0")
    conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
    conn.exec_driver_sql("SET LOCAL session_replication_role = origin")
