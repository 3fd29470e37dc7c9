"""Database URLs and engines.

The URL is given (the entry points take it from ``zhaoshang.settings``: ``ZHAOSHANG_DATABASE_URL``);
a plain libpq URL (``postgresql://user@host:port/db``) is accepted as well as an SQLAlchemy one.
The default is the local PostgreSQL over its Unix socket, database ``zhaoshang``, as the current
OS user. Nothing here reads the environment.

Every engine is bounded in time: connecting gives up after the URL's ``connect_timeout`` (default
10 s) and a statement after its ``options=-c statement_timeout=…`` (default 300 s, 0 for none);
PostgreSQL's JIT compilation is off unless the URL's options turn it on (``-c jit=on``);
:func:`with_timeouts` writes other values into a URL, so every engine made from it, in this
process or another, keeps them. TCP keepalives notice a server that vanished mid-load. An
application engine (the default) runs as the application role where ``zhaoshang setup``
installed the roles (``warehouse.roles``).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE = "zhaoshang"
DEFAULT_SOCKET_DIR = "/var/run/postgresql"
# The variables zhaoshang.settings reads these from (named in messages).
ENV_VAR = "ZHAOSHANG_DATABASE_URL"
STATEMENT_TIMEOUT_VAR = "ZHAOSHANG_STATEMENT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_STATEMENT_TIMEOUT = 300
# Dagster's run, event-log and schedule storage (dagster-postgres) in the warehouse's database, in a
# schema of its own: Dagster's tables (its own ``alembic_version`` among them) never meet the
# warehouse's in ``public``. ``zhaoshang setup`` creates it (``warehouse.provision.prepare``).
DAGSTER_SCHEMA = "zhaoshang_dagster"


def default_url() -> str:
    """The local server over its Unix socket, as the current OS user (peer or trust auth).

    Always the socket, even before PostgreSQL is installed: ``zhaoshang setup`` installs it and
    creates the role, whereas TCP on a fresh Debian server asks for a password nobody has.
    """
    return f"postgresql+psycopg:///{DEFAULT_DATABASE}?host={DEFAULT_SOCKET_DIR}"


def resolve_url(url: str | None = None) -> URL:
    """The SQLAlchemy URL (psycopg 3 driver) for ``url``, or the local default."""
    raw = url or default_url()
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


def _connect_timeout(seconds: float) -> str:
    # libpq takes whole seconds and treats 1 as 2; 0 would mean "wait forever".
    return str(max(2, round(seconds)))


def _options(url: URL) -> str:
    options = url.query.get("options", "")
    return " ".join(options) if isinstance(options, tuple) else options


def with_timeouts(url: URL, *, connect_timeout_s: float | None = None, statement_timeout_s: float | None = None) -> URL:
    """``url`` carrying these timeouts (seconds; None leaves the default), unless it names its own."""
    query: dict[str, str] = {}
    if connect_timeout_s is not None and "connect_timeout" not in url.query:
        query["connect_timeout"] = _connect_timeout(connect_timeout_s)
    options = _options(url)
    if statement_timeout_s is not None and "statement_timeout" not in options:
        query["options"] = f"{options} -c statement_timeout={int(statement_timeout_s * 1000)}".strip()
    return url.update_query_dict(query) if query else url


def connect_args_for(url: URL) -> dict[str, Any]:
    """libpq parameters bounding every connection in time (the URL's own settings win)."""
    args: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
    if "connect_timeout" not in url.query:
        args["connect_timeout"] = int(_connect_timeout(DEFAULT_CONNECT_TIMEOUT))
    given = options = _options(url)
    if "statement_timeout" not in options:
        options = f"{options} -c statement_timeout={DEFAULT_STATEMENT_TIMEOUT * 1000}".strip()
    if "jit" not in options:
        # The warehouse's statements are short, and a recursive walk of retractions is estimated at
        # hundreds of thousands of rows: PostgreSQL then spends 15-25 ms compiling it (one project's
        # history went from ~1 ms to ~20 ms for one project in ten; a year's flow KPIs 0.8 s to 0.45 s).
        options = f"{options} -c jit=off".strip()
    if options != given:
        args["options"] = options  # with the URL's own options: connect_args replace the URL's
    return args


def dagster_storage_url(url: str | URL | None = None) -> str:
    """The URL dagster-postgres connects with: the warehouse's server, database and login, with
    ``search_path`` set to :data:`DAGSTER_SCHEMA` so Dagster creates and reads its tables there.
    Carries the password when the warehouse URL has one. The driver is named: dagster-postgres
    needs psycopg2 (its ``NOTIFY run_events, %s`` fails on psycopg 3, SQLAlchemy 2.1's default)."""
    resolved = url if isinstance(url, URL) else resolve_url(url)
    options = resolved.query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    search_path = f"-c search_path={DAGSTER_SCHEMA}"
    storage = resolved.set(drivername="postgresql+psycopg2").update_query_dict({"options": f"{options} {search_path}".strip()})
    return storage.render_as_string(hide_password=False)


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
