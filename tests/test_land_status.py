"""Land status joined with the project events: landing takes, cancellation releases, anomalies, horizons."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from shapely.geometry import Point, box
from sqlalchemy import Engine
from typer.testing import CliRunner

from ingestion.land_files import load_land_file
from warehouse.event_store import Incoming, load_records
from warehouse.land import land_status, land_totals, parks, pois, project_locations
from warehouse.replay import Horizon, parse_known_at
from zhaoshang.cli import app

NASTY_SQL = "'); drop table parcels; --"
NASTY_HTML = "<img src=x onerror=alert(1)>"
NASTY_MARKUP = "[bold]标准厂房[/bold] [/] \\"
P1 = box(106.300, 26.400, 106.302, 26.402)
P2 = box(106.310, 26.400, 106.312, 26.401)
F1 = box(106.320, 26.400, 106.3205, 26.4003)


def _inventory(db: Engine, tmp_path: Path) -> None:
    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": ["P-1", "P-2"],
            "name": [NASTY_SQL, NASTY_HTML],
            "park": ["夏云工业园区", "平坝经济开发区"],
            "land_use": ["100102", "100101"],
            "status": ["闲置", "批而未供"],
            "area_mu": [60.0, None],
        },
        geometry=[P1, P2],
        crs="EPSG:4490",
    )
    parcels.to_file(tmp_path / "parcels.geojson", driver="GeoJSON")
    factories = gpd.GeoDataFrame(
        {"factory_id": ["F-1"], "name": [NASTY_MARKUP], "park": ["平坝经济开发区"], "floor_area_m2": [10000.0], "vacant_area_m2": [6000.0], "floors": [2]},
        geometry=[F1],
        crs="EPSG:4490",
    )
    factories.to_file(tmp_path / "factories.geojson", driver="GeoJSON")
    for kind, name in (("idle", "parcels.geojson"), ("factory", "factories.geojson")):
        report = load_land_file(db, tmp_path / name, kind=kind, valid_from=date(2024, 1, 1))
        assert report["loaded"] == report["read"]


def _event(event_id: str, pid: str, type_: str, on: str, payload: dict[str, Any] | None = None, recorded: str | None = None) -> Incoming:
    ev: dict[str, Any] = {"event_id": event_id, "project_id": pid, "type": type_, "occurred_at": on, "payload": payload or {}}
    ev["recorded_at"] = recorded or f"{on}T20:00:00+08:00"
    return Incoming(json.dumps(ev, ensure_ascii=False), "test", event_id)


def _history(db: Engine) -> None:
    evs = [
        _event("a1", "A", "signed", "2024-02-01", {"name": "新材料项目", "investment_wan": 20000}),
        _event("a2", "A", "landed", "2024-03-01", {"parcel_id": "P-1", "land_area_mu": 20}, recorded="2024-03-20T10:00:00+08:00"),
        _event("a3", "A", "cancelled", "2024-06-01", {"reason": "企业战略调整"}),
        # B names no parcel: its signed location lies inside P-2, and it takes all of it.
        _event("b1", "B", "signed", "2024-02-01", {"name": "食品加工项目", "investment_wan": 5000, "location": {"lon": 106.311, "lat": 26.4005}}),
        _event("b2", "B", "landed", "2024-04-01", {"land_area_mu": None}),
        _event("b3", "B", "started", "2024-04-15"),
        _event("b4", "B", "produced", "2024-05-01"),
        _event("c1", "C", "signed", "2024-02-01", {"name": "电子元器件项目", "investment_wan": 3000}),
        _event("c2", "C", "landed", "2024-03-15", {"factory_id": "F-1", "floor_area_m2": 2000}),
        _event("d1", "D", "signed", "2024-02-01", {"name": "未知地块项目", "investment_wan": 1000}),
        _event("d2", "D", "landed", "2024-03-15", {"parcel_id": "P-999", "land_area_mu": 10}),
        _event("e1", "E", "signed", "2024-02-01", {"name": "洽谈项目", "investment_wan": 800, "location": {"lon": 106.35, "lat": 26.45}, "confidential": True}),
        _event("g1", "G", "signed", "2024-02-01", {"name": "无位置项目", "investment_wan": 100}),
    ]
    result = load_records(db, evs)
    assert result.accepted == len(evs), result.reasons


def _by_site(db: Engine, horizon: Horizon) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    with db.connect() as conn:
        frame = land_status(conn, horizon)
    return frame, {r.site_id: r for r in frame.itertuples()}


def test_landing_takes_land_and_cancellation_releases_it(db: Engine, tmp_path: Path) -> None:
    _inventory(db, tmp_path)
    _history(db)

    frame, before = _by_site(db, Horizon(date(2024, 2, 15)))
    assert frame.crs.to_epsg() == 4490
    assert {s: r.status for s, r in before.items()} == {"P-1": "available", "P-2": "available", "F-1": "available"}
    assert before["P-1"].remaining_area_mu == 60.0 and before["F-1"].vacant_area_m2 == 6000.0

    _, landed = _by_site(db, Horizon(date(2024, 4, 20)))
    assert landed["P-1"].status == "partly_taken"
    assert landed["P-1"].remaining_area_mu == pytest.approx(40.0)
    assert landed["P-1"].project_ids == ["A"]
    assert landed["P-2"].status == "taken"  # whole parcel, found by the signed location
    assert landed["P-2"].remaining_area_mu == 0.0 and landed["P-2"].project_ids == ["B"]
    assert landed["F-1"].status == "partly_taken" and landed["F-1"].vacant_area_m2 == 4000.0
    assert landed["F-1"].floor_area_m2 == 10000.0 and landed["F-1"].project_ids == ["C"]

    frame, after = _by_site(db, Horizon(date(2024, 6, 30)))
    assert after["P-1"].status == "available" and after["P-1"].remaining_area_mu == 60.0 and after["P-1"].project_ids == []
    assert after["P-2"].status == "in_production"
    anomalies = frame.attrs["anomalies"]
    assert [(a["code"], a["project_id"], a["site_id"]) for a in anomalies] == [("unknown_parcel", "D", "P-999")]
    # Frames derived from the status share its anomaly list: pandas deep-copies attrs into each one,
    # which at 80,000 anomalies made every filter of the workspace's land view cost seconds.
    derived = frame[frame["kind"] == "idle"].sort_values("site_id")
    assert derived.attrs["anomalies"] is anomalies

    totals = land_totals(frame).set_index(["park", "kind", "status"])
    assert totals.loc[("平坝经济开发区", "idle", "in_production"), "sites"] == 1
    assert totals.loc[("夏云工业园区", "idle", "available"), "remaining_area_mu"] == 60.0


def test_known_at_hides_a_landing_recorded_later(db: Engine, tmp_path: Path) -> None:
    _inventory(db, tmp_path)
    _history(db)
    _, early = _by_site(db, Horizon(date(2024, 3, 31), parse_known_at("2024-03-10")))
    _, late = _by_site(db, Horizon(date(2024, 3, 31), parse_known_at("2024-03-25")))
    assert early["P-1"].status == "available"
    assert late["P-1"].status == "partly_taken"


def test_inventory_before_the_first_version_is_empty_and_landing_is_anomalous(db: Engine, tmp_path: Path) -> None:
    _inventory(db, tmp_path)
    _history(db)
    frame, _ = _by_site(db, Horizon(date(2023, 12, 31)))
    assert len(frame) == 0


def test_land_status_cli_json_and_table(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    _inventory(db, tmp_path)
    _history(db)
    runner = CliRunner()
    result = runner.invoke(app, ["land", "status", "--as-of", "2024-04-20", "--json", "--database-url", db_url_str])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    sites = {s["site_id"]: s for s in report["sites"]}
    assert sites["P-1"]["name"] == NASTY_SQL and sites["P-2"]["name"] == NASTY_HTML
    assert sites["P-1"]["status"] == "partly_taken" and sites["P-1"]["remaining_area_mu"] == pytest.approx(40.0)
    assert sites["F-1"]["vacant_area_m2"] == 4000.0 and sites["F-1"]["name"] == NASTY_MARKUP
    assert report["anomalies"][0]["code"] == "unknown_parcel"
    assert {(t["park"], t["kind"], t["status"]) for t in report["totals_by_park"]} == {
        ("夏云工业园区", "idle", "partly_taken"),
        ("平坝经济开发区", "idle", "taken"),
        ("平坝经济开发区", "factory", "partly_taken"),
    }
    table = runner.invoke(app, ["land", "status", "--as-of", "2024-04-20", "--database-url", db_url_str])
    assert table.exit_code == 0, table.stderr
    assert NASTY_HTML in table.stdout and NASTY_MARKUP in table.stdout and "部分占用" in table.stdout and "unknown_parcel" in table.stderr


def test_project_locations(db: Engine, tmp_path: Path) -> None:
    _inventory(db, tmp_path)
    _history(db)
    with db.connect() as conn:
        locs = project_locations(conn, Horizon(date(2024, 6, 30))).set_index("project_id")
    assert locs.crs.to_epsg() == 4490
    # D landed on an unknown parcel and was signed with no location; G has no place at all.
    assert sorted(locs.index) == ["A", "B", "C", "E"]
    assert locs.loc["B", "site_id"] == "P-2" and locs.loc["B"].geometry.equals_exact(P2.centroid, 1e-9)
    assert locs.loc["C", "site_id"] == "F-1" and locs.loc["C"].geometry.equals_exact(F1.centroid, 1e-9)
    assert locs.loc["A", "stage"] == "cancelled"
    e = locs.loc["E"]
    assert e["site_id"] is None and e.geometry.equals(Point(106.35, 26.45)) and bool(e["confidential"])
    assert e["stage"] == "signed" and e["investment_wan"] == 800


def test_parks_and_pois(db: Engine, tmp_path: Path) -> None:
    outline = gpd.GeoDataFrame({"园区": ["夏云工业园区"]}, geometry=[box(106.29, 26.39, 106.33, 26.42)], crs="EPSG:4490")
    outline.to_file(tmp_path / "parks.gpkg", driver="GPKG")
    points = gpd.GeoDataFrame(
        {"名称": ["沪昆高速平坝出口", "平坝南站铁路货场"], "类型": ["高速出口", "rail_freight"]},
        geometry=[Point(106.268, 26.431), Point(106.305, 26.398)],
        crs="EPSG:4490",
    )
    points.to_file(tmp_path / "pois.geojson", driver="GeoJSON")
    assert load_land_file(db, tmp_path / "parks.gpkg", kind="park", valid_from=date(2024, 1, 1))["loaded"] == 1
    assert load_land_file(db, tmp_path / "pois.geojson", kind="poi", valid_from=date(2024, 1, 1))["loaded"] == 2
    with db.connect() as conn:
        pk = parks(conn)
        pt = pois(conn).set_index("name")
    assert list(pk["park"]) == ["夏云工业园区"] and pk.crs.to_epsg() == 4490
    assert pk["area_mu"].iloc[0] > 0
    assert pt.loc["沪昆高速平坝出口", "kind"] == "highway_exit" and pt.loc["平坝南站铁路货场", "kind"] == "rail_freight"
    assert pt.loc["平坝南站铁路货场"].geometry.equals(Point(106.305, 26.398))


def test_parcel_struck_off_a_later_version_is_reported_as_such(db: Engine, tmp_path: Path) -> None:
    _inventory(db, tmp_path)
    _history(db)
    extra = [
        _event("h1", "H", "signed", "2024-02-01", {"name": "占用P-2项目", "investment_wan": 900}),
        _event("h2", "H", "landed", "2024-04-02", {"parcel_id": "P-2", "land_area_mu": 1}),
    ]
    assert load_records(db, extra).accepted == 2
    # The bureau's next idle list no longer has P-2 (granted): land as of later dates lacks it.
    only_p1 = gpd.GeoDataFrame({"parcel_id": ["P-1"], "name": [NASTY_SQL], "park": ["夏云工业园区"], "land_use": ["100102"],
                                "status": ["闲置"], "area_mu": [60.0]}, geometry=[P1], crs="EPSG:4490")
    only_p1.to_file(tmp_path / "v2.geojson", driver="GeoJSON")
    report = load_land_file(db, tmp_path / "v2.geojson", kind="idle", valid_from=date(2024, 7, 1))
    assert (report["closed"], report["unchanged"]) == (1, 1)
    frame, sites = _by_site(db, Horizon(date(2024, 8, 1)))
    assert sorted(sites) == ["F-1", "P-1"]
    codes = {(a["code"], a["project_id"]) for a in frame.attrs["anomalies"]}
    assert ("parcel_left_inventory", "H") in codes
    assert ("landed_without_site", "B") in codes  # its signed location now lies in no parcel
    assert ("unknown_parcel", "D") in codes
    # Before the new version, P-2 is there and both landings take from it.
    _, before = _by_site(db, Horizon(date(2024, 6, 30)))
    assert before["P-2"].project_ids == ["B", "H"]
