"""土地 Land: idle parcels and standard factories on a map and in a table, and one site's page.

The status of every site as of a date is the land status of ``zhaoshang land status`` (one view per
horizon kept in the process: ``web.landview``); filters and paging run over that view. The map draws
every site that passes the filters up to :data:`MAP_ALL_LIMIT`; beyond that only the table's current
page, and the page says so (at 100,000 parcels a browser cannot draw them all usefully anyway).

A site's page lists its inventory versions and its occupancy over time. A ``unit`` officer sees the
projects of other units on a site as "其他单位项目" (that the land is taken is a fact of the land
inventory; whose project took it is not theirs to see): no id, no name, no link.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import numpy as np
import shapely
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from events.model import STAGE_LABELS
from events.store import Horizon
from land.vocabulary import LAND_STATUS_LABELS, POI_KIND_LABELS, SITE_STATUSES
from warehouse.land import parks, pois, site_history
from warehouse.land_sites import site_outline
from web.i18n import label, lang_of
from web.landview import (
    LABEL_TABLES,
    SIMPLIFY_DEG,
    SORTS,
    STATUS_COLORS,
    LandFilters,
    features,
    land_views,
    parks_of,
    select,
    site_rows,
    status_counts,
)
from web.query import DATE, choice, horizon_of, parse_as_of
from web.security import Principal, Reader, engine_of
from web.templating import page

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["land"])

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAP_ALL_LIMIT = 1000  # sites the map draws at most; beyond, the table's page
NUMBER = r"^$|^\d{1,9}(\.\d{1,6})?$"  # an empty form field, or a plain non-negative number


def _float(value: str) -> float | None:
    return float(value) if value else None


@dataclass(frozen=True)
class LandQuery:
    horizon: Horizon
    filters: LandFilters
    page: int
    page_size: int
    params: dict[str, str] = field(default_factory=dict)  # the query as given (non-empty), for links

    def url(self, path: str, **changes: object) -> str:
        params = {**self.params, **{k: str(v) for k, v in changes.items()}}
        return f"{path}?{urlencode(params)}" if params else path


def land_query(
    request: Request,
    as_of: Annotated[str, Query(pattern=DATE, description="Status as of this day (YYYY-MM-DD; default today)")] = "",
    known_at: Annotated[str, Query(max_length=40, description="Only facts recorded by this instant")] = "",
    kind: Annotated[str, Query(pattern="^(|idle|factory)$", description="idle (地块) or factory (标准厂房)")] = "",
    park: Annotated[str, Query(max_length=200)] = "",
    land_use: Annotated[str, Query(pattern=choice(LABEL_TABLES["land_use"]), description="Land class 100101/100102/100103")] = "",
    land_status: Annotated[str, Query(pattern=choice(LAND_STATUS_LABELS), description="The land file's status (闲置, 批而未供…)")] = "",
    status: Annotated[str, Query(pattern=choice(SITE_STATUSES), description="Supply status as of the date")] = "",
    area_min: Annotated[str, Query(pattern=NUMBER, description="Smallest area, 亩")] = "",
    area_max: Annotated[str, Query(pattern=NUMBER, description="Largest area, 亩")] = "",
    max_price: Annotated[str, Query(pattern=NUMBER, description="Land price cap, 万元/亩 (leaves factories out)")] = "",
    sort: Annotated[str, Query(pattern=choice(SORTS))] = "",
    page_no: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
) -> LandQuery:
    horizon = horizon_of(request, as_of, known_at)
    filters = LandFilters(
        kind=kind or None,
        park=park or None,
        land_use=land_use or None,
        land_status=land_status or None,
        status=status or None,
        area_min_mu=_float(area_min),
        area_max_mu=_float(area_max),
        max_price_wan_per_mu=_float(max_price),
        sort=sort or "site",
    )
    given = {
        "as_of": as_of, "known_at": known_at, "kind": kind, "park": park, "land_use": land_use, "land_status": land_status,
        "status": status, "area_min": area_min, "area_max": area_max, "max_price": max_price, "sort": sort,
        "page_size": str(page_size) if page_size != PAGE_SIZE else "",
    }  # fmt: skip
    return LandQuery(horizon, filters, page_no, page_size, {k: v for k, v in given.items() if v})


Land = Annotated[LandQuery, Depends(land_query)]


def _results(request: Request, q: LandQuery) -> dict[str, Any]:
    lang = lang_of(request)
    view = land_views(request).get(q.horizon)
    chosen = select(view, q.filters)
    total = len(chosen)
    pages = max(1, -(-total // q.page_size))
    page_no = min(q.page, pages)
    rows = chosen.iloc[(page_no - 1) * q.page_size : page_no * q.page_size]
    map_all = total <= MAP_ALL_LIMIT
    return {
        "q": q,
        "view": view,
        "rows": site_rows(view, rows, lang),
        "total": total,
        "page_no": page_no,
        "pages": pages,
        "counts": status_counts(chosen),
        "map_all": map_all,
        "map_limit": MAP_ALL_LIMIT,
        "map_url": q.url("/api/land/sites.geojson", page=page_no),
        "prev_url": q.url("/land", page=page_no - 1) if page_no > 1 else None,
        "next_url": q.url("/land", page=page_no + 1) if page_no < pages else None,
        "parks": parks_of(view),
        "labels": LABEL_TABLES,
        "status_colors": STATUS_COLORS,
    }


@router.get("/land", response_class=HTMLResponse)
def land_page(request: Request, principal: Reader, q: Land) -> HTMLResponse:
    context = _results(request, q)
    if request.headers.get("hx-request") and not request.headers.get("hx-boosted"):
        return page(request, "land/_results.html", **context)
    return page(request, "land/index.html", **context)


def _occupancy(principal: Principal, takes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A site's takes as the principal may see them: other units' projects without id or name."""
    out = []
    for t in takes:
        visible = principal.may_see_unit(t["unit"])
        out.append({**t, "visible": visible, **({} if visible else {"project_id": None, "name": None, "unit": None})})
    return out


