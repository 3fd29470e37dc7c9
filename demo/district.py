"""A plausible demo county: four industrial parks, ~300 idle parcels, ~60 standard factories, POIs.

The district sits around 106.2–106.5E, 26.35–26.55N (central Guizhou, on the Shanghai–Kunming
expressway). Parks are laid out in the CGCS2000 Gauss-Kruger zone with central meridian 105E
(EPSG:4544, metres): each park's outline is cut into blocks by roads (a recursive split), some
blocks are idle land in the inventory, some hold standard-factory estates; the rest is land already
in use and not in the inventory. Parcels never overlap (roads separate them). All frames are
returned in EPSG:4490; areas are in 亩 (mu), floor space in m².

``write_district`` writes the files a bureau would hand over (a GBK Shapefile with Chinese field
names in the Gauss-Kruger zone for the parcels, GeoJSON and GeoPackage for the rest), and
``load_demo_district`` writes and loads them into the warehouse through ``ingestion.land_files``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Engine

from demo.history import Site
from ingestion.land_files import area_mu, land_report, load_land_file, read_land_file
from warehouse.land import InventoryError, VersionCounts

CRS = "EPSG:4490"
GK_CRS = "EPSG:4544"  # CGCS2000 / 3-degree Gauss-Kruger CM 105E
M2_PER_MU = 10000.0 / 15.0
DEMO_VALID_FROM = date(2018, 12, 31)  # the inventory before the first demo project (2019-01-01)
DEMO_REVISED_FROM = date(2024, 7, 1)  # the revised inventory (expansion, new prices)


@dataclass(frozen=True, slots=True)
class ParkPlan:
    name: str
    code: str
    lon: float
    lat: float
    width_m: float
    height_m: float
    angle_deg: float
    parcels: int
    factories: int
    land_use_weights: tuple[float, float, float]  # 100101, 100102, 100103
    price_wan_per_mu: float  # typical price of class-2 land


PARKS: tuple[ParkPlan, ...] = (
    ParkPlan("夏云工业园区", "XY", 106.245, 26.478, 5200, 3600, 12, 95, 20, (0.25, 0.6, 0.15), 22.0),
    ParkPlan("平坝经济开发区", "PB", 106.292, 26.412, 4400, 4000, -8, 85, 28, (0.45, 0.5, 0.05), 28.0),
    ParkPlan("白云新型建材产业园", "BY", 106.372, 26.362, 3400, 3000, 20, 65, 0, (0.2, 0.25, 0.55), 16.0),
    ParkPlan("高峰现代物流园", "GF", 106.452, 26.521, 3600, 2600, -15, 55, 12, (0.7, 0.3, 0.0), 19.0),
)

POIS: tuple[tuple[str, str, float, float], ...] = (
    ("沪昆高速平坝出口", "highway_exit", 106.268, 26.431),
    ("沪昆高速夏云出口", "highway_exit", 106.212, 26.463),
    ("沪昆高速天龙出口", "highway_exit", 106.338, 26.382),
    ("贵黄高速高峰互通", "highway_exit", 106.431, 26.503),
    ("平坝南站铁路货场", "rail_freight", 106.305, 26.398),
    ("夏云铁路货运站", "rail_freight", 106.228, 26.492),
    ("黔中陆港（无水港）", "port", 106.412, 26.487),
    ("白云镇综合客运站", "bus_station", 106.381, 26.351),
)

STATUS_WEIGHTS = {"approved_unsupplied": 0.4, "idle": 0.25, "supplied_unused": 0.2, "inefficient": 0.15}
READINESS = ("七通一平", "七通一平", "五通一平", "五通一平", "三通一平", "毛地")
PLOT_RATIOS = (1.0, 1.2, 1.5, 1.5, 2.0, 2.5)
LAND_USES = ("100101", "100102", "100103")


@dataclass(slots=True)
class DemoDistrict:
    """The demo county's inventory, EPSG:4490; areas in 亩, floor space in m²."""

    parcels: gpd.GeoDataFrame
    factories: gpd.GeoDataFrame
    parks: gpd.GeoDataFrame
    pois: gpd.GeoDataFrame
    # Blocks kept back from the first inventory: the parks' later expansion (see revise_district).
    reserve: gpd.GeoDataFrame | None = None

    def sites(self) -> list[Site]:
        """Every parcel and factory as a ``Site`` for ``generate_history(sites=...)`` (factories offer their vacant space)."""
        p_pts = self.parcels.geometry.representative_point()
        f_pts = self.factories.geometry.representative_point()
        out = [
            Site(r.parcel_id, "idle", r.land_use, float(r.area_mu), None, float(x), float(y))
            for r, x, y in zip(self.parcels.itertuples(), p_pts.x, p_pts.y, strict=True)
        ]
        out += [
            Site(r.factory_id, "factory", None, None, float(r.vacant_area_m2), float(x), float(y))
            for r, x, y in zip(self.factories.itertuples(), f_pts.x, f_pts.y, strict=True)
            if r.vacant_area_m2 > 0
        ]
        return out


