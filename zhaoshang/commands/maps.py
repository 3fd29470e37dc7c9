"""``zhaoshang maps publish``: the promotion, pipeline and match maps as self-contained pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from events.choices import Lang
from maps.vocabulary import Basemap, Profile
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
from zhaoshang.settings import load_settings


def maps_publish(
    out: Annotated[Path, typer.Option("--out", help="Directory for the pages, PNGs and index.html.")],
    profile: Annotated[Profile, typer.Option("--profile", help="public: sites on offer, public fields only; internal: all, plus the pipeline map.")] = Profile.PUBLIC,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of the land and pipeline state (default: today, Asia/Shanghai).")] = None,
    basemap: Annotated[Basemap, typer.Option("--basemap", help="none works offline; tianditu needs TIANDITU_KEY; gaode shifts the overlay to GCJ-02.")] = Basemap.NONE,
    lang: Annotated[Lang, typer.Option("--lang", help="The language of labels, popups and legend.")] = Lang.ZH,
    png: Annotated[bool, typer.Option("--png", help="Also a print-ready PNG of each map (headless Chromium).")] = False,
    requirement: Annotated[list[Path] | None, typer.Option("--requirement", help="Investor requirement JSON (repeatable): adds a match map each.")] = None,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """发布地图 · write the maps for a promotion event (self-contained HTML, optional PNG) and an index page."""
    from maps.publish import publish_maps
    from maps.vendor import VendorError

    day = parse_date_or_today(as_of, "--as-of")
    requirements = []
    for path in requirement or []:
        try:
            requirements.append(json.loads(read_text_input(path, "--requirement")))
        except json.JSONDecodeError as exc:
            fail(f"--requirement {path} is not JSON: {exc}")
    output_dir(out, "--out")
    engine = engine_of(database_url)
    settings = load_settings()
    try:
        written = publish_maps(
            engine, out, profile=profile, as_of=day, basemap=basemap, tianditu_key=settings.tianditu_key, lang=lang, png=png, chromium=settings.chromium,
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
