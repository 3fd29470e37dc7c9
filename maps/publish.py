"""Publishing the maps for a promotion event: the pages, optional print PNGs and an index page.

``publish_maps`` reads the land inventory and the project pipeline from the warehouse at a
horizon (``as_of``, default today in Asia/Shanghai) and writes:

- ``promotion.html``: the promotion map (public: sites on offer, allow-listed fields only);
- ``pipeline.html``: the pipeline replay, internal profile only;
- ``match-N.html``: one per match result passed in (``land.matching.match`` output);
- ``index.html``: links to the pages (and thumbnails when ``png``).

The public profile goes through ``events.disclosure``: projects only when
``is_public_project`` (so never a confidential one), match pages as ``public_match`` gives
them (no investor name, no project named in a reason) and titled without the investor.

Every page is self-contained (Leaflet and our runtime inlined); with ``basemap="none"`` it needs
no network at all.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import Engine

from events.calendar import month_ends
from events.choices import Lang, member
from events.projection import fold
from land.matching import public_match
from maps.match_map import render_match_map
from maps.pipeline import render_pipeline_map
from maps.promotion import on_offer, render_promotion_map
from maps.render import t
from maps.vocabulary import Basemap, Profile

log = logging.getLogger(__name__)

Say = Callable[[str], None]


def pipeline_frames(conn: Any, as_of: date, *, first: date | None = None) -> gpd.GeoDataFrame:
    """``warehouse.land.project_locations`` at every month end up to ``as_of``, with a ``month`` column.

    The events are read once (as the replay at ``as_of`` sees them) and folded per month end:
    the same events a replay at that month end would see, since retractions apply whatever
    their date and the rest are cut by business time.
    """
    from events.store import Horizon
    from warehouse.land import project_locations
    from warehouse.replay import load_events

    events = load_events(conn, Horizon(as_of))
    dated = [e for e in events if e.type.value != "retracted"]
    if not dated:
        return gpd.GeoDataFrame({"month": [], "project_id": []}, geometry=[], crs="EPSG:4490")
    start = first or min(e.occurred_at for e in dated).date()
    frames = []
    for day in month_ends(start, as_of):
        month_end = Horizon(day)
        states = fold(e for e in events if month_end.sees(e))
        if not states:
            continue
        loc = project_locations(conn, month_end, states=states)
        loc.insert(0, "month", day.strftime("%Y-%m"))
        frames.append(loc)
    if not frames:
        return gpd.GeoDataFrame({"month": [], "project_id": []}, geometry=[], crs="EPSG:4490")
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)


def park_views(park_frame: gpd.GeoDataFrame, *, basemap: str, size: tuple[int, int] = (1600, 1000)) -> list[tuple[str, tuple[int, float, float]]]:
    """(park name, (zoom, lat, lon)) framing each park in a ``size`` CSS-pixel window (Web Mercator).

    The centre is moved to GCJ-02 on a Gaode basemap, as the page's overlay is.
    """
    import math

    from maps.gcj02 import wgs84_to_gcj02

    out: list[tuple[str, tuple[int, float, float]]] = []
    for name, geom in zip(park_frame["park"], park_frame.geometry, strict=True):
        if geom is None or geom.is_empty:
            continue
        x0, y0, x1, y1 = geom.bounds
        lon, lat = (x0 + x1) / 2, (y0 + y1) / 2
        if basemap == "gaode":
            glon, glat = wgs84_to_gcj02([lon], [lat])
            lon, lat = float(glon[0]), float(glat[0])

        def merc(y: float) -> float:
            return math.log(math.tan(math.pi / 4 + math.radians(y) / 2))

        # Pixels per world at zoom z are 256·2^z; leave a 25% margin for the legend and title.
        span_x = max((x1 - x0) / 360.0, 1e-9)
        span_y = max((merc(y1) - merc(y0)) / (2 * math.pi), 1e-9)
        z = math.floor(math.log2(min(size[0] * 0.75 / (256 * span_x), size[1] * 0.75 / (256 * span_y))))
        out.append((str(name), (max(3, min(18, z)), lat, lon)))
    return out


def _index_page(entries: list[dict[str, Any]], *, lang: str, profile: str, as_of: date, prints: Sequence[tuple[str, str]] = ()) -> str:
    title = t(lang, "招商推介地图", "Investment promotion maps")
    items = []
    for e in entries:
        thumb = f'<img src="{html.escape(e["png"])}" alt="">' if e.get("png") else ""
        items.append(
            f'<li><a href="{html.escape(e["html"])}">{thumb}<span>{html.escape(e["title"])}</span></a></li>'
        )
    for park, png_name in prints:
        items.append(f'<li><a href="{html.escape(png_name)}"><img src="{html.escape(png_name)}" alt=""><span>{html.escape(park)}</span></a></li>')
    prof = t(lang, "公开版", "public") if profile == "public" else t(lang, "内部版（请勿外传）", "internal (do not distribute)")
    return f"""<!DOCTYPE html>
