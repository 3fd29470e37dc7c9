"""Every setting read from the environment, in one object (``zhaoshang settings`` lists them).

Entry points (the CLI, the Dagster definitions, the workspace) read ``Settings`` and pass values
down; lower layers take an engine, a URL, a path or a date as arguments and never read the
environment. Variables are named ``ZHAOSHANG_*`` except ``TIANDITU_KEY`` (the name Tianditu's own
documentation uses) and Dagster's own ``DAGSTER_HOME``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingestion.broker import DEFAULT_TOPIC
from zhaoshang.logs import LogFormat


class Settings(BaseSettings):
    """The environment's settings, validated; a field's description is its documentation."""

    model_config = SettingsConfigDict(env_prefix="ZHAOSHANG_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        None,
        description="The warehouse: a PostgreSQL/PostGIS URL (libpq or SQLAlchemy form). "
        "Default: the local server over its Unix socket, database zhaoshang.",
    )
    connect_timeout: float = Field(10, ge=0, description="Seconds to wait for the database to accept a connection (a connect_timeout in the URL wins).")
    statement_timeout: float = Field(300, ge=0, description="Seconds one SQL statement may run (0: no limit).")
    today: date | None = Field(
        None,
        description="Pins the product's clock to this day (YYYY-MM-DD); default: today in Asia/Shanghai. "
        "Read by zhaoshang.clock.pinned_today alone (the clock is asked below the entry points, and `demo --today` pins it for child processes).",
    )
    kafka_bootstrap: str | None = Field(None, description="Kafka bootstrap servers HOST:PORT[,HOST:PORT] of the event stream.")
    kafka_topic: str = Field(DEFAULT_TOPIC, description="The Kafka topic of the project lifecycle events.")
    output_dir: Path = Field(Path("out"), description="Where the Dagster assets write maps, bulletins and matches.")
    requirements_dir: Path = Field(Path("requirements"), description="The folder of investor requirement files the match sensor watches.")
    partitions_start: date = Field(date(2019, 1, 1), description="The first month of the Dagster monthly partitions.")
    chromium: str | None = Field(None, description="The Chromium executable for PNG maps and browser checks (default: found on PATH).")
    web_secure_cookies: bool = Field(
        False, description="Mark the workspace's cookies Secure (when it is served over HTTPS, e.g. behind a reverse proxy)."
    )
    log_format: LogFormat = Field(
        LogFormat.TEXT, description="Log lines as text or as JSON objects, one a line (`stream --log-format` chooses for one run)."
    )
    debug: bool = Field(False, description="Show the traceback of a failure instead of its one line.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "WARNING", description="The lowest level logged (INFO shows each load, ledger, map and set-up step)."
    )
    dagster_home: Path | None = Field(
        None,
        validation_alias=AliasChoices("DAGSTER_HOME"),
        description="Dagster's own instance folder (run history); `zhaoshang demo` defaults it to its output folder.",
    )
    tianditu_key: str | None = Field(
        None,
        validation_alias=AliasChoices("TIANDITU_KEY", "ZHAOSHANG_TIANDITU_KEY"),
        description="Tianditu (天地图) API key for the tianditu basemap.",
    )

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable of the field ``name``: ``ZHAOSHANG_<NAME>`` or its alias (``TIANDITU_KEY``)."""
        field = cls.model_fields.get(name)
        alias = field.validation_alias if field is not None else None
        return str(alias.choices[0]) if isinstance(alias, AliasChoices) else f"ZHAOSHANG_{name.upper()}"

    def is_set(self, name: str) -> bool:
        """Whether the environment sets the field ``name`` (else it holds its default)."""
        return name in self.model_fields_set

    def variables(self) -> list[tuple[str, str, str]]:
        """(variable, value as set or its default, description) for every setting; secrets masked."""
        rows = []
        for name, field in type(self).model_fields.items():
            variable = self.variable(name)
            value = getattr(self, name)
            shown = "" if value is None else ("********" if name.endswith("key") else str(value))
            rows.append((str(variable), shown, field.description or ""))
        return rows


def load_settings() -> Settings:
    """The settings of this process's environment (raises ``pydantic.ValidationError`` naming the variable)."""
    return Settings()


def describe_invalid(exc: ValidationError) -> str:
    """A validation error as one line naming the environment variables: ``ZHAOSHANG_TODAY='x': reason``."""
    parts = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        variable = Settings.variable(name)
        parts.append(f"{variable}={error.get('input')!r}: {error['msg']}")
    return "; ".join(parts)
