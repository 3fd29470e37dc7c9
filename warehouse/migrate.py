"""Alembic, configured the usual way (``warehouse/alembic.ini``, shipped inside the package)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

ALEMBIC_INI = Path(__file__).parent / "alembic.ini"
MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config(str(ALEMBIC_INI))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def _versions(conn: Connection) -> set[str]:
    if conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar() is None:
        return set()
    return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to the newest schema (``zhaoshang setup`` and the test fixtures only).

    Runs on a connection of its own with the login role, never the application role: where the
    database uses the roles of ``zhaoshang setup`` (``warehouse.roles``) the migrations run as the
    owner role, and the application's privileges are renewed when a migration was applied.
    """
    from warehouse.db import make_engine
    from warehouse.roles import become_owner, grant_app

    admin = make_engine(engine.url, as_app=False)
    try:
        with admin.connect() as conn:
            before = _versions(conn)
        command.upgrade(alembic_config(admin), revision)
        with admin.begin() as conn:
            if _versions(conn) != before and become_owner(conn):
                grant_app(conn)
    finally:
        admin.dispose()


def head_revision() -> str:
    """The newest revision the migrations know (one head)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the migrations always have a head
        raise RuntimeError("the migrations have no head")
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (one query), None before the first migration."""
    from warehouse.revision import current_revision as at

    return at(conn)
