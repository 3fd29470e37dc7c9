"""The land status as the land and matching pages use it: one prepared view per horizon, kept in the
process, and the filters of the land table and map (pure pandas over the cached frame).

``warehouse.land_sites.load_land_view`` folds every project and reads every site: seconds on a
warehouse of 100,000 parcels. Each process keeps the few newest horizons asked for (a small LRU);
before answering from one it asks the warehouse for the newest land load and log position (two
index look-ups) and rebuilds the view when either moved, so a new inventory version or a new landing
shows on the next request. One request builds a missing view; the others asking for it wait for it.
"""

from __future__ import annotations

import json
import math
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import shapely
from fastapi import Request
from sqlalchemy import Engine

from events.store import Horizon
from land.vocabulary import LAND_STATUS_LABELS, LAND_USE_LABELS, SITE_KIND_LABELS, SITE_STATUS_LABELS
from warehouse.land_sites import LandView, land_stamp, load_land_view
from web.i18n import label

CACHE_SIZE = 4  # horizons kept per process; each holds the whole status frame (tens of MB at 100k parcels)
STATUS_COLORS = {"available": "#2e7d32", "partly_taken": "#f9a825", "taken": "#c62828", "in_production": "#5d6b7a"}
SIMPLIFY_DEG = 0.00002  # about 2 m: outlines drawn on a map lose nothing visible
SORTS = {
    "site": (["kind", "site_id"], [True, True]),
    "area_desc": (["area_mu", "site_id"], [False, True]),
    "area_asc": (["area_mu", "site_id"], [True, True]),
    "price_asc": (["price_wan_per_mu", "site_id"], [True, True]),
    "remaining_desc": (["remaining_area_mu", "site_id"], [False, True]),
}
SORT_LABELS = {
    "site": ("编号", "Site id"),
    "area_desc": ("面积从大到小", "Largest first"),
    "area_asc": ("面积从小到大", "Smallest first"),
    "price_asc": ("地价从低到高", "Cheapest first"),
    "remaining_desc": ("剩余面积从大到小", "Most land left"),
}


class LandViewCache:
    """The newest :data:`CACHE_SIZE` land views of one app, by horizon; see the module."""

    def __init__(self, engine: Engine, size: int = CACHE_SIZE) -> None:
        self.engine = engine
        self.size = size
        self.loads = 0  # views built (tests read it to see a hit or a rebuild)
        self._views: OrderedDict[tuple[date, datetime | None], LandView] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple[date, datetime | None], threading.Lock] = {}

    def _fresh(self, key: tuple[date, datetime | None], stamp: tuple[int, int]) -> LandView | None:
        with self._lock:
            view = self._views.get(key)
            if view is not None and view.stamp == stamp:
                self._views.move_to_end(key)
                return view
            return None

    def get(self, horizon: Horizon) -> LandView:
        key = (horizon.as_of, horizon.known_at)
        with self.engine.connect() as conn:
            stamp = land_stamp(conn)
        view = self._fresh(key, stamp)
        if view is not None:
            return view
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            view = self._fresh(key, stamp)
            if view is not None:  # another request built it while this one waited
                return view
            view = load_land_view(self.engine, horizon)
            with self._lock:
                self.loads += 1
                self._views[key] = view
                self._views.move_to_end(key)
                while len(self._views) > self.size:
                    self._views.popitem(last=False)
                self._building.pop(key, None)
        return view


_CACHE_LOCK = threading.Lock()


def land_views(request: Request) -> LandViewCache:
    """The app's land view cache (made on first use: the app knows nothing of it)."""
    return land_views_of(request.app.state)


def land_views_of(state: Any) -> LandViewCache:
    """:func:`land_views` from the app's ``state`` (the start-up warm-up has no request)."""
    with _CACHE_LOCK:
        cache: LandViewCache | None = getattr(state, "land_views", None)
        if cache is None:
            cache = LandViewCache(state.engine)
            state.land_views = cache
    return cache


@dataclass(frozen=True)
class LandFilters:
    """The land table's filters; None: no filter. Areas in 亩 (the site's whole area), price in 万元/亩."""

    kind: str | None = None
    park: str | None = None
    land_use: str | None = None
    land_status: str | None = None
    status: str | None = None
    area_min_mu: float | None = None
    area_max_mu: float | None = None
    max_price_wan_per_mu: float | None = None
    sort: str = "site"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        keep = np.ones(len(frame), dtype=bool)
        for column, wanted in (("kind", self.kind), ("park", self.park), ("land_use", self.land_use), ("land_status", self.land_status), ("status", self.status)):
            if wanted is not None:
                keep &= (frame[column] == wanted).fillna(False).to_numpy(dtype=bool)
        area = frame["area_mu"].to_numpy(dtype=float)
        if self.area_min_mu is not None:
            keep &= area >= self.area_min_mu
        if self.area_max_mu is not None:
            keep &= area <= self.area_max_mu
        if self.max_price_wan_per_mu is not None:
            # Only parcels have a land price: a cap leaves factories (rent per m²) out.
            keep &= frame["price_wan_per_mu"].to_numpy(dtype=float) <= self.max_price_wan_per_mu
        return keep


@dataclass(frozen=True)
class _Prepared:
    """What every selection of one view reuses: the sites without their outlines, and each sort's order."""

    table: pd.DataFrame
    orders: dict[str, np.ndarray]


