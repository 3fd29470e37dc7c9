"""Every setting read from the environment, in one object (``zhaoshang settings`` lists them).

Entry points (the CLI, the Dagster definitions, the workspace) read ``Settings`` and pass values
down; lower layers take an engine, a URL, a path or a date as arguments and never read the
environment. Variables are named ``ZHAOSHANG_*`` except ``TIANDITU_KEY`` (the name Tianditu's own
documentation uses) and Dagster's own ``DAGSTER_HOME``.

Parsed here rather than by pydantic-settings: every command reads the settings before its first
query, and importing pydantic cost a quarter of a second of each command's start-up. An empty
variable counts as unset (as it does for the clock).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from ingestion.broker import DEFAULT_TOPIC
from zhaoshang.logs import LogFormat

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number of seconds ≥ 0") from None
    if not value >= 0:  # also refuses nan
        raise ValueError("must be a number of seconds ≥ 0")
    return value


def _day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError("must be a date YYYY-MM-DD") from None


def _flag(raw: str) -> bool:
    word = raw.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("must be true or false (1/0, yes/no, on/off)")


def _log_format(raw: str) -> LogFormat:
    try:
        return LogFormat(raw.lower())
    except ValueError:
        raise ValueError(f"must be one of {', '.join(f.value for f in LogFormat)}") from None


def _log_level(raw: str) -> str:
    if raw.upper() not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return raw.upper()


def _text(raw: str) -> str:
    return raw


def _setting(default: Any, description: str, parse: Callable[[str], Any] = _text, *variables: str) -> Any:
    """A field: its default, its documentation, how its variable is parsed and, when not
    ``ZHAOSHANG_<NAME>``, the variables that set it (the first is the documented one)."""
    return field(default=default, metadata={"description": description, "parse": parse, "variables": variables})


@dataclass(frozen=True)
class Settings:
    """The environment's settings, validated; a field's description is its documentation.

    ``Settings()`` holds the defaults; :func:`load_settings` reads the environment.
    """

    database_url: str | None = _setting(
        None,
        "The warehouse: a PostgreSQL/PostGIS URL (libpq or SQLAlchemy form). Default: the local server over its Unix socket, database zhaoshang.",
    )
    connect_timeout: float = _setting(10.0, "Seconds to wait for the database to accept a connection (a connect_timeout in the URL wins).", _seconds)
    statement_timeout: float = _setting(300.0, "Seconds one SQL statement may run (0: no limit).", _seconds)
    today: date | None = _setting(
        None,
        "Pins the product's clock to this day (YYYY-MM-DD); default: today in Asia/Shanghai. "
        "Read by zhaoshang.clock.pinned_today alone (the clock is asked below the entry points, and `demo --today` pins it for child processes).",
        _day,
    )
    kafka_bootstrap: str | None = _setting(None, "Kafka bootstrap servers HOST:PORT[,HOST:PORT] of the event stream.")
    kafka_topic: str = _setting(DEFAULT_TOPIC, "The Kafka topic of the project lifecycle events.")
    output_dir: Path = _setting(Path("out"), "Where the Dagster assets write maps, bulletins and matches.", Path)
    requirements_dir: Path = _setting(Path("requirements"), "The folder of investor requirement files the match sensor watches.", Path)
    partitions_start: date = _setting(date(2019, 1, 1), "The first month of the Dagster monthly partitions.", _day)
    chromium: str | None = _setting(None, "The Chromium executable for PNG maps and browser checks (default: found on PATH).")
    web_secure_cookies: bool = _setting(
        False, "Mark the workspace's cookies Secure (when it is served over HTTPS, e.g. behind a reverse proxy).", _flag
    )
    log_format: LogFormat = _setting(
        LogFormat.TEXT, "Log lines as text or as JSON objects, one a line (`stream --log-format` chooses for one run).", _log_format
    )
    debug: bool = _setting(False, "Show the traceback of a failure instead of its one line.", _flag)
    log_level: str = _setting("WARNING", "The lowest level logged (INFO shows each load, ledger, map and set-up step).", _log_level)
    dagster_home: Path | None = _setting(
        None, "Dagster's own instance folder (run history); `zhaoshang demo` defaults it to its output folder.", Path, "DAGSTER_HOME"
    )
    tianditu_key: str | None = _setting(None, "Tianditu (天地图) API key for the tianditu basemap.", _text, "TIANDITU_KEY", "ZHAOSHANG_TIANDITU_KEY")
    # The names the environment set (the rest hold their defaults).
    fields_set: frozenset[str] = field(default=frozenset(), repr=False, compare=False, metadata={"internal": True})

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable of the field ``name``: ``ZHAOSHANG_<NAME>`` or its alias (``TIANDITU_KEY``)."""
        return _variables(cls, name)[0]

    def is_set(self, name: str) -> bool:
        """Whether the environment sets the field ``name`` (else it holds its default)."""
        return name in self.fields_set

    def variables(self) -> list[tuple[str, str, str]]:
        """(variable, value as set or its default, description) for every setting; secrets masked."""
        rows = []
        for f in _setting_fields():
            value = getattr(self, f.name)
            shown = "" if value is None else ("********" if f.name.endswith("key") else str(value))
            rows.append((self.variable(f.name), shown, f.metadata["description"]))
        return rows


def _setting_fields() -> list[Any]:
    return [f for f in fields(Settings) if not f.metadata.get("internal")]


def _variables(cls: type[Settings], name: str) -> tuple[str, ...]:
    meta = cls.__dataclass_fields__[name].metadata if name in cls.__dataclass_fields__ else {}
    return tuple(meta.get("variables") or ()) or (f"ZHAOSHANG_{name.upper()}",)


class InvalidSettings(ValueError):
    """Environment variables that do not hold what their setting needs: (variable, value, reason) each."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        super().__init__(describe_invalid(self))


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """The settings of this process's environment (or ``environ``); raises :class:`InvalidSettings`
    naming every variable that does not parse. Names match whatever their case, as shells differ."""
    env = {k.upper(): v for k, v in (os.environ if environ is None else environ).items()}
    values: dict[str, Any] = {}
    problems = []
    for f in _setting_fields():
        for variable in _variables(Settings, f.name):
            raw = env.get(variable, "").strip()
            if raw:
                try:
                    values[f.name] = f.metadata["parse"](raw)
                except ValueError as exc:
                    problems.append((variable, raw, str(exc)))
                break
    if problems:
        raise InvalidSettings(problems)
    return Settings(**values, fields_set=frozenset(values))


def describe_invalid(exc: InvalidSettings) -> str:
    """The invalid variables as one line: ``ZHAOSHANG_TODAY='x': must be a date YYYY-MM-DD``."""
    return "; ".join(f"{variable}={raw!r}: {reason}" for variable, raw, reason in exc.problems)
