"""What every map page shares: labels in two languages, compact geometry encoding, basemaps, and
the self-contained page (folium map + vendored Leaflet + our runtime, all inlined).

Coordinates: input geometries are CGCS2000 (EPSG:4490) degrees; CGCS2000 is treated as WGS84 at
map scale (a few centimetres apart). On a Gaode basemap every vertex is moved to GCJ-02 before it
is encoded (``maps.gcj02``). Geometries are simplified in metres (topology-preserving, in a local
UTM zone) and quantised to ``precision`` decimals of a degree (5 ≈ 1.1 m north-south).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import folium
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure, MacroElement
from geopandas import GeoDataFrame, GeoSeries
from jinja2 import Template

from events.choices import member
from events.model import STAGE_LABELS
from land.vocabulary import (
    LAND_STATUS_LABELS,
    LAND_USE_LABELS,
    POI_KIND_LABELS,
    SITE_KIND_LABELS,
    SITE_STATUS_LABELS,
)
from maps.gcj02 import to_gcj02
from maps.vendor import assets
from maps.vocabulary import Basemap

TIANDITU_KEY_ENV = "TIANDITU_KEY"
RUNTIME_JS = Path(__file__).resolve().parent / "runtime.js"

DEFAULT_PRECISION = 5  # decimals of a degree: 1e-5° ≈ 1.1 m north-south, ≈ 1.0 m east-west at 26°N
DEFAULT_SIMPLIFY_M = 1.0  # metres; parcels are 50–500 m across, so corners stay where a planner drew them


def t(lang: str, zh: str, en: str) -> str:
    """A label in the page's language: Chinese first when both."""
    if lang == "en":
        return en
    if lang == "both":
        return f"{zh} {en}" if zh != en else zh
    return zh


# Code lists shared by the maps (Chinese, English): the domain's vocabularies, one table each.
LAND_USE = LAND_USE_LABELS
LAND_STATUS = LAND_STATUS_LABELS
SITE_STATUS = SITE_STATUS_LABELS
KIND = SITE_KIND_LABELS
POI_KIND = POI_KIND_LABELS
# Badge per kind: (glyph zh, glyph en, colour); dark tones that no stage or land-use colour uses.
POI_BADGE: dict[str, tuple[str, str, str]] = {
    "highway_exit": ("高", "H", "#1d5e8c"),
    "rail_freight": ("铁", "R", "#5b3f8c"),
    "port": ("港", "P", "#0e6b6b"),
    "airport": ("机", "A", "#8c2d2d"),
    "bus_station": ("站", "B", "#6b5a1d"),
}
POI_BADGE_OTHER = "#4a4a4a"
STAGE = STAGE_LABELS
STAGE_COLOR: dict[str, str] = {
    "none": "#bdbdbd",
    "signed": "#2b7bba",
    "landed": "#2ca25f",
    "started": "#f28e2b",
    "produced": "#7b3294",
    "cancelled": "#9e9e9e",
}
STALLED_COLOR = "#d7191c"


