"""Read models over 1,000,000 events: every as-of answer next to a bare scan of the log, in the same run.

    ./run bench read_models [--events N] [--append-runs N] [--growth] [--database-url URL] [--work-dir DIR] [--cache-dir DIR] [--keep] [--no-doc]

In the run's own database (or the empty one given):

1. **Append, before and after**: the event file loaded as before this issue (the read models' three
   log indexes dropped, no projector), then as now (indexes kept, ``read_models.refresh`` after
   the load), then as now with the projector following during the load (``read_models.Follower``,
   as ``zhaoshang stream`` runs it) and catching up after, each from an empty log; ``--append-runs``
   runs of the three (default 3) at the largest size, one after the other, each run's ratios its own.
2. **Answers**, each three times on the warm log, in a process of its own (so its peak memory is its
   own), next to the bare scan (``SELECT … FROM event_log`` fetched through psycopg, nothing done):
   current KPIs by unit (as of the clock's today, known now), KPIs at month ends (known now), KPIs
   at any date and any known-at instant, every project's replay row at a date, one project's state
   and history at a random instant (100 projects), and ``zhaoshang`` start-up to its first query
   next to its floor here (a Python importing SQLAlchemy and psycopg, connecting, ``SELECT 1``).

Run it at 10,000, 100,000 and 1,000,000 events (``--events``) to see how each figure grows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    FULL_EVENTS,
    N_EVENTS,
    ROOT,
    Bench,
    CpuMeter,
    bench_run,
    empty_log,
    parser,
)
from sqlalchemy import text

from events.model import SHANGHAI
from events.store import Horizon
from warehouse import read_models
from warehouse.db import make_engine, resolve_url
from warehouse.event_store import load_records, read_jsonl
from warehouse.replay import kpi_report

ZHAOSHANG = str(Path(sys.executable).with_name("zhaoshang"))
RUNS = 3
MONTH_ENDS = (date(2024, 6, 30), date(2025, 6, 30), date(2026, 9, 30))
ANY_HORIZONS = (
    (date(2024, 3, 17), datetime(2024, 4, 2, 10, 30, tzinfo=SHANGHAI)),
    (date(2025, 8, 9), datetime(2025, 8, 20, 16, 0, tzinfo=SHANGHAI)),
    (date(2026, 5, 21), datetime(2026, 6, 30, 9, 0, tzinfo=SHANGHAI)),
)


# --- figures, each run in a child process ------------------------------------------------------


def _bare_scan(url: str) -> list[float]:
    engine = make_engine(url, as_app=False)
    out = []
    for _ in range(RUNS):
        with engine.connect() as conn:
            dbapi = conn.connection.driver_connection
            assert dbapi is not None
            t0 = time.perf_counter()
            with dbapi.cursor(name="bare_scan") as cur:
                cur.itersize = 50_000
                cur.execute("SELECT event_id, project_id, type, occurred_at, recorded_at, schema_version, payload::text FROM event_log")
                for _row in cur:
                    pass
            out.append(time.perf_counter() - t0)
            dbapi.rollback()
    return out


def _timed(url: str, calls: list[Any]) -> list[float]:
    engine = make_engine(url, as_app=False)
    out = []
    for call in calls:
        with engine.connect() as conn:
            t0 = time.perf_counter()
            call(conn)
            out.append(time.perf_counter() - t0)
    return out


def _today() -> date:
    from zhaoshang.clock import today

    return today()


def figure(name: str, url: str) -> dict[str, Any]:
    """One figure's seconds (one per run) and what it answered."""
    today = _today()
    year_start = date(today.year, 1, 1)
    if name == "bare scan":
        return {"seconds": _bare_scan(url)}
    if name == "current kpis by unit":
        calls = [lambda c: kpi_report(c, date_from=year_start, date_to=today, by="unit")] * RUNS
        return {"seconds": _timed(url, calls)}
    if name == "month-end kpis":
        calls = [lambda c, d=d: kpi_report(c, date_from=date(d.year, 1, 1), date_to=d, by="unit") for d in MONTH_ENDS]
        return {"seconds": _timed(url, calls)}
    if name == "any-instant kpis":
        calls = [lambda c, d=d, k=k: kpi_report(c, date_from=date(d.year, 1, 1), date_to=d, known_at=k, by="unit") for d, k in ANY_HORIZONS]
        return {"seconds": _timed(url, calls)}
    if name == "replay rows at a date":
        calls = [lambda c, d=d, k=k: read_models.rows_at(c, Horizon(d, k)) for d, k in ANY_HORIZONS]
        return {"seconds": _timed(url, calls)}
    if name == "one project":
        engine = make_engine(url, as_app=False)
        with engine.connect() as conn:
            ids = list(conn.execute(text("SELECT project_id FROM rm_project_version WHERE valid_to = DATE '9999-12-31' ORDER BY md5(project_id) LIMIT 100")).scalars())
        rng = random.Random(7)
        out = []
        with engine.connect() as conn:
            read_models.project_at(conn, ids[0], Horizon(date(2025, 1, 1)))  # warm: the connection, the plan
            for pid in ids:
                at = datetime(2023, 1, 1, tzinfo=SHANGHAI) + timedelta(days=rng.randint(0, 1400), hours=rng.randint(0, 23))
                t0 = time.perf_counter()
                read_models.project_at(conn, pid, Horizon(at.date(), at))
                out.append(time.perf_counter() - t0)
        return {"seconds": out}
    if name == "start-up to first query":
        out = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            subprocess.run([ZHAOSHANG, "deadletters", "list", "--limit", "1", "--json", "--database-url", url], check=True, stdout=subprocess.DEVNULL)
            out.append(time.perf_counter() - t0)
        return {"seconds": out}
    if name == "start-up floor":
        out = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", FLOOR, resolve_url(url).render_as_string(hide_password=False)], check=True)
            out.append(time.perf_counter() - t0)
        return {"seconds": out}
    raise SystemExit(f"unknown figure {name!r}")


