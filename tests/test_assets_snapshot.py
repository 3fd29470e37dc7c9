"""A snapshot of the asset graph: any change to assets, dependencies, partitions, checks, jobs,
schedules or sensors shows up as a diff of ``tests/snapshots/asset_graph.json``.

After an intended change: ``ZHAOSHANG_UPDATE_SNAPSHOTS=1 pytest tests/test_assets_snapshot.py``,
then review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from assets.definitions import build_definitions

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def graph_summary(defs: dg.Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    assets: dict[str, Any] = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitions": type(partitions).__name__ if partitions else None,
            "checks": sorted(c.name for c in node.check_keys),
            "observable": node.is_observable,
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")),
        "schedules": sorted([n, defs.get_schedule_def(n).cron_schedule] for n in (s.name for s in defs.schedules or [])),  # type: ignore[union-attr]
        "sensors": sorted(s.name for s in (defs.sensors or [])),  # type: ignore[union-attr]
    }


def test_asset_graph_matches_its_snapshot(tmp_path: Path) -> None:
    summary = json.loads(json.dumps(graph_summary(build_definitions(output_root=str(tmp_path))), ensure_ascii=False))
    if os.environ.get("ZHAOSHANG_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert summary == json.loads(SNAPSHOT.read_text(encoding="utf-8"))
