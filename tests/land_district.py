"""A tiny land district (three parcels, one factory, two projects on them) written as GeoJSON and loaded."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

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