def coded(lang: str, table: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    return {k: t(lang, zh, en) for k, (zh, en) in table.items()}


@dataclass(frozen=True, slots=True)
class Field:
    """One popup row: a column, its label (zh, en), how to show it, and its unit."""

    col: str
    zh: str
    en: str
    type: str = "text"  # text | num | list | bool
    decimals: int = 1
    unit: str = ""
    codes: Mapping[str, tuple[str, str]] | None = None
    unit_en: str | None = None  # when the unit reads differently in English (亩 → mu)

    def spec(self, lang: str) -> dict[str, Any]:
        out: dict[str, Any] = {"col": self.col, "label": t(lang, self.zh, self.en), "type": self.type}
        if self.type == "num":
            out["decimals"] = self.decimals
        if self.type == "bool":
            out["yes"] = t(lang, "是", "yes")
        if self.unit:
            out["unit"] = t(lang, self.unit, self.unit_en) if self.unit_en else self.unit
        if self.codes is not None:
            out["codes"] = coded(lang, self.codes)
        return out


# ---------------------------------------------------------------- geometry


def simplify_m(geoms: GeoSeries, tolerance_m: float) -> GeoSeries:
    """Topology-preserving simplification with a tolerance in metres (in the local UTM zone).

    Each parcel keeps a valid shape with its holes; vertices closer than ``tolerance_m`` to the
    simplified outline are dropped. Returns geometries in the input CRS.
    """
    if tolerance_m <= 0 or geoms.empty:
        return geoms
    src = geoms.crs or "EPSG:4490"
    series = geoms if geoms.crs is not None else geoms.set_crs(src)
    utm = series.estimate_utm_crs()
    metric = series.to_crs(utm)
    simple = shapely.simplify(metric.values, tolerance_m, preserve_topology=True)
    return GeoSeries(simple, index=geoms.index, crs=utm).to_crs(src)


def prepare(geoms: GeoSeries, *, basemap: str, simplify_tolerance_m: float = 0.0) -> GeoSeries:
    """Geometries as they are drawn: simplified (metres) and, on Gaode, shifted to GCJ-02."""
    if geoms.crs is not None and not geoms.crs.equals("EPSG:4490") and not geoms.crs.equals("EPSG:4326"):
        geoms = geoms.to_crs("EPSG:4490")
    if simplify_tolerance_m > 0:
        geoms = simplify_m(geoms, simplify_tolerance_m)
    if basemap == "gaode":
        geoms = to_gcj02(geoms)
    return geoms


def _split(values: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    return np.split(values, np.cumsum(counts)[:-1]) if len(counts) else []


def encode_polygons(geoms: GeoSeries, origin: tuple[int, int], precision: int) -> list[list[list[list[int]]] | None]:
    """Polygons/MultiPolygons as ``[[ring, ...] per polygon]``, each ring a flat list of integer
    deltas ``[x0, y0, dx1, dy1, …]`` at 10^precision per degree, starting from ``origin``.

    The closing vertex is dropped (Leaflet closes rings) and so are vertices that quantisation
    made identical to the previous one. Vectorised over all vertices; Python loops only to nest.
    """
    arr = geoms.values
    n = len(arr)
    out: list[list[list[list[int]]] | None] = [None] * n
    valid = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
    if not valid.any():
        return out
    idx_valid = np.flatnonzero(valid)
    parts, part_owner = shapely.get_parts(arr[valid], return_index=True)
    rings, ring_owner = shapely.get_rings(parts, return_index=True)
    coords, vert_owner = shapely.get_coordinates(rings, return_index=True)
    k = 10.0**precision
    q = np.round(coords * k).astype(np.int64)
    ring_len = np.bincount(vert_owner, minlength=len(rings))
    last = np.cumsum(ring_len) - 1
    keep = np.ones(len(q), dtype=bool)
    keep[last] = False  # closing vertex
    d = np.diff(q, axis=0, prepend=q[:1])
    first = np.zeros(len(q), dtype=bool)
    first[np.cumsum(ring_len) - ring_len] = True
    keep &= first | (d != 0).any(axis=1)
    q, vert_owner, first = q[keep], vert_owner[keep], first[keep]
    delta = np.diff(q, axis=0, prepend=q[:1])
    delta[first] = q[first] - np.asarray(origin, dtype=np.int64)
    flat_rings = _split(delta.ravel(), 2 * np.bincount(vert_owner, minlength=len(rings)))
    rings_per_part = np.bincount(ring_owner, minlength=len(parts))
    parts_per_geom = np.bincount(part_owner, minlength=int(valid.sum()))
    ri = 0
    pi = 0
    for g, n_parts in zip(idx_valid, parts_per_geom, strict=True):
        polys: list[list[list[int]]] = []
        for _ in range(n_parts):
            nr = rings_per_part[pi]
            polys.append([flat_rings[ri + r].tolist() for r in range(nr)])
            ri += nr
            pi += 1
        out[g] = polys
    return out


def encode_points(geoms: GeoSeries, origin: tuple[int, int], precision: int) -> list[list[int] | None]:
    """Points as ``[x, y]`` integer offsets from ``origin`` at 10^precision per degree."""
    arr = geoms.values
    ok = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
    xy = np.full((len(arr), 2), np.nan)
    if ok.any():
        xy[ok, 0] = shapely.get_x(arr[ok])
        xy[ok, 1] = shapely.get_y(arr[ok])
    q = np.round(xy * 10.0**precision)
    out: list[list[int] | None] = []
    for row, good in zip(q, ok, strict=True):
        out.append([int(row[0]) - origin[0], int(row[1]) - origin[1]] if good else None)
    return out


def encode_sites(geoms: GeoSeries, origin: tuple[int, int], precision: int) -> list[Any]:
    """Polygons encoded as in :func:`encode_polygons`; sites known only by a point (a factory's gate)
    as ``[x, y]``, which the runtime draws as a dot in the site's colours."""
    arr = geoms.values
    is_point = np.isin(shapely.get_type_id(arr), (0, 4))  # Point, MultiPoint
    out: list[Any] = encode_polygons(GeoSeries(np.where(is_point, None, arr), index=geoms.index, crs=geoms.crs), origin, precision)
    if is_point.any():
        pts = GeoSeries(shapely.centroid(arr[is_point]), crs=geoms.crs)
        for i, p in zip(np.flatnonzero(is_point), encode_points(pts, origin, precision), strict=True):
            out[i] = p
    return out


def origin_of(bounds: Sequence[float], precision: int) -> tuple[int, int]:
    return (int(round(bounds[0] * 10**precision)), int(round(bounds[1] * 10**precision)))


def column_values(frame: pd.DataFrame, col: str, *, decimals: int | None = None) -> list[Any]:
    """A column as JSON-ready values: NaN -> null, numpy scalars -> Python, lists kept."""
    if col not in frame.columns:
        return [None] * len(frame)
    s = frame[col]
    if decimals is not None and pd.api.types.is_numeric_dtype(s):
        s = s.round(decimals)
    out: list[Any] = []
    for v in s.astype(object).tolist():
        if isinstance(v, np.generic):
            v = v.item()
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
        elif isinstance(v, pd.Timestamp):
            out.append(v.isoformat())
        elif isinstance(v, np.ndarray):
            out.append([str(x) for x in v.tolist()])
        elif isinstance(v, list | tuple):
            out.append([str(x) for x in v])
        elif isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
            out.append(int(v))
        else:
            out.append(v)
    return out


# ---------------------------------------------------------------- the page


_SCRIPT_UNSAFE = re.compile(r"[<>&\u2028\u2029]")


def script_json(data: Any) -> str:
    """JSON safe inside ``<script>``: ``<``, ``>``, ``&`` and line separators are ``\\u`` escaped, so a
    ``</script>`` in a parcel name can never end the script element."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _SCRIPT_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", raw)


def tile_layers(basemap: str, lang: str, tianditu_key: str | None = None) -> list[dict[str, Any]]:
    """Basemap tile layers (images only, never scripts). Tianditu needs ``tianditu_key`` (the settings' ``TIANDITU_KEY``)."""
    basemap = member(Basemap, basemap, "basemap")
    if basemap == "none":
        return []
    if basemap == "osm":
        return [
            {
                "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                "attr": "&copy; OpenStreetMap contributors",
                "name": t(lang, "开放街道地图", "OpenStreetMap"),
                "maxZoom": 19,
            }
        ]
    if basemap == "gaode":
        return [
            {
                "url": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
                "attr": "&copy; 高德地图 AutoNavi (GCJ-02)",
                "name": t(lang, "高德地图", "Gaode"),
                "subdomains": "1234",
                "maxZoom": 18,
            }
        ]
    if basemap == "tianditu":
        key = (tianditu_key or "").strip()
        if not key:
            raise ValueError(f"the Tianditu basemap needs a key: set {TIANDITU_KEY_ENV} (from console.tianditu.gov.cn)")
        if not re.fullmatch(r"[0-9A-Za-z]+", key):
            raise ValueError(f"{TIANDITU_KEY_ENV} should be the hexadecimal key Tianditu issued")
        common = {"subdomains": "01234567", "maxZoom": 18, "attr": "&copy; 天地图 Tianditu (CGCS2000)"}
        url = "https://t{s}.tianditu.gov.cn/DataServer?T=%s&x={x}&y={y}&l={z}&tk=" + key
        return [
            {**common, "url": url % "vec_w", "name": t(lang, "天地图", "Tianditu")},
            {**common, "url": url % ("cva_w" if lang != "en" else "eva_w"), "name": "labels", "overlay": True},
        ]
    raise AssertionError(f"basemap {basemap!r} has no tiles")  # every Basemap is handled above


_PAGE_CSS = """
.folium-map { background: #eef1f4; }
.leaflet-container { font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", sans-serif; }
.zs-title { background: rgba(255,255,255,.94); padding: 8px 14px; border-radius: 6px; box-shadow: 0 1px 5px rgba(0,0,0,.25); max-width: 420px; }
.zs-title h1 { font-size: 19px; margin: 0; color: #17324d; letter-spacing: .5px; }
.zs-title p { margin: 3px 0 0; font-size: 12px; color: #5a6b7b; }
.zs-legend, .zs-panel { background: rgba(255,255,255,.95); padding: 8px 12px; border-radius: 6px; box-shadow: 0 1px 5px rgba(0,0,0,.25); font-size: 12.5px; line-height: 1.5; max-height: 70vh; overflow: auto; }
.zs-legend-title { font-weight: 700; font-size: 14px; margin-bottom: 2px; color: #17324d; }
.zs-legend-sec { font-weight: 600; margin-top: 6px; color: #333; }
.zs-legend-row { display: flex; align-items: center; gap: 7px; }
.zs-sw { display: inline-block; width: 18px; height: 12px; border: 1.5px solid #555; box-sizing: border-box; flex: none; }
.zs-sw-line { background: transparent !important; border-width: 2.5px; height: 12px; }
.zs-sw-dot { width: 12px; height: 12px; border-radius: 50%; margin: 0 3px; }
.zs-sw-ring { width: 14px; height: 14px; border-radius: 50%; border-width: 3px; margin: 0 2px; }
.zs-panel { max-width: 320px; }
.zs-panel ol { margin: 4px 0 0; padding-left: 22px; }
.zs-search { background: #fff; padding: 4px; width: 230px; }
.zs-search input { width: 100%; box-sizing: border-box; border: 1px solid #bbb; border-radius: 3px; padding: 4px 6px; font-size: 13px; }
.zs-search ul { list-style: none; margin: 0; padding: 0; max-height: 260px; overflow: auto; }
.zs-search li { padding: 3px 6px; cursor: pointer; font-size: 12.5px; border-bottom: 1px solid #eee; }
.zs-search li:hover { background: #e8f1fb; }
.zs-search li.zs-none { color: #888; cursor: default; }
.zs-pop h4 { margin: 0 0 4px; font-size: 15px; color: #17324d; }
.zs-pop-kind { font-size: 11px; color: #6b7b8b; }
.zs-pop table { border-collapse: collapse; font-size: 12.5px; }
.zs-pop th { text-align: left; font-weight: 500; color: #555; padding: 1px 10px 1px 0; white-space: nowrap; vertical-align: top; }
.zs-pop td { padding: 1px 0; }
.zs-crit { margin-top: 6px; border-top: 1px solid #ddd; }
.zs-crit th, .zs-crit td { padding: 1px 6px 1px 0 !important; font-size: 12px; }
.zs-id { color: #888; font-size: 11px; }
.zs-label { background: transparent; border: none; box-shadow: none; font-weight: 700; font-size: 13px; color: #0f5e59;
  text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 3px #fff; }
.zs-badge span { display: flex; width: 20px; height: 20px; border-radius: 4px; color: #fff; font-weight: 700; font-size: 12px;
  align-items: center; justify-content: center; border: 1.5px solid #fff; box-shadow: 0 1px 3px rgba(0,0,0,.5); }
.zs-sw-badge { width: 16px; height: 16px; border-radius: 3px; border: none; color: #fff; font-size: 10px; font-style: normal; font-weight: 700;
  display: inline-flex; align-items: center; justify-content: center; margin: 0 1px; }
.zs-num span { display: flex; width: 26px; height: 26px; border-radius: 50%; color: #fff; font-weight: 700; font-size: 14px;
  align-items: center; justify-content: center; border: 2px solid #fff; box-shadow: 0 1px 4px rgba(0,0,0,.45); }
.zs-timeline { background: rgba(255,255,255,.95); padding: 6px 10px; border-radius: 6px; box-shadow: 0 1px 5px rgba(0,0,0,.25);
  display: flex; align-items: center; gap: 8px; font-size: 13px; }
.zs-timeline input { width: 340px; }
.zs-timeline button { border: 1px solid #999; background: #fff; border-radius: 3px; cursor: pointer; width: 30px; }
.zs-month { min-width: 150px; font-weight: 600; white-space: nowrap; }
@media print { .zs-search, .leaflet-control-layers, .leaflet-control-zoom, .zs-timeline button { display: none; } }
.zs-print .zs-search, .zs-print .leaflet-control-layers, .zs-print .leaflet-control-zoom, .zs-print .zs-timeline button { display: none; }
"""


class _DrawScript(MacroElement):
    """Runs the runtime over the embedded spec once the folium map exists."""

    _template = Template(
        """{% macro script(this, kwargs) %}
(function () {
  var spec = {{ this.spec_json }};
  var map = {{ this._parent.get_name() }};
  spec.baseLayers = function (map) {
    var out = {}, first = true;
    (spec.tiles || []).forEach(function (tl) {
      var opts = { attribution: tl.attr, maxZoom: tl.maxZoom || 18 };
      if (tl.subdomains) opts.subdomains = tl.subdomains;
      var layer = L.tileLayer(tl.url, opts);
      if (tl.overlay) { layer.addTo(map); return; }
      if (first) { layer.addTo(map); first = false; }
      out[ZS.esc(tl.name)] = layer;
    });
    return out;
  };
  ZS.draw(map, spec);
})();
{% endmacro %}"""
    )

    def __init__(self, spec_json: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # branca's MacroElement.__init__ is unannotated
        self._name = "ZsDraw"
        self.spec_json = spec_json


def build_page(spec: dict[str, Any], *, basemap: str, lang: str, page_title: str, tianditu_key: str | None = None) -> str:
    """A complete self-contained HTML page for ``spec`` (the runtime's layers, legend, texts).

    Leaflet, its CSS (icons as data: URIs), our CSS and runtime are inlined; folium's CDN
    defaults are dropped, and a check refuses to return a page that still links a script or
    stylesheet.
    """
    spec = dict(spec)
    spec["tiles"] = tile_layers(basemap, lang, tianditu_key)
    spec.setdefault("text", {})
    spec["text"] = {
        "legend": t(lang, "图例", "Legend"),
        "search": t(lang, "搜索名称或编号", "Search name or id"),
        "no_match": t(lang, "无匹配", "No match"),
        "projects": t(lang, "个项目", "projects"),
        "play": t(lang, "播放", "Play"),
        **spec["text"],
    }
    b = spec.get("bounds")
    center = [(b[0][0] + b[1][0]) / 2, (b[0][1] + b[1][1]) / 2] if b else [35.0, 105.0]
    m = folium.Map(location=center, zoom_start=12, tiles=None, prefer_canvas=True, control_scale=True)
    # Instance attributes shadow folium's CDN defaults (jQuery, Bootstrap, Font Awesome, …): none is needed.
    m.default_js = []
    m.default_css = []
    root = cast(Figure, m.get_root())  # a Map's root is its branca Figure; get_root() is typed as Element
    vendored = assets()
    head = [f"<title>{html.escape(page_title)}</title>"]
    head += [f"<style>{css}</style>" for css in vendored.css]
    head.append(f"<style>{_PAGE_CSS}</style>")
    head += [f"<script>{js}</script>" for js in vendored.js]
    head.append(f"<script>{RUNTIME_JS.read_text(encoding='utf-8')}</script>")
    root.header.add_child(Element("\n".join(head)), name="zs_assets")
    root.html.add_child(Element(f'<meta name="generator" content="zhaoshang maps; lang={html.escape(lang)}">'))
    m.add_child(_DrawScript(script_json(spec)))
    page = root.render()
    page = page.replace("<html>", f'<html lang="{"en" if lang == "en" else "zh-CN"}">', 1)
    check_self_contained(page)
    return page


_EXTERNAL = re.compile(r"<script[^>]*\bsrc\s*=|<link[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//|@import\s+url\(\s*[\"']?https?:", re.I)


def check_self_contained(page: str) -> None:
    """Raise when the page would fetch a script or stylesheet (or @import) from anywhere."""
    m = _EXTERNAL.search(page)
    if m:
        raise AssertionError(f"page links an external asset: {page[m.start(): m.start() + 160]!r}")


def bounds_of(frames: Iterable[GeoSeries | GeoDataFrame]) -> list[list[float]] | None:
    """``[[south, west], [north, east]]`` over the non-empty inputs (degrees)."""
    boxes = [f.total_bounds for f in frames if len(f) and not f.geometry.is_empty.all()]
    if not boxes:
        return None
    arr = np.array(boxes)
    return [[float(arr[:, 1].min()), float(arr[:, 0].min())], [float(arr[:, 3].max()), float(arr[:, 2].max())]]
