"""``zhaoshang ledger import``: a bureau's project ledger (台账) into events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from events.kpis import KPI_LABELS_ZH
from events.model import STAGE_LABELS
from ingestion.ledger import FIELD_LABELS_ZH, LedgerError, load_mapping
from ingestion.ledger_events import LedgerOrderError
from ingestion.ledger_import import TOTAL_KEYS, LedgerImport, import_ledger
from zhaoshang.common import (
    DatabaseUrl,
    JsonFlag,
    console,
    emit_json,
    engine_of,
    fail,
    finish,
    keep_read_models,
    parse_date,
    styled,
    today,
)
from zhaoshang.groups import ledger_app
from zhaoshang.settings import load_settings

SKIP_LABELS = {"blank": "空行 blank", "total": "合计行 totals", "section": "分组行 sections", "note": "注释行 notes", "header": "重复表头 repeated headers", "repeat": "重复项目行 repeated project lines"}
CHANGE_LABELS = {
    "new": "新增 new",
    "corrected": "更正 corrected",
    "cleared": "清空 cleared",
    "reinstated": "恢复 reinstated",
    "funds": "资金增加 funds added",
    "funds_decrease": "资金减少 funds decreased",
    "kept": "保留 kept",
    "missing": "本期缺失 missing",
    "future": "晚于台账日期 after the ledger date",
}
# The reconciled totals: stages by the stage table, amounts by the KPI table ('签约 signed', '总投资(万元) investment').
TOTAL_LABELS = {
    **{stage: f"{STAGE_LABELS[stage][0]} {stage}" for stage in ("signed", "landed", "started", "produced", "cancelled")},
    "investment_wan": f"{KPI_LABELS_ZH['investment_wan']} investment",
    "funds_wan": f"{KPI_LABELS_ZH['funds_wan']} funds",
}


def ledger_import(
    file: Annotated[Path, typer.Argument(help="The ledger: .xlsx or .csv (UTF-8 or GBK).")],
    sheet: Annotated[str | None, typer.Option("--sheet", help="Worksheet name (default: the first).")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The ledger's date (default: a date in its title or file name, else today).")
    ] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", help="YAML file mapping custom headers to fields.")] = None,
    publish: Annotated[bool, typer.Option("--publish", help="Send the events to Kafka instead of the warehouse.")] = False,
    bootstrap: Annotated[
        str | None,
        typer.Option("--bootstrap", envvar="ZHAOSHANG_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers HOST:PORT (with --publish)."),
    ] = None,
    topic: Annotated[
        str | None,
        typer.Option("--topic", help="Kafka topic of the lifecycle events, with --publish (default: ZHAOSHANG_KAFKA_TOPIC, else zhaoshang.events).", show_default=False),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")] = False,
    series: Annotated[
        str | None,
        typer.Option("--series", help="Which ledger these monthly files are (default: the title without its date)."),
    ] = None,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """导入项目台账 · import a ledger: each row's dates become events; a later ledger's changes become corrections."""
    day = parse_date(as_of, "--as-of")
    topic = topic or load_settings().kafka_topic
    if publish and not bootstrap:
        fail("--publish needs --bootstrap HOST:PORT (or ZHAOSHANG_KAFKA_BOOTSTRAP)")
    if not file.is_file():
        fail(f"no such file 文件不存在: {file}")
    if mapping is not None and not mapping.is_file():
        fail(f"no such mapping file 映射文件不存在: {mapping}")
    try:
        mapped = load_mapping(mapping) if mapping is not None else None
    except LedgerError as exc:
        fail(str(exc))
    engine = engine_of(database_url)
    try:
        result = import_ledger(
            engine, file, sheet=sheet, as_of=day, today=today(), mapping=mapped, publish=(bootstrap, topic) if publish and bootstrap else None, dry_run=dry_run,
            series=series,
        )
    except (LedgerError, LedgerOrderError) as exc:
        fail(f"{file.name}: {exc}")
    except Exception as exc:
        if publish and type(exc).__module__.startswith(("kafka", "ingestion.kafka_stream")):
            fail(f"cannot publish to Kafka at {bootstrap} (topic {topic}): {exc}")
        raise
    if result.append is not None:
        keep_read_models(engine)
    if json_out:
        emit_json(result.as_dict())
    else:
        print_report(result)
    finish(len(result.table.rejected) + (result.append.rejected if result.append is not None else 0))


def print_report(result: LedgerImport) -> None:
    t = result.table
    console.print(styled(("台账 ledger", "bold"), f" {t.source} · 表头第 {t.header_row} 行 header row {t.header_row}" + (f" · {t.title}" if t.title else "")))
    console.print(f"截至 as of {result.as_of} ({result.as_of_from}) · 台账系列 series {result.series}")
    skipped = ", ".join(f"{SKIP_LABELS.get(k, k)} {len(v)}" for k, v in t.skipped.items())
    console.print(
        f"读取 rows read {t.rows_read} = 项目 projects {len(t.projects)} + 跳过 skipped {t.skipped_count}"
        + (f" ({skipped})" if skipped else "")
        + f" + 拒收 rejected {len(t.rejected)}"
    )
    if t.unmapped:
        console.print(styled(("未识别的表头 unmapped headers:", "yellow"), " " + "、".join(t.unmapped)))
    for n in t.rejected:
        console.print(styled("  ", (f"第 {n.row} 行 row {n.row} rejected:", "red"), " ", n.message))
    for n in t.warnings[:30]:
        console.print(styled("  ", (f"第 {n.row} 行 row {n.row}:", "yellow"), " ", n.message))
    if len(t.warnings) > 30:
        console.print(f"  … {len(t.warnings) - 30} more warnings (--json lists all)")
    counts = result.plan.counts()
    summary = ", ".join(f"{CHANGE_LABELS.get(k, k)} {v}" for k, v in counts.items()) or "无变化 no changes"
    console.print(f"变化 changes: {summary}; 未变 unchanged projects {result.plan.unchanged_projects}")
    for c in result.plan.changes:
        if c.kind in ("corrected", "cleared", "reinstated", "funds_decrease", "missing", "kept", "future"):
            where = f"第 {c.row} 行 " if c.row else ""
            console.print(f"  {CHANGE_LABELS.get(c.kind, c.kind)}: {where}{c.project_id} {c.detail}")
    by_type = ", ".join(f"{k} {v}" for k, v in result.plan.events_by_type().items()) or "none"
    console.print(f"事件 events: {len(result.plan.events)} ({by_type})")
    if result.append is not None:
        a = result.append
        console.print(f"入库 warehouse: 接收 accepted {a.accepted} · 重复 duplicates {a.duplicates} · 拒收 rejected {a.rejected}")
        for reason in a.reasons[:10]:
            console.print(styled("  ", ("rejected:", "red"), " ", reason[:300]))
    if result.published is not None:
        p = result.published
        console.print(f"已发送 Kafka: sent {p.get('sent')} of {p.get('read')} · invalid {p.get('invalid')}")
    if result.reconcile is not None:
        rec = result.reconcile
        table = Table(title=f"核对 reconcile: 台账 vs 数据仓库 (截至 {result.as_of})")
        table.add_column("指标 measure")
        table.add_column("台账 ledger", justify="right")
        table.add_column("仓库 warehouse", justify="right")
        table.add_column("", justify="center")
        for k in TOTAL_KEYS:
            ok = k not in rec["mismatches"]
            table.add_row(TOTAL_LABELS[k], _num(rec["ledger"][k]), _num(rec["warehouse"][k]), "✓" if ok else styled(("✗", "red")))
        console.print(table)
    for m in result.totals_row_mismatches():
        hint = " (rejected rows are not in the sum 拒收行未计入)" if t.rejected else ""
        console.print(
            f"合计行 第 {m['row']} 行 the totals row says {FIELD_LABELS_ZH[m['field']]} {_num(m['stated'])};"
            f" the project rows add up to {_num(m['rows_sum'])}{hint}",
            style="yellow",
        )
    for note in result.notes:
        console.print(note, style="dim")


def _num(value: float) -> str:
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def register(app: typer.Typer) -> None:
    ledger_app.command("import")(ledger_import)
