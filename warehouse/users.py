"""Workspace users, sessions, login attempts and API tokens: every SQL statement about who is who.

Passwords arrive here already hashed (``web.passwords``); tokens arrive as their SHA-256. Nothing
here keeps state in the process: several web processes share these tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, text

ROLES = ("admin", "planner", "unit", "leader")


class UserError(ValueError):
    """A user that cannot be added or changed as asked (names the user and the reason)."""


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    username: str
    display_name: str
    role: str
    unit: str | None
    disabled: bool
    password_hash: str = ""


_USER_COLUMNS = "user_id, username, display_name, role, unit, disabled, password_hash"


def _user(row: Any) -> User:
    return User(row.user_id, row.username, row.display_name, row.role, row.unit, row.disabled, row.password_hash)


def add_user(
    conn: Connection, *, username: str, password_hash: str, role: str, unit: str | None = None, display_name: str = "", created_by: str = ""
) -> User:
    """Add a user; raises :class:`UserError` for an unknown role, a unit officer without a unit, a taken name."""
    username = username.strip()
    if not username or len(username) > 64 or any(ch.isspace() for ch in username):
        raise UserError(f"user {username!r}: a user name is 1–64 characters without spaces")
    if role not in ROLES:
        raise UserError(f"user {username!r}: role {role!r} is not one of {', '.join(ROLES)}")
    if role == "unit" and not (unit or "").strip():
        raise UserError(f"user {username!r}: a unit officer needs --unit (the responsible unit 责任单位)")
    if role != "unit":
        unit = None
    exists = conn.execute(text("SELECT 1 FROM web_user WHERE username = :u"), {"u": username}).first()
    if exists:
        raise UserError(f"user {username!r} already exists")
    row = conn.execute(
        text(
            "INSERT INTO web_user (username, display_name, role, unit, password_hash, created_by)"
            f" VALUES (:u, :d, :r, :unit, :h, :by) RETURNING {_USER_COLUMNS}"
        ),
        {"u": username, "d": display_name or username, "r": role, "unit": unit, "h": password_hash, "by": created_by},
    ).one()
    return _user(row)


def get_user(conn: Connection, username: str) -> User | None:
    row = conn.execute(text(f"SELECT {_USER_COLUMNS} FROM web_user WHERE username = :u"), {"u": username}).first()
    return _user(row) if row else None


def list_users(conn: Connection) -> list[User]:
    rows = conn.execute(text(f"SELECT {_USER_COLUMNS} FROM web_user ORDER BY username")).all()
    return [_user(r) for r in rows]


def officer_units(conn: Connection) -> list[str]:
    """The responsible units that have an enabled ``unit`` officer (whose views the workspace warms)."""
    found = conn.execute(text("SELECT DISTINCT unit FROM web_user WHERE role = 'unit' AND NOT disabled AND unit IS NOT NULL ORDER BY 1"))
    return list(found.scalars())


def set_disabled(conn: Connection, username: str, disabled: bool) -> User:
    """Disable (or enable) a user; a disabled user's sessions and tokens end at once."""
    row = conn.execute(
        text(f"UPDATE web_user SET disabled = :d, updated_at = now() WHERE username = :u RETURNING {_USER_COLUMNS}"),
        {"u": username, "d": disabled},
    ).first()
    if row is None:
        raise UserError(f"user {username!r} does not exist")
    if disabled:
        conn.execute(text("DELETE FROM web_session WHERE user_id = :i"), {"i": row.user_id})
        conn.execute(text("UPDATE web_api_token SET revoked_at = now() WHERE user_id = :i AND revoked_at IS NULL"), {"i": row.user_id})
    return _user(row)


def set_password_hash(conn: Connection, username: str, password_hash: str) -> User:
    """Replace a user's password hash; their sessions end (log in again with the new password)."""
    row = conn.execute(
        text(f"UPDATE web_user SET password_hash = :h, updated_at = now() WHERE username = :u RETURNING {_USER_COLUMNS}"),
        {"u": username, "h": password_hash},
    ).first()
    if row is None:
        raise UserError(f"user {username!r} does not exist")
    conn.execute(text("DELETE FROM web_session WHERE user_id = :i"), {"i": row.user_id})
    return _user(row)


