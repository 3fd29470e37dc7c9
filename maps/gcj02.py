"""WGS84 / CGCS2000 <-> GCJ-02 ("Mars coordinates"), vectorised over numpy arrays.

Gaode/AutoNavi and Tencent tiles are drawn in GCJ-02, an obfuscated datum offset from WGS84 by up
to several hundred metres. The forward formula is the widely published one (the same constants as
the ``eviltransform`` reference implementations). CGCS2000 (EPSG:4490) and WGS84 differ by a few
centimetres at map scale, so CGCS2000 coordinates are fed in as WGS84.

All inputs and outputs are degrees (longitude, latitude). Points outside China's bounding box are
returned unchanged, as the published algorithm does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import shapely
from geopandas import GeoDataFrame, GeoSeries

Array = npt.NDArray[np.float64]

_A = 6378137.0  # Krasovsky-like semi-major axis the formula uses, metres
_EE = 0.00669342162296594323  # eccentricity squared used by the formula


def out_of_china(lon: Array, lat: Array) -> npt.NDArray[np.bool_]:
    """The published bounding box outside which GCJ-02 equals WGS84."""
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _delta(lon: Array, lat: Array) -> tuple[Array, Array]:
    """The GCJ-02 offset (dlon, dlat) in degrees at a WGS84 position."""
    x = lon - 105.0
    y = lat - 35.0
    xy = x * y
    abs_x = np.sqrt(np.abs(x))
    x_pi = x * np.pi
    y_pi = y * np.pi
    d = 20.0 * np.sin(6.0 * x_pi) + 20.0 * np.sin(2.0 * x_pi)
    dlat = d + 20.0 * np.sin(y_pi) + 40.0 * np.sin(y_pi / 3.0)
    dlon = d + 20.0 * np.sin(x_pi) + 40.0 * np.sin(x_pi / 3.0)
    dlat += 160.0 * np.sin(y_pi / 12.0) + 320.0 * np.sin(y_pi / 30.0)
    dlon += 150.0 * np.sin(x_pi / 12.0) + 300.0 * np.sin(x_pi / 30.0)
    dlat *= 2.0 / 3.0
    dlon *= 2.0 / 3.0
    dlat += -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * xy + 0.2 * abs_x
    dlon += 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * xy + 0.1 * abs_x
    rad_lat = np.radians(lat)
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[Array, Array]:
    """WGS84 (or CGCS2000) degrees -> GCJ-02 degrees."""
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    dlon, dlat = _delta(lon_a, lat_a)
    outside = out_of_china(lon_a, lat_a)
    return np.where(outside, lon_a, lon_a + dlon), np.where(outside, lat_a, lat_a + dlat)


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, *, tol_deg: float = 1e-9, max_iter: int = 30) -> tuple[Array, Array]:
    """GCJ-02 degrees -> WGS84 degrees, by fixed-point iteration of the forward formula.

    The offset varies slowly (metres per kilometre), so a handful of iterations reaches ``tol_deg``
    (1e-9 degree ≈ 0.1 mm).
    """
    g_lon = np.asarray(lon, dtype=np.float64)
    g_lat = np.asarray(lat, dtype=np.float64)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(max_iter):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = f_lon - g_lon, f_lat - g_lat
        w_lon = w_lon - e_lon
        w_lat = w_lat - e_lat
        if max(float(np.max(np.abs(e_lon), initial=0.0)), float(np.max(np.abs(e_lat), initial=0.0))) < tol_deg:
            break
    return w_lon, w_lat


def _transform_coords(coords: Array) -> Array:
    lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


def to_gcj02(geoms: GeoSeries | GeoDataFrame) -> GeoSeries:
    """Every vertex of geographic CGCS2000/WGS84 geometries moved to GCJ-02 (one vectorised pass).

    The result keeps the input CRS label: GCJ-02 has no EPSG code, and the geometries are only
    meant for drawing on a GCJ-02 basemap.
    """
    series = geoms.geometry if isinstance(geoms, GeoDataFrame) else geoms
    if series.crs is not None and not series.crs.is_geographic:
        raise ValueError(f"to_gcj02 expects geographic CGCS2000/WGS84 degrees, got {series.crs.to_string()}")
    moved = shapely.transform(series.values, _transform_coords)
    return GeoSeries(moved, index=series.index, crs=series.crs)
