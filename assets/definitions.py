"""The one ``Definitions`` of the project (``dagster dev`` in the repo root loads ``defs``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dagster as dg

from assets.automation import build_automation
from assets.ingest import kafka_ingest
from assets.land import LAND_ASSETS, LAND_CHECKS, build_land_assets
from assets.maps import pipeline_map, promotion_map
from assets.matches import investor_matches, match_job, requirement_files_sensor
from assets.partitions import first_event_month, monthly_partitions
from assets.pipeline import build_pipeline_assets, project_event_log
from assets.resources import KafkaResource, OutputResource, WarehouseResource


@dataclass(frozen=True)
class AssetGraph:
    """The assets and checks of one warehouse, with its monthly partitions."""

    partitions: dg.MonthlyPartitionsDefinition
    assets: list[Any]
    checks: list[Any]


def build_graph(database_url: str | None = None) -> AssetGraph:
    partitions = monthly_partitions(first_event_month(database_url))
    built = build_pipeline_assets(partitions) + build_land_assets(partitions) + LAND_ASSETS + LAND_CHECKS
    checks = [c for c in built if isinstance(c, dg.AssetChecksDefinition)]
    assets = [project_event_log, kafka_ingest, investor_matches, promotion_map, pipeline_map]
    assets += [a for a in built if not isinstance(a, dg.AssetChecksDefinition)]
    return AssetGraph(partitions, assets, checks)


def build_resources(
    database_url: str | None = None,
    output_root: str | None = None,
    requirements_dir: str | None = None,
    kafka: KafkaResource | None = None,
) -> dict[str, Any]:
    return {
        "warehouse": WarehouseResource(database_url=database_url),
        "kafka": kafka
        or KafkaResource(
            bootstrap=os.environ.get("ZHAOSHANG_KAFKA_BOOTSTRAP"), topic=os.environ.get("ZHAOSHANG_KAFKA_TOPIC", "zhaoshang.events")
        ),
        "output": OutputResource(
            root=output_root or os.environ.get("ZHAOSHANG_OUTPUT_DIR", "out"),
            requirements_dir=requirements_dir or os.environ.get("ZHAOSHANG_REQUIREMENTS_DIR", "requirements"),
        ),
    }


def build_definitions(database_url: str | None = None, output_root: str | None = None, requirements_dir: str | None = None) -> dg.Definitions:
    """Everything, bound to one warehouse; monthly partitions start at its first event's month."""
    graph = build_graph(database_url)
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
