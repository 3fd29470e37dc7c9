"""Logging for the entry points: modules log through ``logging.getLogger(__name__)``; the command
line configures where it goes, as text or as JSON lines (``ZHAOSHANG_LOG_FORMAT=json`` or
``--log-format json`` on the long-running commands) for a log collector.

Log lines go to stderr, never stdout: stdout carries a command's result (tables, ``--json``).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is data to keep.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonLines(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, and the ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogFormat(StrEnum):
    """How log lines are written: text for a person, JSON objects (one a line) for a log collector."""

    TEXT = "text"
    JSON = "json"


OUR_PACKAGES = ("events", "land", "warehouse", "ingestion", "reports", "maps", "assets", "zhaoshang", "demo")


def configure_logging(log_format: str = "text", level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Route the project's loggers to ``stream`` (stderr) as ``log_format`` (text | json) from ``level`` up.

    Only ours: a library's records (kafka-python's retries, SQLAlchemy's) are not a planner's
    business, and a command's failure is already said in one line.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    for name in OUR_PACKAGES:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False


def more_verbose(level: str, at_least: str) -> str:
    """The more verbose of two level names: a long-running command logs its progress at ``at_least``."""
    return level if logging.getLevelName(level) <= logging.getLevelName(at_least) else at_least
