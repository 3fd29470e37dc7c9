"""The pipeline map (项目推进地图, internal): projects by stage as of a date, replayed month by month.

Input is a *frames* table: ``warehouse.land.project_locations`` evaluated at each month end and
concatenated, with a ``month`` column (``YYYY-MM``). The page carries each project once (its
newest position and attributes) and one short string per month, one character per project:
``.`` absent, ``s``/``l``/``t``/``p``/``x`` for signed/landed/started/produced/cancelled, upper
case when stalled (停滞). A slider replays the months; the last month is shown on load.

Positions are CGCS2000 degrees (EPSG:4490), shifted to GCJ-02 on a Gaode basemap. This map is
internal: it shows investors and confidential projects (flagged), so ``publish_maps`` writes it
only for the internal profile.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from geopandas import GeoDataFrame

from maps.promotion import INTERNAL_PROJECT_FIELDS, LAND_USE_COLOR, PARK_COLOR, PROJECT_FIELDS, park_layer
from maps.render import (
    DEFAULT_PRECISION,
    STAGE,
    STAGE_COLOR,
    STALLED_COLOR,
    bounds_of,
    build_page,
    column_values,
    encode_points,
    encode_sites,
    origin_of,
    prepare,
    t,
)

STAGE_CODE: dict[str, str] = {"none": "n", "signed": "s", "landed": "l", "started": "t", "produced": "p", "cancelled": "x"}
CODE_STAGE: dict[str, str] = {v: k for k, v in STAGE_CODE.items()}


def encode_frames(frames: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """(one row per project: its newest row, months, one code string per month).

    Vectorised: a pivot of stage codes by (month, project) instead of a loop over frames.
    """
    if frames.empty:
        return frames.iloc[0:0], [], []
    f = frames.copy()
    f["month"] = f["month"].astype(str).str.slice(0, 7)
    months = sorted(f["month"].unique())
    latest = f.sort_values("month").drop_duplicates("project_id", keep="last").sort_values("project_id").reset_index(drop=True)
    order = {pid: i for i, pid in enumerate(latest["project_id"])}
    code = f["stage"].map(STAGE_CODE).fillna("n")
    stalled = f["stalled"].fillna(False).astype(bool) if "stalled" in f else pd.Series(False, index=f.index)
    f["code"] = code.where(~stalled, code.str.upper())
    grid = f.pivot_table(index="month", columns="project_id", values="code", aggfunc="last").reindex(index=months, columns=list(order))
    strings = grid.fillna(".").agg("".join, axis=1).tolist()
    return latest, months, strings


def render_pipeline_map(
    frames: GeoDataFrame,
    *,
    parks: GeoDataFrame | None = None,
    sites: GeoDataFrame | None = None,
    basemap: str = "none",
    tianditu_key: str | None = None,
    lang: str = "zh",
    title: str | None = None,
    subtitle: str | None = None,
    precision: int = DEFAULT_PRECISION,
) -> str:
    """The pipeline replay page. ``frames``: project locations per month end with a ``month``
    column (see module doc), EPSG:4490; ``sites``/``parks`` drawn faintly for orientation."""
    latest, months, codes = encode_frames(frames)
    latest = GeoDataFrame(latest, geometry="geometry", crs=frames.crs) if len(latest) else GeoDataFrame(latest, geometry=[], crs="EPSG:4490")
    geoms = prepare(latest.geometry, basemap=basemap)
    context = [prepare(g.geometry, basemap=basemap) for g in (parks, sites) if g is not None and len(g)]
    bounds = bounds_of([*context, geoms] if len(geoms) else context)
    origin = origin_of([bounds[0][1], bounds[0][0]] if bounds else [105.0, 35.0], precision)

    layers: list[dict[str, Any]] = []
    if parks is not None and len(parks):
        layers.append(park_layer(parks, origin, precision, basemap=basemap, lang=lang))
    if sites is not None and len(sites):
        layers.append(
            {
                "id": "sites",
                "title": t(lang, "地块与厂房", "Parcels and factories"),
                "type": "polygon",
                "origin": list(origin),
                "geoms": encode_sites(prepare(sites.geometry, basemap=basemap, simplify_tolerance_m=2.0), origin, precision),
                "props": {"name": column_values(sites, "name"), "site_id": column_values(sites, "site_id")},
                "fields": [],
                "titleCol": "name",
                "tipCol": "name",
                "idCol": "site_id",
                "popup": False,
                "style": {"base": {"color": "#8d7a5f", "weight": 0.8, "fillColor": LAND_USE_COLOR["100101"], "fillOpacity": 0.25}},
            }
        )
    fields = PROJECT_FIELDS + INTERNAL_PROJECT_FIELDS
    props = {f.col: column_values(latest, f.col, decimals=0 if f.type == "num" else None) for f in fields}
    props["name"] = column_values(latest, "name")
    # The runtime rewrites stage and stalled per month from the code strings.
    props["stage"] = [None] * len(latest)
    props["stalled"] = [False] * len(latest)
    layers.append(
        {
            "id": "projects",
            "title": t(lang, "项目", "Projects"),
            "type": "point",
            "origin": list(origin),
            "geoms": encode_points(geoms, origin, precision),
            "props": props,
            "fields": [f.spec(lang) for f in fields],
            "titleCol": "name",
            "tipCol": "name",
            "idCol": "project_id",
            "popup": True,
            "search": True,
            "style": {
                "by": "stage",
                "values": {s: {"fillColor": c} for s, c in STAGE_COLOR.items()},
                "base": {"radius": 6.5, "color": "#ffffff", "weight": 1.5, "fillOpacity": 0.92},
                "flag": {"col": "stalled", "style": {"color": STALLED_COLOR, "weight": 3.5, "radius": 7.5}},
            },
        }
    )
    legend = [
        {
            "title": t(lang, "项目阶段", "Project stage"),
            "items": [{"shape": "dot", "color": "#ffffff", "fill": STAGE_COLOR[s], "label": t(lang, *STAGE[s])} for s in ("signed", "landed", "started", "produced", "cancelled")]
            + [{"shape": "ring", "color": STALLED_COLOR, "label": t(lang, "停滞（6个月无进展）", "Stalled (no progress for 6 months)")}],
        }
    ]
    if parks is not None and len(parks):
        legend.append({"title": t(lang, "园区", "Parks"), "items": [{"shape": "line", "color": PARK_COLOR, "dash": True, "label": t(lang, "园区范围", "Park boundary")}]})
    page_title = title or t(lang, "招商项目推进地图（内部）", "Project pipeline map (internal)")
    last = months[-1] if months else ""
    sub = subtitle or t(lang, f"截至 {last} · 拖动时间轴回放各月进展", f"As of {last} · drag the slider to replay month by month")
    spec: dict[str, Any] = {
        "title": page_title,
        "subtitle": sub,
        "precision": precision,
        "layers": layers,
        "legend": legend,
        "bounds": bounds,
    }
    if months:
        spec["timeline"] = {
            "layer": "projects",
            "months": months,
            "frames": codes,
            "codes": CODE_STAGE,
            "order": [STAGE_CODE[s] for s in ("signed", "landed", "started", "produced", "cancelled")],
            "labels": {STAGE_CODE[s]: t(lang, *STAGE[s]) for s in STAGE_CODE},
        }
        spec["text"] = {"stalled": t(lang, "停滞", "stalled")}
    return build_page(spec, basemap=basemap, lang=lang, page_title=page_title, tianditu_key=tianditu_key)
