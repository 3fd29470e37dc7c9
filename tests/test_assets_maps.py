"""The map assets write self-contained pages; the public one leaves confidential projects out."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
from sqlalchemy import Engine

from assets.land import LAND_ASSETS, build_land_assets
from assets.maps import pipeline_map, promotion_map
from assets.partitions import monthly_partitions
from assets.pipeline import build_pipeline_assets
from assets.resources import OutputResource, WarehouseResource
from tests.land_district import load_district
from warehouse.event_store import Incoming, append_raw


def test_map_assets(db: Engine, tmp_path: Path) -> None:
    load_district(db, tmp_path)
    secret = {
        "event_id": "z1",
        "project_id": "Z",
        "type": "signed",
        "occurred_at": "2024-01-15",
        "payload": {"name": "保密洽谈项目", "investment_wan": 50000, "investor": "秘密投资方", "confidential": True, "location": {"lon": 106.305, "lat": 26.405}},
    }
    with db.begin() as conn:
        append_raw(conn, [Incoming(json.dumps(secret, ensure_ascii=False), "t", "1")])
    parts = monthly_partitions("2024-01-01")
    assets = [promotion_map, pipeline_map, *LAND_ASSETS, *build_land_assets(parts), *build_pipeline_assets(parts)]
    out = tmp_path / "out"
    result = dg.materialize(
        assets,
        selection=["promotion_map", "pipeline_map"],
        resources={"warehouse": WarehouseResource(database_url=db.url.render_as_string(hide_password=False)), "output": OutputResource(root=str(out))},
    )
    assert result.success
    public = (out / "maps" / "public" / "promotion.html").read_text(encoding="utf-8")
    internal = (out / "maps" / "internal" / "pipeline.html").read_text(encoding="utf-8")
    assert "地块P1" in public and "1号标准厂房" in public
    assert "保密洽谈项目" not in public and "秘密投资方" not in public
    assert "保密洽谈项目" in internal  # the internal pipeline map shows every project
    assert "<script src=\"http" not in public and "<link rel=\"stylesheet\" href=\"http" not in public
    meta = result.asset_materializations_for_node("promotion_map")[0].metadata
    assert Path(meta["path"].value).exists()  # type: ignore[attr-defined]
