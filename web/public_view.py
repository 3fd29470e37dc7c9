"""推介 the public site's data: the promotion map's public profile, built once per change.

What a visitor may see is decided where the promotion map decides it, and nowhere else:
``maps.promotion.public_sites`` (sites still on offer, only the ``PUBLIC_SITE_FIELDS`` columns) and
``maps.promotion.public_projects`` (``events.disclosure.is_public_project``: never a confidential,
unsigned or cancelled project; ``PUBLIC_PROJECT_FIELDS`` only). Nothing here reads another
column of the land status or of a project: rows and features are built from those frames alone.

The land status joins every site with every project; it is built from the read models
(``warehouse.read_models.states_at``) once per (day, change mark) and kept by the app (a few
entries): the public pages then page and filter in memory. A new land file or event changes the
mark (``warehouse.public_site.change_mark``) and the next request builds again.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

import geopandas as gpd
import shapely
from sqlalchemy import Engine

from events.model import STAGE_LABELS
from events.store import Horizon
from land.vocabulary import POI_KIND_LABELS
from maps.promotion import (
    FACTORY_COLOR,
    LAND_USE_COLOR,
    PARK_COLOR,
    PROJECT_FIELDS,
    PUBLIC_PROJECT_FIELDS,
    PUBLIC_SITE_FIELDS,
    SITE_FIELDS,
    public_projects,
    public_sites,
)
from maps.render import POI_BADGE, POI_BADGE_OTHER, STAGE_COLOR, Field
from warehouse import read_models
from warehouse.land import land_status, parks, pois, project_locations
from warehouse.public_site import change_mark

# The columns a public row carries: the allow-list, in popup order (name first), plus the point a
# list links to the map with (the outline itself is public: the promotion map draws it).
ROW_FIELDS: tuple[str, ...] = ("name", *(f.col for f in SITE_FIELDS))
assert set(ROW_FIELDS) <= PUBLIC_SITE_FIELDS  # noqa: S101 - a guard on the module's own constants
FIELD_BY_COL: dict[str, Field] = {f.col: f for f in SITE_FIELDS}
MAX_CACHED = 4
MEMO_SIZE = 64
_MEMO_LOCK = threading.Lock()


@dataclass(frozen=True)
class PublicView:
    """The public profile at one day: sites on offer (rows and outlines), parks, points of interest, public projects."""

    as_of: date
    rows: list[dict[str, Any]]
    geoms: list[Any]  # shapely geometry of rows[i]
    index: dict[tuple[str, str], int]
    park_names: list[str]
    parks: gpd.GeoDataFrame
    pois: gpd.GeoDataFrame
    projects: gpd.GeoDataFrame
    # Answers derived from this view (the map's GeoJSON bytes by query), kept while the view is.
    memo: dict[tuple[Any, ...], bytes] = field(default_factory=dict, compare=False, repr=False)

    def memoised(self, key: tuple[Any, ...], make: Callable[[], bytes]) -> bytes:
        """``make()``, kept for ``key`` (at most :data:`MEMO_SIZE` answers per view)."""
        found = self.memo.get(key)
        if found is None:
            found = make()
            with _MEMO_LOCK:
                if len(self.memo) >= MEMO_SIZE:
                    self.memo.clear()
                self.memo[key] = found
        return found


def _plain(value: Any, decimals: int | None = None) -> Any:
    """A JSON-able scalar: NaN/NA → None, numpy → Python, numbers rounded to the field's decimals."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return round(value, decimals) if decimals is not None else value
    if value is gpd.pd.NA:
        return None
    return value


