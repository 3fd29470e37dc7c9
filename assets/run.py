"""Materialize the whole graph in-process (what ``zhaoshang demo`` does after loading the data)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

from assets.definitions import build_graph, build_resources
from assets.matches import REQUIREMENT_FILES
from assets.partitions import first_event_month, partitions_by_clock
from assets.resources import KafkaResource

Say = Callable[[str], None]

# In-process runs log every step at DEBUG on the console; a planner wants the outcome.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _checks(result: dg.ExecuteInProcessResult) -> list[dict[str, Any]]:
    return [
        {"asset": e.asset_key.to_user_string(), "check": e.check_name, "passed": e.passed, "severity": e.severity.value}
        for e in result.get_asset_check_evaluations()
    ]


def materialize_all(
    database_url: str,
    output_root: Path,
    *,
    requirements_dir: Path | None = None,
    kafka: KafkaResource | None = None,
    instance: dg.DagsterInstance | None = None,
    say: Say = print,
) -> dict[str, Any]:
    """Every asset: the stream (when ``kafka`` is given), the land, every month of the pipeline and
    land status (one single-run backfill), the maps, and one match per requirement file.

    The months are those of the product's clock (``zhaoshang.clock``), up to the last complete one.
    Returns the runs' outcome, the asset checks' evaluations and the metadata paths.
    """
    with partitions_by_clock():
        return _materialize_all(database_url, output_root, requirements_dir, kafka, instance, say)


def _materialize_all(
    database_url: str,
    output_root: Path,
    requirements_dir: Path | None,
    kafka: KafkaResource | None,
    instance: dg.DagsterInstance | None,
    say: Say,
) -> dict[str, Any]:
    graph = build_graph()
    req_dir = requirements_dir or output_root / "requirements"
    resources = build_resources(database_url, str(output_root), str(req_dir), kafka)
    everything = [*graph.assets, *graph.checks]
    summary: dict[str, Any] = {"months": [], "runs": [], "checks": [], "paths": {}}

    def run(label: str, selection: list[str], **kwargs: Any) -> dg.ExecuteInProcessResult:
        say(f"Dagster: {label}")
        result = dg.materialize(everything, selection=selection, resources=resources, instance=instance, run_config=QUIET, **kwargs)
        summary["runs"].append({"label": label, "success": result.success, "run_id": result.run_id})
        summary["checks"] += _checks(result)
        for mat in result.get_asset_materialization_events():
            meta = mat.materialization.metadata
            for key in ("path", "index", "map"):
                if key in meta:
                    summary["paths"][f"{mat.materialization.asset_key.to_user_string()}.{key}"] = str(meta[key].value)
        return result

    first = ["idle_parcels", "standard_factories"] + (["kafka_ingest"] if kafka is not None and kafka.bootstrap else [])
    run("ingest and land inventory", first)
    # The months that have events: from the log's first month (after the stream ran) to the clock's last.
    with resources["warehouse"].engine().connect() as conn:
        first_month = first_event_month(conn)
    keys = [k for k in graph.partitions.get_partition_keys() if first_month is not None and k >= first_month]
    summary["months"] = [keys[0], keys[-1]] if keys else []
    if keys:
        run(
            f"monthly states, land status and bulletins {keys[0][:7]} … {keys[-1][:7]}",
            ["project_states", "land_status", "monthly_bulletin"],
            tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
        )
    run("promotion and pipeline maps", ["promotion_map", "pipeline_map"])
    requirement_files = sorted(p.name for p in req_dir.glob("*.json")) if req_dir.is_dir() else []
    if requirement_files:
        own = instance or dg.DagsterInstance.ephemeral()
        own.add_dynamic_partitions(REQUIREMENT_FILES.name or "", requirement_files)
        for name in requirement_files:
            summary["runs"].append({"label": f"match {name}"})
            say(f"Dagster: investor match {name}")
            result = dg.materialize(
                everything, selection=["investor_matches"], resources=resources, instance=own, partition_key=name, run_config=QUIET
            )
            summary["runs"][-1].update({"success": result.success, "run_id": result.run_id})
            for mat in result.get_asset_materialization_events():
                meta = mat.materialization.metadata
                for key in ("path", "map"):
                    if key in meta:
                        summary["paths"][f"investor_matches[{name}].{key}"] = str(meta[key].value)
    return summary