_PREPARED: weakref.WeakKeyDictionary[LandView, _Prepared] = weakref.WeakKeyDictionary()
_PREPARED_LOCK = threading.Lock()


def prepared_of(view: LandView) -> _Prepared:
    """The view's table and sort orders (made on first use; the start-up warm-up makes them early)."""
    with _PREPARED_LOCK:
        found = _PREPARED.get(view)
    if found is not None:
        return found
    table = pd.DataFrame(view.frame[[c for c in view.frame.columns if c != "geometry"]])
    orders = {}
    for name, (columns, ascending) in SORTS.items():
        ordered = table[columns].sort_values(columns, ascending=ascending, na_position="last", kind="stable")
        orders[name] = table.index.get_indexer(ordered.index)
    made = _Prepared(table, orders)
    with _PREPARED_LOCK:
        return _PREPARED.setdefault(view, made)


def select(view: LandView, filters: LandFilters) -> pd.DataFrame:
    """The view's sites passing ``filters``, in the asked order; the index points into ``view.frame``.

    The sorts are made once per view (a sort of 100,000 sites costs more than the rest of a request)."""
    prepared = prepared_of(view)
    order = prepared.orders.get(filters.sort, prepared.orders["site"])
    keep = filters.mask(prepared.table)
    chosen: pd.DataFrame = prepared.table.iloc[order[keep[order]]]
    return chosen


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return round(number, 4) if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def site_rows(view: LandView, rows: pd.DataFrame, lang: str) -> list[dict[str, Any]]:
    """Table and API rows of the selected ``rows`` (a page of :func:`select`): labelled, with a point to show."""
    points = shapely.point_on_surface(np.asarray(view.frame.geometry.loc[rows.index].values))
    out: list[dict[str, Any]] = []
    for (_, r), point in zip(rows.iterrows(), points, strict=True):
        out.append(
            {
                "site_id": str(r["site_id"]),
                "kind": r["kind"],
                "kind_label": label(SITE_KIND_LABELS.get(r["kind"]), lang, r["kind"]),
                "name": _text(r["name"]),
                "park": _text(r["park"]),
                "land_use": _text(r["land_use"]),
                "land_use_label": label(LAND_USE_LABELS.get(str(r["land_use"])), lang, _text(r["land_use"])) if _text(r["land_use"]) else None,
                "land_status": _text(r["land_status"]),
                "status": r["status"],
                "status_label": label(SITE_STATUS_LABELS.get(r["status"]), lang, r["status"]),
                "area_mu": _number(r["area_mu"]),
                "remaining_area_mu": _number(r["remaining_area_mu"]),
                "price_wan_per_mu": _number(r["price_wan_per_mu"]),
                "floor_area_m2": _number(r["floor_area_m2"]),
                "vacant_area_m2": _number(r["vacant_area_m2"]),
                "rent_yuan_m2_month": _number(r["rent_yuan_m2_month"]),
                "readiness": _text(r["readiness"]),
                "projects": len(r["project_ids"]) if isinstance(r["project_ids"], list | tuple | np.ndarray) else 0,
                "lon": round(float(shapely.get_x(point)), 6),
                "lat": round(float(shapely.get_y(point)), 6),
            }
        )
    return out


def features(view: LandView, rows: pd.DataFrame, lang: str) -> list[dict[str, Any]]:
    """GeoJSON features of ``rows``: simplified outlines with the map's popup properties (text only)."""
    geoms = shapely.simplify(np.asarray(view.frame.geometry.loc[rows.index].values), SIMPLIFY_DEG, preserve_topology=True)
    out = []
    for row, geom in zip(site_rows(view, rows, lang), geoms, strict=True):
        lines = [row["kind_label"], row["status_label"]]
        if row["park"]:
            lines.append(row["park"])
        if row["area_mu"] is not None:
            lines.append(f"{row['area_mu']:.1f} 亩" if lang == "zh" else f"{row['area_mu']:.1f} mu")
        out.append(
            {
                "type": "Feature",
                "geometry": json.loads(shapely.to_geojson(geom)),
                "properties": {
                    "id": row["site_id"],
                    "kind": row["kind"],
                    "status": row["status"],
                    "label": f"{row['site_id']} {row['name'] or ''}".strip(),
                    "href": site_href(row["kind"], row["site_id"]),
                    "lines": lines,
                    "color": STATUS_COLORS.get(row["status"], "#1f5fa8"),
                },
            }
        )
    return out


def site_href(kind: str, site_id: str) -> str:
    return f"/land/{kind}/{quote(site_id, safe='')}"


def parks_of(view: LandView) -> list[str]:
    return sorted({str(p) for p in view.frame["park"].dropna().unique()})


def status_counts(rows: pd.DataFrame) -> dict[str, int]:
    counts = rows["status"].value_counts()
    return {s: int(counts.get(s, 0)) for s in SITE_STATUS_LABELS}


LABEL_TABLES = {
    "kind": {k: SITE_KIND_LABELS[k] for k in ("idle", "factory")},
    "land_use": LAND_USE_LABELS,
    "land_status": LAND_STATUS_LABELS,
    "status": SITE_STATUS_LABELS,
    "sort": SORT_LABELS,
}
