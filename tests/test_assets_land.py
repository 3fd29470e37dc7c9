"""Land assets and their checks, materialized in-process on a tiny district written as GeoJSON."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from sqlalchemy import Engine, text

from assets.land import LAND_ASSETS, LAND_CHECKS, build_land_assets
from assets.partitions import monthly_partitions
from assets.pipeline import build_pipeline_assets
from assets.resources import OutputResource, WarehouseResource
from ingestion.land_files import load_land_file
from warehouse.event_store import Incoming, append_raw


def square(lon: float, lat: float, d: float = 0.002) -> list[list[list[float]]]:
    return [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]]


def write_geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    fc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}},
        "features": [{"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": coords}} for props, coords in features],
    }
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    return path


def parcel(pid: str, lon: float, lat: float, **kw: Any) -> tuple[dict[str, Any], Any]:
    props = {"parcel_id": pid, "name": f"地块{pid}", "land_use": "100102", "status": "approved_unsupplied", "park": "夏云工业园", "price_wan_per_mu": 20, **kw}
    return props, square(lon, lat)


def load_district(db: Engine, tmp_path: Path) -> None:
    idle = write_geojson(tmp_path / "idle.geojson", [parcel("P1", 106.30, 26.40), parcel("P2", 106.31, 26.40), parcel("P3", 106.32, 26.40)])
    factories = write_geojson(
        tmp_path / "factories.geojson",
        [({"factory_id": "F1", "name": "1号标准厂房", "park": "夏云工业园", "floor_area_m2": 8000, "vacant_area_m2": 8000}, square(106.33, 26.40, 0.0005))],
    )
    assert load_land_file(db, idle, kind="idle", valid_from=date(2024, 1, 1))["loaded"] == 3
    assert load_land_file(db, factories, kind="factory", valid_from=date(2024, 1, 1))["loaded"] == 1
    lines = [
        {"event_id": "s1", "project_id": "X", "type": "signed", "occurred_at": "2024-01-10", "payload": {"name": "X项目", "investment_wan": 9000}},
        {"event_id": "l1", "project_id": "X", "type": "landed", "occurred_at": "2024-02-10", "payload": {"parcel_id": "P2"}},
        {"event_id": "s2", "project_id": "Y", "type": "signed", "occurred_at": "2024-01-12", "payload": {"name": "Y项目", "investment_wan": 900}},
        {"event_id": "l2", "project_id": "Y", "type": "landed", "occurred_at": "2024-03-05", "payload": {"factory_id": "F1", "floor_area_m2": 3000}},
    ]
    with db.begin() as conn:
        append_raw(conn, [Incoming(json.dumps(x, ensure_ascii=False), "t", str(i)) for i, x in enumerate(lines)])


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