def _rows(sites: gpd.GeoDataFrame) -> tuple[list[dict[str, Any]], list[Any]]:
    """The public rows, sorted by park, kind and id, with a representative point (lon/lat, CGCS2000).

    Column-wise: each column is read out once (``.at`` per cell costs ~100 s at 100,000 sites)."""
    sites = sites.sort_values(["park", "kind", "site_id"], na_position="last", kind="stable").reset_index(drop=True)
    points = sites.geometry.representative_point().values
    empty = shapely.is_empty(points) | shapely.is_missing(points)
    lons, lats = shapely.get_x(points), shapely.get_y(points)
    columns: dict[str, list[Any]] = {}
    for col in ROW_FIELDS:
        if col not in sites.columns:
            columns[col] = [None] * len(sites)
            continue
        f = FIELD_BY_COL.get(col)
        decimals = f.decimals if f is not None and f.type == "num" else None
        columns[col] = [_plain(v, decimals) for v in sites[col].tolist()]
    rows: list[dict[str, Any]] = []
    for i in range(len(sites)):
        row = {col: values[i] for col, values in columns.items()}
        if row["floors"] is not None:
            row["floors"] = int(row["floors"])
        row["lon"] = None if empty[i] else round(float(lons[i]), 6)
        row["lat"] = None if empty[i] else round(float(lats[i]), 6)
        rows.append(row)
    return rows, list(sites.geometry.values)


def geometry_json(geom: Any) -> dict[str, Any] | None:
    """A shapely geometry as GeoJSON, to 1e-6 degree (≈ 0.1 m)."""
    if geom is None or geom.is_empty:
        return None
    out: dict[str, Any] = json.loads(shapely.to_geojson(shapely.set_precision(geom, 1e-6)))
    return out


def build_view(engine: Engine, as_of: date) -> PublicView:
    horizon = Horizon(as_of)
    with engine.connect() as conn:
        states = read_models.states_at(conn, horizon)
        status = land_status(conn, horizon, states=states)
        park_frame = parks(conn, as_of)
        poi_frame = pois(conn, as_of)
        located = project_locations(conn, horizon, states=states)
    shown = public_sites(status)
    rows, geoms = _rows(shown)
    projects = public_projects(located)
    projects = projects[projects.geometry.notna() & ~projects.geometry.is_empty]
    names = sorted({str(p) for p in park_frame["park"].dropna()} | {r["park"] for r in rows if r["park"]})
    return PublicView(
        as_of=as_of,
        rows=rows,
        geoms=geoms,
        index={(r["kind"], r["site_id"]): i for i, r in enumerate(rows)},
        park_names=names,
        parks=park_frame,
        pois=poi_frame,
        projects=projects[[c for c in projects.columns if c in PUBLIC_PROJECT_FIELDS or c == "geometry"]],
    )


class ViewCache:
    """The last few views by (day, change mark); one build at a time (the others wait and reuse it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._views: OrderedDict[tuple[date, tuple[str, str]], PublicView] = OrderedDict()

    def get(self, engine: Engine, as_of: date) -> PublicView:
        with engine.connect() as conn:
            key = (as_of, change_mark(conn))
        with self._lock:
            view = self._views.get(key)
            if view is None:
                view = build_view(engine, as_of)
                self._views[key] = view
                while len(self._views) > MAX_CACHED:
                    self._views.popitem(last=False)
            else:
                self._views.move_to_end(key)
            return view


_CACHE_LOCK = threading.Lock()


def cache_of(state: Any) -> ViewCache:
    """The app's cache (on ``app.state``: one per app, so apps over other warehouses never share)."""
    with _CACHE_LOCK:
        cache: ViewCache | None = getattr(state, "public_views", None)
        if cache is None:
            cache = ViewCache()
            state.public_views = cache
        return cache


# --- text of a field, in the page's language ---------------------------------------------------


def field_label(f: Field, lang: str) -> str:
    return f.en if lang == "en" else f.zh