def run_figure(name: str, url: str) -> dict[str, Any]:
    """``figure`` in a child process: its seconds and its own peak memory (MiB)."""
    proc = subprocess.run(
        [sys.executable, __file__, "--figure", name, "--database-url", url], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _peak_mib() -> float:
    """This process's peak resident memory. Not ``ru_maxrss``: Linux keeps the parent's across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: the best there is


def _child(name: str, url: str) -> None:
    result = figure(name, url)
    result["peak_mib"] = _peak_mib()
    print(json.dumps(result))


# --- the run ---------------------------------------------------------------------------------------


FOLLOW_EVERY_S = 5.0  # the follower's round, as the stream bench runs it


def _load(bench: Bench, events: Path, *, before: bool = False, follow: bool = False) -> dict[str, float]:
    """Load the file into an empty log as before this issue (``before``), or as now with the
    projector run after the append, or (``follow``) following it during the append every
    ``FOLLOW_EVERY_S`` at its lower priority, then catching up; seconds of each step."""
    engine = bench.engine
    assert engine is not None
    with engine.begin() as conn:
        empty_log(conn, read_model_indexes=not before)
    t0 = time.perf_counter()
    with read_models.Follower(engine, FOLLOW_EVERY_S if follow else 0) as follower:
        res = load_records(engine, read_jsonl(events, "bench"))
        t1 = time.perf_counter()
    out = {"load": t1 - t0, "read": float(res.read), "rounds": float(follower.rounds)}
    if not before:
        t1 = time.perf_counter()
        with CpuMeter(engine) as cpu:
            read_models.refresh(engine)
        out["refresh"] = time.perf_counter() - t1
        out["refresh_client_cpu"], out["refresh_server_cpu"] = cpu.client, cpu.server
    return out


def main() -> None:
    if "--figure" in sys.argv:
        ap = argparse.ArgumentParser()
        ap.add_argument("--figure", required=True)
        ap.add_argument("--database-url", required=True)
        a = ap.parse_args()
        _child(a.figure, a.database_url)
        return
    ap = parser(__doc__)
    ap.add_argument("--events", type=int, default=N_EVENTS, help=f"events in the log (default $ZHAOSHANG_BENCH_EVENTS or {FULL_EVENTS:,})")
    ap.add_argument("--append-runs", type=int, default=RUNS, help=f"append runs (before; now, projector after; now, projector following) at the largest size (default {RUNS})")
    ap.add_argument("--growth", action="store_true", help="also measure at 10,000 and 100,000 events first (how each figure grows)")
    args = ap.parse_args()
    with bench_run("read_models", args, published={"events": FULL_EVENTS}) as bench:
        run(bench, args)


def _ms(xs: list[float]) -> str:
    return " / ".join(f"{x * 1000:,.0f}" for x in xs)


NAMES = (
    "bare scan",
    "current kpis by unit",
    "month-end kpis",
    "any-instant kpis",
    "replay rows at a date",
    "one project",
    "start-up to first query",
    "start-up floor",
)
# What any command pays before its first query on this machine: the interpreter, SQLAlchemy and
# psycopg imported, one connection, one query. The start-up figure is read against it.
FLOOR = """
import sys
from sqlalchemy import create_engine, text
with create_engine(sys.argv[1]).connect() as conn:
    conn.execute(text("SELECT 1")).scalar_one()
"""
GROWTH_SIZES = (10_000, 100_000)


def measure(bench: Bench, n: int, append_runs: int = 1) -> dict[str, Any]:
    """Append ``n`` events before and after this issue (``append_runs`` runs of three), then every answer's figures at that size."""
    engine = bench.engine
    assert engine is not None
    url = bench.database_url
    events = bench.events_file(n)
    pairs = []
    for _ in range(append_runs):
        before = _load(bench, events, before=True)
        print(f"[{n:,}] append before: {before['load']:.1f} s", flush=True)
        after = _load(bench, events)
        print(
            f"[{n:,}] append now: {after['load']:.1f} s + read models {after['refresh']:.1f} s"
            f" (CPU s: {after['refresh_client_cpu']:.1f} Python, {after['refresh_server_cpu']:.1f} PostgreSQL)",
            flush=True,
        )
        following = _load(bench, events, follow=True)
        print(
            f"[{n:,}] append now, the projector following: {following['load']:.1f} s ({following['rounds']:.0f} rounds)"
            f" + catch-up {following['refresh']:.1f} s",
            flush=True,
        )
        pairs.append((before, after, following))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
        projects = conn.execute(text("SELECT count(DISTINCT project_id) FROM event_log")).scalar_one()
        versions = conn.execute(text("SELECT count(*) FROM rm_project_version")).scalar_one()
    figures: dict[str, dict[str, Any]] = {}
    run_figure("bare scan", url)  # warm the cache: every figure reads a warm log
    for name in NAMES:
        figures[name] = run_figure(name, url)
        print(f"[{n:,}]  {name}: {_ms(figures[name]['seconds'][:5])} ms · peak {figures[name]['peak_mib']:.0f} MiB", flush=True)
    return {"n": n, "pairs": pairs, "projects": projects, "versions": versions, "figures": figures}


def _growth_table(results: list[dict[str, Any]]) -> str:
    head = "| what | " + " | ".join(f"{r['n']:,} events: median ms · peak MiB" for r in results) + " |"
    rule = "|---|" + "---:|" * len(results)
    lines = [head, rule]
    for name in NAMES:
        cells = [f"{statistics.median(r['figures'][name]['seconds']) * 1000:,.1f} · {r['figures'][name]['peak_mib']:.0f}" for r in results]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cells = [f"{r['pairs'][-1][1]['refresh']:.1f} s for {r['projects']:,} projects" for r in results]
    lines.append("| projector from an empty read model | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(bench: Bench, args: argparse.Namespace) -> None:
    sizes = [n for n in GROWTH_SIZES if n < args.events] if args.growth else []
    results = [measure(bench, n) for n in sizes]
    last = measure(bench, args.events, args.append_runs)
    results.append(last)
    load0 = os.getloadavg()[0]
    figures, (before, after, _following) = last["figures"], last["pairs"][-1]
    projects, versions = last["projects"], last["versions"]
    scan = statistics.median(figures["bare scan"]["seconds"])
    one = sorted(figures["one project"]["seconds"])
    rate_before = before["read"] / before["load"]
    rate_now = after["read"] / (after["load"] + after["refresh"])
    rate_now_append = after["read"] / after["load"]
    growth = _growth_table(results) if len(results) > 1 else "(run with --growth for 10,000 and 100,000 events too)"
    append_rows = []
    for i, (b, a, f) in enumerate(last["pairs"], 1):
        rb = b["read"] / b["load"]
        append_rows.append(
            f"| {i} | {b['load']:.1f} | {a['load']:.1f} | {a['refresh']:.1f} ({a['refresh_client_cpu']:.1f} + {a['refresh_server_cpu']:.1f}) |"
            f" {a['read'] / a['load'] / rb:.2f}× | **{a['read'] / (a['load'] + a['refresh']) / rb:.2f}×** |"
            f" {f['load']:.1f} ({f['rounds']:.0f}) | {f['refresh']:.1f} | **{f['read'] / f['load'] / rb:.2f}×** | {f['read'] / (f['load'] + f['refresh']) / rb:.2f}× |"
        )
    append_table = "\n".join(append_rows)

    def row(name: str, what: str, goal: str) -> str:
        xs = figures[name]["seconds"]
        ratio = max(xs) / scan
        return f"| {what} | {_ms(xs)} | {ratio:.3f}× | {goal} | {figures[name]['peak_mib']:.0f} |"

    table = "\n".join(
        [
            f"| bare scan of the log (baseline): `SELECT event_id, project_id, type, occurred_at, recorded_at, schema_version, payload::text FROM event_log` | {_ms(figures['bare scan']['seconds'])} | 1.000× | | {figures['bare scan']['peak_mib']:.0f} |",
            row("current kpis by unit", "KPIs by unit, as of today (the clock), known now (`kpi_report(..., by='unit')`)", "≤ 0.05×"),
            row("month-end kpis", f"KPIs by unit at month ends {', '.join(d.isoformat() for d in MONTH_ENDS)}, known now", "≤ 0.1×"),
            row("any-instant kpis", "KPIs by unit at " + ", ".join(f"{d} known {k:%Y-%m-%d %H:%M}" for d, k in ANY_HORIZONS), "≤ 0.5×"),
            row("replay rows at a date", f"every project's replay row ({projects:,}) at the same three horizons (`replay --json`'s rows)", "(reported)"),
            f"| one project's state and history at a random instant (100 projects): median / p95 / max ms | {one[len(one) // 2] * 1000:.1f} / {one[int(len(one) * 0.95)] * 1000:.1f} / {one[-1] * 1000:.1f} | | ≤ 20 ms | {figures['one project']['peak_mib']:.0f} |",
            f"| `zhaoshang deadletters list --limit 1` (start-up, schema check, first query, exit) | {_ms(figures['start-up to first query']['seconds'])} | | ≤ 0.5 s | |",
            f"| floor: `python -c` importing SQLAlchemy and psycopg, one connection, `SELECT 1`, exit | {_ms(figures['start-up floor']['seconds'])} | | (what any command pays here) | |",
        ]
    )
    print(table)
    print(growth)
    print(f"append: before {rate_before:,.0f} events/s; now {rate_now_append:,.0f} events/s ({rate_now_append / rate_before:.2f}×), with the read models brought up to date after it {rate_now:,.0f} events/s ({rate_now / rate_before:.2f}×)")
    bench.write_section(
        f"""
## Read models over {args.events:,} events (`./run bench read_models`)

{bench.machine_line()} {projects:,} projects, {versions:,} stored versions. Each answer runs three times
(milliseconds of each run) in a process of its own, after a warm-up scan; the ratio is the slowest
run over the median bare scan of the same run. Load average {load0:.1f} at the end, on {os.cpu_count()} cores.

| what | ms (3 runs) | ÷ bare scan | goal | peak MiB |
|---|---:|---:|---|---:|
{table}

Append of the {args.events:,} events into an empty log, {len(last['pairs'])} runs of three, one after the other:
before this issue (no read-model indexes, no projector); now, the projector run after the append
(its CPU seconds: Python + PostgreSQL); now, the projector following the log during the append
every {FOLLOW_EVERY_S:g} s at its lower priority (its rounds), then catching up. Goal: with the read
models kept, ≥ 0.8× of the rate before.

| run | before: append s | now: append s | + projector s (CPU) | append ÷ before | append + projector ÷ before | following: append s (rounds) | + catch-up s | append ÷ before | append + catch-up ÷ before |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{append_table}

How each figure grows with the log (same run; peak memory of the answering process):

{growth}
"""
    )


if __name__ == "__main__":
    main()
