"""PostgreSQL's COPY text format: the one escaping of a field and the one way rows are sent.

Values are data, never SQL: a field only needs backslash, tab, newline and carriage return
written as COPY's escapes, and NULL is ``\\N``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import Connection

NULL = "\\N"
# The characters COPY text reads as its own syntax (as a regular expression, for pandas as well).
SPECIAL_PATTERN = r"[\\\t\n\r]"
_SPECIAL = re.compile(SPECIAL_PATTERN)
_CHUNK_CHARS = 4 << 20  # lines are sent in chunks of about this size, so a large load holds little memory


def copy_escape(value: str) -> str:
    """``value`` as a COPY text field."""
    if _SPECIAL.search(value) is None:  # the usual case: nothing to escape
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_in(conn: Connection, statement: str, data: bytes | Iterable[str]) -> None:
    """Run ``COPY … FROM STDIN`` with ``data``: bytes as they are, or lines (without their newline) in chunks."""
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    with dbapi.cursor() as cur, cur.copy(statement) as copy:
        if isinstance(data, bytes):
            copy.write(data)
            return
        buf: list[str] = []
        size = 0
        for line in data:
            buf.append(line)
            size += len(line)
            if size > _CHUNK_CHARS:
                copy.write(("\n".join(buf) + "\n").encode())
                buf, size = [], 0
        if buf:
            copy.write(("\n".join(buf) + "\n").encode())
