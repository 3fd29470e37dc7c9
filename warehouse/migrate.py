"""Alembic, configured in code so the migrations ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def _versions(conn: Connection) -> set[str]:
    if conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar() is None:
        return set()
    return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Migrate to the newest schema; several heads (one per feature branch of the schema) all apply.

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
