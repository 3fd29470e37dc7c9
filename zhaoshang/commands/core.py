"""set-up, the event log, replay, KPI reports, dead letters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from events.choices import Lang
from events.kpis import GROUP_LABEL_ZH, KPI_KEYS, KPI_LABELS_ZH, KpiGroup, KpiMode
from events.model import STAGE_LABEL_ZH
from events.store import AppendResult, Horizon
from reports.kpi import format_kpi, write_kpi_xlsx
from warehouse.event_store import (
    list_dead_letters,
    load_records,
    read_jsonl,
    retry_dead_letters,
)
from zhaoshang.common import (
    DatabaseUrl,
    JsonFlag,
    console,
    emit_json,
    engine_of,
    fail,
    finish,
    keep_read_models,
    out,
    output_file,
    parse_date,
    parse_date_or_today,
    parse_known_at_option,
    progress,
    read_text_input,
    styled,
    url_of,
)
from zhaoshang.groups import deadletters_app, events_app, report_app


def setup(database_url: DatabaseUrl = None) -> None:
    """安装并初始化数据库 · install PostGIS where missing, start PostgreSQL, create the database, migrate."""
    from warehouse.provision import SetupError
    from warehouse.provision import setup as do_setup

    url = url_of(database_url)
    try:
        done = do_setup(url, say=lambda m: console.print(m, style="dim"))
    except SetupError as exc:
        fail(str(exc))
    for line in done:
        console.print(styled(("✓", "green"), " ", line))
    console.print(styled(("数据库就绪 database ready:", "bold"), " ", url.render_as_string(hide_password=True)))


def load_events_file(
    file: Annotated[Path, typer.Argument(help="JSON Lines file, one event per line.")],
    source: Annotated[str | None, typer.Option("--source", help="Source name kept with each event (default: the file name).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 20_000,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """追加事件 · append events; invalid and conflicting lines go to the dead letters."""
    if not file.is_file():
        fail(f"no such file: {file}")
    engine = engine_of(database_url)
    total_lines = sum(1 for line in file.open("rb") if line.strip())
    with progress() as bar:
        task = bar.add_task(f"载入 {file.name}", total=total_lines, status="")

        def on_batch(res: AppendResult) -> None:
            bar.update(task, advance=res.read, status=f"accepted {res.accepted} dup {res.duplicates} rejected {res.rejected}")

        result = load_records(engine, read_jsonl(file, source), batch_size=batch_size, on_batch=on_batch)
    keep_read_models(engine)
    if json_out:
        emit_json(result.as_dict())
    else:
        console.print(
            f"读取 read {result.read} · 接收 accepted {result.accepted} · 重复 duplicates {result.duplicates} · 拒收 rejected {result.rejected}"
        )
        for reason in result.reasons[:10]:
            console.print(styled("  ", ("rejected:", "yellow"), " ", reason[:300]))
        if result.rejected:
            console.print("  see them with `zhaoshang deadletters list`")
    finish(result.rejected)


def replay(
    as_of: Annotated[str | None, typer.Option("--as-of", help="Business date: events that occurred up to this day (default: today).")] = None,
    known_at: Annotated[str | None, typer.Option("--known-at", help="Only facts recorded by this instant (a date means its end).")] = None,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """回放 · every project as it stood on a date, as known at an instant."""
    day = parse_date_or_today(as_of, "--as-of")
    horizon = Horizon(day, parse_known_at_option(known_at))
    from warehouse.replay import replay_rows  # here: the read models' layer is not every command's start-up

    engine = engine_of(database_url)
    with engine.connect() as conn:
        rows = replay_rows(conn, horizon)
    if json_out:
        emit_json(rows)
        return
    table = Table(title=f"项目回放 replay {horizon.describe()}", show_lines=False)
    for col in ("项目编号", "项目名称", "阶段", "签约", "落地", "开工", "投产", "总投资(万元)", "到位资金(万元)", "责任单位", "异常"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["project_id"],
            r["name"] or "",
            STAGE_LABEL_ZH[r["stage"]] + (" ⚠停滞" if r["stalled"] else ""),
            r["signed_on"] or "",
            r["landed_on"] or "",
            r["started_on"] or "",
            r["produced_on"] or "",
            f"{r['investment_wan']:,.0f}",
            f"{r['funds_wan']:,.0f}",
            r["unit"] or "",
            str(len(r["anomalies"])) if r["anomalies"] else "",
        )
    out.print(table)


def _header(key: str, lang: Lang | str) -> str:
    if lang == "en":
        return key
    if lang == "both":
        return f"{KPI_LABELS_ZH[key]}\n{key}"
    return KPI_LABELS_ZH[key]


def render_kpi_table(report: dict[str, Any], lang: Lang | str = Lang.ZH) -> Table:
    title = f"招商引资项目推进情况 KPI · {report['from']} ~ {report['to']} · 截至 {report['as_of']}"
    if report.get("known_at"):
        title += f" · 认知时点 {report['known_at']}"
    title += f" · {'批次' if report['mode'] == 'cohort' else '当期'}({report['mode']})"
    table = Table(title=title)
    if "groups" in report:
        table.add_column("排名" if lang != "en" else "rank", justify="right")
        by = report["by"]
        table.add_column(GROUP_LABEL_ZH[by] if lang != "en" else by)
    for key in KPI_KEYS:
        table.add_column(_header(key, lang), justify="right")
    if "groups" in report:
        for g in report["groups"]:
            table.add_row(str(g["rank"]), g["key"], *(format_kpi(k, g[k]) for k in KPI_KEYS))
        table.add_row("", "合计" if lang != "en" else "total", *(format_kpi(k, report["total"][k]) for k in KPI_KEYS), style="bold")
    else:
        table.add_row(*(format_kpi(k, report[k]) for k in KPI_KEYS))
    return table


def report_kpis(
    date_from: Annotated[str, typer.Option("--from", help="First day of the period.")],
    date_to: Annotated[str, typer.Option("--to", help="Last day of the period.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Business date of the state (default: --to).")] = None,
    known_at: Annotated[str | None, typer.Option("--known-at", help="As known at this instant (reproduces a published bulletin).")] = None,
    mode: Annotated[KpiMode, typer.Option("--mode", help="cohort: projects signed in the period; flow: stage entries in the period.")] = KpiMode.COHORT,
    by: Annotated[KpiGroup | None, typer.Option("--by", help="A ranked table per responsible unit, industry or signing channel.")] = None,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="Also write the table to this Excel file.")] = None,
    lang: Annotated[Lang, typer.Option("--lang", help="The language of the table headers.")] = Lang.ZH,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """KPI 报表 · signed, landed, started, produced, rates, investment and funds (月通报/季排名)."""
    lo, hi, day = parse_date(date_from, "--from"), parse_date(date_to, "--to"), parse_date(as_of, "--as-of")
    assert lo is not None and hi is not None
    if lo > hi:
        fail(f"--from {lo} is after --to {hi}")
    if xlsx is not None:
        output_file(xlsx, "--xlsx")
    from warehouse.replay import kpi_report  # here: the read models' layer is not every command's start-up

    engine = engine_of(database_url)
    with engine.connect() as conn:
        report = kpi_report(conn, date_from=lo, date_to=hi, as_of=day, known_at=parse_known_at_option(known_at), mode=mode, by=by)
    if xlsx is not None:
        try:
            write_kpi_xlsx(report, xlsx)
        except OSError as exc:
            fail(f"cannot write {xlsx}: {exc}")
        console.print(f"已写出 written: {xlsx}")
    if json_out:
        emit_json(report)
    else:
        out.print(render_kpi_table(report, lang))


def deadletters_list(
    all_: Annotated[bool, typer.Option("--all", help="Also the resolved ones.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Dead letters listed, oldest first (0: all).")] = 0,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """死信列表 · rejected records with the reason, source and position."""
    engine = engine_of(database_url)
    with engine.connect() as conn:
        rows = list_dead_letters(conn, status=None if all_ else "open", limit=limit or None)
    if json_out:
        emit_json(rows)
        return
    table = Table(title=f"死信 dead letters ({len(rows)})")
    for col in ("id", "来源 source", "位置 position", "event_id", "原因 reason", "状态 status"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r["id"]), r["source"], r["source_position"] or "", r["event_id"] or "", r["reason"][:240], r["status"])
    out.print(table)


def deadletters_retry(
    ids: Annotated[list[int] | None, typer.Option("--id", help="Dead-letter id (repeatable); default: every open one.")] = None,
    replace_with: Annotated[Path | None, typer.Option("--replace-with", help="A file with the corrected JSON of one dead letter.")] = None,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """重新投递 · re-drive open dead letters (after a fix in the code, or with a corrected record)."""
    replacement = None
    if replace_with is not None:
        replacement = read_text_input(replace_with, "--replace-with").strip()  # a BOM is no part of the JSON
        try:
            json.loads(replacement)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError; nesting too deep is not
            fail(f"--replace-with {replace_with} is not JSON: {exc}")
    engine = engine_of(database_url)
    try:
        with engine.begin() as conn:
            outcome = retry_dead_letters(conn, ids or None, replacement=replacement)
    except ValueError as exc:
        fail(str(exc))
    keep_read_models(engine)
    if json_out:
        emit_json(outcome)
    else:
        console.print(
            f"重试 retried {outcome['retried']} · 接收 accepted {outcome['accepted']} · 重复 duplicates {outcome['duplicates']}"
            f" · 仍失败 still failing {outcome['still_failing']}"
        )
        for f in outcome["failures"][:20]:
            console.print(styled("  ", (f"#{f['id']}", "yellow"), " ", f["reason"][:240]))
    finish(outcome["still_failing"])


def register(app: typer.Typer) -> None:
    app.command("setup")(setup)
    app.command("replay")(replay)
    events_app.command("load")(load_events_file)
    report_app.command("kpis")(report_kpis)
    deadletters_app.command("list")(deadletters_list)
    deadletters_app.command("retry")(deadletters_retry)
