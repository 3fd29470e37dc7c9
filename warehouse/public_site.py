"""推介 public site: the one cheap question its cache asks — has anything it shows changed?

The public pages show the land status (inventory joined with the projects) through the public
profile; building it is costly, so the web process keeps it per (as_of, change mark). The mark
names the newest land load and the newest log row, each with what makes it unique even when ids
restart (a restored or emptied warehouse): the load's timestamp, the appending transaction's id.
"""

from __future__ import annotations

from sqlalchemy import Connection, text


def change_mark(conn: Connection) -> tuple[str, str]:
    """(newest land load, newest log row) as text; empty strings on an empty warehouse. Two index probes."""
    row = conn.execute(
        text(
            "SELECT (SELECT load_id || '@' || loaded_at FROM land_load ORDER BY load_id DESC LIMIT 1),"
            " (SELECT seq || '@' || xmin::text FROM event_log ORDER BY seq DESC LIMIT 1)"
        )
    ).one()
    return str(row[0] or ""), str(row[1] or "")
