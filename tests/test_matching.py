"""Matching investors to parcels and factories: answers worked out by hand (see land/matching.py).

Sites are placed at exact geodesic distances from an anchor (pyproj.Geod on the GRS80 ellipsoid of
CGCS2000), so the expected distances and scores can be computed on paper.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Geod
from shapely.geometry import box

from land.industry_land import industry_class
from land.matching import (
    RequirementError,
    _readiness_n,
    gauss_kruger_epsg,
    match,
    match_many,
    parse_requirement,
    prepare_sites,
    readiness_connections,
)

GEOD = Geod(ellps="GRS80")
EXIT = (106.26, 26.41)  # 高速出口, CGCS2000 lon/lat

COLUMNS = (
    "site_id", "kind", "name", "park", "land_use", "land_status", "status", "area_mu", "remaining_area_mu",
    "price_wan_per_mu", "plot_ratio_max", "readiness", "floor_area_m2", "vacant_area_m2", "floors",
    "floor_load_kn_m2", "clear_height_m", "power_kva", "rent_yuan_m2_month", "project_ids",
)


def at(km: float, azimuth: float = 90.0, origin: tuple[float, float] = EXIT, half_deg: float = 0.0005):
    """A small square whose centre is ``km`` ground kilometres from ``origin`` (its centroid is that point)."""
    lon, lat, _ = GEOD.fwd(origin[0], origin[1], azimuth, km * 1000.0)
    return box(lon - half_deg, lat - half_deg, lon + half_deg, lat + half_deg)


def parcel(site_id: str, km: float, *, land_use: str = "100102", area: float = 80, remaining: float | None = None,
           price: float = 20, readiness: str | None = "七通一平", status: str = "available", azimuth: float = 90.0,
           projects: list[str] | None = None) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        site_id=site_id, kind="idle", name=f"地块{site_id}", park="经开区", land_use=land_use, land_status="idle",
        status=status, area_mu=area, remaining_area_mu=area if remaining is None else remaining,
        price_wan_per_mu=price, plot_ratio_max=1.5, readiness=readiness, project_ids=projects or [],
        geometry=at(km, azimuth),
    )
    return row


def factory(site_id: str, km: float, *, vacant: float = 6000, load: float = 12, height: float = 9,
            power: float = 800, rent: float = 15, status: str = "available") -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        site_id=site_id, kind="factory", name=f"厂房{site_id}", park="经开区", status=status,
        floor_area_m2=10000, vacant_area_m2=vacant, floors=2, floor_load_kn_m2=load, clear_height_m=height,
        power_kva=power, rent_yuan_m2_month=rent, project_ids=[], geometry=at(km).centroid,
    )
    return row


def frame(rows: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, columns=[*COLUMNS, "geometry"], geometry="geometry", crs=4490)


LAND_REQ = {
    "investor": "某新材料公司",
    "industry": "新材料",
    "land_area_mu": {"min": 50, "max": 120},
    "max_price_wan_per_mu": 30,
    "near": [{"name": "高速出口", "lon": EXIT[0], "lat": EXIT[1], "max_km": 10}],
}


@pytest.fixture
def district() -> gpd.GeoDataFrame:
    return frame([
        parcel("P-FIT", 2, price=24),
        parcel("P-OK", 6, area=120, price=30, readiness="三通一平"),
        parcel("P-PART", 4, area=200, remaining=60, status="partly_taken", readiness="五通一平", projects=["X-9"]),
        parcel("P-CLASS", 1, land_use="100103"),  # 三类 land: not for 新材料
        parcel("P-SMALL", 1, area=30),
        parcel("P-TAKEN", 1, status="taken", remaining=0, projects=["P-001"]),
        parcel("P-FAR", 25),
        parcel("P-PRICEY", 1, price=45),
        parcel("P-TWO", 30, land_use="100101"),  # two failures: not a closest miss
        factory("F-1", 1),
    ])


def test_the_parcel_that_fits_everything_ranks_first_with_hand_computed_scores(district):
    result = match(LAND_REQ, district)
    assert result["kind"] == "idle" and result["candidates"] == 9 and result["matched"] == 3
    # P-FIT: area 1-0.5·5/35, price 1-0.5·24/30 = 0.6, distance 1-0.5·2/10 = 0.9, readiness 7/7:
    # 0.35·13/14 + 0.25·0.6 + 0.25·0.9 + 0.15·1 = 0.85
    # P-PART (60 of 200 mu left): 0.35·(1-0.5·25/35) + 0.25·(1-0.5·20/30) + 0.25·0.8 + 0.15·5/7 = 0.69881
    # P-OK (120 mu, at the price cap): 0.35·0.5 + 0.25·0.5 + 0.25·0.7 + 0.15·3/7 = 0.53929
    assert [(r["rank"], r["site_id"], r["score"]) for r in result["results"]] == [
        (1, "P-FIT", 85.0), (2, "P-PART", 69.88), (3, "P-OK", 53.93),
    ]
    first = result["results"][0]
    by = {c["criterion"]: c for c in first["criteria"]}
    assert by["area_fit"]["value"] == 80 and by["area_fit"]["reason_zh"] == "面积 80 亩，满足 50–120 亩"
    assert by["area_fit"]["reason_en"] == "area 80 mu, within 50–120 mu"
    assert by["area_fit"]["score"] == pytest.approx(13 / 14, abs=1e-4) and by["area_fit"]["weight"] == 0.35
    assert by["price"]["score"] == 0.6 and "不高于上限 30 万元/亩" in by["price"]["reason_zh"]
    assert by["distance"]["value"] == pytest.approx(2.0, abs=0.002) and by["distance"]["target"] == "高速出口"
    assert by["readiness"]["reason_zh"] == "配套七通一平（7/7）"
    assert by["land_use"]["value"] == "100102" and by["land_use"]["weight"] == 0
    assert first["lon"] == pytest.approx(GEOD.fwd(*EXIT, 90, 2000)[0], abs=1e-5)
    part = {c["criterion"]: c for c in result["results"][1]["criteria"]}
    assert part["area_fit"]["reason_zh"] == "剩余面积 60 亩，满足 50–120 亩"
    assert part["status"]["reason_zh"] == "部分占用，剩余 60 亩可供"


def test_each_excluded_parcel_is_a_closest_miss_with_its_reason(district):
    result = match(LAND_REQ, district)
    misses = {m["site_id"]: m for m in result["closest_misses"]}
    assert set(misses) == {"P-CLASS", "P-SMALL", "P-TAKEN", "P-FAR", "P-PRICEY"}  # not P-TWO, not F-1
    assert misses["P-CLASS"]["failed"] == "land_use"
    assert "100103（三类工业用地）" in misses["P-CLASS"]["reason_zh"] and "100102" in misses["P-CLASS"]["reason_zh"]
    assert misses["P-SMALL"]["failed"] == "area"
    assert misses["P-SMALL"]["reason_zh"] == "面积 30 亩，不足 50–120 亩"
    assert misses["P-TAKEN"]["failed"] == "status"
    assert misses["P-TAKEN"]["reason_zh"] == "已被落地项目占用（项目 P-001），不可供应"
    assert misses["P-FAR"]["failed"] == "near" and misses["P-FAR"]["target"] == "高速出口"
    assert misses["P-FAR"]["value"] == pytest.approx(25.0, abs=0.005)
    assert misses["P-FAR"]["reason_en"] == "25.0 km from 高速出口, beyond 10 km"
    assert misses["P-PRICEY"]["failed"] == "price" and "超过上限 30" in misses["P-PRICEY"]["reason_zh"]
    # best would-be score first, ties by site_id. P-CLASS and P-TAKEN (80 mu, 20 万元, 1 km):
    # 0.35·13/14 + 0.25·(1-0.5·20/30) + 0.25·0.95 + 0.15 = 0.87917; P-PRICEY (45 万元): price 0.25 → 0.775;
    # P-FAR (25 km): distance 0 → 0.64167; P-SMALL (30 mu): area 1-0.5·55/35 → 0.62917
    assert [(m["site_id"], m["score"]) for m in result["closest_misses"]] == [
        ("P-CLASS", 87.92), ("P-TAKEN", 87.92), ("P-PRICEY", 77.5), ("P-FAR", 64.17), ("P-SMALL", 62.92),
    ]
    assert all(r["site_id"] not in misses for r in result["results"])


def test_factory_requirements_pick_factories_not_land(district):
    rows = [r for _, r in district.iterrows()] + [
        factory("F-LOW", 2, load=5),
        factory("F-FULL", 2, status="in_production"),
        factory("F-SMALL", 2, vacant=2000),
    ]
    sites = frame([dict(r) for r in rows])
    req = {
        "investor": "某电子公司", "industry": "电子信息",
        "factory": {"floor_area_m2": {"min": 5000}, "floor_load_kn_m2": {"min": 10}, "clear_height_m": {"min": 8}},
        "near": [{"name": "高速出口", "lon": EXIT[0], "lat": EXIT[1], "max_km": 10}],
    }
    result = match(req, sites)
    assert result["kind"] == "factory" and result["candidates"] == 4
    assert [r["site_id"] for r in result["results"]] == ["F-1"]
    assert {r["kind"] for r in result["results"] + result["closest_misses"]} == {"factory"}
    misses = {m["site_id"]: m["failed"] for m in result["closest_misses"]}
    assert misses == {"F-LOW": "floor_load", "F-FULL": "status", "F-SMALL": "area"}
    crit = {c["criterion"]: c for c in result["results"][0]["criteria"]}
    assert crit["area_fit"]["reason_zh"] == "空置面积 6,000 平方米，满足 ≥ 5,000 平方米"
    assert crit["clear_height"]["reason_en"] == "clear height 9 m, meets ≥ 8 m"
    assert "readiness" not in result["weights"]  # factories are built: readiness is not scored by default


def test_ties_are_ordered_by_site_id_and_top_limits(district):
    sites = frame([parcel("B-2", 3), parcel("A-1", 3), parcel("C-3", 5)])
    result = match(LAND_REQ, sites, top=2)
    assert [r["site_id"] for r in result["results"]] == ["A-1", "B-2"]
    assert result["results"][0]["score"] == result["results"][1]["score"]


def test_industry_decides_the_land_class():
    assert industry_class("精细化工") is not None and industry_class("精细化工").allowed == ("100103",)
    assert industry_class("化工新材料").allowed == ("100103",)  # pollution decides
    assert industry_class("电子信息").allowed == ("100101", "100102")
    assert industry_class("新材料").allowed == ("100102",)
    assert industry_class("文旅") is None
    sites = frame([parcel("C1", 1, land_use="100101"), parcel("C2", 1, land_use="100102"), parcel("C3", 1, land_use="100103")])
    chem = match({"investor": "某化工企业", "industry": "化工"}, sites)
    assert [r["site_id"] for r in chem["results"]] == ["C3"]
    light = match({"investor": "某服装企业", "industry": "服装"}, sites)
    assert sorted(r["site_id"] for r in light["results"]) == ["C1", "C2"]
    unknown = match({"investor": "某文旅公司", "industry": "文旅"}, sites)
    assert len(unknown["results"]) == 3 and "不在用地分类表中" in unknown["notes"][0]["zh"]


def test_distances_are_ground_distances_in_any_zone_and_input_crs():
    assert gauss_kruger_epsg(106.26) == 4544 and gauss_kruger_epsg(87.6) == 4538
    urumqi = (87.6, 43.8)
    sites = frame([parcel("U1", 7.5, azimuth=45)])
    sites["geometry"] = [at(7.5, 45, origin=urumqi)]
    req = {"investor": "x", "near": [{"name": "火车站", "lon": urumqi[0], "lat": urumqi[1], "max_km": 8}]}
    value = {c["criterion"]: c for c in match(req, sites)["results"][0]["criteria"]}["distance"]["value"]
    assert value == pytest.approx(7.5, abs=0.004)  # degrees would give ~0.08
    projected = match(req, sites.to_crs(4538))  # a frame in a projected CRS works the same
    assert projected["results"][0]["lon"] == pytest.approx(GEOD.fwd(*urumqi, 45, 7500)[0], abs=1e-5)


def test_weights_from_the_requirement_replace_or_remove_defaults(district):
    req = {**LAND_REQ, "weights": {"price": 2, "readiness": 0}}
    result = match(req, district)
    # 0.35 + 0.25 + 2 = 2.6 → area 0.1346, distance 0.0962, price 0.7692; readiness removed
    assert result["weights"] == {"area_fit": 0.1346, "distance": 0.0962, "price": 0.7692}
    # cheaper P-PART (20 万元/亩) now beats P-FIT (24):
    # 0.1346·0.642857 + 0.0962·0.8 + 0.7692·(2/3) = 0.67628 > 0.1346·0.928571 + 0.0962·0.9 + 0.7692·0.6 = 0.67308
    assert [(r["site_id"], r["score"]) for r in result["results"]] == [("P-PART", 67.63), ("P-FIT", 67.31), ("P-OK", 51.92)]
    ignored = match({**LAND_REQ, "weights": {"power": 1}}, district)
    assert "power" not in ignored["weights"] and "权重 power 不适用于土地需求" in ignored["notes"][0]["zh"]


def test_match_many_prepares_once_and_agrees_with_match(district):
    reqs = [LAND_REQ, {"investor": "y", "factory": {}}, {**LAND_REQ, "land_area_mu": {"min": 10}}]
    index = prepare_sites(district)
    assert match_many(reqs, index) == [match(r, district) for r in reqs]


def test_empty_inventory_gives_no_results():
    result = match(LAND_REQ, frame([]))
    assert result["results"] == [] and result["closest_misses"] == [] and result["candidates"] == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"industry": "新材料"}, "investor"),
        ({"investor": "x", "land_area_mu": {"min": 120, "max": 50}}, "land_area_mu"),
        ({"investor": "x", "land_area_mu": 80}, "land_area_mu"),
        ({"investor": "x", "land_area_mu": {"min": 50, "mx": 120}}, "land_area_mu.mx"),
        ({"investor": "x", "land_use": ["100102", "0701"]}, "land_use[1]"),
        ({"investor": "x", "industry": "化工", "land_use": ["100101"]}, "land_use"),
        ({"investor": "x", "max_price_wan_per_mu": -3}, "max_price_wan_per_mu"),
        ({"investor": "x", "max_price": 30}, "max_price"),
        ({"investor": "x", "near": [{"name": "站", "lon": 26.4, "lat": 106.2, "max_km": 5}]}, "near[0].lat"),
        ({"investor": "x", "near": [{"name": "站", "lon": 106.2, "lat": 26.4}]}, "near[0].max_km"),
        ({"investor": "x", "near": [{"name": "站", "lon": 106.2, "lat": 26.4, "max_km": 0}]}, "near[0].max_km"),
        ({"investor": "x", "weights": {"cost": 1}}, "weights.cost"),
        ({"investor": "x", "weights": {"price": 0, "area_fit": 0, "distance": 0, "readiness": 0}}, "weights"),
        ({"investor": "x", "factory": {"floor_load": {"min": 10}}}, "factory.floor_load"),
        ({"investor": "x", "factory": {"clear_height_m": {"min": "high"}}}, "factory.clear_height_m.min"),
        (["not", "an", "object"], "requirement"),
    ],
)
def test_bad_requirements_name_the_field(data, field):
    with pytest.raises(RequirementError) as err:
        parse_requirement(data)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


def _reference_failures(req: dict[str, Any], row: dict[str, Any], centroid: tuple[float, float]) -> list[str]:
    """The hard constraints a site fails, written per site the plain way, with geodesic distances."""
    factory = "factory" in req
    whole = row["floor_area_m2"] if factory else row["area_mu"]
    left = row["vacant_area_m2"] if factory else row["remaining_area_mu"]
    free = row["status"] in ("available", "partly_taken") and left > 0
    size = left if free else whole
    failed = [] if free else ["status"]
    rng = req["factory"].get("floor_area_m2") if factory else req.get("land_area_mu")
    if rng and not (rng.get("min", -math.inf) <= size <= rng.get("max", math.inf)):
        failed.append("area")
    if factory:
        for key, crit in (("floor_load_kn_m2", "floor_load"), ("clear_height_m", "clear_height")):
            if key in req["factory"] and not row[key] >= req["factory"][key]["min"]:
                failed.append(crit)
    else:
        rule = industry_class(req.get("industry"))
        if rule is not None and row["land_use"] not in rule.allowed:
            failed.append("land_use")
        if "max_price_wan_per_mu" in req and not row["price_wan_per_mu"] <= req["max_price_wan_per_mu"]:
            failed.append("price")
    for p in req.get("near", []):
        _, _, metres = GEOD.inv(p["lon"], p["lat"], *centroid)
        if metres > p["max_km"] * 1000:
            failed.append("near")
    return failed


def test_random_districts_agree_with_a_per_site_reference():
    rng = np.random.default_rng(7)
    rows = []
    for i in range(240):
        km, az = float(rng.uniform(0, 40)), float(rng.uniform(0, 360))
        if i % 4:
            area = float(rng.uniform(10, 200))
            status = str(rng.choice(["available", "partly_taken", "taken", "in_production"], p=[0.6, 0.2, 0.15, 0.05]))
            left = area if status == "available" else (area * float(rng.uniform(0.1, 0.9)) if status == "partly_taken" else 0.0)
            rows.append(parcel(f"S{i:03d}", km, land_use=str(rng.choice(["100101", "100102", "100103"])), area=area,
                               remaining=left, price=float(rng.uniform(5, 50)), status=status, azimuth=az))
        else:
            status = str(rng.choice(["available", "partly_taken", "taken"], p=[0.6, 0.2, 0.2]))
            vacant = float(rng.uniform(1000, 9000)) if status != "taken" else 0.0
            row = factory(f"S{i:03d}", km, vacant=vacant, load=float(rng.uniform(3, 20)), height=float(rng.uniform(5, 12)), status=status)
            row["geometry"] = at(km, az).centroid
            rows.append(row)
    sites = frame(rows)
    centroids = {r["site_id"]: (r["geometry"].centroid.x, r["geometry"].centroid.y) for r in rows}
    index = prepare_sites(sites)
    for j in range(40):
        near = [{"name": f"点{k}", "lon": EXIT[0] + float(rng.uniform(-0.2, 0.2)), "lat": EXIT[1] + float(rng.uniform(-0.2, 0.2)),
                 "max_km": float(rng.uniform(5, 30))} for k in range(int(rng.integers(0, 3)))]
        req: dict[str, Any] = {"investor": f"I{j}", "near": near}
        if j % 3 == 0:
            req["factory"] = {"floor_area_m2": {"min": float(rng.uniform(1000, 5000))}, "floor_load_kn_m2": {"min": 8}, "clear_height_m": {"min": 7}}
        else:
            lo = float(rng.uniform(10, 100))
            req.update(industry=str(rng.choice(["化工", "新材料", "服装"])), land_area_mu={"min": lo, "max": lo * 2}, max_price_wan_per_mu=30)
        kind = "factory" if "factory" in req else "idle"
        expected = {r["site_id"]: _reference_failures(req, r, centroids[r["site_id"]]) for r in rows if r["kind"] == kind}
        result = match(req, index, top=1000)
        assert {r["site_id"] for r in result["results"]} == {s for s, f in expected.items() if not f}
        assert {m["site_id"]: [m["failed"]] for m in result["closest_misses"]} == {s: f for s, f in expected.items() if len(f) == 1}
        scores = [(-r["score"], r["site_id"]) for r in result["results"]]
        assert scores == sorted(scores)  # best first, ties by site_id


def test_readiness_and_numeric_land_use_codes():
    texts = ["七通一平", "五通一平", "3通1平", "九通一平", "已平整", None]
    assert [readiness_connections(t) for t in texts][:4] == [7, 5, 3, 9]
    assert list(_readiness_n(np.array(texts, dtype=object))[:4]) == [7, 5, 3, 9]
    assert np.isnan(_readiness_n(np.array(texts, dtype=object))[4:]).all()
    sites = frame([parcel("N1", 1, readiness="九通一平"), parcel("N2", 1, readiness="已平整")])
    sites["land_use"] = [100102.0, 100103]  # numbers, as a spreadsheet-made file gives them
    result = match({"investor": "x", "industry": "新材料"}, sites)
    assert [r["site_id"] for r in result["results"]] == ["N1"]
    ready = {c["criterion"]: c for c in result["results"][0]["criteria"]}["readiness"]
    assert ready["score"] == 1.0 and ready["reason_zh"] == "配套九通一平（9/7）"
    assert [m["site_id"] for m in result["closest_misses"]] == ["N2"]
