"""Investor matches as a dynamically partitioned asset, fed by the requirement-file sensor."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
from sqlalchemy import Engine

from assets.land import LAND_ASSETS
from assets.matches import investor_matches, requirement_files_sensor
from assets.resources import OutputResource, WarehouseResource
from tests.land_district import load_district


def test_sensor_adds_partitions_and_asset_ranks_sites(db: Engine, tmp_path: Path) -> None:
    load_district(db, tmp_path)
    req_dir = tmp_path / "requirements"
    req_dir.mkdir()
    requirement = {
        "investor": "某新材料公司",
        "industry": "新材料",
        "land_use": ["100102"],
        "land_area_mu": {"min": 50, "max": 80},
        "near": [{"name": "高速出口", "lon": 106.321, "lat": 26.401, "max_km": 5}],
    }
    (req_dir / "xincailiao.json").write_text(json.dumps(requirement, ensure_ascii=False), encoding="utf-8")
    output = OutputResource(root=str(tmp_path / "out"), requirements_dir=str(req_dir))
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={"output": output})
        tick = requirement_files_sensor(ctx)
        assert isinstance(tick, dg.SensorResult)
        assert [r.partition_key for r in tick.run_requests or []] == ["xincailiao.json"]
        instance.add_dynamic_partitions("requirement_files", ["xincailiao.json"])
        again = requirement_files_sensor(dg.build_sensor_context(instance=instance, cursor=tick.cursor, resources={"output": output}))
        assert isinstance(again, dg.SensorResult) and not again.run_requests  # unchanged file: no new run

        result = dg.materialize(
            [investor_matches, *LAND_ASSETS],
            selection=["investor_matches"],
            instance=instance,
            partition_key="xincailiao.json",
            resources={"warehouse": WarehouseResource(database_url=db.url.render_as_string(hide_password=False)), "output": output},
        )
    assert result.success
    data = json.loads((tmp_path / "out" / "matches" / "xincailiao.json").read_text(encoding="utf-8"))
    ranked = [r["site_id"] for r in data["results"]]
    assert ranked == ["P3", "P1"]  # both fit; P3 is nearer the highway exit
    misses = {m["site_id"]: m for m in data["closest_misses"]}
    assert "P2" in misses  # taken by project X
    meta = result.asset_materializations_for_node("investor_matches")[0].metadata
    assert "P3" in meta["ranking"].value  # type: ignore[attr-defined]
