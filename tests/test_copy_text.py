"""COPY text: every field PostgreSQL's COPY reads back is the value that was escaped."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, text

from warehouse.copy_text import NULL, copy_escape, copy_in
from warehouse.land import _copy_column

AWKWARD = ["plain", "tab\there", "new\nline", "cr\rlf", "back\\slash \\N", "\\t literally", "中文\t名称", ""]


def test_escaped_fields_read_back_as_written(db: Engine) -> None:
    with db.begin() as conn:
        conn.exec_driver_sql("CREATE TEMP TABLE _copy_probe (ord integer, value text) ON COMMIT DROP")
        lines = [f"{i}\t{copy_escape(v)}" for i, v in enumerate(AWKWARD)] + [f"{len(AWKWARD)}\t{NULL}"]
        copy_in(conn, "COPY _copy_probe (ord, value) FROM STDIN", lines)
        got = [r.value for r in conn.execute(text("SELECT value FROM _copy_probe ORDER BY ord"))]
    assert got == [*AWKWARD, None]


def test_bytes_are_sent_as_they_are(db: Engine) -> None:
    with db.begin() as conn:
        conn.exec_driver_sql("CREATE TEMP TABLE _copy_probe (value text) ON COMMIT DROP")
        copy_in(conn, "COPY _copy_probe (value) FROM STDIN", b"a\\tb\n\\N\n")
        got = [r.value for r in conn.execute(text("SELECT value FROM _copy_probe"))]
    assert sorted(got, key=lambda v: v is None) == ["a\tb", None]


def test_land_columns_use_the_same_escaping() -> None:
    column = pd.Series([*AWKWARD, None])
    assert _copy_column(column, "text") == [*map(copy_escape, AWKWARD), NULL]
    assert _copy_column(pd.Series(["x", None]), "text") == ["x", NULL]  # nothing to escape: the fast way
