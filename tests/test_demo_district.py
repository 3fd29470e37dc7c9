"""The demo county: plausible, non-overlapping, loadable, and its history lands on its parcels."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import Engine

from demo.district import generate_district, load_demo_district
from demo.history import generate_history
from warehouse.event_store import Incoming, load_records
from warehouse.land import land_status
from warehouse.replay import Horizon


def test_district_is_plausible() -> None:
    d = generate_district(7)
    assert all(f.crs.to_epsg() == 4490 for f in (d.parcels, d.factories, d.parks, d.pois))
    assert 3 <= len(d.parks) <= 4
    assert 280 <= len(d.parcels) <= 320 and 50 <= len(d.factories) <= 70
    minx, miny, maxx, maxy = d.parcels.total_bounds
    assert minx >= 106.2 and maxx <= 106.6 and miny >= 26.3 and maxy <= 26.6
    assert d.parcels["area_mu"].between(5, 300).all()
    assert set(d.parcels["land_use"]) == {"100101", "100102", "100103"}
    assert d.parcels["price_wan_per_mu"].between(5, 60).all()
    assert {"highway_exit", "rail_freight", "port"} <= set(d.pois["kind"])
    assert (d.factories["vacant_area_m2"] <= d.factories["floor_area_m2"]).all()
    # Roads separate the parcels (and the reserve kept for the expansion): no two share any area.
    assert d.reserve is not None and 20 <= len(d.reserve) <= 32
    assert not set(d.reserve["parcel_id"]) & set(d.parcels["parcel_id"])
    geoms = np.concatenate([np.asarray(d.parcels.geometry.values), np.asarray(d.reserve.geometry.values)])
    left, right = shapely.STRtree(geoms).query(geoms, predicate="overlaps")
    assert len(left) == 0
    parks = d.parks.set_index("park").geometry
    inside = [parks[p].buffer(1e-5).contains(g) for p, g in zip(d.parcels["park"], d.parcels.geometry, strict=True)]
    assert all(inside)
    # Reproducible from the seed.
    again = generate_district(7)
    assert again.parcels.geometry.equals(d.parcels.geometry) and list(again.factories["factory_id"]) == list(d.factories["factory_id"])


def test_demo_district_loads_and_its_history_lands_on_it(db: Engine, tmp_path: Path) -> None:
    district, reports = load_demo_district(db, tmp_path, seed=11)
    assert (tmp_path / "land" / "idle_parcels.cpg").read_text().strip().upper() == "GBK"
    for kind, r in reports.items():
        assert r["read"] == r["loaded"] > 0 and r["rejected"] == 0, kind
        assert r["overlaps"] == []
    assert reports["idle"]["source_crs"] == "EPSG:4544"
    revision = reports["idle@2024-07-01"]
    n_reserve = len(district.reserve) if district.reserve is not None else 0
    assert revision["read"] == len(district.parcels) + n_reserve
    assert revision["inserted"] == n_reserve + revision["closed"] and revision["closed"] > 10
    history = generate_history(seed=11, n_projects=150, end=date(2026, 10, 31), sites=district.sites())
    result = load_records(db, (Incoming(json.dumps(e, ensure_ascii=False), "demo", str(i)) for i, e in enumerate(history)))
    assert result.rejected == 0
    with db.connect() as conn:
        frame = land_status(conn, Horizon(date(2026, 10, 31)))
        before = land_status(conn, Horizon(date(2024, 6, 30)))
    assert len(frame) == len(district.parcels) + n_reserve + len(district.factories)
    assert len(before) == len(district.parcels) + len(district.factories)
    assert (frame["status"] != "available").sum() > 20
    assert not [a for a in frame.attrs["anomalies"] if a["code"].startswith("unknown_") or a["code"].endswith("_left_inventory")]
    # The revision re-priced one park: the same parcel, two prices, by date.
    pb = "平坝经济开发区"
    old = before[(before["park"] == pb) & (before["kind"] == "idle")].set_index("site_id")["price_wan_per_mu"]
    new = frame[(frame["park"] == pb) & (frame["kind"] == "idle")].set_index("site_id")["price_wan_per_mu"]
    assert (new[old.index] > old).mean() > 0.9

    # A second run on the same database changes nothing and says why the first version was not applied.
    _, again = load_demo_district(db, tmp_path, seed=11)
    assert all(r["inserted"] == 0 and r["closed"] == 0 for r in again.values())
    assert any("not applied" in w for w in again["idle"]["warnings"])
