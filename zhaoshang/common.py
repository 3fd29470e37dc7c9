"""What every command shares: the database option, errors, JSON output, dates, progress."""

from __future__ import annotations

import gc
import json
import os
import sys
import weakref
from datetime import date, datetime
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.style import Style
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from events.escape import terminal
from warehouse.db import ENV_VAR, STATEMENT_TIMEOUT_VAR, make_engine, resolve_url, with_timeouts
from zhaoshang.settings import load_settings

if TYPE_CHECKING:
    from rich.progress import Progress

    from warehouse import read_models


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
        help=f"PostgreSQL/PostGIS URL (libpq or SQLAlchemy form). Default: {ENV_VAR}, else local PostgreSQL, database zhaoshang.",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


class ExitCode(IntEnum):
    """Every command's exit status: the one table (README, ``zhaoshang --help``) a script relies on."""

    OK = 0
    FAILED = 1
    USAGE = 2
    FENCED = 3


# What each code means, as README's Commands section and ``zhaoshang --help`` print it.
EXIT_CODES: dict[ExitCode, str] = {
    ExitCode.OK: (
        "done: a load stored every record (a duplicate of a stored one counts as stored); "
        "the stream sink stopped cleanly (what it dead-lettered is in its summary)"
    ),
    ExitCode.FAILED: (
        "ran, but something was rejected or failed: records dead-lettered (events load, deadletters retry), sites (land load), "
        "lines kept out (events publish --validate), ledger rows or events refused (ledger import), "
        "a requirement file (match --batch), a Dagster run (demo), or a failure mid-run (a connection lost)"
    ),
    ExitCode.USAGE: (
        "nothing done: bad usage or input (an unknown option or value, a missing or invalid file, an output that "
        "cannot be written) or a database or Kafka broker that cannot be used (unreachable, not set up)"
    ),
    ExitCode.FENCED: "stream: another sink holds these partitions (--wait to take over when it stops)",
}


def exit_codes_text() -> str:
    """The table as plain lines, for ``--help``."""
    return "\n".join(f"{int(code)}  {meaning}" for code, meaning in EXIT_CODES.items())


# The database the running command uses, for the one-line report of a failure deep inside it.
_database: list[str] = []


def one_line(text: str, limit: int = 600) -> str:
    """``text`` on one line (a driver's message spans several), cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """One line on stderr, never wrapped (a script greps it) nor read as rich markup, then exit ``code``."""
    console.print(styled(("错误 error:", "bold red"), " ", one_line(message)), soft_wrap=True)
    raise typer.Exit(code)


def finish(rejected: int) -> None:
    """The end of a command that ran: :attr:`ExitCode.FAILED` when ``rejected`` of its records (rows,
    files) were refused, so a script tells a partial run from a complete one; else it returns (exit 0)."""
    if rejected:
        raise typer.Exit(ExitCode.FAILED)


def reason_of(exc: BaseException) -> str:
    """What went wrong, in the driver's words: a DBAPI error without SQLAlchemy's SQL and links."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    return one_line(str(exc) or type(exc).__name__)


def describe_failure(exc: BaseException) -> str:
    """The one line for an exception no command turned into a message: names the input it concerns."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, DBAPIError):
        where = _database[-1] if _database else "the database"
        hint = ""
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            hint = " (the transaction in flight was rolled back; run the command again)"
        if "statement timeout" in str(exc.orig):
            hint = f" (raise {STATEMENT_TIMEOUT_VAR} for a longer one)"
        return f"数据库 database {where}: {reason_of(exc)}{hint}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {reason_of(exc)} (set ZHAOSHANG_DEBUG=1 for the traceback)"


def url_of(database_url: str | None) -> URL:
    """The warehouse's URL: ``--database-url``, else the settings' (``ZHAOSHANG_DATABASE_URL``), carrying
    the settings' timeouts where they are set, so every engine made from it keeps them."""
    settings = load_settings()
    try:
        url = resolve_url(database_url or settings.database_url)
    except ValueError as exc:
        fail(f"--database-url / {ENV_VAR}: {exc}")
    explicit = settings.fields_set
    url = with_timeouts(
        url,
        connect_timeout_s=settings.connect_timeout if "connect_timeout" in explicit else None,
        statement_timeout_s=settings.statement_timeout if "statement_timeout" in explicit else None,
    )
    _database.append(url.render_as_string(hide_password=True))
    return url


