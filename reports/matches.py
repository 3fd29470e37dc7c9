"""Matching requirement files: read each, match it against the land as of a date, write the
result JSON (and the match map), and say per file what happened."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from land.matching import RequirementError, SiteIndex, match, parse_requirement, prepare_sites

RESULT_SUFFIX = ".match.json"
MAP_SUFFIX = ".match.html"


class MatchFileError(ValueError):
    """A requirement file that cannot be read or matched; the message names the file and the field."""


def read_requirement(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` (UTF-8, a BOM allowed), checked with ``parse_requirement``."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))  # parse_requirement checks it is an object
    except OSError as exc:
        raise MatchFileError(f"{path}: 无法读取 cannot read: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise MatchFileError(f"{path}: 不是 UTF-8 文本 not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise MatchFileError(f"{path}: 不是有效的 JSON not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    try:
        parse_requirement(data)
    except RequirementError as exc:
        raise MatchFileError(f"{path}: {exc}") from exc
    return data


def load_sites(engine: Engine, as_of: date, known_at: datetime | None = None) -> tuple[Any, SiteIndex]:
    """The land status frame (EPSG:4490) as of ``as_of`` (known at ``known_at``) and its prepared arrays."""
    from events.store import Horizon
    from warehouse.land import land_status

    with engine.connect() as conn:
        sites = land_status(conn, Horizon(as_of, known_at))
    return sites, prepare_sites(sites)


def stamp(result: dict[str, Any], as_of: date, known_at: datetime | None) -> dict[str, Any]:
    result["as_of"] = as_of.isoformat()
    result["known_at"] = known_at.isoformat() if known_at else None
    return result


def write_map(
    result: dict[str, Any], sites: Any, path: Path, *, lang: str = "zh", basemap: str = "none", tianditu_key: str | None = None
) -> bool:
    """The match map (``maps.match_map``) as a self-contained HTML page; False when that renderer is absent."""
    try:
        from maps.match_map import render_match_map
    except ImportError:
        return False
    page = render_match_map(result, sites, lang=lang, basemap=basemap, tianditu_key=tianditu_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return True


def match_files(
    engine: Engine,
    files: list[Path],
    *,
    out_dir: Path | None = None,
    as_of: date,
    known_at: datetime | None = None,
    top: int = 10,
    maps: bool = False,
    lang: str = "zh",
    basemap: str = "none",
    tianditu_key: str | None = None,
) -> list[dict[str, Any]]:
    """Match every requirement file and write ``NAME.match.json`` (and ``NAME.match.html`` with ``maps``).

    Results go to ``out_dir`` (default: beside each file). The land status is read once, as of
    ``as_of``. Returns one summary per file: ``file``,
    ``output``, ``map``, ``investor``, ``matched``, ``results``, ``top_site``, ``error`` (a file
    with a bad requirement is reported and skipped, the others are still matched).
    """
    day = as_of
    sites, index = load_sites(engine, day, known_at)
    summaries: list[dict[str, Any]] = []
    for path in files:
        target_dir = out_dir if out_dir is not None else path.parent
        stem = path.name.removesuffix(".json")
        summary: dict[str, Any] = {"file": str(path), "output": None, "map": None, "error": None}
        try:
            result = stamp(match(read_requirement(path), index, top=top), day, known_at)
        except MatchFileError as exc:
            summaries.append({**summary, "error": str(exc)})
            continue
        target_dir.mkdir(parents=True, exist_ok=True)
        output = target_dir / f"{stem}{RESULT_SUFFIX}"
        output.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
        summary["output"] = str(output)
        if maps and write_map(result, sites, target_dir / f"{stem}{MAP_SUFFIX}", lang=lang, basemap=basemap, tianditu_key=tianditu_key):
            summary["map"] = str(target_dir / f"{stem}{MAP_SUFFIX}")
        summary.update(
            investor=result["investor"],
            kind=result["kind"],
            matched=result["matched"],
            results=len(result["results"]),
            top_site=result["results"][0]["site_id"] if result["results"] else None,
        )
        summaries.append(summary)
    return summaries