def _split(rng: random.Random, x0: float, y0: float, x1: float, y1: float, target_m2: float, road_m: float, out: list[tuple[float, float, float, float]]) -> None:
    """Cut a block by roads until it is no larger than its target (drawn per block, log-uniform)."""
    w, h = x1 - x0, y1 - y0
    if w * h <= target_m2 or min(w, h) < 60:
        out.append((x0, y0, x1, y1))
        return
    gap = road_m / 2
    cut = rng.uniform(0.35, 0.65)
    next_road = max(12.0, road_m * 0.7)
    if w >= h:
        xm = x0 + w * cut
        _split(rng, x0, y0, xm - gap, y1, _target(rng), next_road, out)
        _split(rng, xm + gap, y0, x1, y1, _target(rng), next_road, out)
    else:
        ym = y0 + h * cut
        _split(rng, x0, y0, x1, ym - gap, _target(rng), next_road, out)
        _split(rng, x0, ym + gap, x1, y1, _target(rng), next_road, out)


def _target(rng: random.Random) -> float:
    # Parcels of 6–320 mu, most of them small, as in the bureaus' inventories.
    return math.exp(rng.uniform(math.log(6), math.log(320))) * M2_PER_MU


def _placer(plan: ParkPlan) -> tuple[float, float, float]:
    """The park centre in EPSG:4544 metres and its rotation in radians."""
    centre = gpd.GeoSeries(gpd.points_from_xy([plan.lon], [plan.lat]), crs=CRS).to_crs(GK_CRS).iloc[0]
    return centre.x, centre.y, math.radians(plan.angle_deg)


