"""The log's two guards: the application role lacks the privileges, the triggers refuse everyone.

The session database is prepared as ``zhaoshang setup`` prepares one (tests/conftest.py).
"""

from __future__ import annotations

import pytest
import sqlalchemy
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from warehouse.db import make_engine
from warehouse.roles import APP_ROLE, OWNER_ROLE

FORBIDDEN = {
    "update": "UPDATE event_log SET source = 'x'",
    "delete": "DELETE FROM event_log",
    "truncate": "TRUNCATE event_log",
}

ROW = (
    "INSERT INTO event_log (event_id, project_id, type, occurred_at, recorded_at, content_hash)"
    " VALUES (:e, 'P1', 'signed', now(), now(), 'h')"
)


@pytest.fixture(params=["login", "set_role"])
def app_engine(request: pytest.FixtureRequest, database_url: URL, db: Engine) -> Engine:
    """The application role both ways: logged in as itself, or an application engine's SET ROLE."""
    url = database_url.set(username=APP_ROLE) if request.param == "login" else database_url
    engine = make_engine(url)
    request.addfinalizer(engine.dispose)
    return engine


def test_application_sessions_run_as_the_app_role(app_engine: Engine) -> None:
    with app_engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == APP_ROLE


def test_the_app_role_reads_and_appends(app_engine: Engine) -> None:
    with app_engine.begin() as conn:
        conn.execute(text(ROW), {"e": "e1"})
        assert conn.execute(text("SELECT count(*) FROM event_log")).scalar_one() == 1


@pytest.mark.parametrize("statement", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_the_app_role_may_not_change_the_log(app_engine: Engine, db: Engine, statement: str) -> None:
    with db.begin() as conn:
        conn.execute(text(ROW), {"e": "e1"})
    with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied for table event_log"), app_engine.begin() as conn:
        conn.execute(text(statement))
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*), min(source) FROM event_log")).one() == (1, "")


@pytest.mark.parametrize("statement", ["TRUNCATE dead_letter", "TRUNCATE land_inventory", "DROP TABLE dead_letter", "CREATE TABLE t (x int)"])
def test_the_app_role_truncates_drops_and_creates_nothing(app_engine: Engine, statement: str) -> None:
    with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied|must be owner"), app_engine.begin() as conn:
        conn.execute(text(statement))


@pytest.mark.parametrize("role", [OWNER_ROLE, None], ids=["owner", "superuser"])
def test_truncate_is_refused_even_to_the_owner(db: Engine, role: str | None) -> None:
    with db.begin() as conn:
        conn.execute(text(ROW), {"e": "e1"})
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only: TRUNCATE is not allowed"), db.begin() as conn:
        if role:
            conn.execute(text(f"SET LOCAL ROLE {role}"))
        conn.execute(text("TRUNCATE event_log"))
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_log")).scalar_one() == 1


def test_the_owner_role_owns_the_schema_and_the_product_tables(db: Engine) -> None:
    with db.connect() as conn:
        assert conn.execute(text("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'")).scalar_one() == OWNER_ROLE
        owners = dict(conn.execute(text("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")).all())
    owners.pop("spatial_ref_sys")  # PostGIS's, owned by whoever created the extension
    assert {"event_log", "dead_letter", "land_inventory", "alembic_version"} <= owners.keys()
    assert set(owners.values()) == {OWNER_ROLE}


def test_setup_installs_the_roles_in_an_existing_database_and_keeps_its_data(database_url: URL) -> None:
    """A warehouse made before the roles (the login owns everything) is handed over by ``setup``."""
    import uuid

    from warehouse.db import drop_database, ensure_database
    from warehouse.migrate import upgrade
    from warehouse.provision import prepare

    old = database_url.set(database=f"{database_url.database}_pre_{uuid.uuid4().hex[:6]}")
    ensure_database(old)
    try:
        admin = make_engine(old, as_app=False)
        upgrade(admin)
        with admin.begin() as conn:
            conn.execute(text(ROW), {"e": "kept"})
        prepare(old)
        with admin.connect() as conn:
            assert conn.execute(text("SELECT tableowner FROM pg_tables WHERE tablename = 'event_log'")).scalar_one() == OWNER_ROLE
        admin.dispose()
        app = make_engine(old)
        try:
            with app.begin() as conn:
                assert conn.execute(text("SELECT current_user")).scalar_one() == APP_ROLE
                assert conn.execute(text("SELECT event_id FROM event_log")).scalars().all() == ["kept"]
                conn.execute(text(ROW), {"e": "new"})
            with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"), app.begin() as conn:
                conn.execute(text("DELETE FROM event_log"))
        finally:
            app.dispose()
    finally:
        drop_database(old)
