"""Investor matches: one dynamic partition per requirement file in the requirements folder."""

import json
from pathlib import Path
from typing import Any

import dagster as dg

from assets.land import FACTORIES, IDLE_PARCELS
from assets.resources import OutputResource, WarehouseResource
from events.store import Horizon
from zhaoshang import clock

REQUIREMENT_FILES = dg.DynamicPartitionsDefinition(name="requirement_files")
INVESTOR_MATCHES = dg.AssetKey("investor_matches")


@dg.asset(
    key=INVESTOR_MATCHES,
    deps=[IDLE_PARCELS, FACTORIES],
    partitions_def=REQUIREMENT_FILES,
    group_name="matching",
    description="投资方选址匹配 · ranked, explained parcels and factories for one requirement file (land as of today).",
)
def investor_matches(context: dg.AssetExecutionContext, warehouse: WarehouseResource, output: OutputResource) -> dg.MaterializeResult[Any]:
    from land.matching import RequirementError, match
    from warehouse.land import land_status

    name = context.partition_key
    path = output.requirements() / name
    try:
        requirement = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise dg.Failure(description=f"需求文件无法读取 cannot read requirement {path}: {exc}") from exc
    as_of = clock.today()
    with warehouse.engine().connect() as conn:
        sites = land_status(conn, Horizon(as_of))
    try:
        result = match(requirement, sites, top=10)
    except RequirementError as exc:
        raise dg.Failure(description=f"{path}: {exc}") from exc
    result["as_of"] = as_of.isoformat()
    stem = Path(name).stem
    out_json = output.path("matches", f"{stem}.json")
    out_json.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    metadata: dict[str, Any] = {
        "path": dg.MetadataValue.path(str(out_json.resolve())),
        "results": dg.MetadataValue.int(len(result["results"])),
        "closest_misses": dg.MetadataValue.int(len(result["closest_misses"])),
        "ranking": dg.MetadataValue.md(_ranking_md(result)),
    }
    from maps.match_map import render_match_map

    if len(result["results"]) or len(result["closest_misses"]):
        out_html = output.path("matches", f"{stem}.html")
        out_html.write_text(render_match_map(result, sites), encoding="utf-8")
        metadata["map"] = dg.MetadataValue.path(str(out_html.resolve()))
    return dg.MaterializeResult(metadata=metadata)


def _ranking_md(result: dict[str, Any]) -> str:
    lines = ["| 名次 | 编号 | 名称 | 园区 | 得分 | 理由 |", "|---|---|---|---|---|---|"]
    for r in result["results"][:10]:
        reasons = "；".join(c["reason_zh"] for c in r["criteria"])
        lines.append(f"| {r['rank']} | {r['site_id']} | {r['name'] or ''} | {r['park'] or ''} | {r['score']:.3f} | {reasons} |")
    for m in result["closest_misses"][:5]:
        lines.append(f"| 未中 | {m['site_id']} | {m['name'] or ''} | {m['park'] or ''} | — | {m['reason_zh']} |")
    return "\n".join(lines)


match_job = dg.define_asset_job("match_requirements", selection=dg.AssetSelection.assets(INVESTOR_MATCHES))


@dg.sensor(job=match_job, minimum_interval_seconds=30, description="新需求文件 · a partition and a run for each new or changed requirement file.")
def requirement_files_sensor(context: dg.SensorEvaluationContext, output: OutputResource) -> dg.SensorResult:
    folder = output.requirements()
    files = sorted(p for p in folder.glob("*.json") if p.is_file()) if folder.is_dir() else []
    known = set(context.instance.get_dynamic_partitions(REQUIREMENT_FILES.name or ""))
    seen: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
    new = [p.name for p in files if p.name not in known]
    changed = [p.name for p in files if seen.get(p.name) != p.stat().st_mtime]
    cursor = {p.name: p.stat().st_mtime for p in files}
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=n, run_key=f"{n}@{cursor[n]}") for n in changed],
        dynamic_partitions_requests=[REQUIREMENT_FILES.build_add_request(new)] if new else [],
        cursor=json.dumps(cursor),
    )