@router.get("/land/{kind}/{site_id}", response_class=HTMLResponse)
def site_page(
    request: Request,
    principal: Reader,
    kind: Annotated[str, Path(pattern="^(idle|factory)$")],
    site_id: Annotated[str, Path(max_length=200)],
    as_of: Annotated[str, Query(pattern=DATE)] = "",
    known_at: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    horizon = horizon_of(request, as_of, known_at)
    with engine_of(request).connect() as conn:
        versions = site_history(conn, site_id, kind)
        outline = site_outline(conn, kind, site_id, horizon.as_of) if versions else None
    if not versions:
        raise HTTPException(404, f"没有这个{'地块' if kind == 'idle' else '厂房'} no such site: {site_id}")
    view = land_views(request).get(horizon)
    frame = view.frame
    here = frame[(frame["kind"] == kind) & (frame["site_id"] == site_id)]
    current = site_rows(view, here.drop(columns="geometry"), lang_of(request))[0] if len(here) else None
    takes = view.takes[(view.takes["kind"] == kind) & (view.takes["site_id"] == site_id)]
    records = [{str(k): v for k, v in r.items()} for r in takes.astype(object).where(takes.notna(), None).to_dict(orient="records")]
    geojson = {"type": "FeatureCollection", "features": []} if outline is None else {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": outline, "properties": {
            "label": site_id, "color": STATUS_COLORS.get(current["status"], "#1f5fa8") if current else "#1f5fa8"}}],
    }  # fmt: skip
    return page(
        request,
        "land/site.html",
        kind=kind,
        site_id=site_id,
        horizon=horizon,
        versions=versions,
        current=current,
        occupancy=_occupancy(principal, records),
        geojson=geojson,
        labels=LABEL_TABLES,
        status_colors=STATUS_COLORS,
        stage_labels=STAGE_LABELS,
    )


# --- API --------------------------------------------------------------------------------------


