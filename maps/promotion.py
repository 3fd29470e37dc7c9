"""The promotion map (招商推介地图): available land and vacant factories, parks, points of interest.

Inputs follow ``warehouse.land``: ``sites`` (one row per idle parcel or factory, EPSG:4490),
``parks`` (``park``, polygon), ``pois`` (``name``, ``kind``, point) and, optionally, projects
(``warehouse.land.project_locations``). Areas are 亩 (mu) for land and m² for floor space; prices
万元/亩; rents 元/m²/month.

The public profile is an allow-list: only the columns named in ``PUBLIC_SITE_FIELDS`` /
``PUBLIC_PROJECT_FIELDS`` ever reach the page, only sites still on offer are shown, confidential
and cancelled projects are dropped, and an investor's name is shown only once the project is
signed (and never for a confidential one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from geopandas import GeoDataFrame

from land.vocabulary import ON_OFFER_STATUSES
from maps.render import (
    DEFAULT_PRECISION,
    DEFAULT_SIMPLIFY_M,
    KIND,
    LAND_STATUS,
    LAND_USE,
    POI_BADGE,
    POI_BADGE_OTHER,
    POI_KIND,
    SITE_STATUS,
    STAGE,
    STAGE_COLOR,
    STALLED_COLOR,
    Field,
    bounds_of,
    build_page,
    column_values,
    encode_points,
    encode_polygons,
    encode_sites,
    origin_of,
    prepare,
    t,
)

# Fields a visitor of a public page may see, in popup order.
SITE_FIELDS: tuple[Field, ...] = (
    Field("site_id", "编号", "ID"),
    Field("kind", "类型", "Type", codes=KIND),
    Field("park", "园区", "Park"),
    Field("land_use", "用地类型", "Land use", codes=LAND_USE),
    Field("area_mu", "面积", "Area", "num", 1, "亩", unit_en="mu"),
    Field("remaining_area_mu", "可供面积", "Available area", "num", 1, "亩", unit_en="mu"),
    Field("price_wan_per_mu", "地价", "Land price", "num", 1, "万元/亩", unit_en="10k CNY/mu"),
    Field("plot_ratio_max", "容积率上限", "Max plot ratio", "num", 2),
    Field("readiness", "基础配套", "Site readiness"),
    Field("floor_area_m2", "建筑面积", "Floor area", "num", 0, "m²"),
    Field("vacant_area_m2", "空置面积", "Vacant area", "num", 0, "m²"),
    Field("floors", "层数", "Floors", "num", 0),
    Field("floor_load_kn_m2", "楼面承重", "Floor load", "num", 1, "kN/m²"),
    Field("clear_height_m", "层高", "Clear height", "num", 1, "m"),
    Field("power_kva", "供电容量", "Power supply", "num", 0, "kVA"),
    Field("rent_yuan_m2_month", "租金", "Rent", "num", 1, "元/m²·月", unit_en="CNY/m²/month"),
)
INTERNAL_SITE_FIELDS: tuple[Field, ...] = (
    Field("land_status", "土地状态", "Land status", codes=LAND_STATUS),
    Field("status", "供应状态", "Supply status", codes=SITE_STATUS),
    Field("project_ids", "关联项目", "Projects", "list"),
)
PUBLIC_SITE_FIELDS: frozenset[str] = frozenset(f.col for f in SITE_FIELDS) | {"name"}
ON_OFFER = ON_OFFER_STATUSES

PROJECT_FIELDS: tuple[Field, ...] = (
    Field("stage", "阶段", "Stage", codes=STAGE),
    Field("industry", "产业", "Industry"),
    Field("investor", "投资方", "Investor"),
    Field("investment_wan", "总投资", "Investment", "num", 0, "万元", unit_en="10k CNY"),
)
INTERNAL_PROJECT_FIELDS: tuple[Field, ...] = (
    Field("project_id", "项目编号", "Project ID"),
    Field("unit", "责任单位", "Responsible unit"),
    Field("site_id", "地块/厂房", "Site"),
    Field("stalled", "停滞", "Stalled", "bool"),
    Field("confidential", "保密", "Confidential", "bool"),
)
PUBLIC_PROJECT_FIELDS: frozenset[str] = frozenset(f.col for f in PROJECT_FIELDS) | {"name"}
SIGNED_STAGES = ("signed", "landed", "started", "produced")

# Industrial land in the planning-map browns (GB 50137: M class), factories in blue-violet.
LAND_USE_COLOR = {"100101": "#d9b26f", "100102": "#b07a3b", "100103": "#7a4a1e"}
FACTORY_COLOR = "#4f5fc4"
TAKEN_COLOR = "#a3a3a3"
PARK_COLOR = "#0f7b74"


def on_offer(sites: GeoDataFrame) -> pd.Series:
    """Sites still on offer: status available or partly taken, and space left where it is known
    (remaining land > 0 亩 for parcels, vacant floor space > 0 m² for factories — a factory the
    file lists as fully let has no project on it, so its status alone says 'available')."""
    keep = sites["status"].isin(ON_OFFER) if "status" in sites.columns else pd.Series(True, index=sites.index)
    kind = sites["kind"] if "kind" in sites.columns else pd.Series("idle", index=sites.index)
    left = pd.Series(np.nan, index=sites.index)
    if "remaining_area_mu" in sites.columns:
        left = left.where(kind == "factory", pd.to_numeric(sites["remaining_area_mu"], errors="coerce"))
    if "vacant_area_m2" in sites.columns:
        left = left.where(kind != "factory", pd.to_numeric(sites["vacant_area_m2"], errors="coerce"))
    return keep & ~(left <= 0)


def public_sites(sites: GeoDataFrame) -> GeoDataFrame:
    """Sites still on offer (:func:`on_offer`), with only the allow-listed columns (and the geometry)."""
    keep = on_offer(sites)
    cols = [c for c in sites.columns if c in PUBLIC_SITE_FIELDS]
    return GeoDataFrame(sites.loc[keep, cols], geometry=sites.geometry[keep], crs=sites.crs)


def public_projects(projects: GeoDataFrame) -> GeoDataFrame:
    """The projects ``events.disclosure.is_public_project`` allows (the ``public`` column of
    ``warehouse.land.project_locations``; a frame without it shows none), allow-listed columns only.

    The stage and confidential flag are checked again (defence in depth), and ``investor`` is
    blanked unless the project reached a signed stage.
    """
    if "public" not in projects.columns:
        return GeoDataFrame({"stage": []}, geometry=[], crs=projects.crs)
    conf = projects["confidential"].fillna(True).astype(bool) if "confidential" in projects else False
    keep = projects["public"].fillna(False).astype(bool) & projects["stage"].isin(SIGNED_STAGES) & ~conf
    out = projects.loc[keep, [c for c in projects.columns if c in PUBLIC_PROJECT_FIELDS]].copy()
    if "investor" in out.columns:
        out["investor"] = out["investor"].where(projects.loc[keep, "stage"].isin(SIGNED_STAGES), None)
    return GeoDataFrame(out, geometry=projects.geometry[keep], crs=projects.crs)


def _site_style(lang: str, internal: bool) -> dict[str, Any]:
    values: dict[str, dict[str, Any]] = {
        code: {"color": "#5b3a12", "fillColor": c} for code, c in LAND_USE_COLOR.items()
    }
    values["factory"] = {"color": "#27306b", "fillColor": FACTORY_COLOR}
    style: dict[str, Any] = {
        "by": "style_key",
        "values": values,
        "fallback": {"color": "#5b3a12", "fillColor": "#c8a064"},
        "base": {"weight": 1, "opacity": 0.9, "fillOpacity": 0.72},
    }
    if internal:
        style["flag"] = {"col": "taken", "style": {"fillColor": TAKEN_COLOR, "color": "#6b6b6b", "fillOpacity": 0.45, "dashArray": "3 3"}}
    return style


def _legend_sites(lang: str, internal: bool) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"shape": "fill", "color": "#5b3a12", "fill": LAND_USE_COLOR[c], "label": t(lang, *LAND_USE[c])} for c in LAND_USE_COLOR
    ]
    items.append({"shape": "fill", "color": "#27306b", "fill": FACTORY_COLOR, "label": t(lang, "标准厂房（有空置）", "Standard factory (vacant space)")})
    if internal:
        items.append({"shape": "fill", "color": "#6b6b6b", "fill": TAKEN_COLOR, "dash": True, "label": " / ".join(t(lang, *SITE_STATUS[s]) for s in ("taken", "in_production"))})
    return {"title": t(lang, "可供土地与厂房", "Land and factories on offer"), "items": items}


def site_layer(
    sites: GeoDataFrame, *, lang: str, internal: bool, basemap: str, precision: int, simplify_tolerance_m: float,
    origin: tuple[int, int], layer_id: str = "sites", title: str | None = None,
) -> dict[str, Any]:
    """The runtime layer of site polygons: encoded geometry, allow-listed columns, style keys."""
    geoms = prepare(sites.geometry, basemap=basemap, simplify_tolerance_m=simplify_tolerance_m)
    fields = SITE_FIELDS + (INTERNAL_SITE_FIELDS if internal else ())
    props: dict[str, list[Any]] = {f.col: column_values(sites, f.col, decimals=f.decimals if f.type == "num" else None) for f in fields}
    props["name"] = column_values(sites, "name")
    kind = sites["kind"].astype(str).to_numpy() if "kind" in sites else np.full(len(sites), "idle")
    land_use = sites["land_use"].astype(str).to_numpy() if "land_use" in sites else np.full(len(sites), "")
    props["style_key"] = np.where(kind == "factory", "factory", land_use).tolist()
    if internal:
        status = sites["status"].astype(str) if "status" in sites else pd.Series("available", index=sites.index)
        props["taken"] = (~status.isin(ON_OFFER)).astype(int).tolist()
    # Empty columns cost bytes and nothing else: drop them.
    props = {k: v for k, v in props.items() if any(x is not None and x != [] for x in v) or k in ("name", "style_key")}
    return {
        "id": layer_id,
        "title": title or t(lang, "可供土地与厂房", "Land and factories on offer"),
        "type": "polygon",
        "origin": list(origin),
        "geoms": encode_sites(geoms, origin, precision),
        "props": props,
        "fields": [f.spec(lang) for f in fields if f.col in props],
        "titleCol": "name",
        "tipCol": "name",
        "idCol": "site_id",
        "popup": True,
        "search": True,
        "style": _site_style(lang, internal),
    }


def render_promotion_map(
    sites: GeoDataFrame,
    parks: GeoDataFrame | None = None,
    pois: GeoDataFrame | None = None,
    *,
    projects: GeoDataFrame | None = None,
    profile: str = "public",
    basemap: str = "none",
    tianditu_key: str | None = None,
    lang: str = "zh",
    title: str | None = None,
    subtitle: str | None = None,
    precision: int = DEFAULT_PRECISION,
    simplify_tolerance_m: float = DEFAULT_SIMPLIFY_M,
) -> str:
    """The promotion map as one self-contained HTML page.

    ``sites``/``parks``/``pois``/``projects``: GeoDataFrames in EPSG:4490 (CGCS2000 degrees).
    ``precision``: decimals of a degree kept (5 ≈ 1 m); ``simplify_tolerance_m``: metres.
    The page sets ``document.body.dataset.features`` to the number of features it drew.
    """
    if profile not in ("public", "internal"):
        raise ValueError(f"profile must be public or internal, got {profile!r}")
    internal = profile == "internal"
    shown_sites = sites if internal else public_sites(sites)
    shown_projects = None
    if projects is not None and len(projects):
        shown_projects = projects if internal else public_projects(projects)
        shown_projects = shown_projects[shown_projects.geometry.notna() & ~shown_projects.geometry.is_empty]
        if not internal:
            shown_projects = shown_projects[shown_projects["stage"] != "cancelled"]
    parks = parks if parks is not None else GeoDataFrame({"park": []}, geometry=[], crs="EPSG:4490")
    pois = pois if pois is not None else GeoDataFrame({"name": [], "kind": []}, geometry=[], crs="EPSG:4490")

    frames = [prepare(f.geometry, basemap=basemap) for f in (shown_sites, parks, pois) if len(f)]
    bounds = bounds_of(frames)
    origin = origin_of([bounds[0][1], bounds[0][0]] if bounds else [105.0, 35.0], precision)

    layers: list[dict[str, Any]] = []
    legend: list[dict[str, Any]] = []
    if len(parks):
        layer = park_layer(parks, origin, precision, basemap=basemap, lang=lang, simplify_tolerance_m=simplify_tolerance_m)
        # On the promotion map the parks are the subject: a heavier, lightly filled outline, not searchable.
        layer["search"] = False
        layer["style"]["base"].update({"weight": 2.5, "fill": True, "fillColor": PARK_COLOR, "fillOpacity": 0.04})
        layers.append(layer)
        # Park names as permanent labels at a point inside each park.
        label_pts = prepare(parks.geometry.representative_point(), basemap=basemap)
        layers.append(
            {
                "id": "park_labels",
                "title": t(lang, "园区名称", "Park names"),
                "type": "point",
                "origin": list(origin),
                "geoms": encode_points(label_pts, origin, precision),
                "props": {"park": column_values(parks, "park")},
                "fields": [],
                "titleCol": "park",
                "tipCol": "park",
                "labelCol": "park",
                "popup": False,
                "search": False,
                "style": {"base": {"radius": 0, "stroke": False, "fill": False, "interactive": False}},
                "uncounted": True,
            }
        )
        legend.append({"title": t(lang, "园区", "Parks"), "items": [{"shape": "line", "color": PARK_COLOR, "dash": True, "label": t(lang, "园区范围", "Park boundary")}]})

    layers.append(
        site_layer(shown_sites, lang=lang, internal=internal, basemap=basemap, precision=precision, simplify_tolerance_m=simplify_tolerance_m, origin=origin)
    )
    legend.insert(0, _legend_sites(lang, internal))

    if len(pois):
        # Known kinds get their name and badge; a kind a file brought in is shown as it came,
        # with its first letter on a grey badge.
        raw_kinds = [str(x) for x in pois["kind"].fillna("").tolist()]
        labels = [t(lang, *POI_KIND[k]) if k in POI_KIND else k for k in raw_kinds]
        glyphs = [
            (POI_BADGE[k][1] if lang == "en" else POI_BADGE[k][0]) if k in POI_BADGE else (k[:1].upper() or "•") for k in raw_kinds
        ]
        colors = {lab: POI_BADGE[k][2] if k in POI_BADGE else POI_BADGE_OTHER for k, lab in zip(raw_kinds, labels, strict=True)}
        layers.append(
            {
                "id": "pois",
                "title": t(lang, "周边配套", "Points of interest"),
                "type": "badge",
                "origin": list(origin),
                "geoms": encode_points(prepare(pois.geometry, basemap=basemap), origin, precision),
                "props": {"name": column_values(pois, "name"), "kind": labels, "glyph": glyphs},
                "fields": [{"col": "kind", "label": t(lang, "类别", "Kind"), "type": "text"}],
                "titleCol": "name",
                "tipCol": "name",
                "glyphCol": "glyph",
                "popup": True,
                "search": True,
                "style": {"by": "kind", "values": {lab: {"fillColor": c} for lab, c in colors.items()}, "base": {}},
            }
        )
        seen: dict[str, str] = dict(zip(labels, glyphs, strict=True))
        legend.append(
            {
                "title": t(lang, "周边配套", "Points of interest"),
                "items": [{"shape": "badge", "fill": colors[lab], "glyph": g, "label": lab or "—"} for lab, g in seen.items()],
            }
        )

    if shown_projects is not None and len(shown_projects):
        fields = PROJECT_FIELDS + (INTERNAL_PROJECT_FIELDS if internal else ())
        props = {f.col: column_values(shown_projects, f.col, decimals=0 if f.type == "num" else None) for f in fields}
        props["name"] = column_values(shown_projects, "name")
        props = {k: v for k, v in props.items() if k in ("name", "stage") or any(x is not None for x in v)}
        layers.append(
            {
                "id": "projects",
                "title": t(lang, "签约项目", "Signed projects"),
                "type": "point",
                "origin": list(origin),
                "geoms": encode_points(prepare(shown_projects.geometry, basemap=basemap), origin, precision),
                "props": props,
                "fields": [f.spec(lang) for f in fields if f.col in props],
                "titleCol": "name",
                "tipCol": "name",
                "idCol": "project_id" if internal else None,
                "popup": True,
                "search": True,
                "style": {
                    "by": "stage",
                    "values": {s: {"fillColor": c} for s, c in STAGE_COLOR.items()},
                    "base": {"radius": 3.5, "color": "#ffffff", "weight": 0.8, "fillOpacity": 0.85},
                    **({"flag": {"col": "stalled", "style": {"color": STALLED_COLOR, "weight": 2}}} if "stalled" in props else {}),
                },
            }
        )
        stages = [s for s in ("none", "signed", "landed", "started", "produced", "cancelled") if s in set(shown_projects["stage"])]
        legend.append(
            {
                "title": t(lang, "签约项目", "Signed projects"),
                "items": [{"shape": "dot", "color": "#ffffff", "fill": STAGE_COLOR[s], "label": t(lang, *STAGE[s])} for s in stages]
                + ([{"shape": "ring", "color": STALLED_COLOR, "label": t(lang, "停滞", "Stalled")}] if "stalled" in props else []),
            }
        )

    n_land = int((shown_sites["kind"] == "idle").sum()) if "kind" in shown_sites else len(shown_sites)
    n_fac = len(shown_sites) - n_land
    page_title = title or t(lang, "招商推介地图", "Investment promotion map")
    sub = subtitle or t(lang, f"可供地块 {n_land} 宗 · 标准厂房 {n_fac} 栋", f"{n_land} parcels · {n_fac} factories on offer")
    spec = {
        "title": page_title,
        "subtitle": sub,
        "precision": precision,
        "layers": layers,
        "legend": legend,
        "bounds": bounds,
    }
    return build_page(spec, basemap=basemap, lang=lang, page_title=page_title, tianditu_key=tianditu_key)


def park_layer(
    parks: GeoDataFrame, origin: Any, precision: int, *, basemap: str, lang: str, simplify_tolerance_m: float = 2.0
) -> dict[str, Any]:
    """The dashed park outlines every page draws under its own layers (EPSG:4490 in, page coordinates out)."""
    return {
        "id": "parks",
        "title": t(lang, "园区范围", "Industrial parks"),
        "type": "polygon",
        "origin": list(origin),
        "geoms": encode_polygons(prepare(parks.geometry, basemap=basemap, simplify_tolerance_m=simplify_tolerance_m), origin, precision),
        "props": {"park": column_values(parks, "park")},
        "fields": [],
        "titleCol": "park",
        "tipCol": "park",
        "popup": False,
        "style": {"base": {"color": PARK_COLOR, "weight": 2, "dashArray": "8 5", "fillOpacity": 0.03, "interactive": False}},
    }
