"""``zhaoshang demo``: the whole platform on a generated demo district, end to end."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from warehouse.event_store import load_records, read_jsonl
from warehouse.replay import kpi_report
from zhaoshang.commands.core import render_kpi_table, setup, write_kpi_xlsx
from zhaoshang.common import DatabaseUrl, console, engine_of, out, progress

DEMO_END = date(2026, 10, 31)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Where the demo writes its files.")] = Path("out/demo"),
    seed: Annotated[int, typer.Option("--seed")] = 2018,
    projects: Annotated[int, typer.Option("--projects", min=1)] = 420,
    database_url: DatabaseUrl = None,
) -> None:
    """演示 · set up, generate a demo district, load its history, and report the KPIs."""
    from ingestion.demo_history import generate_history

    setup(database_url)
    out.mkdir(parents=True, exist_ok=True)
    history = generate_history(seed=seed, n_projects=projects, end=DEMO_END)
    events_path = out / "events.jsonl"
    with events_path.open("w", encoding="utf-8") as fh:
        for ev in history:
            fh.write(json.dumps(ev, ensure_ascii=False) + "\n")
    console.print(f"[green]✓[/] 演示项目事件 demo history: {len(history)} events of {projects} projects → {events_path}")

    engine = engine_of(database_url)
    with progress() as bar:
        task = bar.add_task("载入事件 loading events", total=len(history), status="")
        result = load_records(engine, read_jsonl(events_path, "demo"), on_batch=lambda r: bar.update(task, advance=r.read))
    console.print(
        f"[green]✓[/] 事件入库 read {result.read} · accepted {result.accepted} · duplicates {result.duplicates} · rejected {result.rejected}"
    )

    year_start = date(DEMO_END.year, 1, 1)
    with engine.connect() as conn:
        overall = kpi_report(conn, date_from=date(2019, 1, 1), date_to=DEMO_END)
        by_unit = kpi_report(conn, date_from=year_start, date_to=DEMO_END, by="unit")
        flow = kpi_report(conn, date_from=year_start, date_to=DEMO_END, mode="flow")
    out.print(render_kpi_table(overall))
    out.print(render_kpi_table(flow))
    out.print(render_kpi_table(by_unit))
    report_json = out / "kpi_report.json"
    report_json.write_text(json.dumps({"overall": overall, "flow_this_year": flow, "by_unit_this_year": by_unit}, ensure_ascii=False, indent=2))
    xlsx = out / "kpi_by_unit.xlsx"
    write_kpi_xlsx(by_unit, xlsx)
    console.print(f"\n[bold]输出 outputs[/] in {out.resolve()}:")
    for p in (events_path, report_json, xlsx):
        console.print(f"  {p.resolve()}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
