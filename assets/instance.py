"""The Dagster instance of a warehouse: ``dagster.yaml`` putting Dagster's runs, event log and
schedules into the warehouse's PostgreSQL (dagster-postgres), schema ``zhaoshang_dagster``.

``zhaoshang demo`` writes it into ``DAGSTER_HOME``, so ``dagster dev`` afterwards shows the demo's
runs from the same database. A ``dagster.yaml`` someone else wrote is left as it is; one this module
wrote (it starts with :data:`MARKER`) follows the warehouse of the latest run. Tests that
materialize in-process keep using ephemeral instances.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from warehouse.db import DAGSTER_SCHEMA, dagster_storage_url

MARKER = "# Written by zhaoshang: Dagster's storage in the warehouse (rewritten on every demo run).\n"
# What the demo wrote before its storage moved to PostgreSQL: also ours to replace.
_EARLIER = "telemetry:\n  enabled: false\n"


def instance_config(database_url: str | None) -> dict[str, Any]:
    """The instance settings: storage in the warehouse named by ``database_url`` (default: the
    environment's, else the local one), no telemetry."""
    return {
        "storage": {"postgres": {"postgres_url": dagster_storage_url(database_url)}},
        "telemetry": {"enabled": False},
    }


def write_instance_yaml(home: Path, database_url: str | None) -> bool:
    """Write ``home/dagster.yaml`` for the warehouse unless a ``dagster.yaml`` not written here is
    there already. Returns whether it was written. Owner-only permissions: the URL may hold a password."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if path.exists():
        current = path.read_text(encoding="utf-8")
        if not current.startswith(MARKER) and current != _EARLIER:
            return False
    body = MARKER + f"# Schema {DAGSTER_SCHEMA}, created by `zhaoshang setup`.\n"
    body += yaml.safe_dump(instance_config(database_url), sort_keys=False, allow_unicode=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was there before
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(body)
    return True
