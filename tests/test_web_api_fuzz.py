"""The workspace API fuzzed against its own OpenAPI schema (schemathesis, in process over ASGI).

Every operation the schema lists at run time is fuzzed (nothing is hard-coded: pages added later
are covered as they come), as an admin and as a unit officer (bearer tokens), with two checks: no
5xx (``not_a_server_error``) and answers as the schema declares them
(``response_schema_conformance``). Bounded: 30 positive and 30 negative examples per operation.

Reads (GET) run over the test district (``web_district_url``), realistic and shared by the
session; every other method may write, so it runs over a throwaway database (``web_db``: the
session's test database, emptied, with one user per role) — never over the shared district.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from tests.webutil import app_for
from warehouse.db import make_engine
from warehouse.users import add_api_token, get_user
from web.security import new_token, sha256_hex

ROLES = ("admin1", "unit_a")
CHECKS = [not_a_server_error, response_schema_conformance]
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _tokens(engine: Engine) -> dict[str, str]:
    """A fresh API token for each fuzzing role (``warehouse.users.add_api_token``, as ``zhaoshang users token``)."""
    out: dict[str, str] = {}
    with engine.begin() as conn:
        for username in ROLES:
            user = get_user(conn, username)
            assert user is not None
            token = new_token()
            add_api_token(conn, user_id=user.user_id, token_sha256=sha256_hex(token), label="fuzz")
            out[username] = token
    return out


@pytest.fixture(scope="module")
def district_fuzz(web_district_url: tuple[URL, object]) -> Iterator[tuple[Any, dict[str, str]]]:
    engine = make_engine(web_district_url[0], as_app=False)
    try:
        tokens = _tokens(engine)
    finally:
        engine.dispose()
    yield app_for(web_district_url[0]), tokens


@pytest.fixture
def scratch_fuzz(database_url: URL, web_db: Engine) -> tuple[Any, dict[str, str]]:
    return app_for(database_url), _tokens(web_db)


def _fuzz(app: Any, token: str, *, reads: bool) -> None:
    """Fuzz every operation of the app's schema (GET ones when ``reads``, the others when not).

    Driven through hypothesis directly rather than ``schemathesis.pytest.from_fixture``: its
    pytest wrapper (4.32) sets ``item._nodeid``, which pytest 9 no longer has. Each operation
    gets positive and negative cases; every failure is collected, then all reported together.
    """
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"}
    operations = [r.ok() for r in schema.get_all_operations()]
    chosen = [op for op in operations if (op.method.upper() == "GET") == reads]
    assert chosen, "the schema lists operations to fuzz"
    failures: list[str] = []
    for operation in chosen:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                pass  # no input of this operation can be invalid (e.g. no parameters): nothing negative to send
            except Exception as exc:  # noqa: BLE001 - every operation's failure is reported, not just the first
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("role", ROLES)
def test_reads_over_the_district(district_fuzz: tuple[Any, dict[str, str]], role: str) -> None:
    _fuzz(district_fuzz[0], district_fuzz[1][role], reads=True)


@pytest.mark.parametrize("role", ROLES)
def test_writes_over_a_throwaway_database(scratch_fuzz: tuple[Any, dict[str, str]], role: str) -> None:
    _fuzz(scratch_fuzz[0], scratch_fuzz[1][role], reads=False)


def test_the_schema_lists_the_api_and_no_page(district_fuzz: tuple[Any, dict[str, str]]) -> None:
    """The fuzz sees every /api route; HTML pages stay out of the schema (include_in_schema=False)."""
    from fastapi.testclient import TestClient

    with TestClient(district_fuzz[0]) as client:
        paths = client.get("/api/openapi.json").json()["paths"]
    assert paths and all(p.startswith("/api/") for p in paths)
    assert {"/api/public/sites", "/api/public/sites.geojson", "/api/deadletters"} <= set(paths)
