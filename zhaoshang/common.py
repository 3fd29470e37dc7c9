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
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.style import Style
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from events.escape import terminal
from warehouse.db import ENV_VAR, make_engine, resolve_url


class DataConsole(Console):
    """A console that prints every string as text, whatever it holds.

    Names, units and reasons are data: ``[/]`` would crash rich's markup parser, ``Acme [beijing]
    Ltd`` lose a word, ``[link=…]`` become a hyperlink, ``\x1b[31m`` recolour the terminal. So
    markup, emoji codes and highlighting are off for every string this console renders (table
    cells and titles included), and control/bidi characters are shown as ``\x1b``
    (``events.escape.terminal``). Style comes only from :class:`rich.text.Text` built by
    :func:`styled` or from ``style=`` arguments.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False, highlight=False)
        return super().render_str(terminal(text), **kwargs)


Part = str | tuple[str, str | Style]


def styled(*parts: Part) -> Text:
    """One line from plain strings (data, shown as written) and ``(text, style)`` pairs (our labels)."""
    return Text.assemble(*((terminal(p[0]), p[1]) if isinstance(p, tuple) else terminal(p) for p in parts))


# Messages and progress go to stderr; tables (the result) to stdout. Off a terminal, rich would
# wrap at 80 columns and squash the Chinese headers: give tables room instead.
console = DataConsole(stderr=True)
out = DataConsole(width=None if sys.stdout.isatty() else 220)

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
    console.print(styled(("错误 error:", "bold red"), " ", message))
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


class _DataColumn(TextColumn):
    """A progress text column whose text (a file name, a status) is data: no markup, controls visible."""

    def __init__(self, text_format: str, style: str = "none") -> None:
        super().__init__(text_format, style=style, markup=False)

    def render(self, task: Task) -> Text:
        text = super().render(task)
        return Text(terminal(text.plain), style=text.style)


def progress(transient: bool = True) -> Progress:
    return Progress(
        SpinnerColumn(),
        _DataColumn("{task.description}", style="progress.description"),
        BarColumn(),
        MofNCompleteColumn(),
        _DataColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )
