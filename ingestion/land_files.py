"""Land inventory files (GeoJSON, GeoPackage, Shapefile) to clean EPSG:4490 frames, and into PostGIS.

A file is read in whatever CRS it declares (CGCS2000 EPSG:4490, its Gauss-Kruger zones
EPSG:4513–4554, WGS84, …); one without a CRS is refused unless ``crs`` is given. Attribute names
may be English or Chinese (``shared/DOMAIN.md``); a Shapefile's ``.cpg`` (e.g. GBK) is honoured and,
without one, the ``.dbf`` is sniffed (UTF-8 if it decodes, else GB18030, a superset of GBK).

Every record read is accounted for: ``read = loaded + rejected``. Invalid geometries are repaired
(``shapely.make_valid``) and listed; empty or unrepairable ones are rejected with the reason.
Areas are computed on the GRS80/CGCS2000 ellipsoid through an Albers equal-area projection
centred on the data, and given in 亩 (mu, 1 mu = 10000/15 m²).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS as ProjCRS
from sqlalchemy import Engine

from land.status import CRS
from land.vocabulary import SITE_KINDS
from warehouse.land import ATTRIBUTE_COLUMNS, M2_PER_MU, record_load, store_inventory

KINDS = SITE_KINDS
ID_COLUMN = {"idle": "parcel_id", "factory": "factory_id", "park": "park", "poi": "poi_id"}
ID_LABEL_ZH = {"idle": "地块编号", "factory": "厂房编号", "park": "园区", "poi": "名称"}
AREA_TOLERANCE = 0.05  # declared vs geometry area: more than 5% apart is reported
OVERLAP_MIN_M2 = 1.0  # shared area below this is drawing noise, not an overlap
MAX_LISTED = 200  # warnings listed one by one; the rest are counted

# China's extent with a margin: a parcel outside it after reprojection means a wrong CRS.
CHINA_BOUNDS = (72.0, 2.0, 136.5, 55.0)

# Canonical name -> the names met in bureau files (compared after _normalise_name).
ALIASES: dict[str, tuple[str, ...]] = {
    "parcel_id": ("parcel_id", "parcelid", "地块编号", "地块编码", "地块代码", "宗地编号", "宗地号", "地块号"),
    "factory_id": ("factory_id", "factoryid", "厂房编号", "厂房编码", "厂房代码", "楼栋编号"),
    "poi_id": ("poi_id", "poiid", "编号"),
    "name": ("name", "地块名称", "厂房名称", "名称", "项目名称", "宗地名称", "poi_name"),
    "land_use": ("land_use", "landuse", "用地类型", "用地性质", "土地用途", "用途", "地类编码", "用地分类"),
    "area_mu": ("area_mu", "area", "面积", "用地面积", "地块面积", "宗地面积", "出让面积", "土地面积"),
    "land_status": ("status", "land_status", "状态", "土地状态", "地块状态", "利用状态", "类型状态"),
    "park": ("park", "园区", "所属园区", "园区名称", "开发区", "所在园区"),
    "price_wan_per_mu": ("price_wan_per_mu", "price", "地价", "价格", "出让价格", "基准地价", "单价"),
    "plot_ratio_max": ("plot_ratio_max", "plot_ratio", "far", "容积率上限", "容积率", "最大容积率"),
    "readiness": ("readiness", "七通一平", "基础设施", "配套", "配套情况", "场地条件", "通平情况"),
    "floor_area_m2": ("floor_area_m2", "floor_area", "建筑面积", "总建筑面积", "厂房面积"),
    "vacant_area_m2": ("vacant_area_m2", "vacant_area", "空置面积", "可租面积", "剩余面积", "闲置面积"),
    "floors": ("floors", "层数", "楼层数", "楼层"),
    "floor_load_kn_m2": ("floor_load_kn_m2", "floor_load", "承重", "楼面荷载", "荷载", "地面承重"),
    "clear_height_m": ("clear_height_m", "clear_height", "层高", "净高", "檐高"),
    "power_kva": ("power_kva", "power", "供电容量", "供电", "电力容量", "变压器容量"),
    "rent_yuan_m2_month": ("rent_yuan_m2_month", "rent", "租金", "月租金", "租金单价"),
    "category": ("kind", "category", "poi_kind", "类型", "类别", "设施类型"),
}
NUMERIC = (
    "area_mu",
    "price_wan_per_mu",
    "plot_ratio_max",
    "floor_area_m2",
    "vacant_area_m2",
    "floors",
    "floor_load_kn_m2",
    "clear_height_m",
    "power_kva",
    "rent_yuan_m2_month",
)
# Which canonical columns each kind reads (the others are kept in ``extra``).
KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "idle": ("parcel_id", "name", "land_use", "area_mu", "land_status", "park", "price_wan_per_mu", "plot_ratio_max", "readiness"),
    "factory": (
        "factory_id",
        "name",
        "park",
        "land_use",
        "area_mu",
        "floor_area_m2",
        "vacant_area_m2",
        "floors",
        "floor_load_kn_m2",
        "clear_height_m",
        "power_kva",
        "rent_yuan_m2_month",
        "readiness",
    ),
    "park": ("park", "name", "area_mu"),
    "poi": ("poi_id", "name", "category", "park"),
}
STATUS_VALUES: dict[str, str] = {
    "idle": "idle",
    "闲置": "idle",
    "闲置土地": "idle",
    "approved_unsupplied": "approved_unsupplied",
    "批而未供": "approved_unsupplied",
    "supplied_unused": "supplied_unused",
    "供而未用": "supplied_unused",
    "inefficient": "inefficient",
    "低效": "inefficient",
    "低效用地": "inefficient",
}
LAND_USE_NAMES: dict[str, str] = {
    "工业用地": "1001",
    "一类工业用地": "100101",
    "二类工业用地": "100102",
    "三类工业用地": "100103",
    "m1": "100101",
    "m2": "100102",
    "m3": "100103",
}
POI_KINDS: dict[str, str] = {
    "高速出口": "highway_exit",
    "高速公路出口": "highway_exit",
    "互通": "highway_exit",
    "铁路货运站": "rail_freight",
    "货运站": "rail_freight",
    "铁路货场": "rail_freight",
    "港口": "port",
    "无水港": "port",
    "陆港": "port",
    "机场": "airport",
}
# Units in a header's brackets, as factors to the canonical unit of the column.
AREA_UNITS_TO_MU = {"亩": 1.0, "mu": 1.0, "平方米": 1 / M2_PER_MU, "m2": 1 / M2_PER_MU, "㎡": 1 / M2_PER_MU, "公顷": 15.0, "ha": 15.0}
PRICE_UNITS_TO_WAN_PER_MU = {"万元/亩": 1.0, "元/平方米": M2_PER_MU / 10000.0, "元/㎡": M2_PER_MU / 10000.0, "元/m2": M2_PER_MU / 10000.0}


class LandFileError(ValueError):
    """A file that cannot be loaded at all (missing, unreadable, no CRS, no id column)."""


@dataclass(slots=True)
class LandRead:
    """A file read and cleaned: the rows to load (EPSG:4490) and the account of every record."""

    frame: gpd.GeoDataFrame
    kind: str
    source: str
    read: int
    source_crs: str
    encoding: str | None
    rejections: list[dict[str, str]] = field(default_factory=list)
    repaired_ids: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    overlaps: list[dict[str, Any]] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def _normalise_name(name: str) -> tuple[str, str]:
    """(key, unit): NFKC, lower case, no spaces; the bracketed unit split off (truncated DBF names too)."""
    s = unicodedata.normalize("NFKC", str(name)).strip().lower().replace(" ", "")
    m = re.match(r"^([^(\[]*)[(\[]([^)\]]*)[)\]]?$", s)
    if m:
        return m.group(1), m.group(2)
    return s, ""


def _alias_index() -> dict[str, str]:
    out: dict[str, str] = {}
    for canon, names in ALIASES.items():
        for n in names:
            out.setdefault(_normalise_name(n)[0], canon)
    return out


ALIAS_INDEX = _alias_index()


_UTF8_LABELS = {"UTF8", "65001"}


def _dbf_names(raw: bytes) -> list[bytes]:
    """The field names in a DBF header (``raw`` holds at least the header)."""
    header_len = int.from_bytes(raw[8:10], "little") if len(raw) >= 10 else 0
    return [raw[32 + 32 * i : 43 + 32 * i].split(b"\x00")[0] for i in range(max(0, (header_len - 33) // 32))]


def _utf8_name(name: bytes, *, exact: bool = False) -> bool:
    """UTF-8, allowing (unless ``exact``) the broken tail GDAL leaves when it cuts a long name at 10 bytes."""
    for cut in range(1 if exact else 4):
        try:
            name[: len(name) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def shapefile_encoding(path: Path) -> str | None:
    """The encoding of a Shapefile's attributes when we must decode them ourselves, else None (GDAL does).

    GDAL does when the ``.cpg`` names one (except a UTF-8 ``.cpg`` with a field name cut mid-character:
    "utf-8") or the DBF has a language id; else it is sniffed: UTF-8 when the ``.dbf`` decodes as such,
    GB18030 (superset of GBK/GB2312) otherwise."""
    dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.is_file()), None)
    for cpg in (path.with_suffix(".cpg"), path.with_suffix(".CPG")):
        if cpg.is_file():
            declared = cpg.read_text(encoding="ascii", errors="ignore").strip()
            if declared:
                # GDAL reads the .cpg itself, but fails on a UTF-8 field name it cut at 10 bytes in
                # the middle of a character when it wrote the file: then we decode the names ourselves.
                if dbf is not None and declared.upper().replace("-", "") in _UTF8_LABELS:
                    with dbf.open("rb") as fh:
                        head = fh.read(32)
                        head += fh.read(max(0, int.from_bytes(head[8:10], "little") - 32))
                    if any(not _utf8_name(n, exact=True) for n in _dbf_names(head)):
                        return "utf-8"
                return None
    if dbf is None:
        return None
    raw = dbf.read_bytes()
    if len(raw) > 29 and raw[29] != 0:
        return None  # a language driver id: GDAL maps it
    header_len = int.from_bytes(raw[8:10], "little") if len(raw) >= 10 else 0
    names = _dbf_names(raw)
    values = raw[header_len:]
    if all(n.isascii() for n in names) and values.isascii():
        return None  # plain ASCII: any decoding reads it right
    utf8_name = _utf8_name

    non_ascii = sum(1 for byte in values if byte >= 0x80)
    bad = values.decode("utf-8", errors="replace").count("\ufffd")
    # GBK bytes read as UTF-8 are mostly errors; real UTF-8 has none (or a cut value now and then).
    return "utf-8" if all(utf8_name(n) for n in names) and bad <= 0.01 * non_ascii else "gb18030"


def _read_raw(path: Path, layer: str | None, encoding: str | None) -> tuple[gpd.GeoDataFrame, str | None]:
    if not path.exists():
        raise LandFileError(f"文件不存在 no such file: {path}")
    if layer is None and path.suffix.lower() == ".gpkg":
        try:
            layers = [str(name) for name, _ in pyogrio.list_layers(path)]
        except Exception as exc:
            raise LandFileError(f"无法读取 cannot read {path}: {exc}") from exc
        if len(layers) > 1:
            raise LandFileError(f"{path.name} 有多个图层 has several layers ({', '.join(layers)}): pick one with --layer")
    enc = encoding
    transcode = None
    sniffed = shapefile_encoding(path) if path.suffix.lower() == ".shp" else None
    if sniffed is not None:
        # No .cpg and no language id (or names cut mid-character): have GDAL take the bytes as Latin-1
        # (that never fails, even on a name cut at 10 bytes mid-character) and decode them ourselves.
        transcode = enc or sniffed
        enc = transcode
    try:
        frame = pyogrio.read_dataframe(path, layer=layer, encoding="ISO-8859-1" if transcode else enc)  # GDAL's name for it
    except Exception as exc:  # GDAL's own message says what is wrong with the file
        raise LandFileError(f"无法读取 cannot read {path}: {exc}") from exc
    if transcode and isinstance(frame, gpd.GeoDataFrame):
        target = transcode

        def fix(v: object, errors: str = "replace") -> object:
            return v.encode("latin-1", errors="ignore").decode(target, errors=errors) if isinstance(v, str) else v

        geom_name = frame.geometry.name
        frame = frame.rename(columns={c: fix(c, "ignore") for c in frame.columns if c != geom_name})
        for c in frame.columns:
            if c != frame.geometry.name and (frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])):
                frame[c] = frame[c].map(fix)
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns:
        raise LandFileError(f"{path}: the file has no geometry")
    return frame, enc


def _map_columns(frame: pd.DataFrame, kind: str, out: LandRead) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rename the known attributes to canonical names; the unknown ones go to ``extra``. Units converted."""
    wanted = set(KIND_COLUMNS[kind])
    mapped: dict[str, pd.Series] = {}
    extra_cols: list[str] = []
    units: dict[str, str] = {}
    for col in frame.columns:
        if col == frame.geometry.name:
            continue
        key, unit = _normalise_name(col)
        canon = ALIAS_INDEX.get(key)
        if canon is None and len(key) >= 2 and not key.isascii():
            # A Chinese name cut short by the DBF's 10 bytes: the one alias it begins.
            found = {c for alias, c in ALIAS_INDEX.items() if alias.startswith(key)}
            canon = found.pop() if len(found) == 1 else None
        # 'park' of a POI file, 'name' as the POI id: only for the kinds that read them.
        if kind == "poi" and canon == "poi_id" and "poi_id" not in wanted:
            canon = None
        if kind == "park" and canon == "name" and "park" not in mapped:
            canon = "park"
        if canon in wanted and canon not in mapped:
            mapped[canon] = frame[col]
            units[canon] = unit
        else:
            extra_cols.append(col)
    df = pd.DataFrame(mapped, index=frame.index)
    factors: dict[str, float] = {}
    for canon, unit in units.items():
        if not unit:
            continue
        table = AREA_UNITS_TO_MU if canon == "area_mu" else PRICE_UNITS_TO_WAN_PER_MU if canon == "price_wan_per_mu" else None
        if table is None:
            continue
        factor = next((f for u, f in table.items() if unit.startswith(_normalise_name(u)[0])), None)
        if factor is None:
            out.warn(f"列 {canon}: 单位 unit {unit!r} not understood; values taken as {'亩' if canon == 'area_mu' else '万元/亩'}")
        elif factor != 1.0:
            factors[canon] = factor  # applied once the values are numbers (bad ones reported first)
    return df, {"extra_cols": extra_cols, "factors": factors}


def _ids(df: pd.DataFrame, kind: str, frame: pd.DataFrame, out: LandRead) -> pd.Series:
    id_col = ID_COLUMN[kind]
    if id_col not in df.columns and kind == "poi" and "name" in df.columns:
        return df["name"].astype("string").str.strip()
    if id_col not in df.columns:
        known = ", ".join(str(c) for c in frame.columns if c != frame.geometry.name)
        raise LandFileError(
            f"找不到{ID_LABEL_ZH[kind]}列 no {id_col} column ({ID_LABEL_ZH[kind]}) in {out.source}; columns: {known}"
        )
    raw = df[id_col]
    # Numeric ids come back as floats from some drivers: 12.0 is the id '12'.
    as_num = pd.to_numeric(raw, errors="coerce")
    ints = as_num.notna() & (as_num == np.floor(as_num.fillna(0)))
    ids = raw.astype("string").str.strip()
    ids[ints] = as_num[ints].astype("int64").astype("string")
    return ids


def _label(ids: pd.Series, pos: int) -> str:
    v = ids.iloc[pos]
    return f"row {pos + 1}" if pd.isna(v) or v == "" else str(v)


def _clean_geometry(frame: gpd.GeoDataFrame, kind: str, ids: pd.Series, out: LandRead) -> tuple[np.ndarray, np.ndarray]:
    """(geometries, keep mask): 2D, repaired where invalid, of the right type for ``kind``."""
    geoms = shapely.force_2d(np.asarray(frame.geometry.values))
    n = len(geoms)
    keep = np.ones(n, dtype=bool)
    reasons = np.full(n, "", dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    reasons[missing] = "空几何 empty or missing geometry"
    keep &= ~missing
    type_ids = shapely.get_type_id(geoms)
    polygonal = np.isin(type_ids, (3, 6))
    point = type_ids == 0
    allowed = {"idle": polygonal, "park": polygonal, "factory": polygonal | point, "poi": point}[kind]
    wrong = keep & ~allowed & ~np.isin(type_ids, (7,))
    need = {"idle": "a polygon", "park": "a polygon", "factory": "a polygon or a point", "poi": "a point"}[kind]
    names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon", "GeometryCollection"])
    for i in np.flatnonzero(wrong):
        reasons[i] = f"几何类型错误 geometry is a {names[type_ids[i]]}, {kind} needs {need}"
    keep &= ~wrong
    invalid = keep & ~shapely.is_valid(geoms)
    if kind in ("idle", "park", "factory"):
        polys_needed = keep & np.isin(type_ids, (3, 6, 7))
        fix = invalid | (polys_needed & (type_ids == 7))
        if fix.any():
            repaired = shapely.make_valid(geoms[fix])
            # make_valid may return a collection with stray lines or points: keep the polygonal part.
            parts = shapely.get_parts(repaired, return_index=True)
            polys = parts[0][np.isin(shapely.get_type_id(parts[0]), (3, 6))]
            owner = parts[1][np.isin(shapely.get_type_id(parts[0]), (3, 6))]
            merged = np.full(len(repaired), None, dtype=object)
            if len(polys):
                # get_parts yields single polygons: regroup them per record in one vectorised call.
                multi = shapely.multipolygons(polys, indices=owner)
                merged[: len(multi)] = multi
            idx = np.flatnonzero(fix)
            ok = np.array([g is not None and not shapely.is_empty(g) and shapely.area(g) > 0 for g in merged], dtype=bool)
            geoms[idx[ok]] = merged[ok]
            for i in idx[~ok]:
                reasons[i] = f"无法修复 invalid geometry that cannot be repaired into a polygon ({shapely.is_valid_reason(geoms[i])})"
            keep[idx[~ok]] = False
            for i in idx[ok]:
                if invalid[i]:
                    out.repaired_ids.append(_label(ids, int(i)))
    else:
        for i in np.flatnonzero(invalid):
            reasons[i] = f"无效几何 invalid geometry ({shapely.is_valid_reason(geoms[i])})"
        keep &= ~invalid
    for i in np.flatnonzero(~keep):
        out.rejections.append({"id": _label(ids, int(i)), "reason": str(reasons[i])})
    return geoms, keep


def equal_area_crs(bounds: tuple[float, float, float, float]) -> ProjCRS:
    """An Albers equal-area projection on the GRS80 ellipsoid (CGCS2000's) centred on ``bounds`` (lon/lat)."""
    minx, miny, maxx, maxy = bounds
    lon0 = (minx + maxx) / 2
    span = max(maxy - miny, 0.5)
    lat1, lat2 = miny + span / 6, maxy - span / 6 if maxy - miny >= 0.5 else miny + span * 5 / 6
    return ProjCRS.from_proj4(f"+proj=aea +lat_1={lat1:.6f} +lat_2={lat2:.6f} +lat_0={(miny + maxy) / 2:.6f} +lon_0={lon0:.6f} +ellps=GRS80 +units=m +no_defs")


def area_mu(geoms: gpd.GeoSeries) -> np.ndarray:
    """Ellipsoidal area of each geometry in 亩 (0 for points), through a local equal-area projection."""
    if len(geoms) == 0:
        return np.zeros(0)
    geo = geoms.to_crs(CRS) if geoms.crs is not None and geoms.crs.to_epsg() != 4490 else geoms
    projected = geo.to_crs(equal_area_crs(tuple(geo.total_bounds)))
    areas_mu: np.ndarray = projected.area.to_numpy() / M2_PER_MU
    return areas_mu


def _numbers(df: pd.DataFrame, ids: pd.Series, out: LandRead) -> None:
    for col in NUMERIC:
        if col not in df.columns:
            continue
        raw = df[col]
        if pd.api.types.is_numeric_dtype(raw):
            num = raw.astype(float)
        else:
            text_values = raw.astype("string").str.strip().str.replace(",", "", regex=False)
            num = pd.to_numeric(text_values, errors="coerce").astype(float)
            bad = num.isna() & text_values.notna() & (text_values != "")
            for pos in np.flatnonzero(bad.to_numpy())[:MAX_LISTED]:
                out.warn(f"{_label(ids, int(pos))}: {col} {raw.iloc[pos]!r} 不是数字 is not a number; left empty")
        negative = (num < 0).to_numpy()
        for pos in np.flatnonzero(negative)[:MAX_LISTED]:
            out.warn(f"{_label(ids, int(pos))}: {col} {num.iloc[pos]} is negative; left empty")
        df[col] = num.where(~negative)


def _per_value(values: pd.Series, fn: Callable[[Any], Any]) -> pd.Series:
    """``fn`` applied once per distinct value (a column of codes has a handful), then mapped."""
    present = values.notna().to_numpy()
    mapping = {v: fn(v) for v in pd.unique(values[present])}
    out = pd.Series([None] * len(values), index=values.index, dtype=object)
    out[present] = values[present].map(mapping).astype(object)
    return out


def _land_use_code(value: Any) -> str | None:
    """100102, 100102.0, '100102', '二类工业用地', 'M2' → '100102'; other text kept as written."""
    if isinstance(value, float | int | np.integer | np.floating):
        return str(int(value)) if float(value).is_integer() else str(value)
    text_value = unicodedata.normalize("NFKC", str(value)).strip()
    if not text_value:
        return None
    named = LAND_USE_NAMES.get(text_value.lower())
    if named:
        return named
    try:
        number = float(text_value)
        return str(int(number)) if number.is_integer() else text_value
    except ValueError:
        return text_value


def _status_value(value: Any) -> str | None:
    text_value = unicodedata.normalize("NFKC", str(value)).strip()
    return STATUS_VALUES.get(text_value.lower() if text_value.isascii() else text_value)


def _codes(df: pd.DataFrame, kind: str, ids: pd.Series, out: LandRead) -> None:
    if "land_use" in df.columns:
        raw = df["land_use"]
        code = _per_value(raw, _land_use_code)
        unknown = code.notna() & ~code.astype("string").str.fullmatch(r"\d{2,6}").fillna(False)
        for pos in np.flatnonzero(unknown.to_numpy())[:MAX_LISTED]:
            out.warn(f"{_label(ids, int(pos))}: 用地类型 land_use {raw.iloc[pos]!r} is no land-use code (e.g. 100102); kept as written")
        df["land_use"] = code
    if "land_status" in df.columns:
        raw = df["land_status"]
        mapped = _per_value(raw, _status_value)
        written = raw.notna() & (raw.astype("string").str.strip() != "")
        unknown_status = (written & mapped.isna()).to_numpy()
        for pos in np.flatnonzero(unknown_status)[:MAX_LISTED]:
            out.warn(
                f"{_label(ids, int(pos))}: 状态 status {raw.iloc[pos]!r} unknown (闲置/批而未供/供而未用/低效 or"
                " idle/approved_unsupplied/supplied_unused/inefficient); left empty"
            )
        df["land_status"] = mapped
    if kind == "poi" and "category" in df.columns:
        df["category"] = _per_value(df["category"], lambda v: POI_KINDS.get(str(v).strip(), str(v).strip()))


def _overlaps(geoms_ea: np.ndarray, ids: np.ndarray, out: LandRead) -> None:
    """Pairs of polygons sharing more than :data:`OVERLAP_MIN_M2` (equal-area metres)."""
    tree = shapely.STRtree(geoms_ea)
    left, right = tree.query(geoms_ea, predicate="intersects")
    pair = left < right
    left, right = left[pair], right[pair]
    if not len(left):
        return
    shared = shapely.area(shapely.intersection(geoms_ea[left], geoms_ea[right]))
    big = shared > OVERLAP_MIN_M2
    for a, b, m2 in zip(left[big], right[big], shared[big], strict=True):
        out.overlaps.append({"a": str(ids[a]), "b": str(ids[b]), "overlap_mu": round(float(m2) / M2_PER_MU, 3)})
    for o in out.overlaps[:MAX_LISTED]:
        out.warn(f"重叠 overlap: {o['a']} and {o['b']} share {o['overlap_mu']} mu")
    if len(out.overlaps) > MAX_LISTED:
        out.warn(f"重叠 overlap: {len(out.overlaps) - MAX_LISTED} more pairs not listed")


def _empty_version(out: LandRead, declared: Any) -> LandRead:
    """A file without features: an empty frame in EPSG:4490 with every column, the declared CRS noted."""
    columns: dict[str, Any] = {"site_id": pd.Series([], dtype=object)}
    columns.update({c: pd.Series([], dtype=object) for c in ATTRIBUTE_COLUMNS})
    out.frame = gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=CRS), crs=CRS)
    out.source_crs = declared.to_string() if declared is not None else ""
    return out


def _with_source_crs(frame: gpd.GeoDataFrame, crs: str | None, path: Path, out: LandRead) -> gpd.GeoDataFrame:
    """``frame`` in its source CRS: ``crs`` when given (it wins over a declared one, with a warning), else the declared one."""
    declared = frame.crs
    if crs is not None:
        try:
            given = ProjCRS.from_user_input(crs)
        except Exception as exc:
            raise LandFileError(f"--crs {crs!r} is not a coordinate reference system: {exc}") from exc
        if declared is not None and not ProjCRS.from_user_input(declared).equals(given):
            out.warn(f"坐标系 the file declares {declared.to_string()} but --crs {crs} was given: --crs wins")
        return frame.set_crs(given, allow_override=True)
    if declared is None:
        raise LandFileError(
            f"{path.name}: 文件未声明坐标系，请用 --crs 指定（如 EPSG:4490 或高斯-克吕格 EPSG:4544）· the file declares no"
            " coordinate system and none was given: pass --crs (e.g. EPSG:4490, or a Gauss-Kruger zone such as EPSG:4544)"
        )
    return frame


def _ids_usable(ids: pd.Series, kind: str, keep: np.ndarray, out: LandRead) -> np.ndarray:
    """Rejects the kept rows without an id, then the later rows of a repeated id; True for the others."""
    no_id = (ids.isna() | (ids == "")).to_numpy()
    for pos in np.flatnonzero(no_id & keep):
        out.rejections.append({"id": f"row {pos + 1}", "reason": f"缺少{ID_LABEL_ZH[kind]} no {ID_COLUMN[kind]}"})
    usable = ~no_id
    dup = ids.duplicated(keep="first").to_numpy() & keep & usable
    for pos in np.flatnonzero(dup):
        out.rejections.append({"id": str(ids.iloc[pos]), "reason": f"{ID_LABEL_ZH[kind]} {ids.iloc[pos]!r} 重复 appears again (row {pos + 1}); the first one is kept"})
    first_with_id: np.ndarray = usable & ~dup
    return first_with_id


def _extra_json(frame: gpd.GeoDataFrame, keep: np.ndarray, extra_cols: list[str]) -> list[str] | str:
    """The kept rows' columns the schema has no place for, as one JSON object per row (``{}`` without any)."""
    cols = [c for c in extra_cols if c in frame.columns]
    if not cols:
        return "{}"
    ex = frame.loc[keep, cols].astype(object).where(frame.loc[keep, cols].notna(), None)
    return [json.dumps(r, ensure_ascii=False, default=str) for r in ex.to_dict(orient="records")]


def read_land_file(
    path: str | Path,
    *,
    kind: str,
    crs: str | None = None,
    encoding: str | None = None,
    layer: str | None = None,
    on_step: Callable[[str], None] | None = None,
) -> LandRead:
    """Read and clean one inventory file of ``kind`` (idle, factory, park, poi) into EPSG:4490.

    ``crs`` (e.g. ``EPSG:4544``) is the CRS of a file that declares none; a file that declares
    another one is reprojected from ``crs`` with a warning. Raises :class:`LandFileError` for a file
    that cannot be used at all; row-level problems are rejections or warnings in the result.
    """
    if kind not in KINDS:
        raise LandFileError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    path = Path(path)
    step = on_step or (lambda _: None)
    step("读取文件 reading the file")
    frame, enc = _read_raw(path, layer, encoding)
    out = LandRead(gpd.GeoDataFrame(), kind, path.name, len(frame), "", enc)
    if frame.empty:  # no features, so no columns to map nor CRS to check: an empty version
        return _empty_version(out, frame.crs)
    frame = _with_source_crs(frame, crs, path, out)
    out.source_crs = frame.crs.to_string()
    frame = frame.reset_index(drop=True)
    step("检查属性与几何 checking attributes and geometries")
    df, meta = _map_columns(frame, kind, out)
    ids = _ids(df, kind, frame, out)
    geoms, keep = _clean_geometry(frame, kind, ids, out)
    keep &= _ids_usable(ids, kind, keep, out)
    step("转换坐标、计算面积 reprojecting to EPSG:4490, computing areas")
    gs = gpd.GeoSeries(geoms, crs=frame.crs)
    with np.errstate(all="ignore"):
        geo = gs[keep].to_crs(CRS)
    b = geo.bounds
    outside = ~((b["minx"] >= CHINA_BOUNDS[0]) & (b["maxx"] <= CHINA_BOUNDS[2]) & (b["miny"] >= CHINA_BOUNDS[1]) & (b["maxy"] <= CHINA_BOUNDS[3]))
    outside |= ~np.isfinite(b).all(axis=1)
    for pos in outside[outside].index:
        out.rejections.append(
            {"id": _label(ids, int(pos)), "reason": f"坐标超出中国范围 outside China after reprojection from {out.source_crs}: wrong CRS?"}
        )
    keep[outside[outside].index.to_numpy()] = False
    geo = geo[~outside]
    rows = df.loc[keep].copy()
    rows_ids = ids[keep]
    _numbers(rows, rows_ids, out)
    for canon, factor in meta["factors"].items():
        rows[canon] = rows[canon] * factor
    _codes(rows, kind, rows_ids, out)
    result = pd.DataFrame(index=rows.index)
    result["site_id"] = rows_ids.astype(object)
    for c in ATTRIBUTE_COLUMNS:
        result[c] = rows[c] if c in rows.columns and c not in ("area_mu",) else None
    if kind == "park":
        result["park"] = rows_ids.astype(object)
        result["name"] = rows["name"] if "name" in rows.columns else rows_ids.astype(object)
    # One equal-area projection serves the areas and the overlap check.
    ea = geo.to_crs(equal_area_crs(tuple(geo.total_bounds))) if len(geo) else geo
    computed = ea.area.to_numpy() / M2_PER_MU if len(geo) else np.zeros(0)
    result["geom_area_mu"] = np.where(computed > 0, computed, np.nan)
    declared_mu = rows["area_mu"] if "area_mu" in rows.columns else pd.Series(np.nan, index=rows.index)
    result["declared_area_mu"] = declared_mu
    result["area_mu"] = declared_mu.where(declared_mu > 0, result["geom_area_mu"])
    off = (declared_mu - result["geom_area_mu"]).abs() > AREA_TOLERANCE * result["geom_area_mu"]
    for pos in np.flatnonzero(off.fillna(False).to_numpy())[:MAX_LISTED]:
        d, g = declared_mu.iloc[pos], result["geom_area_mu"].iloc[pos]
        out.warn(f"{result['site_id'].iloc[pos]}: 面积不符 declared area {d:.2f} mu, geometry {g:.2f} mu ({(d - g) / g:+.1%})")
    result["extra"] = _extra_json(frame, keep, meta["extra_cols"])
    result = result.reset_index(drop=True)
    out.frame = gpd.GeoDataFrame(result, geometry=geo.reset_index(drop=True).to_numpy(), crs=CRS)
    if kind == "idle" and len(out.frame) > 1:
        step("检查重叠 checking overlaps")
        _overlaps(np.asarray(ea.values), out.frame["site_id"].to_numpy(), out)
    assert out.read == len(out.frame) + len(out.rejections), "every record is loaded or rejected"
    return out


def load_land_file(
    engine: Engine,
    path: str | Path,
    *,
    kind: str,
    crs: str | None = None,
    valid_from: date,
    encoding: str | None = None,
    layer: str | None = None,
    partial: bool = False,
    allow_empty: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Read, clean and store one inventory file as the ``kind`` version valid from ``valid_from``.

    Returns the JSON counts ``{"read", "loaded", "repaired", "rejected", "warnings", …}`` with the
    repaired ids, the rejections (id and reason), overlaps and what the versioning did.

    A file with no site to load (none at all, or every one rejected), or a full version that names
    none of the open sites, would close the whole inventory of its kind: refused unless
    ``allow_empty`` (:class:`LandFileError`, :class:`warehouse.land.InventoryError`).
    """
    day = valid_from
    got = read_land_file(path, kind=kind, crs=crs, encoding=encoding, layer=layer, on_step=on_step)
    if got.frame.empty and not allow_empty:
        first = f"; first rejection: {got.rejections[0]['id']}: {got.rejections[0]['reason']}" if got.rejections else ""
        raise LandFileError(
            f"{got.source}: 没有可载入的{kind}地块 no {kind} site to load (read {got.read}, rejected {len(got.rejections)}{first});"
            " refusing to load an empty inventory (it would close every open site): pass --allow-empty if that is meant"
        )
    if on_step:
        on_step("写入台账版本 storing the inventory version")
    with engine.begin() as conn:
        counts = store_inventory(conn, got.frame, kind=kind, valid_from=day, source=str(path), partial=partial, allow_empty=allow_empty)
        report = land_report(got, day, counts)
        record_load(conn, kind=kind, source=str(path), valid_from=day, report=report)
    return report


def land_report(got: LandRead, valid_from: date, counts: Any) -> dict[str, Any]:
    return {
        "read": got.read,
        "loaded": len(got.frame),
        "repaired": len(got.repaired_ids),
        "rejected": len(got.rejections),
        "warnings": got.warnings,
        "kind": got.kind,
        "file": got.source,
        "source_crs": got.source_crs,
        "encoding": got.encoding,
        "valid_from": valid_from.isoformat(),
        "repaired_ids": got.repaired_ids,
        "rejections": got.rejections,
        "overlaps": got.overlaps,
        "inserted": counts.inserted,
        "closed": counts.closed,
        "unchanged": counts.unchanged,
        "replaced": counts.replaced,
    }