<html lang="{"en" if lang == "en" else "zh-CN"}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 40px; color: #17324d; background: #f5f7fa; }}
h1 {{ margin: 0 0 4px; }} p {{ color: #5a6b7b; margin: 0 0 24px; }}
ul {{ list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 20px; }}
li a {{ display: block; background: #fff; border-radius: 8px; box-shadow: 0 1px 6px rgba(0,0,0,.15); padding: 12px; width: 360px;
  text-decoration: none; color: #17324d; font-weight: 600; }}
li img {{ width: 100%; border-radius: 4px; display: block; margin-bottom: 8px; }}
</style></head>
<body><h1>{html.escape(title)}</h1><p>{html.escape(t(lang, f"数据截至 {as_of.isoformat()}", f"Data as of {as_of.isoformat()}"))} · {html.escape(prof)}</p>
<ul>{"".join(items)}</ul></body></html>
"""


def publish_maps(
    engine: Engine,
    out_dir: str | Path,
    *,
    profile: str = "public",
    as_of: date,
    basemap: str = "none",
    tianditu_key: str | None = None,
    lang: str = "zh",
    png: bool = False,
    chromium: str | None = None,
    match_results: Sequence[dict[str, Any]] = (),
    requirements: Sequence[dict[str, Any]] = (),
    say: Say | None = None,
) -> dict[str, str]:
    """Write the maps for ``profile`` at ``as_of`` into ``out_dir``; returns ``{name: path}``.

    ``basemap``: none | osm | tianditu (with ``tianditu_key``) | gaode (overlay shifted to
    GCJ-02). ``png``: also a print-ready PNG of each page through headless Chromium (offline for
    ``basemap="none"``; ``chromium``: the browser to use, default one on PATH). ``match_results``: ``land.matching.match`` outputs to map, one page each;
    ``requirements``: investor requirements (DOMAIN.md) matched here against the same sites.
    """
    from events.store import Horizon
    from warehouse.land import land_status, parks, pois, project_locations
    from warehouse.replay import project_states

    profile = member(Profile, profile, "profile")
    basemap = member(Basemap, basemap, "basemap")
    lang = member(Lang, lang, "lang")
    note = say or (lambda _m: None)
    day = as_of
    horizon = Horizon(day)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    entries: list[dict[str, Any]] = []

    with engine.connect() as conn:
        states = project_states(conn, horizon)
        sites = land_status(conn, horizon, states=states)
        park_frame = parks(conn, day)
        poi_frame = pois(conn, day)
        projects = project_locations(conn, horizon, states=states)
        frames = pipeline_frames(conn, day) if profile == "internal" else None

    def write(name: str, title: str, page: str) -> None:
        path = out / f"{name}.html"
        path.write_text(page, encoding="utf-8")
        written[name] = str(path)
        entries.append({"name": name, "title": title, "html": path.name})
        note(f"{path} ({len(page.encode()) / 1e6:.2f} MB)")
        log.info("map %s written: %s", name, path, extra={"profile": profile, "as_of": str(day), "bytes": len(page.encode())})

    n_on_offer = int(on_offer(sites).sum()) if len(sites) else 0
    promo_title = t(lang, "招商推介地图", "Investment promotion map")
    promo_sub = t(lang, f"可供土地与厂房 {n_on_offer} 处 · 数据截至 {day.isoformat()}", f"{n_on_offer} sites on offer · as of {day.isoformat()}")
    write(
        "promotion",
        promo_title,
        render_promotion_map(sites, park_frame, poi_frame, projects=projects, profile=profile, basemap=basemap, tianditu_key=tianditu_key, lang=lang, title=promo_title, subtitle=promo_sub),
    )
    if frames is not None:
        pipe_title = t(lang, "招商项目推进地图（内部）", "Project pipeline map (internal)")
        write("pipeline", pipe_title, render_pipeline_map(frames, parks=park_frame, sites=sites, basemap=basemap, tianditu_key=tianditu_key, lang=lang, title=pipe_title))
    if requirements:
        from land.matching import match_many

        match_results = [*match_results, *match_many(requirements, sites)]
    for i, result in enumerate(match_results, start=1):
        result = {**result, "as_of": result.get("as_of") or day.isoformat()}
        if profile == "public":
            result = public_match(result)
            title = t(lang, f"选址推荐 {i}", f"Site recommendations {i}")
        else:
            investor = str(result.get("investor") or "")
            title = t(lang, f"选址推荐：{investor}", f"Site recommendations: {investor}")
        write(f"match-{i}", title, render_match_map(result, sites, parks=park_frame, basemap=basemap, tianditu_key=tianditu_key, lang=lang, title=title))

    prints: list[tuple[str, str]] = []
    if png:
        from maps.browser import screenshot

        for e in entries:
            shot = screenshot(out / e["html"], out / f"{e['name']}.png", offline=basemap == "none", chromium=chromium)
            written[f"{e['name']}.png"] = str(shot)
            e["png"] = shot.name
            note(f"{shot}")
        # One print picture per park: at county scale parcels are specks.
        for i, (park, view) in enumerate(park_views(park_frame, basemap=basemap), start=1):
            shot = screenshot(out / "promotion.html", out / f"promotion-park-{i}.png", offline=basemap == "none", view=view, chromium=chromium)
            written[f"promotion-park-{i}.png"] = str(shot)
            prints.append((t(lang, f"打印图：{park}", f"Print: {park}"), shot.name))
            note(f"{shot} ({park})")
    index = out / "index.html"
    index.write_text(_index_page(entries, lang=lang, profile=profile, as_of=day, prints=prints), encoding="utf-8")
    written["index"] = str(index)
    return written
