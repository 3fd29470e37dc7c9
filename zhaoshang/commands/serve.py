"""serve: the web workspace; users: who may use it."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Annotated

import typer

from zhaoshang import clock
from zhaoshang.common import DatabaseUrl, ExitCode, JsonFlag, emit_json, engine_of, fail, out, url_of
from zhaoshang.groups import users_app
from zhaoshang.settings import load_settings

DATABASE_VARIABLE = "ZHAOSHANG_DATABASE_URL"


def app_factory():  # type: ignore[no-untyped-def]
    """The ASGI app of one worker process (uvicorn ``--factory``): settings and clock read here, the entry point."""
    from web.app import create_app
    from web.config import WebConfig

    settings = load_settings()
    config = WebConfig(today=clock.today, secure_cookies=settings.web_secure_cookies, chromium=settings.chromium, warm_caches=True)
    return create_app(config, engine_of(None))


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes (they share the warehouse: sessions live there).")] = 1,
    database_url: DatabaseUrl = None,
) -> None:
    """工作台 · serve the web workspace (pages and /api) over the warehouse."""
    import uvicorn

    url = url_of(database_url)
    engine_of(database_url).dispose()  # fail here, plainly, on a missing or old schema
    # Worker processes read the settings like any entry point: pass the URL the way they read it.
    os.environ[DATABASE_VARIABLE] = url.render_as_string(hide_password=False)
    out.print(f"工作台 workspace: http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}/  (public site: /public, API: /api/docs)")
    sys.stdout.flush()  # said before uvicorn takes over the process (a pipe would hold it back)
    uvicorn.run("zhaoshang.commands.serve:app_factory", factory=True, host=host, port=port, workers=workers, log_level="warning")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("密码 password: ")
    if getpass.getpass("再输一次 again: ") != first:
        fail("the two passwords differ")
    return first


PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin (scripts).")]


def users_add(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option("--role", help="admin | planner | unit | leader")],
    unit: Annotated[str | None, typer.Option("--unit", help="The responsible unit (责任单位) of a unit officer.")] = None,
    display_name: Annotated[str, typer.Option("--name", help="Name shown in the workspace.")] = "",
    password_stdin: PasswordStdin = False,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """添加用户 · add a user with a role."""
    from warehouse.users import UserError, add_user
    from web.passwords import PasswordError, hash_password

    try:
        password_hash = hash_password(_read_password(password_stdin))
        with engine_of(database_url).begin() as conn:
            user = add_user(conn, username=username, password_hash=password_hash, role=role, unit=unit, display_name=display_name, created_by="cli")
    except (UserError, PasswordError) as exc:
        fail(str(exc))
    if json_out:
        emit_json({"username": user.username, "role": user.role, "unit": user.unit})
    else:
        out.print(f"added {user.username} ({user.role}{' · ' + user.unit if user.unit else ''})")


def users_list(database_url: DatabaseUrl = None, json_out: JsonFlag = False) -> None:
    """用户列表 · list the users."""
    from warehouse.users import list_users

    with engine_of(database_url).connect() as conn:
        rows = list_users(conn)
    data = [{"username": u.username, "name": u.display_name, "role": u.role, "unit": u.unit, "disabled": u.disabled} for u in rows]
    if json_out:
        emit_json(data)
        return
    for d in data:
        out.print(f"{d['username']}\t{d['role']}\t{d['unit'] or ''}\t{d['name']}" + ("\t(disabled 已停用)" if d["disabled"] else ""))


def _set_disabled(username: str, disabled: bool, database_url: str | None) -> None:
    from warehouse.users import UserError, set_disabled

    try:
        with engine_of(database_url).begin() as conn:
            set_disabled(conn, username, disabled)
    except UserError as exc:
        fail(str(exc))
    out.print(f"{username}: {'disabled 已停用 (sessions and tokens ended)' if disabled else 'enabled 已启用'}")


def users_disable(username: Annotated[str, typer.Argument()], database_url: DatabaseUrl = None) -> None:
    """停用用户 · disable a user (their sessions and API tokens end at once)."""
    _set_disabled(username, True, database_url)


def users_enable(username: Annotated[str, typer.Argument()], database_url: DatabaseUrl = None) -> None:
    """启用用户 · enable a disabled user."""
    _set_disabled(username, False, database_url)


def users_reset_password(username: Annotated[str, typer.Argument()], password_stdin: PasswordStdin = False, database_url: DatabaseUrl = None) -> None:
    """重置密码 · set a new password (the user's sessions end)."""
    from warehouse.users import UserError, set_password_hash
    from web.passwords import PasswordError, hash_password

    try:
        password_hash = hash_password(_read_password(password_stdin))
        with engine_of(database_url).begin() as conn:
            set_password_hash(conn, username, password_hash)
    except (UserError, PasswordError) as exc:
        fail(str(exc))
    out.print(f"{username}: password reset 密码已重置")


def users_token(
    username: Annotated[str, typer.Argument()],
    label: Annotated[str, typer.Option("--label", help="What the token is for (another bureau system's name).")] = "",
    database_url: DatabaseUrl = None,
) -> None:
    """API 令牌 · issue a bearer token for /api acting as this user (printed once, stored hashed)."""
    from warehouse.users import add_api_token, get_user
    from web.security import new_token, sha256_hex

    token = new_token()
    with engine_of(database_url).begin() as conn:
        user = get_user(conn, username)
        if user is None:
            fail(f"user {username!r} does not exist", code=ExitCode.USAGE)
        add_api_token(conn, user_id=user.user_id, token_sha256=sha256_hex(token), label=label)
    out.print(token)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    users_app.command("add")(users_add)
    users_app.command("list")(users_list)
    users_app.command("disable")(users_disable)
    users_app.command("enable")(users_enable)
    users_app.command("reset-password")(users_reset_password)
    users_app.command("token")(users_token)
