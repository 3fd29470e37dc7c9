"""推介 the public site: the promotion map and the sites on offer, for anyone (no login).

Only the promotion map's public profile is shown (``web.public_view``: ``maps.promotion``'s
allow-list and ``events.disclosure``'s rule): never a confidential project, never an internal
column. The list is server-rendered (readable with JavaScript off); the map is an enhancement
drawn by ``/static/js/map.js`` from ``/api/public/sites.geojson``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from web.i18n import lang_of
from web.public_view import (
    FIELD_BY_COL,
    PublicView,
    cache_of,
    context_features,
    field_label,
    field_text,
    filtered,
    site_feature,
    site_href,
)
from web.security import engine_of
from web.templating import page

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["public"])

PAGE_SIZE = 50
MAP_SITES_MAX = 2000  # outlines one map request draws at most (the list pages the rest)
MAP_SITES_DEFAULT = 1000

ParkQuery = Annotated[str | None, Query(max_length=200, description="Park name (园区); empty: every park")]
# "" is what the filter form sends for "all".
KindQuery = Annotated[
    Literal["idle", "factory", ""] | None, Query(description="idle: land parcels (地块); factory: standard factories (标准厂房); empty: both")
]
ProjectsQuery = Annotated[bool, Query(description="Also the signed projects a public page may show (events.disclosure)")]
LangQuery = Annotated[Literal["zh", "en"] | None, Query(description="Language of the popup lines")]


def _flag(on: bool) -> str | None:
    return "1" if on else None


def _view(request: Request) -> PublicView:
    return cache_of(request.app.state).get(engine_of(request), request.app.state.config.today())


def _query(**params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "") and not (k == "page" and v == 1)}
    return "?" + urlencode(kept) if kept else ""


@router.get("/public")
def public_index(
    request: Request,
    park: ParkQuery = None,
    kind: KindQuery = None,
    page_no: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    projects: ProjectsQuery = False,
) -> Response:
    view = _view(request)
    park = park or None
    lang = lang_of(request)
    hits = filtered(view, park=park, kind=kind or None)
    pages = max(1, -(-len(hits) // PAGE_SIZE))
    page_no = min(page_no, pages)
    rows = [view.rows[i] for i in hits[(page_no - 1) * PAGE_SIZE : page_no * PAGE_SIZE]]
    idle = sum(1 for i in hits if view.rows[i]["kind"] == "idle")
    return page(
        request,
        "public/index.html",
        view=view,
        rows=rows,
        total=len(hits),
        idle_count=idle,
        factory_count=len(hits) - idle,
        park=park or "",
        kind=kind or "",
        page_no=page_no,
        pages=pages,
        with_projects=projects,
        prev_url="/public" + _query(park=park, kind=kind, projects=_flag(projects), page=page_no - 1) if page_no > 1 else None,
        next_url="/public" + _query(park=park, kind=kind, projects=_flag(projects), page=page_no + 1) if page_no < pages else None,
        geojson_url="/api/public/sites.geojson" + _query(park=park, kind=kind, lang=lang, projects=_flag(projects)),
        map_truncated=len(hits) > MAP_SITES_DEFAULT,
        map_cap=MAP_SITES_DEFAULT,
        cell=lambda row, col: field_text(FIELD_BY_COL[col], row.get(col), lang),
        head=lambda col: field_label(FIELD_BY_COL[col], lang),
        href=site_href,
    )


@router.get("/public/sites/{kind}/{site_id}")
def public_site(
    request: Request,
    kind: Annotated[Literal["idle", "factory"], Path()],
    site_id: Annotated[str, Path(max_length=200)],
) -> Response:
    view = _view(request)
    i = view.index.get((kind, site_id))
    if i is None:
        raise HTTPException(404, "没有这处可供的地块或厂房 · no such site on offer")
    lang = lang_of(request)
    row = view.rows[i]
    around = context_features(view, lang, park=row["park"], parks_only=True) if row["park"] else []
    geojson = {"type": "FeatureCollection", "features": [*around, site_feature(view, i, lang)]}
    fields = [(field_label(FIELD_BY_COL[c], lang), field_text(FIELD_BY_COL[c], row.get(c), lang)) for c in FIELD_BY_COL]
    return page(request, "public/site.html", row=row, fields=[f for f in fields if f[1]], geojson=geojson)


# --- API -----------------------------------------------------------------------------------------


class PublicSite(BaseModel):
    """A site on offer, with the public profile's fields only (areas 亩 mu, floor space m², prices 万元/亩, rent 元/m²/month)."""

    site_id: str
    kind: str
    name: str | None
    park: str | None
    land_use: str | None
    area_mu: float | None
    remaining_area_mu: float | None
    price_wan_per_mu: float | None
    plot_ratio_max: float | None
    readiness: str | None
    floor_area_m2: float | None
    vacant_area_m2: float | None
    floors: int | None
    floor_load_kn_m2: float | None
    clear_height_m: float | None
    power_kva: float | None
    rent_yuan_m2_month: float | None
    lon: float | None
    lat: float | None


class PublicSitesPage(BaseModel):
    as_of: str
    total: int
    offset: int
    limit: int
    sites: list[PublicSite]


class Feature(BaseModel):
    type: Literal["Feature"]
    geometry: dict[str, Any] | None
    properties: dict[str, Any]


class FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[Feature]
    total_sites: int
    truncated: bool


@api.get("/public/sites", response_model=PublicSitesPage, summary="Sites on offer, public fields · 可供地块与厂房(公开)")
def api_public_sites(
    request: Request,
    park: ParkQuery = None,
    kind: KindQuery = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> PublicSitesPage:
    view = _view(request)
    hits = filtered(view, park=park or None, kind=kind or None)
    sites = [PublicSite.model_validate(view.rows[i]) for i in hits[offset : offset + limit]]
    return PublicSitesPage(as_of=view.as_of.isoformat(), total=len(hits), offset=offset, limit=limit, sites=sites)


@api.get(
    "/public/sites.geojson",
    response_model=FeatureCollection,
    summary="The promotion map's features · 推介地图要素 (GeoJSON, EPSG:4490)",
    description="Sites on offer (their outlines, capped at `limit`), park outlines, points of interest and, with `projects`, the public projects; "
    "properties `layer`, `label`, `href`, `color`, `lines` as the workspace map draws them.",
)
def api_public_geojson(
    request: Request,
    park: ParkQuery = None,
    kind: KindQuery = None,
    lang: LangQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAP_SITES_MAX)] = MAP_SITES_DEFAULT,
    projects: ProjectsQuery = False,
) -> Response:
    view = _view(request)
    language = lang or lang_of(request)

    def make() -> bytes:
        hits = filtered(view, park=park or None, kind=kind or None)
        features = [*context_features(view, language, park=park or None, with_projects=projects), *(site_feature(view, i, language) for i in hits[:limit])]
        collection = FeatureCollection.model_validate(
            {"type": "FeatureCollection", "features": features, "total_sites": len(hits), "truncated": len(hits) > limit}
        )
        return collection.model_dump_json().encode()

    # The same map for every visitor of the same view: built once per query (the view changes with the data).
    body = view.memoised(("sites.geojson", park, kind, language, limit, projects), make)
    return Response(body, media_type="application/json")

