"""Resources: the warehouse, Kafka, the output folder."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from sqlalchemy import Engine

from ingestion.broker import DEFAULT_TOPIC
from warehouse.db import make_engine, resolve_url

if TYPE_CHECKING:
    # Each resource below is its own run-time value (none overrides create_resource).
    _Resource = dg.ConfigurableResource[Any]
else:
    # Not subscripted at run time: ConfigurableResource is a pydantic generic model, and
    # ConfigurableResource[X] would put a parametrized model class into every resource's MRO.
    _Resource = dg.ConfigurableResource

@cache
def _engine_for(url: str) -> Engine:
    return make_engine(url)


class WarehouseResource(_Resource):
    """The PostGIS warehouse. ``database_url`` None means ``ZHAOSHANG_DATABASE_URL`` or the local default."""

    database_url: str | None = None

    def url_string(self) -> str:
        return resolve_url(self.database_url).render_as_string(hide_password=False)

    def engine(self) -> Engine:
        return _engine_for(self.url_string())


class KafkaResource(_Resource):
    """A Kafka-protocol broker the project events arrive on (None: no stream configured)."""

    bootstrap: str | None = None
    topic: str = DEFAULT_TOPIC
    sink_name: str = "warehouse"
    idle_seconds: float = 5.0


class OutputResource(_Resource):
    """Where maps, bulletins and match results are written."""

    root: str = "out"
    requirements_dir: str = "requirements"

    def path(self, *parts: str) -> Path:
        p = Path(self.root).joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def requirements(self) -> Path:
        return Path(self.requirements_dir)