# --- sessions -----------------------------------------------------------------------------------


def create_session(conn: Connection, *, user_id: int, token_sha256: str, csrf_token: str, ttl: timedelta) -> None:
    conn.execute(
        text(
            "INSERT INTO web_session (token_sha256, user_id, csrf_token, expires_at)"
            " VALUES (:t, :u, :c, now() + make_interval(secs => :s))"
        ),
        {"t": token_sha256, "u": user_id, "c": csrf_token, "s": ttl.total_seconds()},
    )
    # Expired sessions go on the way: no janitor process to keep alive.
    conn.execute(text("DELETE FROM web_session WHERE expires_at < now() - interval '1 day'"))


def session_user(conn: Connection, token_sha256: str) -> tuple[User, str] | None:
    """The live session's user and CSRF token (None when unknown, expired or the user is disabled)."""
    row = conn.execute(
        text(
            f"SELECT {', '.join('u.' + c for c in _USER_COLUMNS.split(', '))}, s.csrf_token"
            " FROM web_session s JOIN web_user u USING (user_id)"
            " WHERE s.token_sha256 = :t AND s.expires_at > now() AND NOT u.disabled"
        ),
        {"t": token_sha256},
    ).first()
    if row is None:
        return None
    return _user(row), row.csrf_token


def end_session(conn: Connection, token_sha256: str) -> None:
    conn.execute(text("DELETE FROM web_session WHERE token_sha256 = :t"), {"t": token_sha256})


# --- login throttling ---------------------------------------------------------------------------


def record_attempt(conn: Connection, *, username: str, client: str, ok: bool) -> None:
    conn.execute(
        text("INSERT INTO web_login_attempt (username, client, ok) VALUES (:u, :c, :ok)"),
        {"u": username, "c": client, "ok": ok},
    )


def recent_failures(conn: Connection, *, username: str, client: str, window: timedelta) -> tuple[int, int]:
    """Failed attempts within ``window`` for this user name and for this client (since their last success)."""
    row = conn.execute(
        text(
            "SELECT"
            " (SELECT count(*) FROM web_login_attempt WHERE username = :u AND NOT ok AND attempted_at > now() - make_interval(secs => :w)"
            "   AND attempted_at > coalesce((SELECT max(attempted_at) FROM web_login_attempt WHERE username = :u AND ok), '-infinity')) AS by_user,"
            " (SELECT count(*) FROM web_login_attempt WHERE client = :c AND NOT ok AND attempted_at > now() - make_interval(secs => :w)) AS by_client"
        ),
        {"u": username, "c": client, "w": window.total_seconds()},
    ).one()
    return int(row.by_user), int(row.by_client)


# --- API tokens ---------------------------------------------------------------------------------


def add_api_token(conn: Connection, *, user_id: int, token_sha256: str, label: str) -> None:
    conn.execute(
        text("INSERT INTO web_api_token (token_sha256, user_id, label) VALUES (:t, :u, :l)"),
        {"t": token_sha256, "u": user_id, "l": label},
    )


def token_user(conn: Connection, token_sha256: str) -> User | None:
    row = conn.execute(
        text(
            f"SELECT {', '.join('u.' + c for c in _USER_COLUMNS.split(', '))}"
            " FROM web_api_token t JOIN web_user u USING (user_id)"
            " WHERE t.token_sha256 = :t AND t.revoked_at IS NULL AND NOT u.disabled"
        ),
        {"t": token_sha256},
    ).first()
    return _user(row) if row else None


def signing_secret(conn: Connection) -> str:
    """The cookie-signing key every web process shares (made by the migration)."""
    return str(conn.execute(text("SELECT value FROM web_secret WHERE name = 'cookie_signing'")).scalar_one())

