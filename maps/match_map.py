"""The match map (选址匹配地图): for one investor requirement, the ranked sites numbered, with reasons.

``match_result`` is what ``land.matching.match`` returns (``results`` with ``rank``, ``site_id``,
``kind``, ``name``, ``park``, ``score``, ``lon``, ``lat`` and ``criteria``; ``closest_misses`` with
the failed criteria). ``sites`` is the land status frame (EPSG:4490) the match ran on: the
matched sites' outlines are drawn from it. Positions are CGCS2000 degrees, shifted to GCJ-02 on a
Gaode basemap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from geopandas import GeoDataFrame, points_from_xy

from land.vocabulary import CRITERION_LABELS
from maps.promotion import park_layer
from maps.render import (
    DEFAULT_PRECISION,
    KIND,
    bounds_of,
    build_page,
    encode_points,
    encode_sites,
    origin_of,
    prepare,
    t,
)

RANK_COLORS = ("#c62828", "#ef6c00", "#f9a825")  # gold-red for the top three, then blue
RANK_COLOR_REST = "#1565c0"
MISS_COLOR = "#8a8a8a"


CRITERION = CRITERION_LABELS


def _criterion(lang: str, key: Any) -> str:
    k = str(key or "")
    return t(lang, *CRITERION[k]) if k in CRITERION else k


def _failed(lang: str, failed: Any) -> str:
    """The failed constraint of a miss: one key (as ``land.matching`` gives it) or a list of keys."""
    keys = [failed] if isinstance(failed, str) else list(failed or [])
    return ", ".join(_criterion(lang, k) for k in keys)


def _reason(lang: str, zh: Any, en: Any) -> str:
    return t(lang, str(zh or ""), str(en or ""))


def _criteria_table(lang: str, criteria: list[dict[str, Any]]) -> dict[str, Any]:
    head = [t(lang, "条件", "Criterion"), t(lang, "得分", "Score"), t(lang, "权重", "Weight"), t(lang, "说明", "Reason")]
    rows = []
    for c in criteria:
        score = c.get("score")
        weight = c.get("weight")
        rows.append(
            [
                _criterion(lang, c.get("criterion")),
                f"{float(score):.2f}" if isinstance(score, int | float) else "",
                f"{float(weight):.2f}" if isinstance(weight, int | float) else "",
                _reason(lang, c.get("reason_zh"), c.get("reason_en")),
            ]
        )
    return {"head": head, "rows": rows}


def _points(rows: list[dict[str, Any]]) -> GeoDataFrame:
    lon = np.array([r.get("lon") if r.get("lon") is not None else np.nan for r in rows], dtype=float)
    lat = np.array([r.get("lat") if r.get("lat") is not None else np.nan for r in rows], dtype=float)
    geom = points_from_xy(lon, lat, crs="EPSG:4490")
    gdf = GeoDataFrame({"i": np.arange(len(rows))}, geometry=geom, crs="EPSG:4490")
    gdf.loc[np.isnan(lon) | np.isnan(lat), "geometry"] = None
    return gdf


def render_match_map(
    match_result: dict[str, Any],
    sites: GeoDataFrame | None = None,
    *,
    basemap: str = "none",
    tianditu_key: str | None = None,
    lang: str = "zh",
    parks: GeoDataFrame | None = None,
    title: str | None = None,
    precision: int = DEFAULT_PRECISION,
) -> str:
    """The ranked sites of one match as a self-contained page (numbered markers, outlines, reasons)."""
    results = list(match_result.get("results") or [])
    misses = list(match_result.get("closest_misses") or [])
    investor = str(match_result.get("investor") or "")
    res_pts = prepare(_points(results).geometry, basemap=basemap)
    miss_pts = prepare(_points(misses).geometry, basemap=basemap)

    outline = None
    if sites is not None and len(sites) and results:
        wanted = {(str(r.get("kind")), str(r.get("site_id"))) for r in results}
        keys = list(zip(sites["kind"].astype(str), sites["site_id"].astype(str), strict=True))
        mask = np.array([k in wanted for k in keys], dtype=bool)
        outline = sites.loc[mask]
    context = [g for g in (res_pts, miss_pts) if g.notna().any()]
    if outline is not None and len(outline):
        context.append(prepare(outline.geometry, basemap=basemap))
    bounds = bounds_of([c[c.notna()] for c in context])
    origin = origin_of([bounds[0][1], bounds[0][0]] if bounds else [105.0, 35.0], precision)

    layers: list[dict[str, Any]] = []
    legend_items: list[dict[str, Any]] = []
    if parks is not None and len(parks):

        layers.append(park_layer(parks, origin, precision, basemap=basemap, lang=lang))
    if outline is not None and len(outline):
        layers.append(
            {
                "id": "outlines",
                "title": t(lang, "推荐地块轮廓", "Recommended sites"),
                "type": "polygon",
                "origin": list(origin),
                "geoms": encode_sites(prepare(outline.geometry, basemap=basemap, simplify_tolerance_m=0.5), origin, precision),
                "props": {"name": [str(x) for x in outline["name"].tolist()], "site_id": [str(x) for x in outline["site_id"].tolist()]},
                "fields": [],
                "titleCol": "name",
                "tipCol": "name",
                "idCol": "site_id",
                "popup": False,
                "style": {"base": {"color": "#c62828", "weight": 2.5, "fillColor": "#ffcc80", "fillOpacity": 0.35}},
            }
        )
        legend_items.append({"shape": "fill", "color": "#c62828", "fill": "#ffcc80", "label": t(lang, "推荐地块轮廓", "Recommended site outline")})

    def fields() -> list[dict[str, Any]]:
        return [
            {"col": "rank_label", "label": t(lang, "排名", "Rank"), "type": "text"},
            {"col": "site_id", "label": t(lang, "编号", "ID"), "type": "text"},
            {"col": "kind", "label": t(lang, "类型", "Type"), "type": "text", "codes": {k: t(lang, *v) for k, v in KIND.items()}},
            {"col": "park", "label": t(lang, "园区", "Park"), "type": "text"},
            {"col": "score", "label": t(lang, "综合得分", "Score"), "type": "num", "decimals": 3},
            {"col": "failed", "label": t(lang, "未满足", "Failed"), "type": "text"},
        ]

    if results:
        ranks = [int(r.get("rank", i + 1)) for i, r in enumerate(results)]
        layers.append(
            {
                "id": "results",
                "title": t(lang, "推荐选址（按排名）", "Ranked sites"),
                "type": "numbered",
                "origin": list(origin),
                "geoms": encode_points(res_pts, origin, precision),
                "props": {
                    "rank": ranks,
                    "rank_label": [f"No.{k}" for k in ranks],
                    "color": [RANK_COLORS[k - 1] if 1 <= k <= len(RANK_COLORS) else RANK_COLOR_REST for k in ranks],
                    "site_id": [str(r.get("site_id", "")) for r in results],
                    "kind": [str(r.get("kind", "")) for r in results],
                    "name": [str(r.get("name") or r.get("site_id") or "") for r in results],
                    "park": [str(r.get("park") or "") for r in results],
                    "score": [float(r["score"]) if isinstance(r.get("score"), int | float) else None for r in results],
                },
                "extra": [_criteria_table(lang, list(r.get("criteria") or [])) for r in results],
                "extraKind": "criteria",
                "numberCol": "rank",
                "fields": fields()[:5],
                "titleCol": "name",
                "tipCol": "name",
                "idCol": "site_id",
                "popup": True,
                "search": True,
                "style": {"by": "color", "values": {c: {"fillColor": c} for c in (*RANK_COLORS, RANK_COLOR_REST)}, "base": {}},
            }
        )
        legend_items[:0] = [
            {"shape": "dot", "color": "#fff", "fill": RANK_COLORS[0], "label": t(lang, "第1名", "Rank 1")},
            {"shape": "dot", "color": "#fff", "fill": RANK_COLORS[1], "label": t(lang, "第2名", "Rank 2")},
            {"shape": "dot", "color": "#fff", "fill": RANK_COLORS[2], "label": t(lang, "第3名", "Rank 3")},
            {"shape": "dot", "color": "#fff", "fill": RANK_COLOR_REST, "label": t(lang, "其他推荐", "Other ranked sites")},
        ]
    if misses:
        layers.append(
            {
                "id": "misses",
                "title": t(lang, "差一点的选址", "Closest misses"),
                "type": "point",
                "origin": list(origin),
                "geoms": encode_points(miss_pts, origin, precision),
                "props": {
                    "site_id": [str(m.get("site_id", "")) for m in misses],
                    "kind": [str(m.get("kind", "")) for m in misses],
                    "name": [str(m.get("name") or m.get("site_id") or "") for m in misses],
                    "park": [str(m.get("park") or "") for m in misses],
                    "failed": [_failed(lang, m.get("failed")) for m in misses],
                },
                "extra": [
                    {"head": [t(lang, "原因", "Why not")], "rows": [[_reason(lang, m.get("reason_zh"), m.get("reason_en"))]]} for m in misses
                ],
                "extraKind": "criteria",
                "fields": [f for f in fields() if f["col"] in ("site_id", "kind", "park", "failed")],
                "titleCol": "name",
                "tipCol": "name",
                "idCol": "site_id",
                "popup": True,
                "search": True,
                "style": {"base": {"radius": 6, "color": "#ffffff", "weight": 1.5, "fillColor": MISS_COLOR, "fillOpacity": 0.9}},
            }
        )
        legend_items.append({"shape": "dot", "color": "#fff", "fill": MISS_COLOR, "label": t(lang, "差一点（未满足条件）", "Closest miss (a criterion failed)")})

    page_title = title or t(lang, f"选址推荐：{investor}", f"Site recommendations: {investor}")
    as_of = match_result.get("as_of")
    sub = t(
        lang,
        f"符合条件 {len(results)} 处" + (f" · 截至 {as_of}" if as_of else ""),
        f"{len(results)} matching sites" + (f" · as of {as_of}" if as_of else ""),
    )
    panel_rows = [
        f"{r.get('name') or r.get('site_id')}（{r.get('park') or '—'}）"
        + (f" · {float(r['score']):.2f}" if isinstance(r.get("score"), int | float) else "")
        for r in results
    ]
    spec: dict[str, Any] = {
        "title": page_title,
        "subtitle": sub,
        "precision": precision,
        "layers": layers,
        "legend": [{"title": t(lang, "选址结果", "Match"), "items": legend_items}],
        "bounds": bounds,
    }
    if panel_rows:
        spec["panel"] = {"title": t(lang, "推荐排名", "Ranking"), "rows": panel_rows}
    return build_page(spec, basemap=basemap, lang=lang, page_title=page_title, tianditu_key=tianditu_key)