class SiteOut(BaseModel):
    site_id: str
    kind: str = Field(description="idle (地块) or factory (标准厂房)")
    kind_label: str
    name: str | None
    park: str | None
    land_use: str | None
    land_use_label: str | None
    land_status: str | None
    status: str = Field(description="available, partly_taken, taken or in_production as of the date")
    status_label: str
    area_mu: float | None = Field(description="亩")
    remaining_area_mu: float | None
    price_wan_per_mu: float | None = Field(description="万元/亩")
    floor_area_m2: float | None
    vacant_area_m2: float | None
    rent_yuan_m2_month: float | None
    readiness: str | None
    projects: int = Field(description="Projects on the site as of the date")
    lon: float = Field(description="A point on the site, CGCS2000")
    lat: float


class SiteList(BaseModel):
    as_of: date
    known_at: datetime | None
    total: int
    page: int
    page_size: int
    counts: dict[str, int] = Field(description="Sites passing the filters, by status")
    sites: list[SiteOut]


@api.get("/land/sites", response_model=SiteList, summary="Parcels and factories with their status · 土地列表")
def api_sites(request: Request, principal: Reader, q: Land) -> SiteList:
    view = land_views(request).get(q.horizon)
    chosen = select(view, q.filters)
    rows = chosen.iloc[(q.page - 1) * q.page_size : q.page * q.page_size]
    return SiteList(
        as_of=q.horizon.as_of,
        known_at=q.horizon.known_at,
        total=len(chosen),
        page=q.page,
        page_size=q.page_size,
        counts=status_counts(chosen),
        sites=[SiteOut(**r) for r in site_rows(view, rows, lang_of(request))],
    )


class Feature(BaseModel):
    type: str = "Feature"
    geometry: dict[str, Any]
    properties: dict[str, Any]


class FeatureCollection(BaseModel):
    type: str = "FeatureCollection"
    total: int = Field(description="Sites passing the filters")
    capped: bool = Field(description="True: more than max_features passed, the features are the asked page only")
    features: list[Feature]


@api.get("/land/sites.geojson", response_model=FeatureCollection, summary="The land map's features · 土地地图")
def api_sites_geojson(
    request: Request,
    principal: Reader,
    q: Land,
    max_features: Annotated[int, Query(ge=1, le=5000)] = MAP_ALL_LIMIT,
) -> FeatureCollection:
    view = land_views(request).get(q.horizon)
    chosen = select(view, q.filters)
    capped = len(chosen) > max_features
    rows = chosen.iloc[(q.page - 1) * q.page_size : q.page * q.page_size] if capped else chosen
    return FeatureCollection(total=len(chosen), capped=capped, features=[Feature(**f) for f in features(view, rows, lang_of(request))])


@api.get("/land/context.geojson", response_model=FeatureCollection, summary="Park outlines and points of interest · 园区与设施点")
def api_context(
    request: Request,
    principal: Reader,
    as_of: Annotated[str, Query(pattern=DATE)] = "",
) -> FeatureCollection:
    """What a map to pick places on shows: the parks and the points of interest (highway exits, freight stations…)."""
    day = parse_as_of(request, as_of)
    lang = lang_of(request)
    with engine_of(request).connect() as conn:
        park_frame = parks(conn, day)
        poi_frame = pois(conn, day)
    out: list[Feature] = []
    outlines = shapely.simplify(np.asarray(park_frame.geometry.values), SIMPLIFY_DEG, preserve_topology=True)
    for name, geom in zip(park_frame["park"], outlines, strict=True):
        out.append(Feature(geometry=json.loads(shapely.to_geojson(geom)), properties={"label": str(name), "color": "#8a6d00", "kind": "park"}))
    for name, kind, geom in zip(poi_frame["name"], poi_frame["kind"], poi_frame.geometry.values, strict=True):
        what = label(POI_KIND_LABELS.get(str(kind)), lang, kind)
        out.append(Feature(geometry=json.loads(shapely.to_geojson(geom)), properties={"label": str(name), "lines": [what], "color": "#1f5fa8", "kind": "poi"}))
    return FeatureCollection(total=len(out), capped=False, features=out)
