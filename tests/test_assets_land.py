"""Land assets and their checks, materialized in-process on a tiny district written as GeoJSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from sqlalchemy import Engine, text

from assets.land import LAND_ASSETS, LAND_CHECKS, build_land_assets
from assets.partitions import monthly_partitions
from assets.pipeline import build_pipeline_assets
from assets.resources import OutputResource, WarehouseResource
from tests.land_district import load_district


def res(db: Engine, tmp_path: Path) -> dict[str, Any]:
    return {"warehouse": WarehouseResource(database_url=db.url.render_as_string(hide_password=False)), "output": OutputResource(root=str(tmp_path))}


def test_land_assets_and_monthly_status(db: Engine, tmp_path: Path) -> None:
    load_district(db, tmp_path)
    parts = monthly_partitions("2024-01-01")
    assets = LAND_ASSETS + LAND_CHECKS + build_land_assets(parts) + build_pipeline_assets(parts)
    result = dg.materialize(
        assets,
        resources=res(db, tmp_path),
        selection=["idle_parcels", "standard_factories", "project_states", "land_status"],
        tags={"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-03-01"},
    )
    assert result.success
    idle_meta = result.asset_materializations_for_node("idle_parcels")[0].metadata
    assert idle_meta["dagster/row_count"].value == 3  # type: ignore[attr-defined]
    with db.connect() as conn:
        rows = conn.execute(text("SELECT month_end, site_id, status, vacant_area_m2 FROM mart_land_status ORDER BY 1, 2")).all()
    by_month: dict[str, dict[str, Any]] = {}
    for m, site, status, vacant in rows:
        by_month.setdefault(m.isoformat(), {})[site] = (status, vacant)
    assert by_month["2024-01-31"]["P2"][0] == "available"
    assert by_month["2024-02-29"]["P2"][0] == "taken"  # whole parcel taken by X's landing
    assert by_month["2024-02-29"]["F1"] == ("available", 8000)
    assert by_month["2024-03-31"]["F1"] == ("partly_taken", 5000)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["geometries_valid"] and checks["no_overlapping_parcels"]


def test_land_checks_fail_on_broken_inventory(db: Engine, tmp_path: Path) -> None:
    load_district(db, tmp_path)
    with db.begin() as conn:
        # Written past the loader (which would repair it): a bow-tie, and a parcel over P1.
        conn.execute(
            text(
                "INSERT INTO land_inventory (kind, site_id, geom, content_hash, valid_from) VALUES"
                " ('idle', 'BOWTIE', ST_GeomFromText('POLYGON((106.40 26.40, 106.41 26.41, 106.41 26.40, 106.40 26.41, 106.40 26.40))', 4490), 1, '2024-01-01'),"
                " ('idle', 'OVER', ST_GeomFromText('POLYGON((106.301 26.401, 106.303 26.401, 106.303 26.403, 106.301 26.403, 106.301 26.401))', 4490), 2, '2024-01-01')"
            )
        )
    result = dg.materialize(LAND_ASSETS + LAND_CHECKS, resources=res(db, tmp_path), selection=["idle_parcels"])
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evals["geometries_valid"].passed
    assert "BOWTIE" in evals["geometries_valid"].metadata["sites"].value  # type: ignore[attr-defined]
    assert not evals["no_overlapping_parcels"].passed
    assert "OVER" in evals["no_overlapping_parcels"].metadata["pairs"].value  # type: ignore[attr-defined]
