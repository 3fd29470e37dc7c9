"""The one ``Definitions`` of the project (``dagster dev`` in the repo root loads ``defs``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg

from assets.automation import build_automation
from assets.ingest import kafka_ingest
from assets.land import LAND_ASSETS, LAND_CHECKS, build_land_assets
from assets.maps import pipeline_map, promotion_map
from assets.matches import investor_matches, match_job, requirement_files_sensor
from assets.partitions import monthly_partitions, partitions_start
from assets.pipeline import build_pipeline_assets, project_event_log
from assets.resources import KafkaResource, OutputResource, WarehouseResource
from zhaoshang.settings import Settings, load_settings


@dataclass(frozen=True)
class AssetGraph:
    """The assets and checks of one warehouse, with its monthly partitions."""

    partitions: dg.MonthlyPartitionsDefinition
    assets: list[Any]
    checks: list[Any]


def build_graph() -> AssetGraph:
    """The assets and checks; nothing here touches the warehouse (definitions load with no I/O)."""
    partitions = monthly_partitions(partitions_start(load_settings().partitions_start))
    built = build_pipeline_assets(partitions) + build_land_assets(partitions) + LAND_ASSETS + LAND_CHECKS
    checks = [c for c in built if isinstance(c, dg.AssetChecksDefinition)]
    assets = [project_event_log, kafka_ingest, investor_matches, promotion_map, pipeline_map]
    assets += [a for a in built if not isinstance(a, dg.AssetChecksDefinition)]
    return AssetGraph(partitions, assets, checks)


def _setting(value: Any, name: str, default: Any) -> Any:
    """An explicit value; else, where the environment sets the setting ``name``, its variable as a
    ``dg.EnvVar`` (Dagster resolves it when a run starts and shows it as an environment variable,
    never its value); else the default."""
    if value is not None:
        return value
    return dg.EnvVar(Settings.variable(name)) if load_settings().is_set(name) else default


def build_resources(
    database_url: str | None = None,
    output_root: str | None = None,
    requirements_dir: str | None = None,
    kafka: KafkaResource | None = None,
) -> dict[str, Any]:
    """The resources, each field an explicit value, a ``dg.EnvVar`` or its default."""
    return {
        "warehouse": WarehouseResource(database_url=_setting(database_url, "database_url", None)),
        "kafka": kafka
        or KafkaResource(
            bootstrap=_setting(None, "kafka_bootstrap", None),
            topic=_setting(None, "kafka_topic", KafkaResource.model_fields["topic"].default),
        ),
        "output": OutputResource(
            root=_setting(output_root, "output_dir", "out"),
            requirements_dir=_setting(requirements_dir, "requirements_dir", "requirements"),
        ),
    }


def build_definitions(database_url: str | None = None, output_root: str | None = None, requirements_dir: str | None = None) -> dg.Definitions:
    """Everything, bound to one warehouse (default: ``ZHAOSHANG_DATABASE_URL``, else the local one)."""
    graph = build_graph()
    jobs, sensors, schedules = build_automation(graph.partitions)
    return dg.Definitions(
        assets=graph.assets,
        asset_checks=graph.checks,
        jobs=[*jobs, match_job],
        sensors=[*sensors, requirement_files_sensor],
        schedules=schedules,
        resources=build_resources(database_url, output_root, requirements_dir),
    )


defs = build_definitions()