def _to_world(geoms: np.ndarray, plan: ParkPlan) -> np.ndarray:
    """Local park metres (origin at the park's centre) to EPSG:4544: rotate and shift, all vertices at once."""
    cx, cy, a = _placer(plan)
    cos, sin = math.cos(a), math.sin(a)

    def move(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack((cx + x * cos - y * sin, cy + x * sin + y * cos))

    moved: np.ndarray = shapely.transform(geoms, move)
    return moved


def _outline(rng: random.Random, plan: ParkPlan) -> shapely.Polygon:
    """A park outline: its rectangle with two corners cut, as boundaries follow roads and hills."""
    w, h = plan.width_m / 2, plan.height_m / 2
    c1, c2 = rng.uniform(0.15, 0.35), rng.uniform(0.1, 0.3)
    return shapely.Polygon(
        [(-w, -h), (w - 2 * w * c1, -h), (w, -h + 2 * h * c1), (w, h), (-w + 2 * w * c2, h), (-w, h - 2 * h * c2)]
    )


def _jitter(rng: random.Random, x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A block as surveyed: corners a few metres off the grid (less than half a road's width)."""

    def j() -> float:
        return rng.uniform(-4.0, 4.0)

    pts = [(x0 + j(), y0 + j()), (x1 + j(), y0 + j()), (x1 + j(), y1 + j()), (x0 + j(), y1 + j())]
    if rng.random() < 0.2:  # a corner cut by a stream or an older lot
        k = rng.uniform(0.15, 0.35)
        pts = [pts[0], (x1 - (x1 - x0) * k, y0), (x1, y0 + (y1 - y0) * k), pts[2], pts[3]]
    return shapely.Polygon(pts)


def _factories(rng: random.Random, plan: ParkPlan, block: tuple[float, float, float, float], n: int, start: int) -> list[dict[str, Any]]:
    """A standard-factory estate in one block: rows of buildings 24–48 m deep, 15 m apart."""
    x0, y0, x1, y1 = block
    out: list[dict[str, Any]] = []
    depth, length, gap = rng.choice((24.0, 36.0, 48.0)), rng.choice((72.0, 96.0, 120.0)), 15.0
    cols = max(1, int((x1 - x0 - gap) // (length + gap)))
    rows = max(1, int((y1 - y0 - gap) // (depth + gap)))
    k = 0
    for r in range(rows):
        for c in range(cols):
            if k >= n:
                return out
            bx, by = x0 + gap + c * (length + gap), y0 + gap + r * (depth + gap)
            floors = rng.choice((1, 1, 2, 3, 4, 5))
            footprint = length * depth
            floor_area = footprint * floors
            vacant = round(floor_area * rng.choice((1.0, 1.0, 0.6, 0.4, 0.2, 0.0)), 0)
            number = start + k + 1
            out.append(
                {
                    "factory_id": f"{plan.code}-F{number:02d}",
                    "name": f"{plan.name}标准厂房{number}号楼",
                    "park": plan.name,
                    "floor_area_m2": floor_area,
                    "vacant_area_m2": vacant,
                    "floors": floors,
                    "floor_load_kn_m2": float(rng.choice((25, 30, 35))) if floors == 1 else float(rng.choice((8, 10, 12, 15))),
                    "clear_height_m": round(rng.uniform(8, 12), 1) if floors == 1 else round(rng.uniform(4.5, 6.5), 1),
                    "power_kva": float(rng.choice((400, 630, 800, 1000, 1250, 1600, 2000))),
                    "rent_yuan_m2_month": round(rng.uniform(8, 22), 1),
                    "geometry": shapely.box(bx, by, bx + length, by + depth),
                }
            )
            k += 1
    return out


def generate_district(seed: int = 2018) -> DemoDistrict:
    """The demo county, reproducible from ``seed``; frames in EPSG:4490 with English column names."""
    rng = random.Random(seed)
    parcel_rows: list[dict[str, Any]] = []
    factory_rows: list[dict[str, Any]] = []
    park_rows: list[dict[str, Any]] = []
    reserve_rows: list[dict[str, Any]] = []
    for plan in PARKS:
        outline = _outline(rng, plan)
        blocks: list[tuple[float, float, float, float]] = []
        _split(rng, -plan.width_m / 2, -plan.height_m / 2, plan.width_m / 2, plan.height_m / 2, _target(rng), 40.0, blocks)
        inside = [b for b in blocks if outline.contains(shapely.box(*b))]
        rng.shuffle(inside)
        # Factory estates want blocks of 40–150 mu; the other chosen blocks are idle parcels.
        made = 0
        estate_blocks: list[tuple[float, float, float, float]] = []
        for b in inside:
            if made >= plan.factories:
                break
            if 40 * M2_PER_MU <= (b[2] - b[0]) * (b[3] - b[1]) <= 150 * M2_PER_MU:
                rows = _factories(rng, plan, b, plan.factories - made, made)
                made += len(rows)
                for row in rows:
                    row["geometry"] = _to_world(np.array([row["geometry"]]), plan)[0]
                factory_rows.extend(rows)
                estate_blocks.append(b)
        # Idle parcels of at least 6 mu, so corner cuts and survey jitter keep them above 5 mu.
        rest = [b for b in inside if b not in estate_blocks and (b[2] - b[0]) * (b[3] - b[1]) >= 6 * M2_PER_MU]
        lu_codes = rng.choices(LAND_USES, weights=plan.land_use_weights, k=plan.parcels)
        for i, b in enumerate(rest[: plan.parcels]):
            geom = _to_world(np.array([_jitter(rng, *b).intersection(outline)]), plan)[0]
            lu = lu_codes[i]
            price = plan.price_wan_per_mu * {"100101": 1.1, "100102": 1.0, "100103": 0.8}[lu] * rng.uniform(0.8, 1.2)
            letter = "ABCDEFGH"[min(7, int((b[0] + plan.width_m / 2) / plan.width_m * 8))]
            parcel_rows.append(
                {
                    "parcel_id": f"{plan.code}-{i + 1:03d}",
                    "name": f"{plan.name}{letter}区{i + 1}号地块",
                    "land_use": lu,
                    "status": rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0],
                    "park": plan.name,
                    "price_wan_per_mu": round(price, 1),
                    "plot_ratio_max": rng.choice(PLOT_RATIOS),
                    "readiness": rng.choice(READINESS),
                    "geometry": geom,
                }
            )
        # A separate generator for the reserve, so the first inventory is the same with or without it.
        spare = random.Random(seed * 7919 + len(park_rows))
        for j, b in enumerate(rest[plan.parcels : plan.parcels + 8]):
            lu = spare.choices(LAND_USES, weights=plan.land_use_weights)[0]
            number = plan.parcels + j + 1
            reserve_rows.append(
                {
                    "parcel_id": f"{plan.code}-{number:03d}",
                    "name": f"{plan.name}扩区{number}号地块",
                    "land_use": lu,
                    "status": "approved_unsupplied",
                    "park": plan.name,
                    "price_wan_per_mu": round(plan.price_wan_per_mu * spare.uniform(0.9, 1.3), 1),
                    "plot_ratio_max": spare.choice(PLOT_RATIOS),
                    "readiness": spare.choice(READINESS),
                    "geometry": _to_world(np.array([_jitter(spare, *b).intersection(outline)]), plan)[0],
                }
            )
        park_rows.append({"park": plan.name, "geometry": _to_world(np.array([outline]), plan)[0]})
    parcels = gpd.GeoDataFrame(parcel_rows, geometry="geometry", crs=GK_CRS).to_crs(CRS)
    # Declared areas as the ledgers give them: two decimals; a few ledgers are simply wrong.
    declared = np.round(area_mu(parcels.geometry), 2)
    for i in rng.sample(range(len(parcels)), 3):
        declared[i] = round(declared[i] * rng.choice((0.85, 1.12, 1.2)), 2)
    parcels.insert(3, "area_mu", declared)
    factories = gpd.GeoDataFrame(factory_rows, geometry="geometry", crs=GK_CRS).to_crs(CRS)
    # Some factory ledgers only give a point (the gate), not the footprint.
    as_point = np.array([rng.random() < 0.15 for _ in range(len(factories))], dtype=bool)
    factories.loc[as_point, "geometry"] = factories.geometry[as_point].representative_point()
    parks = gpd.GeoDataFrame(park_rows, geometry="geometry", crs=GK_CRS).to_crs(CRS)
    pois = gpd.GeoDataFrame(
        pd.DataFrame([{"poi_id": f"POI-{i + 1:02d}", "name": n, "kind": k} for i, (n, k, _, _) in enumerate(POIS)]),
        geometry=gpd.points_from_xy([p[2] for p in POIS], [p[3] for p in POIS]),
        crs=CRS,
    )
    reserve = gpd.GeoDataFrame(reserve_rows, geometry="geometry", crs=GK_CRS).to_crs(CRS)
    reserve.insert(3, "area_mu", np.round(area_mu(reserve.geometry), 2))
    return DemoDistrict(parcels=parcels, factories=factories, parks=parks, pois=pois, reserve=reserve)


def revise_district(district: DemoDistrict, seed: int = 2018) -> DemoDistrict:
    """The inventory a few years on: the reserve blocks added (a park expansion), the 平坝经济开发区
    re-priced +8%, a dozen parcels supplied (批而未供 → 供而未用), a few factory rents raised.
    Nothing is removed, so the landings of the first version keep their parcels."""
    rng = random.Random(seed + 1)
    parcels = district.parcels.copy()
    repriced = parcels["park"] == "平坝经济开发区"
    parcels.loc[repriced, "price_wan_per_mu"] = (parcels.loc[repriced, "price_wan_per_mu"] * 1.08).round(1)
    unsupplied = parcels.index[parcels["status"] == "approved_unsupplied"].tolist()
    parcels.loc[rng.sample(unsupplied, min(12, len(unsupplied))), "status"] = "supplied_unused"
    if district.reserve is not None and len(district.reserve):
        parcels = gpd.GeoDataFrame(pd.concat([parcels, district.reserve], ignore_index=True), geometry="geometry", crs=CRS)
    factories = district.factories.copy()
    raised = rng.sample(list(factories.index), min(5, len(factories)))
    factories.loc[raised, "rent_yuan_m2_month"] = factories.loc[raised, "rent_yuan_m2_month"] + 1.5
    return DemoDistrict(parcels=parcels, factories=factories, parks=district.parks, pois=district.pois)


# Chinese field names of the parcel Shapefile: what a 自然资源局 export looks like (≤ 10 bytes in GBK).
PARCEL_FIELDS_ZH = {
    "parcel_id": "地块编号",
    "name": "地块名称",
    "land_use": "用地类型",
    "area_mu": "面积(亩)",
    "status": "状态",
    "park": "园区",
    "price_wan_per_mu": "地价",
    "plot_ratio_max": "容积率上限",
    "readiness": "七通一平",
}
STATUS_ZH = {"idle": "闲置", "approved_unsupplied": "批而未供", "supplied_unused": "供而未用", "inefficient": "低效用地"}


def write_district(district: DemoDistrict, out_dir: str | Path, subdir: str = "land") -> dict[str, Path]:
    """Write the district as a bureau would hand it over; returns the path per kind (idle, factory, park, poi).

    Parcels: GBK Shapefile, Chinese field names, EPSG:4544. Factories: GeoJSON, EPSG:4490.
    Parks and POIs: GeoPackage, EPSG:4490.
    """
    out = Path(out_dir) / subdir
    out.mkdir(parents=True, exist_ok=True)
    parcels = district.parcels.copy()
    parcels["status"] = parcels["status"].map(STATUS_ZH)
    parcels = parcels.rename(columns=PARCEL_FIELDS_ZH).to_crs(GK_CRS)
    paths = {
        "idle": out / "idle_parcels.shp",
        "factory": out / "standard_factories.geojson",
        "park": out / "parks.gpkg",
        "poi": out / "pois.gpkg",
    }
    for p in paths.values():
        for sibling in p.parent.glob(p.stem + ".*"):
            sibling.unlink()
    parcels.to_file(paths["idle"], encoding="GBK")
    district.factories.to_file(paths["factory"], driver="GeoJSON")
    district.parks.to_file(paths["park"], driver="GPKG", layer="parks")
    district.pois.to_file(paths["poi"], driver="GPKG", layer="pois")
    return paths


def load_demo_district(
    engine: Engine,
    out_dir: str | Path,
    *,
    seed: int = 2018,
    valid_from: date = DEMO_VALID_FROM,
    revised_from: date | None = DEMO_REVISED_FROM,
) -> tuple[DemoDistrict, dict[str, dict[str, Any]]]:
    """Generate, write and load the demo district: what ``zhaoshang demo`` calls.

    The first inventory is valid from ``valid_from``; with ``revised_from``, the revised one
    (:func:`revise_district`, written under ``land_<date>/``) from that date, so ``land status
    --as-of`` before and after shows two versions. Running it again on the same database changes
    nothing. Returns the first district (pass ``district.sites()`` to ``generate_history``) and the
    load report per file (``{"read", "loaded", "repaired", "rejected", "warnings", …}``), keyed by
    kind, then ``kind@date`` for the revision.
    """
    district = generate_district(seed)
    reports = {kind: _load(engine, path, kind, valid_from) for kind, path in write_district(district, out_dir).items()}
    if revised_from is not None:
        revised = revise_district(district, seed)
        paths = write_district(revised, out_dir, subdir=f"land_{revised_from.isoformat()}")
        for kind in ("idle", "factory"):
            reports[f"{kind}@{revised_from.isoformat()}"] = _load(engine, paths[kind], kind, revised_from)
    return district, reports


def _load(engine: Engine, path: Path, kind: str, valid_from: date) -> dict[str, Any]:
    """Load one file; when a later version is in already (a second demo run), account for the file unapplied."""
    try:
        return load_land_file(engine, path, kind=kind, valid_from=valid_from)
    except InventoryError as exc:
        got = read_land_file(path, kind=kind)
        report = land_report(got, valid_from, VersionCounts(inserted=0, closed=0, unchanged=0, replaced=0))
        report["warnings"] = [*report["warnings"], f"not applied: {exc}"]
        return report
