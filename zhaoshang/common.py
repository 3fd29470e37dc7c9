"""What every command shares: the database option, errors, JSON output, dates, progress."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from typing import Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from warehouse.db import ENV_VAR, make_engine, resolve_url

# Messages and progress go to stderr; tables (the result) to stdout. Off a terminal, rich would
# wrap at 80 columns and squash the Chinese headers: give tables room instead.
console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 220)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=ENV_VAR,
        help="PostgreSQL/PostGIS URL (libpq or SQLAlchemy form). Default: local PostgreSQL, database zhaoshang.",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[bold red]错误 error:[/] {message}")
    raise typer.Exit(code)


def url_of(database_url: str | None) -> URL:
    try:
        return resolve_url(database_url)
    except ValueError as exc:
        fail(str(exc))


def engine_of(database_url: str | None) -> Engine:
    """An engine on a warehouse whose schema is current: one query checks the revision.

    Only ``zhaoshang setup`` migrates; any other command on a missing or older schema says so.
    """
    from warehouse.migrate import current_revision, head_revision

    url = url_of(database_url)
    shown = url.render_as_string(hide_password=True)
    try:
        engine = make_engine(url)
        with engine.connect() as conn:
            at = current_revision(conn)
    except Exception as exc:  # connection refused, auth, no such database: say so plainly
        fail(f"cannot use the database {shown}: {exc}\n(run `zhaoshang setup` first)")
    want = head_revision()
    if at != want:
        fail(f"the warehouse {shown} is at schema revision {at or 'none'}, this zhaoshang needs {want}: run `zhaoshang setup`")
    return engine


def parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option} expects a date like 2024-03-31, got {value!r}")


def today() -> date:
    """The product's clock (``zhaoshang.clock``), with a bad ``ZHAOSHANG_TODAY`` said in one line."""
    from zhaoshang import clock

    try:
        return clock.today()
    except clock.ClockError as exc:
        fail(str(exc))


def parse_date_or_today(value: str | None, option: str) -> date:
    """A date option whose default is today (Asia/Shanghai, or ``ZHAOSHANG_TODAY``)."""
    return parse_date(value, option) or today()


def parse_known_at_option(value: str | None) -> datetime | None:
    """``--known-at``: a date means the end of that day, a naive date-time Asia/Shanghai; None stays None."""
    if value is None:
        return None
    from warehouse.replay import parse_known_at

    try:
        return parse_known_at(value)
    except ValueError as exc:
        fail(f"--known-at: {exc}")


_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_APPEND_NEWLINE


def emit_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (UTF-8; dates and other objects as their ``str``).

    orjson: the stdlib encoder is pure Python once indenting, and a replay of 200,000 projects spent
    longer printing than folding.
    """
    try:
        text = orjson.dumps(data, default=str, option=_JSON_OPTIONS)
    except TypeError:  # beyond orjson (an integer over 64 bits): the stdlib writes anything
        text = (json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n").encode()
    stream = sys.stdout
    binary = getattr(stream, "buffer", None)
    if binary is None:  # a text-only stream (a test's StringIO)
        stream.write(text.decode())
        return
    stream.flush()
    binary.write(text)
    binary.flush()


def progress(transient: bool = True) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )
