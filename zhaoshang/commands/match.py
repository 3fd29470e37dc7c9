"""``zhaoshang match``: the best parcels or factories for an investor's requirement, with reasons.

The matching itself is ``land.matching`` (pure); this module reads requirement files, takes the
land status frame from the warehouse as of a date, and writes tables, JSON and maps.
``reports.matches.match_files`` is the entry point for other callers (the demo, scripts).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from events.choices import Lang
from land.vocabulary import CRITERION_LABELS, SITE_KIND_LABELS, zh
from maps.vocabulary import Basemap
from zhaoshang.common import (
    DatabaseUrl,
    JsonFlag,
    console,
    emit_json,
    engine_of,
    fail,
    finish,
    out,
    output_dir,
    output_file,
    parse_date_or_today,
    parse_known_at_option,
    styled,
)
from zhaoshang.settings import load_settings


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
    head += f" · {zh(SITE_KIND_LABELS, result['kind'])} {result['kind']} · 截至 as of {result['as_of']}"
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
            failed = m["failed"] if lang == "en" else f"{zh(CRITERION_LABELS, m['failed'])} {m['failed']}"
            misses.add_row(m["site_id"], m["name"] or "", m["park"] or "", failed, _reason(m, lang))
        out.print(misses)
    for note in result["notes"]:
        console.print(styled(("注意 note:", "yellow"), " ", note["en"] if lang == "en" else note["zh"]))


def match_cmd(
    requirement: Annotated[Path | None, typer.Argument(help="Requirement JSON file (format in shared/DOMAIN.md).", show_default=False)] = None,
    batch: Annotated[Path | None, typer.Option("--batch", help="A folder: every *.json requirement in it, one NAME.match.json each.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for the --batch results (default: beside the requirements).")] = None,
    top: Annotated[int, typer.Option("--top", min=1, max=1000, help="How many sites to rank (and closest misses to list).")] = 10,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Land and projects as of this date (default: today, Asia/Shanghai).")] = None,
    known_at: Annotated[str | None, typer.Option("--known-at", help="Only facts recorded by this instant (a date means its end).")] = None,
    map_file: Annotated[Path | None, typer.Option("--map", help="Also write the match map to this HTML file (one requirement).")] = None,
    maps: Annotated[bool, typer.Option("--maps", help="With --batch: also write NAME.match.html beside each result.")] = False,
    lang: Annotated[Lang, typer.Option("--lang", help="The language of reasons and maps.")] = Lang.ZH,
    basemap: Annotated[Basemap, typer.Option("--basemap", help="Map background: none works offline; tianditu needs TIANDITU_KEY; gaode shifts to GCJ-02.")] = Basemap.NONE,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """选址匹配 · the best idle parcels or standard factories for an investor's requirement, with reasons."""
    _check_options(requirement, batch, out_dir, map_file, maps)
    day = parse_date_or_today(as_of, "--as-of")
    known = parse_known_at_option(known_at)
    if requirement is not None:
        result = _match_one(requirement, map_file, database_url, day, known, top=top, lang=lang, basemap=basemap)
        if json_out:
            emit_json(result)
        else:
            _print_result(result, lang)
        return
    assert batch is not None
    summaries = _match_batch(batch, out_dir, database_url, day, known, top=top, maps=maps, lang=lang, basemap=basemap)
    errors = [s for s in summaries if s["error"]]
    if json_out:
        emit_json({"as_of": day.isoformat(), "files": summaries})
    else:
        _print_batch(summaries, batch, day)
    finish(len(errors))


def _check_options(requirement: Path | None, batch: Path | None, out_dir: Path | None, map_file: Path | None, maps: bool) -> None:
    """One requirement or one --batch folder, each with its own output options."""
    if (requirement is None) == (batch is None):
        fail("给出一个需求文件或 --batch 文件夹 give either a REQUIREMENT.json or --batch DIR")
    if batch is not None and map_file is not None:
        fail("--map 只用于单个需求；批量请用 --maps  (--map is for one requirement; use --maps with --batch)")
    if requirement is not None and (out_dir is not None or maps):
        fail("--out 和 --maps 只用于 --batch  (--out and --maps go with --batch; use --map FILE.html for one requirement)")


def _match_one(
    requirement: Path, map_file: Path | None, database_url: str | None, day: date, known: datetime | None,
    *, top: int, lang: Lang, basemap: Basemap,
) -> dict[str, Any]:  # fmt: skip
    """Match one requirement file against the land as of ``day``, writing its map when asked."""
    # numpy, pandas and shapely load here, not when any `zhaoshang` command starts.
    from land.matching import match
    from reports.matches import MatchFileError, load_sites, read_requirement, stamp
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
        console.print(styled((f"土地台账为空 the land inventory is empty as of {day}:", "yellow"), " load it with `zhaoshang land load FILE --kind idle|factory`"))
    result = stamp(match(data, index, top=top), day, known)
    if map_file is not None:
        _write_match_map(result, sites, map_file, lang=lang, basemap=basemap)
    return result


def _write_match_map(result: dict[str, Any], sites: Any, map_file: Path, *, lang: Lang, basemap: Basemap) -> None:
    from reports.matches import write_map

    try:
        written = write_map(result, sites, map_file, lang=lang, basemap=basemap, tianditu_key=load_settings().tianditu_key)
    except ValueError as exc:  # e.g. the Tianditu basemap without its key
        fail(f"--map: {exc}")
    if written:
        console.print(f"地图已写出 map written: {map_file}")
    else:
        console.print("匹配地图渲染器不可用 the match-map renderer (maps.match_map) is not available", style="yellow")


def _match_batch(
    batch: Path, out_dir: Path | None, database_url: str | None, day: date, known: datetime | None,
    *, top: int, maps: bool, lang: Lang, basemap: Basemap,
) -> list[dict[str, Any]]:  # fmt: skip
    """Match every requirement file of the ``batch`` folder; one summary per file (``error`` set when it failed)."""
    from reports.matches import RESULT_SUFFIX, match_files

    if not batch.is_dir():
        fail(f"--batch 需要一个文件夹 needs a folder: {batch}")
    files = sorted(p for p in batch.glob("*.json") if p.is_file() and not p.name.endswith(RESULT_SUFFIX))
    if not files:
        fail(f"{batch} 中没有需求文件 no *.json requirement files in {batch}")
    if out_dir is not None:
        output_dir(out_dir, "--out")
    engine = engine_of(database_url)
    try:
        return match_files(
            engine, files, out_dir=out_dir, as_of=day, known_at=known, top=top, maps=maps, lang=lang, basemap=basemap,
            tianditu_key=load_settings().tianditu_key,
        )
    except ValueError as exc:  # e.g. the Tianditu basemap without its key
        fail(f"--maps: {exc}")


def _print_batch(summaries: list[dict[str, Any]], batch: Path, day: date) -> None:
    table = Table(title=f"批量选址匹配 batch match · {batch} · 截至 as of {day}")
    for col in ("需求文件\nfile", "投资方\ninvestor", "符合\nmatched", "首选\nbest site", "结果文件\noutput"):
        table.add_column(col, overflow="fold")
    for s in summaries:
        if s["error"]:
            table.add_row(Path(s["file"]).name, styled(("错误 error", "red")), "", "", s["error"])
        else:
            table.add_row(Path(s["file"]).name, s["investor"], str(s["matched"]), s["top_site"] or "—", s["output"])
    out.print(table)
    n_errors = sum(1 for s in summaries if s["error"])
    console.print(f"已匹配 matched {len(summaries) - n_errors} · 出错 failed {n_errors}")


def register(app: typer.Typer) -> None:
    app.command("match")(match_cmd)
