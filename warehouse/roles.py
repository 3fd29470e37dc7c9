"""Two roles: an owner that owns the schema and migrates it, an application role that uses it.

``zhaoshang setup`` installs them (:func:`install_roles`, then the migrations as the owner, then
:func:`grant_app`):

- ``zhaoshang_owner`` (NOLOGIN) owns the ``public`` schema, every table and function of the
  product; migrations run as it (``SET ROLE``). The log's triggers refuse UPDATE, DELETE and
  TRUNCATE even to it.
- ``zhaoshang_app`` (LOGIN) may only SELECT and INSERT on ``event_log`` (and SELECT the Alembic
  version); it reads and writes the other tables (dead letters, offsets, land versions, marts),
  never TRUNCATEs a table and creates nothing but its temporary tables.

A database "uses the roles" when its ``public`` schema is owned by the owner role: roles are
cluster-wide, the marker is per database, so other databases on the server are left as they are.
Application engines (``warehouse.db.make_engine``) then ``SET ROLE zhaoshang_app`` on every new
connection when the login role may (a superuser, or a member, as after ``setup``); a URL that logs
in as ``zhaoshang_app`` itself (password auth on a shared server) needs nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

OWNER_ROLE = "zhaoshang_owner"
APP_ROLE = "zhaoshang_app"

# Tables the application may only read and append to; everything else it may also update and delete.
APPEND_ONLY_TABLES = ("event_log",)
READ_ONLY_TABLES = ("alembic_version",)

_ROLES_SQL = """
SELECT pg_has_role(session_user, a.oid, 'MEMBER') AND current_user <> a.rolname AS to_app,
       pg_has_role(session_user, o.oid, 'MEMBER') AS may_own
FROM pg_namespace n
JOIN pg_roles o ON o.oid = n.nspowner AND o.rolname = %(owner)s
JOIN pg_roles a ON a.rolname = %(app)s
WHERE n.nspname = 'public'
"""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def assume_app_role(dbapi_conn: Any, _record: Any) -> None:
    """``connect`` event of application engines: become the application role where it is installed."""
    with dbapi_conn.cursor() as cur:
        cur.execute(_ROLES_SQL, {"owner": OWNER_ROLE, "app": APP_ROLE})
        row = cur.fetchone()
        if row is not None and row[0]:
            cur.execute(f"SET ROLE {_q(APP_ROLE)}")
    dbapi_conn.commit()  # SET ROLE outlives the transaction once committed (a no-op in autocommit)


def roles_in_use(conn: Connection) -> bool:
    """Whether this database's schema is owned by the owner role (set up by ``zhaoshang setup``)."""
    return conn.exec_driver_sql(_ROLES_SQL, {"owner": OWNER_ROLE, "app": APP_ROLE}).first() is not None


def become_owner(conn: Connection) -> bool:
    """``SET LOCAL ROLE`` the owner for the caller's transaction, where the roles are in use and the
    login may; True if done. Local: the connection goes back to its pool with the login role."""
    row = conn.exec_driver_sql(_ROLES_SQL, {"owner": OWNER_ROLE, "app": APP_ROLE}).first()
    if row is None or not row.may_own:
        return False
    conn.exec_driver_sql(f"SET LOCAL ROLE {_q(OWNER_ROLE)}")
    return True


def _create_role(conn: Connection, name: str, login: bool) -> None:
    # Race-safe: two set-ups (or two test sessions) on one server may create the roles at once.
    conn.exec_driver_sql(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {_q(name)} {"LOGIN" if login else "NOLOGIN"};
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$
        """
    )


def install_roles(conn: Connection) -> list[str]:
    """Create the roles and hand the schema and every product object in it to the owner.

    Runs as the administering login (a superuser, or the database owner with CREATEROLE), before the
    migrations. Idempotent. Extension objects (PostGIS's ``spatial_ref_sys``) keep their owner.
    """
    done = []
    existing = set(conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname IN (:o, :a)"), {"o": OWNER_ROLE, "a": APP_ROLE}).scalars())
    _create_role(conn, OWNER_ROLE, login=False)
    _create_role(conn, APP_ROLE, login=True)
    if {OWNER_ROLE, APP_ROLE} - existing:
        done.append(f"created roles {OWNER_ROLE} (owns the schema, migrates) and {APP_ROLE} (the application)")
    if not conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = session_user")).scalar_one():
        conn.exec_driver_sql(f"GRANT {_q(OWNER_ROLE)}, {_q(APP_ROLE)} TO SESSION_USER")
    conn.exec_driver_sql(f"ALTER SCHEMA public OWNER TO {_q(OWNER_ROLE)}")
    owned = conn.execute(
        text(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')"
            " AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = :o)"
            # extension members, and sequences that belong to a column (they follow their table)
            " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
            "                 AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))"
        ),
        {"o": OWNER_ROLE},
    ).all()
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    for name, kind in owned:
        conn.exec_driver_sql(f"ALTER {kinds[kind]} public.{_q(name)} OWNER TO {_q(OWNER_ROLE)}")
    functions = conn.execute(
        text(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = :o)"
            " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass"
            "                 AND d.objid = p.oid AND d.deptype = 'e')"
        ),
        {"o": OWNER_ROLE},
    ).scalars().all()
    for signature in functions:
        conn.exec_driver_sql(f"ALTER FUNCTION {signature} OWNER TO {_q(OWNER_ROLE)}")
    if owned or functions:
        done.append(f"{len(owned)} tables and {len(functions)} functions handed to {OWNER_ROLE}")
    return done


def grant_app(conn: Connection) -> None:
    """The application role's privileges; run as the owner after the migrations. Idempotent.

    Not run on every command: concurrent GRANTs on one object can fail ("tuple concurrently
    updated"), so :func:`warehouse.migrate.upgrade` runs it only when a migration was applied.
    """
    app, owner = _q(APP_ROLE), _q(OWNER_ROLE)
    tables = conn.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner = :o ORDER BY tablename"),
        {"o": OWNER_ROLE},
    ).scalars().all()
    statements = [f"GRANT USAGE ON SCHEMA public TO {app}"]
    for table in tables:
        privileges = "SELECT" if table in READ_ONLY_TABLES else "SELECT, INSERT" if table in APPEND_ONLY_TABLES else "SELECT, INSERT, UPDATE, DELETE"
        statements += [f"REVOKE ALL ON public.{_q(table)} FROM {app}", f"GRANT {privileges} ON public.{_q(table)} TO {app}"]
    statements += [
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}",
        # Tables of later migrations: read and write, never TRUNCATE (name a new append-only one above).
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {app}",
    ]
    conn.exec_driver_sql(";\n".join(statements))
