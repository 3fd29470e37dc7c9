"""``zhaoshang maps publish``: the promotion, pipeline and match maps as self-contained pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from zhaoshang.common import (
    DatabaseUrl,
    JsonFlag,
    console,
    emit_json,
    engine_of,
    fail,
    output_dir,
    parse_date_or_today,
    read_text_input,
    styled,
)
from zhaoshang.groups import maps_app


def maps_publish(
    out: Annotated[Path, typer.Option("--out", help="Directory for the pages, PNGs and index.html.")],
    profile: Annotated[str, typer.Option("--profile", help="public (sites on offer, public fields only) or internal (all, plus the pipeline map).")] = "public",
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of the land and pipeline state (default: today, Asia/Shanghai).")] = None,
    basemap: Annotated[str, typer.Option("--basemap", help="none (works offline), osm, tianditu (key in TIANDITU_KEY) or gaode (overlay shifted to GCJ-02).")] = "none",
    lang: Annotated[str, typer.Option("--lang", help="zh, en or both: labels, popups and legend.")] = "zh",
    png: Annotated[bool, typer.Option("--png", help="Also a print-ready PNG of each map (headless Chromium).")] = False,
    requirement: Annotated[list[Path] | None, typer.Option("--requirement", help="Investor requirement JSON (repeatable): adds a match map each.")] = None,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """发布地图 · write the maps for a promotion event (self-contained HTML, optional PNG) and an index page."""
    from maps.publish import publish_maps
    from maps.render import BASEMAPS, LANGS, PROFILES
    from maps.vendor import VendorError

    for name, value, allowed in (("--profile", profile, PROFILES), ("--basemap", basemap, BASEMAPS), ("--lang", lang, LANGS)):
        if value not in allowed:
            fail(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    day = parse_date_or_today(as_of, "--as-of")
    requirements = []
    for path in requirement or []:
        try:
            requirements.append(json.loads(read_text_input(path, "--requirement")))
        except json.JSONDecodeError as exc:
            fail(f"--requirement {path} is not JSON: {exc}")
    output_dir(out, "--out")
    engine = engine_of(database_url)
    try:
        written = publish_maps(
            engine, out, profile=profile, as_of=day, basemap=basemap, lang=lang, png=png,
            requirements=requirements, say=lambda m: console.print(m, style="dim"),
        )
    except (ValueError, VendorError) as exc:
        fail(str(exc))
    if json_out:
        emit_json(written)
        return
    console.print(styled(("✓", "green"), f" 地图已发布 maps written ({profile}, basemap {basemap}):"))
    for name, where in written.items():
        console.print(f"  {name}: {Path(where).resolve()}")


def register(app: typer.Typer) -> None:
    maps_app.command("publish")(maps_publish)
