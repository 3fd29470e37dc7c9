"""``zhaoshang demo``: the whole platform on a generated demo district, end to end.

Set-up → the district's land files (Shapefile GBK / GeoJSON / GeoPackage) loaded and versioned →
its project history published to Kafka (a local Tansu unless ``--bootstrap``) and streamed into
the warehouse → two months of a bureau ledger imported → every Dagster asset materialized
(monthly states, land status, bulletins, maps, investor matches) → the KPI report.

The district's history runs to the last complete month before the clock's today
(``--today`` or ``ZHAOSHANG_TODAY``, else the real date in Asia/Shanghai): the same seed and
clock give the same outputs byte for byte, and a later clock only adds the months since.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine

from events.calendar import previous_month_end
from reports.kpi import write_kpi_xlsx
from warehouse.replay import kpi_report
from zhaoshang import clock
from zhaoshang.commands.core import render_kpi_table, setup
from zhaoshang.commands.serve import serve
from zhaoshang.common import (
    DatabaseUrl,
    ExitCode,
    console,
    engine_of,
    fail,
    keep_read_models,
    out,
    output_dir,
    parse_date_or_today,
    progress,
    styled,
    url_of,
)
from zhaoshang.settings import load_settings

DEMO_START = date(2019, 1, 1)


_STARTED = [time.monotonic()]


def _step(n: int, text: str) -> None:
    console.rule(styled((f"{n}. {text}", "bold cyan"), " ", (f"({time.monotonic() - _STARTED[0]:.0f} s)", "dim")))


def _dagster_home(default: Path, database_url: str) -> Path:
    """A persistent instance whose runs, events and schedules live in the warehouse's PostgreSQL, so
    ``dagster dev`` shows the demo's runs afterwards; no telemetry. A ``dagster.yaml`` of the
    user's own in ``DAGSTER_HOME`` is kept.

    The settings' ``DAGSTER_HOME``, else ``default``; set in the environment for Dagster, which reads it there.
    """
    from assets.instance import write_instance_yaml

    home = load_settings().dagster_home or default
    os.environ["DAGSTER_HOME"] = str(home)
    if not write_instance_yaml(home, database_url):
        console.print(f"  {home / 'dagster.yaml'}: kept as it is (not written by zhaoshang)")
    return home


def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the demo writes its files.")] = Path("out/demo"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated district and history.")] = 2018,
    projects: Annotated[int, typer.Option("--projects", min=1, help="Projects in the generated history.")] = 420,
    bootstrap: Annotated[
        str | None, typer.Option("--bootstrap", help="An existing Kafka broker (host:port); default: a local Tansu for the demo.")
    ] = None,
    png: Annotated[bool, typer.Option("--png", help="Also print-ready PNGs of the public maps (headless Chromium).")] = False,
    today: Annotated[
        str | None,
        typer.Option("--today", help="The clock's day (YYYY-MM-DD) for this run: the history ends the month before. Default: ZHAOSHANG_TODAY, else today in Asia/Shanghai."),
    ] = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="End by serving the workspace over the demo district (--no-serve: stop after building, for CI).")
    ] = True,
    host: Annotated[str, typer.Option("--host", help="Where the workspace listens.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="The workspace's port.")] = 8000,
    database_url: DatabaseUrl = None,
) -> None:
    """演示 · set up, load a demo district, stream its events, build every asset, write maps and the KPI report, then serve the workspace."""
    day = parse_date_or_today(today, "--today")
    # Pinned for the whole run, the Dagster definitions and maps included: one day everywhere.
    clock.pin(day)
    demo_end = previous_month_end(day)
    if demo_end < DEMO_START:
        fail(f"--today {day}: the demo history starts {DEMO_START}; give a later day")
    output_dir(out_dir, "--out")
    # Dagster marks some APIs we use as beta at import; a planner running the demo needs no such notice.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    from assets.resources import KafkaResource
    from assets.run import materialize_all
    from demo.district import load_demo_district
    from demo.history import generate_history
    from demo.ledgers import DEMO_LEDGER_MONTHS, write_demo_ledgers
    from demo.requirements import write_demo_requirements
    from ingestion.broker import LocalBroker
    from ingestion.kafka_stream import publish_records, run_sink
    from ingestion.ledger_events import LedgerOrderError
    from ingestion.ledger_import import import_ledger

    _step(1, "数据库 set-up")
    setup(database_url)
    engine = engine_of(database_url)
    url = url_of(database_url).render_as_string(hide_password=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.resolve()

    _step(2, "土地台账 land inventory: idle parcels, standard factories, parks, points of interest")
    district, land_reports = load_demo_district(engine, root, seed=seed)
    for kind, rep in land_reports.items():
        console.print(
            f"  {kind:8s} read {rep['read']:4d} · loaded {rep['loaded']:4d} · repaired {rep['repaired']} · rejected {rep['rejected']}"
            + (f" · {len(rep['warnings'])} warnings" if rep.get("warnings") else "")
        )

    _step(3, "项目事件 project history → Kafka → warehouse")
    history = generate_history(seed=seed, n_projects=projects, start=DEMO_START, end=demo_end, sites=district.sites())
    events_path = root / "events.jsonl"
    with events_path.open("w", encoding="utf-8") as fh:
        for ev in history:
            fh.write(json.dumps(ev, ensure_ascii=False) + "\n")
    n_projects = len({ev["project_id"] for ev in history})
    console.print(f"  {len(history)} events of {n_projects} projects signed {DEMO_START} … {demo_end} → {events_path}")
    # A fresh topic per run: a memory broker keeps nothing, and the sink's offsets (kept in the
    # warehouse per sink and topic) must never point past a topic's end.
    topic = f"zhaoshang-demo-{uuid.uuid4().hex[:12]}"
    broker = None if bootstrap else LocalBroker().start()
    address = bootstrap or (broker.bootstrap if broker else "")
    try:
        with progress() as bar:
            task = bar.add_task("发布 publish", total=len(history), status="")
            published = publish_records(address, topic, history, partitions=3, on_progress=lambda n: bar.update(task, completed=n))
            bar.update(task, completed=len(history))
        console.print(f"  published {published['sent']} messages to {topic} at {address}" + (" (local Tansu)" if broker else ""))
        with progress() as bar:
            task = bar.add_task("入库 stream", total=published["sent"], status="")

            def on_progress(p: dict[str, Any]) -> None:
                bar.update(task, completed=p.get("read", 0), status=f"{p.get('events_per_s', 0):,.0f} ev/s")

            sink = run_sink(engine, address, topic, name="demo", stop_when_idle=1.0, on_progress=on_progress, handle_signals=False)
        console.print(
            f"  streamed read {sink['read']} · accepted {sink['accepted']} · duplicates {sink['duplicates']} · rejected {sink['rejected']}"
        )

        _step(4, "项目台账 bureau ledgers (two successive months)")
        for ledger_month, ledger_path in zip(DEMO_LEDGER_MONTHS, write_demo_ledgers(root / "ledgers", seed=seed), strict=True):
            if ledger_month > demo_end:
                console.print(f"  {ledger_path.name}: after {demo_end}, not imported · 尚未到期")
                continue
            try:
                d = import_ledger(engine, ledger_path).as_dict()
            except LedgerOrderError:
                # A re-run: the October ledger is in already, so September must not undo its corrections.
                console.print(f"  {ledger_path.name}: already imported (a later month is in) · 已导入")
                continue
            counts = d.get("append") or {}
            console.print(f"  {ledger_path.name}: as of {d['as_of']} · accepted {counts.get('accepted', 0)} · duplicates {counts.get('duplicates', 0)}")

        keep_read_models(engine)
        _step(5, "Dagster 资产 every asset materialized in-process")
        req_dir = root / "requirements"
        write_demo_requirements(req_dir)
        dagster_home = _dagster_home(root / "dagster_home", url)
        import dagster as dg

        kafka = KafkaResource(bootstrap=address, topic=topic, sink_name="demo", idle_seconds=1.0)
        with dg.DagsterInstance.get() as instance:
            summary = materialize_all(url, root, requirements_dir=req_dir, kafka=kafka, instance=instance, say=lambda m: console.print(f"  {m}"))
    finally:
        if broker is not None:
            broker.stop()
    failed_runs = [r for r in summary["runs"] if not r.get("success")]
    if failed_runs:
        fail(f"Dagster runs failed: {failed_runs}", code=ExitCode.FAILED)
    for c in summary["checks"]:
        mark = ("✓", "green") if c["passed"] else (("!", "yellow") if c["severity"] == "WARN" else ("✗", "red"))
        console.print(styled("  ", mark, f" check {c['asset']}.{c['check']}"))

    if png:
        from maps.publish import publish_maps

        publish_maps(engine, root / "maps" / "public", profile="public", as_of=day, png=True, chromium=load_settings().chromium)

    _step(6, "KPI 报表 report")
    year_start = date(demo_end.year, 1, 1)
    with engine.connect() as conn:
        overall = kpi_report(conn, date_from=DEMO_START, date_to=demo_end)
        by_unit = kpi_report(conn, date_from=year_start, date_to=demo_end, by="unit")
        flow = kpi_report(conn, date_from=year_start, date_to=demo_end, mode="flow")
    for report in (overall, flow, by_unit):
        out.print(render_kpi_table(report))
    report_json = root / "kpi_report.json"
    report_json.write_text(
        json.dumps({"overall": overall, "flow_this_year": flow, "by_unit_this_year": by_unit}, ensure_ascii=False, indent=2),
        encoding="utf-8",
    )
    xlsx = root / "kpi_by_unit.xlsx"
    write_kpi_xlsx(by_unit, xlsx)

    console.rule(styled(("输出 outputs", "bold green")))
    paths = summary["paths"]
    listing = [
        ("推介地图(公开) promotion map, public", paths.get("promotion_map.path")),
        ("地图目录 map index, public", paths.get("promotion_map.index")),
        ("项目推进地图(内部) pipeline map, internal", paths.get("pipeline_map.path")),
        ("最新月通报 latest bulletin", paths.get("monthly_bulletin.path")),
        ("选址匹配 investor matches", str(root / "matches")),
        ("KPI 报表 report (JSON)", str(report_json)),
        ("KPI 排名 ranking by unit (Excel)", str(xlsx)),
        ("事件 events (JSON Lines)", str(events_path)),
        ("土地文件 land files", str(root / "land")),
        ("Dagster 运行记录 run history", f"DAGSTER_HOME={dagster_home} .venv/bin/dagster dev"),
    ]
    for label, path in listing:
        if path:
            out.print(f"  {label}: {path}")

    _workspace(engine, root, serve_after=serve_after, host=host, port=port, database_url=database_url)


def _workspace(engine: Engine, root: Path, *, serve_after: bool, host: str, port: int, database_url: str | None) -> None:
    """Step 7: the demo logins, one per role (printed and in demo_logins.txt), then the workspace served."""
    _step(7, "工作台 workspace users, one per role")
    logins = demo_users(engine)
    for username, role, unit, password in logins:
        out.print(f"  {role:8s} {username:14s} {password}" + (f"  ({unit})" if unit else ""))
    (root / "demo_logins.txt").write_text(
        "".join(f"{role}\t{username}\t{password}\t{unit or ''}\n" for username, role, unit, password in logins), encoding="utf-8"
    )
    if serve_after:
        serve(host=host, port=port, workers=1, database_url=database_url)
    else:
        out.print(f"  工作台 workspace: `zhaoshang serve --port {port}` (logins above, also in {root / 'demo_logins.txt'})")


# (username, role, responsible unit of a unit officer, display name)
DEMO_USERS = (
    ("admin", "admin", None, "系统管理员"),
    ("planner", "planner", None, "招商局 规划员"),
    ("officer", "unit", "夏云工业园区管委会", "园区 联络员"),
    ("leader", "leader", None, "区领导"),
)


def demo_users(engine: Engine) -> list[tuple[str, str, str | None, str]]:
    """The demo's users, one per role, each with a fresh random password (printed once; a re-run resets them)."""
    import secrets

    from warehouse.users import add_user, get_user, set_disabled, set_password_hash
    from web.passwords import hash_password

    logins = []
    with engine.begin() as conn:
        for username, role, unit, name in DEMO_USERS:
            password = f"demo-{secrets.token_urlsafe(6)}"
            hashed = hash_password(password)
            if get_user(conn, username) is None:
                add_user(conn, username=username, password_hash=hashed, role=role, unit=unit, display_name=name, created_by="demo")
            else:
                set_password_hash(conn, username, hashed)
                set_disabled(conn, username, False)
            logins.append((username, role, unit, password))
    return logins


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
