"""``zhaoshang land load`` and ``zhaoshang land status``: the land inventory and what the projects took."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from land.vocabulary import LAND_STATUS_LABELS, SITE_KIND_LABELS, SITE_STATUS_LABELS, SiteKind, zh, zh_en
from zhaoshang.common import (
    DatabaseUrl,
    JsonFlag,
    console,
    emit_json,
    engine_of,
    fail,
    finish,
    out,
    parse_date_or_today,
    parse_known_at_option,
    progress,
    styled,
)
from zhaoshang.groups import land_app


def _kind(kind: str) -> str:
    zh, en = SITE_KIND_LABELS[kind]
    return f"{zh} {en}"


def land_load(
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage or Shapefile (.shp with its .dbf/.shx/.prj/.cpg).")],
    kind: Annotated[SiteKind, typer.Option("--kind", help="闲置土地 idle parcels, 标准厂房 factories, 园区边界 park boundaries or 高速出口/货运站/港口 points of interest.")],
    crs: Annotated[str | None, typer.Option("--crs", help="CRS of a file that declares none, e.g. EPSG:4490 or EPSG:4544.")] = None,
    valid_from: Annotated[str | None, typer.Option("--valid-from", help="First day this version of the inventory holds (default: today, Asia/Shanghai or ZHAOSHANG_TODAY).")] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="Attribute encoding when a Shapefile has no .cpg (default: sniffed, UTF-8 or GBK).")] = None,
    layer: Annotated[str | None, typer.Option("--layer", help="Layer of a multi-layer GeoPackage.")] = None,
    partial: Annotated[bool, typer.Option("--partial", help="The file updates only the sites it names; the others stay open.")] = False,
    allow_empty: Annotated[
        bool,
        typer.Option("--allow-empty", help="Accept a file with no site, or one naming none of the open sites: it closes the whole inventory of its kind."),
    ] = False,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """载入土地台账 · load an inventory file as a new version (changed and vanished sites are closed, not overwritten)."""
    from ingestion.land_files import LandFileError, load_land_file
    from warehouse.land import InventoryError

    if not file.exists():
        fail(f"文件不存在 no such file: {file}")
    day = parse_date_or_today(valid_from, "--valid-from")
    engine = engine_of(database_url)
    try:
        with progress() as bar:
            task = bar.add_task(f"载入 {file.name}", total=5, status="")

            def on_step(what: str) -> None:
                bar.update(task, advance=1, status=what)

            report = load_land_file(
                engine, file, kind=kind, crs=crs, valid_from=day, encoding=encoding, layer=layer, partial=partial,
                allow_empty=allow_empty, on_step=on_step,
            )
            bar.update(task, completed=5)
    except (LandFileError, InventoryError) as exc:
        fail(str(exc))
    if json_out:
        emit_json(report)
    else:
        _print_load(report, kind, file)
    finish(report["rejected"])


def _print_load(report: dict[str, Any], kind: str, file: Path) -> None:
    console.print(
        styled(("✓", "green")),
        f"{_kind(kind)} {file.name} ({report['source_crs']}) 自 {report['valid_from']} 起 · "
        f"读取 read {report['read']} · 载入 loaded {report['loaded']} · 修复 repaired {report['repaired']} · "
        f"拒收 rejected {report['rejected']}"
    )
    console.print(
        f"  版本 versions: 新增/变更 inserted {report['inserted']} · 关闭 closed {report['closed']} · "
        f"未变 unchanged {report['unchanged']} · 当日更正 replaced {report['replaced']}"
    )
    if report["repaired_ids"]:
        console.print(styled("  ", ("修复 repaired:", "yellow"), " ", ", ".join(report["repaired_ids"][:50])))
    for r in report["rejections"][:50]:
        console.print(styled("  ", ("拒收 rejected", "red"), " ", f"{r['id']}: {r['reason']}"))
    for w in report["warnings"][:50]:
        console.print(styled("  ", ("警告 warning", "yellow"), " ", w))
    if len(report["warnings"]) > 50:
        console.print(f"  … {len(report['warnings']) - 50} more warnings (--json lists them all)")


def _s(value: Any) -> str:
    """A data cell (the consoles print it as text, never markup): None or NaN blank."""
    return "" if value is None or value != value else str(value)


def _num(value: Any, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "—"
    return f"{value:,.{digits}f}"


def land_status_cmd(
    as_of: Annotated[str | None, typer.Option("--as-of", help="Business date: the inventory valid and the events occurred by this day (default: today).")] = None,
    known_at: Annotated[str | None, typer.Option("--known-at", help="Only events recorded by this instant (a date means its end).")] = None,
    park: Annotated[str | None, typer.Option("--park", help="Only this park.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Sites listed in the table (0: all). JSON always has all.")] = 60,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """土地状态 · per parcel and factory: status, remaining area, the projects on it; totals by park and status."""
    from events.store import Horizon
    from land.status import land_totals
    from warehouse.land import land_status, status_report

    day = parse_date_or_today(as_of, "--as-of")
    known = parse_known_at_option(known_at)
    horizon = Horizon(day, known)
    engine = engine_of(database_url)
    with console.status("计算土地状态 computing land status…"), engine.connect() as conn:
        frame = land_status(conn, horizon)
    if park is not None:
        anomalies = frame.attrs.get("anomalies", [])
        frame = frame[frame["park"] == park].reset_index(drop=True)
        frame.attrs["anomalies"] = anomalies
    if json_out:
        emit_json(status_report(frame, horizon))
        return
    if frame.empty:
        console.print(styled((f"{horizon.describe()} 没有土地台账 no parcels or factories in the inventory", "yellow"), " (load one with `zhaoshang land load`)"))
        return
    order = {"partly_taken": 0, "taken": 1, "in_production": 2, "available": 3}
    shown = frame.assign(_o=frame["status"].map(order)).sort_values(["park", "_o", "site_id"])
    if limit:
        shown = shown.head(limit)
    table = Table(title=f"土地状态 land status · {horizon.describe()} · {len(shown)} / {len(frame)}")
    for col in ("编号 id", "名称 name", "园区 park", "类型 kind", "台账状态", "状态 status", "面积(亩)", "剩余(亩)", "建筑面积(m²)", "空置(m²)", "项目 projects"):
        table.add_column(col, overflow="fold")
    for r in shown.itertuples():
        table.add_row(
            _s(r.site_id),
            _s(r.name),
            _s(r.park),
            zh(SITE_KIND_LABELS, r.kind),
            zh(LAND_STATUS_LABELS, r.land_status) if isinstance(r.land_status, str) else "",
            zh_en(SITE_STATUS_LABELS, r.status),
            _num(r.area_mu),
            _num(r.remaining_area_mu),
            _num(r.floor_area_m2, 0),
            _num(r.vacant_area_m2, 0),
            _s(", ".join(r.project_ids)),
        )
    out.print(table)
    totals = Table(title="按园区与状态合计 totals by park and status")
    for col in ("园区 park", "类型 kind", "状态 status", "个数 sites", "面积(亩)", "剩余(亩)", "建筑面积(m²)", "空置(m²)", "项目 projects"):
        totals.add_column(col)
    for r in land_totals(frame).itertuples():
        totals.add_row(
            _s(r.park),
            zh_en(SITE_KIND_LABELS, r.kind),
            zh_en(SITE_STATUS_LABELS, r.status),
            str(r.sites),
            _num(r.area_mu),
            _num(r.remaining_area_mu) if r.kind == "idle" else "—",
            _num(r.floor_area_m2, 0) if r.kind == "factory" else "—",
            _num(r.vacant_area_m2, 0) if r.kind == "factory" else "—",
            str(r.projects),
        )
    out.print(totals)
    anomalies = frame.attrs.get("anomalies", [])
    if anomalies:
        console.print(f"异常 anomalies: {len(anomalies)}", style="yellow")
        for a in anomalies[:20]:
            event = f", event {a['event_id']}" if a["event_id"] else ""
            console.print(f"  {a['code']}: {a['detail']} (project {a['project_id']}{event})")


def land_history(
    site_id: Annotated[str, typer.Argument(help="Parcel or factory id (地块编号 / 厂房编号).")],
    kind: Annotated[SiteKind | None, typer.Option("--kind", help="Only this kind, when an id is used by several.")] = None,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """台账版本 · every version of one site: when it held, from which file, what changed."""
    from warehouse.land import site_history

    engine = engine_of(database_url)
    with engine.connect() as conn:
        versions = site_history(conn, site_id, kind)
    if json_out:
        emit_json(versions)
        return
    if not versions:
        fail(f"台账中没有 no site {site_id!r} in the inventory")
    table = Table(title=f"台账版本 versions of {site_id}")
    for col in ("类型 kind", "生效 valid_from", "失效 valid_to", "名称 name", "状态", "面积(亩)", "地价(万元/亩)", "空置(m²)", "变化 changed", "来源 source"):
        table.add_column(col, overflow="fold")
    for v in versions:
        table.add_row(
            _s(v["kind"]),
            _s(v["valid_from"]),
            _s(v["valid_to"]) if v["valid_to"] else "—",
            _s(v["name"]),
            _s(v["land_status"]),
            _num(v["area_mu"]),
            _num(v["price_wan_per_mu"]),
            _num(v["vacant_area_m2"], 0),
            _s(", ".join(v["changed"])),
            _s(Path(v["source"]).name if v["source"] else ""),
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    land_app.command("load")(land_load)
    land_app.command("status")(land_status_cmd)
    land_app.command("history")(land_history)
