"""``zhaoshang match``: the best parcels or factories for an investor's requirement, with reasons.

The matching itself is ``events.matching`` (pure); this module reads requirement files, takes the
land status frame from the warehouse as of a date, and writes tables, JSON and maps.
:func:`match_files` is the entry point for other callers (the demo, scripts).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Engine

from events.matching import RequirementError, SiteIndex, match, parse_requirement, prepare_sites
from zhaoshang.common import (
    DatabaseUrl,
    JsonFlag,
    console,
    emit_json,
    engine_of,
    fail,
    out,
    output_dir,
    output_file,
    parse_date_or_today,
    parse_known_at_option,
)

RESULT_SUFFIX = ".match.json"
MAP_SUFFIX = ".match.html"
KIND_ZH = {"idle": "闲置土地", "factory": "标准厂房"}
FAILED_ZH = {
    "status": "不可供应", "area": "面积", "land_use": "用地类型", "price": "价格", "near": "距离",
    "floor_load": "承重", "clear_height": "层高", "power": "供电", "floors": "层数",
}


class MatchFileError(ValueError):
    """A requirement file that cannot be read or matched; the message names the file and the field."""


def read_requirement(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` (UTF-8, a BOM allowed), checked with ``parse_requirement``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
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
    from warehouse.land import land_status
    from warehouse.replay import Horizon

    with engine.connect() as conn:
        sites = land_status(conn, Horizon(as_of, known_at))
    return sites, prepare_sites(sites)


def _stamp(result: dict[str, Any], as_of: date, known_at: datetime | None) -> dict[str, Any]:
    result["as_of"] = as_of.isoformat()
    result["known_at"] = known_at.isoformat() if known_at else None
    return result


def write_map(result: dict[str, Any], sites: Any, path: Path, *, lang: str = "zh", basemap: str = "none") -> bool:
    """The match map (``maps.match_map``) as a self-contained HTML page; False when that renderer is absent."""
    try:
        from maps.match_map import render_match_map
    except ImportError:
        return False
    page = render_match_map(result, sites, lang=lang, basemap=basemap)
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
            result = _stamp(match(read_requirement(path), index, top=top), day, known_at)
        except MatchFileError as exc:
            summaries.append({**summary, "error": str(exc)})
            continue
        target_dir.mkdir(parents=True, exist_ok=True)
        output = target_dir / f"{stem}{RESULT_SUFFIX}"
        output.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
        summary["output"] = str(output)
        if maps and write_map(result, sites, target_dir / f"{stem}{MAP_SUFFIX}", lang=lang, basemap=basemap):
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


def demo_requirements() -> dict[str, dict[str, Any]]:
    """Four investor requirements that fit the demo county (``ingestion.demo_district``), by file stem.

    Land for a new-materials firm near the 平坝 exit, class-3 land for fine chemicals near 天龙,
    factory space for electronics, logistics land near 高峰 with distance weighted up.
    """
    from ingestion.demo_district import POIS

    poi = {name: (lon, lat) for name, _kind, lon, lat in POIS}

    def near(name: str, max_km: float) -> dict[str, Any]:
        return {"name": name, "lon": poi[name][0], "lat": poi[name][1], "max_km": max_km}

    return {
        "新材料": {"investor": "某新材料科技有限公司", "industry": "新材料", "land_use": ["100102"],
                 "land_area_mu": {"min": 30, "max": 120}, "max_price_wan_per_mu": 30, "near": [near("沪昆高速平坝出口", 8)]},
        "精细化工": {"investor": "某精细化工企业", "industry": "精细化工", "land_area_mu": {"min": 20, "max": 200},
                  "near": [near("沪昆高速天龙出口", 10)]},
        "电子信息厂房": {"investor": "某电子信息企业", "industry": "电子信息",
                    "factory": {"floor_area_m2": {"min": 2000}, "floor_load_kn_m2": {"min": 8}, "clear_height_m": {"min": 5}},
                    "near": [near("沪昆高速平坝出口", 12)]},
        "冷链物流": {"investor": "某冷链物流企业", "industry": "物流", "land_area_mu": {"min": 20, "max": 100},
                  "max_price_wan_per_mu": 25, "near": [near("贵黄高速高峰互通", 6)], "weights": {"distance": 0.4}},
    }


def write_demo_requirements(folder: Path) -> list[Path]:
    """Write :func:`demo_requirements` as ``NAME.json`` into ``folder``; the paths, for :func:`match_files`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, req in demo_requirements().items():
        path = folder / f"{stem}.json"
        path.write_text(json.dumps(req, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def _reason(item: dict[str, Any], lang: str) -> str:
    if lang == "en":
        return str(item["reason_en"])
    if lang == "both":
        return f"{item['reason_zh']} / {item['reason_en']}"
    return str(item["reason_zh"])


def _mark(criterion: dict[str, Any]) -> str:
    """✓ for a hard constraint that holds, else score × weight."""
    if not criterion["weight"]:
        return "✓"
    return f"{criterion['score']:.2f}×{criterion['weight']:.2f}"


def _print_result(result: dict[str, Any], lang: str) -> None:
    head = f"选址匹配 site match · {result['investor']}"
    if result.get("industry"):
        head += f" · {result['industry']}"
    head += f" · {KIND_ZH.get(result['kind'], result['kind'])} {result['kind']} · 截至 as of {result['as_of']}"
    table = Table(title=head, show_lines=True)
    for col in ("排名\nrank", "编号\nsite", "名称\nname", "园区\npark", "得分\nscore", "理由\nreasons"):
        table.add_column(col, overflow="fold")
    for r in result["results"]:
        reasons = "\n".join(f"{_mark(c)} {_reason(c, lang)}" for c in r["criteria"])
        table.add_row(str(r["rank"]), r["site_id"], r["name"] or "", r["park"] or "", f"{r['score']:.2f}", reasons)
    out.print(table)
    out.print(f"符合全部硬性条件 sites meeting every hard constraint: {result['matched']} / {result['candidates']}")
    if result["closest_misses"]:
        misses = Table(title="最接近的未中选 closest misses (one constraint failed)")
        for col in ("编号\nsite", "名称\nname", "园区\npark", "未满足\nfailed", "原因\nreason"):
            misses.add_column(col, overflow="fold")
        for m in result["closest_misses"]:
            failed = m["failed"] if lang == "en" else f"{FAILED_ZH.get(m['failed'], m['failed'])} {m['failed']}"
            misses.add_row(m["site_id"], m["name"] or "", m["park"] or "", failed, _reason(m, lang))
        out.print(misses)
    for note in result["notes"]:
        console.print(f"[yellow]注意 note:[/] {note['en'] if lang == 'en' else note['zh']}")


def match_cmd(
    requirement: Annotated[Path | None, typer.Argument(help="Requirement JSON file (format in shared/DOMAIN.md).", show_default=False)] = None,
    batch: Annotated[Path | None, typer.Option("--batch", help="A folder: every *.json requirement in it, one NAME.match.json each.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for the --batch results (default: beside the requirements).")] = None,
    top: Annotated[int, typer.Option("--top", min=1, max=1000, help="How many sites to rank (and closest misses to list).")] = 10,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Land and projects as of this date (default: today, Asia/Shanghai).")] = None,
    known_at: Annotated[str | None, typer.Option("--known-at", help="Only facts recorded by this instant (a date means its end).")] = None,
    map_file: Annotated[Path | None, typer.Option("--map", help="Also write the match map to this HTML file (one requirement).")] = None,
    maps: Annotated[bool, typer.Option("--maps", help="With --batch: also write NAME.match.html beside each result.")] = False,
    lang: Annotated[str, typer.Option("--lang", help="zh, en or both: the language of reasons and maps.")] = "zh",
    basemap: Annotated[str, typer.Option("--basemap", help="Map background: none (offline), osm, tianditu (key in TIANDITU_KEY) or gaode (shifted to GCJ-02).")] = "none",
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """选址匹配 · the best idle parcels or standard factories for an investor's requirement, with reasons."""
    if (requirement is None) == (batch is None):
        fail("给出一个需求文件或 --batch 文件夹 give either a REQUIREMENT.json or --batch DIR")
    if lang not in ("zh", "en", "both"):
        fail(f"--lang must be zh, en or both, got {lang!r}")
    if basemap not in ("none", "osm", "tianditu", "gaode"):
        fail(f"--basemap must be none, osm, tianditu or gaode, got {basemap!r}")
    if batch is not None and map_file is not None:
        fail("--map 只用于单个需求；批量请用 --maps  (--map is for one requirement; use --maps with --batch)")
    if requirement is not None and (out_dir is not None or maps):
        fail("--out 和 --maps 只用于 --batch  (--out and --maps go with --batch; use --map FILE.html for one requirement)")
    day = parse_date_or_today(as_of, "--as-of")
    known = parse_known_at_option(known_at)

    if requirement is not None:
        if not requirement.is_file():
            fail(f"文件不存在 no such file: {requirement}")
        try:
            data = read_requirement(requirement)
        except MatchFileError as exc:
            fail(str(exc))
        if map_file is not None:
            output_file(map_file, "--map", create_folder=True)  # write_map makes the folder
        engine = engine_of(database_url)
        sites, index = load_sites(engine, day, known)
        if index.idle.n + index.factory.n == 0:
            console.print(f"[yellow]土地台账为空 the land inventory is empty as of {day}:[/] load it with `zhaoshang land load FILE --kind idle|factory`")
        result = _stamp(match(data, index, top=top), day, known)
        if map_file is not None:
            try:
                written = write_map(result, sites, map_file, lang=lang, basemap=basemap)
            except ValueError as exc:  # e.g. the Tianditu basemap without its key
                fail(f"--map: {exc}")
            if written:
                console.print(f"地图已写出 map written: {map_file}")
            else:
                console.print("[yellow]匹配地图渲染器不可用 the match-map renderer (maps.match_map) is not available[/]")
        if json_out:
            emit_json(result)
        else:
            _print_result(result, lang)
        return

    assert batch is not None
    if not batch.is_dir():
        fail(f"--batch 需要一个文件夹 needs a folder: {batch}")
    files = sorted(p for p in batch.glob("*.json") if p.is_file() and not p.name.endswith(RESULT_SUFFIX))
    if not files:
        fail(f"{batch} 中没有需求文件 no *.json requirement files in {batch}")
    if out_dir is not None:
        output_dir(out_dir, "--out")
    engine = engine_of(database_url)
    try:
        summaries = match_files(engine, files, out_dir=out_dir, as_of=day, known_at=known, top=top, maps=maps, lang=lang, basemap=basemap)
    except ValueError as exc:  # e.g. the Tianditu basemap without its key
        fail(f"--maps: {exc}")
    errors = [s for s in summaries if s["error"]]
    if json_out:
        emit_json({"as_of": day.isoformat(), "files": summaries})
    else:
        table = Table(title=f"批量选址匹配 batch match · {batch} · 截至 as of {day}")
        for col in ("需求文件\nfile", "投资方\ninvestor", "符合\nmatched", "首选\nbest site", "结果文件\noutput"):
            table.add_column(col, overflow="fold")
        for s in summaries:
            if s["error"]:
                table.add_row(Path(s["file"]).name, "[red]错误 error[/]", "", "", s["error"])
            else:
                table.add_row(Path(s["file"]).name, s["investor"], str(s["matched"]), s["top_site"] or "—", s["output"])
        out.print(table)
        console.print(f"已匹配 matched {len(summaries) - len(errors)} · 出错 failed {len(errors)}")
    if errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("match")(match_cmd)
