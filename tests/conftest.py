"""Fixtures for real services: each test session gets its own PostGIS database, dropped at the end.

``ZHAOSHANG_TEST_DATABASE_URL`` points the tests at another server (its database name is used as a
prefix); by default the local PostgreSQL is used.

The database is prepared as ``zhaoshang setup`` prepares one (``warehouse.provision.prepare``): the
owner and application roles are installed, so the CLI and every application engine in the tests
run as ``zhaoshang_app``. The fixtures' own engine keeps the login role (a superuser) so tests can
set up and inspect any table. The log refuses TRUNCATE even to its owner; the fixtures empty it
the one documented way: a superuser transaction with ``session_replication_role = replica``, in
which ordinary triggers do not fire (:func:`tests.dbutil.truncate`). Production is unaffected:
only a superuser may set that parameter.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.dbutil import truncate
from warehouse.db import drop_database, ensure_database, make_engine, resolve_url
from warehouse.provision import prepare

KEEP_TABLES = {"spatial_ref_sys", "alembic_version", "web_secret"}


@pytest.fixture(scope="session")
def database_url() -> Iterator[URL]:
    base = resolve_url(os.environ.get("ZHAOSHANG_TEST_DATABASE_URL"))
    url = base.set(database=f"{base.database}_test_{uuid.uuid4().hex[:8]}")
    ensure_database(url)
    prepare(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def session_engine(database_url: URL) -> Iterator[Engine]:
    engine = make_engine(database_url, as_app=False)
    yield engine
    engine.dispose()


@pytest.fixture
def db(session_engine: Engine) -> Engine:
    """The test database, emptied: every table but PostGIS's and Alembic's is truncated."""
    with session_engine.begin() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars().all()
        victims = [t for t in tables if t not in KEEP_TABLES]
        truncate(conn, *victims)
    return session_engine


@pytest.fixture
def db_url_str(database_url: URL) -> str:
    """The test database URL as a string, for CLI invocations (``--database-url``)."""
    return database_url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A local Tansu broker (in memory) for the session; ``"127.0.0.1:PORT"``. Tests use their own topics."""
    from ingestion.broker import LocalBroker

    with LocalBroker() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def web_server(database_url: URL, session_engine: Engine) -> Iterator[str]:
    """The workspace over the test database, served on loopback for the session; its base URL."""
    from tests.webutil import app_for, start_server

    server = start_server(app_for(database_url))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Playwright's Chromium: Debian's /usr/bin/chromium, headless."""
    from tests.webutil import launch_browser

    yield from launch_browser()


@pytest.fixture
def web_db(db: Engine) -> Engine:
    """The emptied test database with one user of each role (tests.webutil.ROLE_USERS)."""
    from tests.webutil import add_role_users

    add_role_users(db)
    return db


@pytest.fixture
def client(database_url: URL, web_db: Engine) -> Iterator[object]:
    """A FastAPI TestClient of the workspace over the test database (users of each role in it)."""
    from fastapi.testclient import TestClient

    from tests.webutil import app_for

    with TestClient(app_for(database_url)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def web_district_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[URL, object]]:
    """A second session database holding the workspace's test district (tests.web_district), with
    one user of each role; (its URL, the WebDistrict describing it). Read-mostly: see the module."""
    from tests.web_district import load_web_district
    from tests.webutil import add_role_users
    from zhaoshang import clock

    base = resolve_url(os.environ.get("ZHAOSHANG_TEST_DATABASE_URL"))
    url = base.set(database=f"{base.database}_web_{uuid.uuid4().hex[:8]}")
    ensure_database(url)
    prepare(url)
    engine = make_engine(url, as_app=False)
    try:
        district = load_web_district(engine, tmp_path_factory.mktemp("web_district"), clock.today())
        add_role_users(engine)
    finally:
        engine.dispose()
    yield url, district
    drop_database(url)


@pytest.fixture(scope="session")
def web_district(web_district_url: tuple[URL, object]) -> object:
    """The tests.web_district.WebDistrict of the session's workspace database."""
    return web_district_url[1]


@pytest.fixture(scope="session")
def district_server(web_district_url: tuple[URL, object]) -> Iterator[str]:
    """The workspace over the test district, on loopback for the session; its base URL."""
    from tests.webutil import app_for, start_server

    server = start_server(app_for(web_district_url[0]))
    yield server.url
    server.stop()


@pytest.fixture
def district_client(web_district_url: tuple[URL, object]) -> Iterator[object]:
    """A FastAPI TestClient of the workspace over the test district (log in with tests.webutil.client_login)."""
    from fastapi.testclient import TestClient

    from tests.webutil import app_for

    with TestClient(app_for(web_district_url[0])) as test_client:
        yield test_client