def field_text(f: Field, value: Any, lang: str) -> str:
    """A value as the page shows it: codes through their label table, numbers with decimals and unit."""
    if value is None or value == "":
        return ""
    if f.codes is not None:
        pair = f.codes.get(str(value))
        return str(value) if pair is None else (pair[1] if lang == "en" else pair[0])
    if f.type == "num" and isinstance(value, int | float):
        unit = (f.unit_en or f.unit) if lang == "en" else f.unit
        return f"{value:,.{f.decimals}f}" + (f" {unit}" if unit else "")
    return str(value)


def site_lines(row: dict[str, Any], lang: str) -> list[str]:
    """The popup / card lines of a public row (every allow-listed field that has a value)."""
    lines: list[str] = []
    for f in SITE_FIELDS:
        if f.col in ("site_id",):
            continue
        text = field_text(f, row.get(f.col), lang)
        if text:
            lines.append(f"{field_label(f, lang)}: {text}")
    return lines


def site_color(row: dict[str, Any]) -> str:
    return FACTORY_COLOR if row.get("kind") == "factory" else LAND_USE_COLOR.get(str(row.get("land_use")), "#c8a064")


def _label(pair: tuple[str, str] | None, lang: str, code: Any) -> str:
    if pair is None:
        return "" if code is None else str(code)
    return pair[1] if lang == "en" else pair[0]


def context_features(
    view: PublicView, lang: str, *, park: str | None = None, parks_only: bool = False, with_projects: bool = False
) -> list[dict[str, Any]]:
    """Parks (outlines; only ``park`` when given), points of interest and (``with_projects``) the
    public projects, as map.js features (``layer`` says which)."""
    out: list[dict[str, Any]] = []
    for name, geom in zip(view.parks["park"], view.parks.geometry, strict=True):
        if park and name != park:
            continue
        out.append(_feature(geom, {"layer": "park", "label": str(name), "color": PARK_COLOR, "lines": []}))
    if parks_only:
        return [f for f in out if f["geometry"] is not None]
    for name, kind, geom in zip(view.pois["name"], view.pois["kind"], view.pois.geometry, strict=True):
        color = POI_BADGE[kind][2] if kind in POI_BADGE else POI_BADGE_OTHER
        out.append(_feature(geom, {"layer": "poi", "label": str(name), "color": color, "lines": [_label(POI_KIND_LABELS.get(str(kind)), lang, kind)]}))
    project_fields = {f.col: f for f in PROJECT_FIELDS}
    for i in range(len(view.projects) if with_projects else 0):
        record = view.projects.iloc[i]
        lines = []
        for col, f in project_fields.items():
            value = _plain(record.get(col), 0 if f.type == "num" else None)
            if col == "stage":
                text = _label(STAGE_LABELS.get(str(value)), lang, value)
            else:
                text = field_text(f, value, lang)
            if text:
                lines.append(f"{field_label(f, lang)}: {text}")
        color = STAGE_COLOR.get(str(record.get("stage")), "#2b7bba")
        out.append(_feature(record.geometry, {"layer": "project", "label": str(_plain(record.get("name")) or ""), "color": color, "lines": lines}))
    return [f for f in out if f["geometry"] is not None]


def _feature(geom: Any, props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry_json(geom), "properties": props}


def site_href(row: dict[str, Any]) -> str:
    return f"/public/sites/{quote(str(row['kind']), safe='')}/{quote(str(row['site_id']), safe='')}"


def site_feature(view: PublicView, i: int, lang: str) -> dict[str, Any]:
    row = view.rows[i]
    props = {
        "layer": "site",
        "kind": row["kind"],
        "site_id": row["site_id"],
        "label": row["name"] or row["site_id"],
        "href": site_href(row),
        "color": site_color(row),
        "lines": site_lines(row, lang),
    }
    return _feature(view.geoms[i], props)


def filtered(view: PublicView, *, park: str | None, kind: str | None) -> list[int]:
    """Indexes of the rows in the park and of the kind asked (None: any), in list order."""
    return [i for i, r in enumerate(view.rows) if (not park or r["park"] == park) and (not kind or r["kind"] == kind)]
