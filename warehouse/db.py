"""Database URLs and engines.

``ZHAOSHANG_DATABASE_URL`` chooses the database; a plain libpq URL
(``postgresql://user@host:port/db``) is accepted as well as an SQLAlchemy one. The default is the
local PostgreSQL over its Unix socket, database ``zhaoshang``, as the current OS user.
"""

from __future__ import annotations

import json
import os
from functools import partial

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

DEFAULT_DATABASE = "zhaoshang"
DEFAULT_SOCKET_DIR = "/var/run/postgresql"
ENV_VAR = "ZHAOSHANG_DATABASE_URL"


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
    parsed = make_url(raw)
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {raw!r} (expected postgresql://user@host:port/db)")
    if not parsed.database:
        raise ValueError(f"the database URL names no database: {raw!r}")
    return parsed.set(drivername="postgresql+psycopg")


def make_engine(url: str | URL | None = None, **kwargs: object) -> Engine:
    resolved = url if isinstance(url, URL) else resolve_url(url)
    return create_engine(
        resolved,
        pool_pre_ping=True,
        json_serializer=partial(json.dumps, ensure_ascii=False),
        **kwargs,  # type: ignore[arg-type]
    )


def is_local(url: URL) -> bool:
    host = url.query.get("host") or url.host
    if isinstance(host, tuple):
        host = host[0]
    return host in (None, "", "localhost", "127.0.0.1", "::1") or str(host).startswith("/")


def ensure_database(url: URL) -> bool:
    """Create the database named by ``url`` when it does not exist. Returns True when created."""
    admin = make_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
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


def drop_database(url: URL) -> None:
    admin = make_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            ident = conn.dialect.identifier_preparer.quote(url.database or "")
            conn.execute(text(f"DROP DATABASE IF EXISTS {ident} WITH (FORCE)"))
    finally:
        admin.dispose()