# Made by engine_of and still in use: closed by leave(). Weak: an engine a command has let go of
# (a test runs many commands in one process) is collected with its connections, as before.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def leave() -> None:
    """The console script's last step: close the commands' connections, then keep every object out
    of the interpreter's final collection, which looks through them all for cycles (~0.08 s of each
    command's exit on a 2-core machine, finding nothing a process about to end needs freed)."""
    for engine in list(_ENGINES):
        engine.dispose()
    _ENGINES.clear()
    gc.freeze()


def engine_of(database_url: str | None) -> Engine:
    """An engine on a warehouse whose schema is current: one query checks the revision.

    Only ``zhaoshang setup`` migrates; any other command on a missing or older schema says so.
    """
    from warehouse.revision import SCHEMA_REVISION, current_revision

    url = url_of(database_url)
    shown = url.render_as_string(hide_password=True)
    try:
        engine = make_engine(url)
        _ENGINES.add(engine)
        with engine.connect() as conn:
            at = current_revision(conn)
    except Exception as exc:  # connection refused or timed out, auth, no such database: say so plainly
        fail(f"cannot use the database {shown}: {reason_of(exc)} (run `zhaoshang setup` first)")
    want = SCHEMA_REVISION
    if at != want:
        fail(f"the warehouse {shown} is at schema revision {at or 'none'}, this zhaoshang needs {want}: run `zhaoshang setup`")
    return engine


def read_text_input(path: Path, option: str) -> str:
    """A small text input (JSON, YAML) as UTF-8, a BOM allowed; anything else ends the command in one line."""
    if not path.is_file():
        fail(f"{option} {path}: 文件不存在 no such file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(f"{option} {path}: 不是 UTF-8 文本 not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8")
    except OSError as exc:
        fail(f"{option} {path}: 无法读取 cannot read: {exc.strerror or exc}")


def output_dir(path: Path, option: str, named: Path | None = None) -> Path:
    """A folder to write into, created now: a file in the way or an impossible path is said before any work.

    ``named``: the file the option names, when ``path`` is its folder (the message names the option's value).
    """
    said = f"{option} {named or path}"
    if path.exists() and not path.is_dir():
        fail(f"{said}: {path} 已存在且不是文件夹 exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{said}: 无法创建文件夹 cannot create the folder {exc.filename or path}: {exc.strerror or exc}")
    if not os.access(path, os.W_OK | os.X_OK):
        fail(f"{said}: 文件夹不可写 the folder {path} is not writable")
    return path


def output_file(path: Path, option: str, *, create_folder: bool = False) -> Path:
    """A file to write; a folder in the way, a missing folder (unless ``create_folder``) or an
    impossible path is said up front, before any work."""
    if path.is_dir():
        fail(f"{option} {path}: cannot write: 是文件夹 is a folder; give a file name")
    if create_folder:
        output_dir(path.parent, option, named=path)
    elif not path.parent.is_dir():
        fail(f"{option} {path}: cannot write: 文件夹不存在 no folder {path.parent}")
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        fail(f"{option} {path}: cannot write: 不可写 permission denied")
    return path


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
    """A progress bar on the console (a file name or status in it is data: shown, never read as markup)."""
    # Here, with rich.progress: only the commands that show a bar pay for them.
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn

    from zhaoshang.data_column import DataColumn

    return Progress(
        SpinnerColumn(),
        DataColumn("{task.description}", style="progress.description"),
        BarColumn(),
        MofNCompleteColumn(),
        DataColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
        disable=not console.is_terminal,  # off a terminal it only leaves blank lines around the messages
    )


def keep_read_models(engine: Engine, label: str = "读模型 read models") -> read_models.Progress:
    """Bring the read models up to the log after a command appended to it (progress on a terminal).

    Answers are exact without it (readers re-fold what the models lag behind); it keeps them fast.
    """
    from warehouse import read_models

    with progress() as bar:
        task = bar.add_task(label, total=None, status="")

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, status="projects")

        return read_models.refresh(engine, on_progress=on_progress)
