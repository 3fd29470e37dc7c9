"""Alembic, configured the usual way (``warehouse/alembic.ini``, shipped inside the package)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

ALEMBIC_INI = Path(__file__).parent / "alembic.ini"
MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config(str(ALEMBIC_INI))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to the newest schema (``zhaoshang setup`` and the test fixtures only)."""
    command.upgrade(alembic_config(engine), revision)


def head_revision() -> str:
    """The newest revision the migrations know (one head)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the migrations always have a head
        raise RuntimeError("the migrations have no head")
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (one query), None before the first migration."""
    return MigrationContext.configure(conn).get_current_revision()
