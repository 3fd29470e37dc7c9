"""Small GeoDataFrames with exactly the columns ``warehouse.land`` returns, for the map tests."""

from __future__ import annotations

import numpy as np
import shapely
from geopandas import GeoDataFrame

LON0, LAT0 = 106.26, 26.41  # a county seat in Guizhou (CGCS2000 degrees)
M_PER_DEG_LAT = 111_320.0


def _box_m(lon: float, lat: float, w_m: float, h_m: float, n_extra: int = 0, seed: int = 0) -> shapely.Polygon:
    """A parcel about ``w_m`` × ``h_m`` metres at (lon, lat), with ``n_extra`` vertices on its edges."""
    dx = w_m / (M_PER_DEG_LAT * np.cos(np.radians(lat)))
    dy = h_m / M_PER_DEG_LAT
    rng = np.random.default_rng(seed)
    corners = np.array([[0, 0], [1, 0.05], [0.95, 1], [0.03, 0.97]]) + rng.normal(0, 0.02, (4, 2))
    pts = []
    for i in range(4):
        a, b = corners[i], corners[(i + 1) % 4]
        for s in np.linspace(0, 1, n_extra + 2)[:-1]:
            pts.append(a + (b - a) * s)
    xy = np.array(pts) * [dx, dy] + [lon, lat]
    return shapely.Polygon(xy)


def sites_frame(n_idle: int = 6, n_factory: int = 3, *, evil_name: str | None = None) -> GeoDataFrame:
    rows = []
    geoms = []
    statuses = ["available", "partly_taken", "taken", "in_production"]
    for i in range(n_idle):
        lon = LON0 + (i % 4) * 0.006
        lat = LAT0 + (i // 4) * 0.005
        rows.append(
            {
                "site_id": f"DK-{i + 1:03d}",
                "kind": "idle",
                "name": evil_name if (evil_name and i == 0) else f"产业园{i + 1}号地块",
                "park": "经开区" if i % 2 else "高新区",
                "land_use": ("100101", "100102", "100103")[i % 3],
                "land_status": ("idle", "approved_unsupplied", "supplied_unused", "inefficient")[i % 4],
                "status": statuses[i % 4],
                "area_mu": 40.0 + 10 * i,
                "remaining_area_mu": 40.0 + 10 * i if i % 4 == 0 else 12.5,
                "price_wan_per_mu": 18.0 + i,
                "plot_ratio_max": 1.5,
                "readiness": "七通一平",
                "floor_area_m2": None,
                "vacant_area_m2": None,
                "floors": None,
                "floor_load_kn_m2": None,
                "clear_height_m": None,
                "power_kva": None,
                "rent_yuan_m2_month": None,
                "project_ids": ["P-1"] if i % 4 >= 2 else [],
            }
        )
        geoms.append(_box_m(lon, lat, 420, 330, n_extra=3, seed=i))
    for j in range(n_factory):
        lon = LON0 + 0.03 + j * 0.003
        lat = LAT0 + 0.002
        rows.append(
            {
                "site_id": f"CF-{j + 1:03d}",
                "kind": "factory",
                "name": f"标准厂房{j + 1}栋",
                "park": "高新区",
                "land_use": "100101",
                "land_status": None,
                "status": ("available", "partly_taken", "taken")[j % 3],
                "area_mu": None,
                "remaining_area_mu": None,
                "price_wan_per_mu": None,
                "plot_ratio_max": None,
                "readiness": None,
                "floor_area_m2": 12000.0,
                "vacant_area_m2": 6000.0 if j % 3 != 2 else 0.0,
                "floors": 4,
                "floor_load_kn_m2": 8.0,
                "clear_height_m": 6.5,
                "power_kva": 1250.0,
                "rent_yuan_m2_month": 12.0,
                "project_ids": [],
            }
        )
        geoms.append(_box_m(lon, lat, 120, 60, seed=100 + j))
    return GeoDataFrame(rows, geometry=geoms, crs="EPSG:4490")


def parks_frame() -> GeoDataFrame:
    return GeoDataFrame(
        {"park": ["高新区", "经开区"]},
        geometry=[
            shapely.box(LON0 - 0.004, LAT0 - 0.004, LON0 + 0.026, LAT0 + 0.012),
            shapely.box(LON0 + 0.027, LAT0 - 0.002, LON0 + 0.042, LAT0 + 0.006),
        ],
        crs="EPSG:4490",
    )


def pois_frame() -> GeoDataFrame:
    return GeoDataFrame(
        {"name": ["高速出口", "火车站", "<b>污水处理厂</b>"], "kind": ["highway_exit", "rail_freight", "<u>市政</u>"]},
        geometry=shapely.points([[LON0 - 0.01, LAT0 - 0.01], [LON0 + 0.05, LAT0 + 0.02], [LON0 + 0.02, LAT0 - 0.008]]),
        crs="EPSG:4490",
    )


def projects_frame(*, evil_investor: str = "秘密投资人有限公司") -> GeoDataFrame:
    rows = [
        ("P-1", "新材料产业园项目", "landed", False, False, "华材新材料有限公司", "新材料", 1),
        ("P-2", "保密洽谈项目", "signed", False, True, evil_investor, "电子信息", 2),
        ("P-3", "已取消项目", "cancelled", False, False, "取消投资公司", "食品", 3),
        ("P-4", "停滞项目", "started", True, False, "停滞投资公司", "装备制造", 4),
        ("P-5", "洽谈中项目", "none", False, False, "未签约投资人公司", "装备制造", 5),
    ]
    recs = []
    pts = []
    for pid, name, stage, stalled, conf, investor, industry, k in rows:
        recs.append(
            {
                "project_id": pid,
                "name": name,
                "stage": stage,
                "stalled": stalled,
                "confidential": conf,
                # As warehouse.land.project_locations says it (events.disclosure.is_public_project).
                "public": stage in ("signed", "landed", "started", "produced") and not conf,
                "investor": investor,
                "industry": industry,
                "unit": "工业园区管委会",
                "investment_wan": 10000.0 * k,
                "site_id": "DK-003",
            }
        )
        pts.append((LON0 + 0.004 * k, LAT0 + 0.0015 * k))
    return GeoDataFrame(recs, geometry=shapely.points(pts), crs="EPSG:4490")
