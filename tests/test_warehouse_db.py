"""Every engine's sessions are bounded in time and run without JIT compilation, unless the URL says otherwise."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from warehouse.db import make_engine


def _settings(url: URL) -> tuple[str, str]:
    engine = make_engine(url, as_app=False)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SHOW jit")).scalar_one(), conn.execute(text("SHOW statement_timeout")).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (None, ("off", "5min")),
        ("-c jit=on", ("on", "5min")),
        ("-c statement_timeout=1500", ("off", "1500ms")),
        ("-c statement_timeout=0 -c jit=on", ("on", "0")),
    ],
)
def test_sessions_run_without_jit_and_with_a_statement_timeout(database_url: URL, options: str | None, expected: tuple[str, str]) -> None:
    url = database_url.update_query_dict({"options": options}) if options else database_url
    assert _settings(url) == expected
