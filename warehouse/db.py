"""Database URLs and engines.

``ZHAOSHANG_DATABASE_URL`` chooses the database; a plain libpq URL
(``postgresql://user@host:port/db``) is accepted as well as an SQLAlchemy one. The default is the
local PostgreSQL over its Unix socket, database ``zhaoshang``, as the current OS user.

Every engine is bounded in time: connecting gives up after ``ZHAOSHANG_CONNECT_TIMEOUT`` seconds
(default 10; a ``connect_timeout`` in the URL wins) and a statement after
``ZHAOSHANG_STATEMENT_TIMEOUT`` seconds (default 300, 0 for none); TCP keepalives notice a server
that vanished mid-load. An application engine (the default) runs as the application role where
``zhaoshang setup`` installed the roles (``warehouse.roles``).
"""

from __future__ import annotations

import json
import os
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE = "zhaoshang"
DEFAULT_SOCKET_DIR = "/var/run/postgresql"
ENV_VAR = "ZHAOSHANG_DATABASE_URL"
CONNECT_TIMEOUT_VAR = "ZHAOSHANG_CONNECT_TIMEOUT"
STATEMENT_TIMEOUT_VAR = "ZHAOSHANG_STATEMENT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_STATEMENT_TIMEOUT = 300


def default_url() -> str:
    """The local server over its Unix socket, as the current OS user (peer or trust auth).

    Always the socket, even before PostgreSQL is installed: ``zhaoshang setup`` installs it and
    creates the role, whereas TCP on a fresh Debian server asks for a password nobody has.
    """
    return f"postgresql+psycopg:///{DEFAULT_DATABASE}?host={DEFAULT_SOCKET_DIR}"


def resolve_url(url: str | None = None) -> URL:
    """The SQLAlchemy URL (psycopg 3 driver) for an explicit URL, the environment, or the default."""
    raw = url or os.environ.get(ENV_VAR) or default_url()
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise ValueError(f"not a database URL: {raw!r} (expected postgresql://user@host:port/db)") from None
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {raw!r} (expected postgresql://user@host:port/db)")
    if not parsed.database:
        raise ValueError(f"the database URL names no database: {raw!r}")
    return parsed.set(drivername="postgresql+psycopg")


def _seconds(var: str, default: int) -> float:
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{var} expects a number of seconds, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{var} expects a number of seconds >= 0, got {raw!r}")
    return value


def connect_args_for(url: URL) -> dict[str, Any]:
    """libpq parameters bounding every connection in time (the URL's own settings win)."""
    args: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
    if "connect_timeout" not in url.query:
        # libpq takes whole seconds and treats 1 as 2; 0 would mean "wait forever".
        args["connect_timeout"] = max(2, round(_seconds(CONNECT_TIMEOUT_VAR, DEFAULT_CONNECT_TIMEOUT)))
    statement_ms = int(_seconds(STATEMENT_TIMEOUT_VAR, DEFAULT_STATEMENT_TIMEOUT) * 1000)
    options = url.query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    if "statement_timeout" not in options:
        args["options"] = f"{options} -c statement_timeout={statement_ms}".strip()
    return args


def make_engine(url: str | URL | None = None, *, as_app: bool = True, **kwargs: Any) -> Engine:
    """An engine on ``url``; ``as_app`` (the default) runs its sessions as the application role
    where the database has the roles of ``zhaoshang setup``; set-up, migrations and the test
    fixtures pass ``as_app=False`` to keep the login role."""
    resolved = url if isinstance(url, URL) else resolve_url(url)
    connect_args = {**connect_args_for(resolved), **kwargs.pop("connect_args", {})}
    engine = create_engine(
        resolved,
        pool_pre_ping=True,
        json_serializer=partial(json.dumps, ensure_ascii=False),
        connect_args=connect_args,
        **kwargs,
    )
    if as_app:
        from warehouse.roles import assume_app_role

        event.listen(engine, "connect", assume_app_role)
    return engine


def is_local(url: URL) -> bool:
    host = url.query.get("host") or url.host
    if isinstance(host, tuple):
        host = host[0]
    return host in (None, "", "localhost", "127.0.0.1", "::1") or str(host).startswith("/")


def ensure_database(url: URL) -> bool:
    """Create the database named by ``url`` when it does not exist. Returns True when created."""
    admin = make_engine(url.set(database="postgres"), as_app=False, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}).scalar()
            if exists:
                return False
            ident = conn.dialect.identifier_preparer.quote(url.database or "")
            conn.execute(text(f"CREATE DATABASE {ident}"))
            return True
    finally:
        admin.dispose()


def create_postgis(conn: Connection) -> None:
    """PostGIS in the connected database, where it is not yet (set-up, the first migration, benchmark databases)."""
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))


def drop_database(url: URL) -> None:
    admin = make_engine(url.set(database="postgres"), as_app=False, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            ident = conn.dialect.identifier_preparer.quote(url.database or "")
            conn.execute(text(f"DROP DATABASE IF EXISTS {ident} WITH (FORCE)"))
    finally:
        admin.dispose()
