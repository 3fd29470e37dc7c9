"""`replay --as-of` and `report kpis` over 1,000,000 events, next to a bare SQL scan of the log.

    ./run bench replay [--events N] [--database-url URL] [--work-dir DIR] [--cache-dir DIR] [--keep] [--no-doc]

Reads the log of a database that holds the ``--events`` benchmark events (``bench/append.py --keep``
prints one; pass it with ``--database-url``); otherwise loads the event file into its database first.
Figures:

1. Bare scan: ``SELECT event_id, project_id, type, occurred_at, recorded_at, schema_version,
   payload::text FROM event_log`` fetched row by row through the same driver (psycopg 3), nothing done
   with the rows: the floor for anything that reads the whole log.
2. The commands, run as a user runs them (``zhaoshang replay --as-of … --json`` and
   ``zhaoshang report kpis … --json``, output to /dev/null), start-up included.
3. In-process, the parts of a replay: loading the events (SQL + building ``Event``\\ s), the fold, the rows.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from _common import FULL_EVENTS, N_EVENTS, ROOT, Bench, CpuMeter, bench_run, empty_tables, parser, timed
from sqlalchemy import Engine, text

from events.kpis import compute_kpis
from events.projection import fold
from warehouse.collector import gc_paused
from warehouse.event_store import load_records, read_jsonl
from warehouse.replay import Horizon, load_events

AS_OF = "2026-10-31"
KNOWN_AT = "2026-06-30"
ZHAOSHANG = str(Path(sys.executable).with_name("zhaoshang"))


CPU: dict[str, float] = {}  # CPU seconds (client + server) of each figure


def bare_scan(engine: Engine) -> tuple[float, int]:
    with engine.connect() as conn, CpuMeter(engine) as meter:
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        t0 = time.perf_counter()
        n = 0
        with dbapi.cursor(name="bare_scan") as cur:  # server-side cursor, as replay streams its rows
            cur.itersize = 50_000
            cur.execute("SELECT event_id, project_id, type, occurred_at, recorded_at, schema_version, payload::text FROM event_log")
            for _ in cur:
                n += 1
        elapsed = time.perf_counter() - t0
        dbapi.rollback()
    CPU["bare scan"] = meter.client + meter.server
    return elapsed, n


def run_cli(args: list[str], label: str, engine: Engine, url: str) -> float:
    """Wall seconds of one command; its CPU (the command's process + the server's backends) into CPU."""
    server = CpuMeter(engine)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server0 = server._backends()
    t0 = time.perf_counter()
    proc = subprocess.Popen([ZHAOSHANG, *args, "--database-url", url], stdout=subprocess.DEVNULL, cwd=ROOT)
    # Sample the backends while the command runs: its own backend is gone when it exits.
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, server._backends() - server0)
        time.sleep(0.5)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, args
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[label] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime) + peak
    return elapsed


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--events", type=int, default=N_EVENTS, help=f"events in the log (default $ZHAOSHANG_BENCH_EVENTS or {FULL_EVENTS:,})")
    args = ap.parse_args()
    with bench_run("replay", args, published={"events": FULL_EVENTS}) as bench:
        run(bench, args)


def run(bench: Bench, args: argparse.Namespace) -> None:
    engine = bench.engine
    assert engine is not None
    url = bench.database_url
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM event_log")).scalar_one()
    if have != args.events:
        print(f"the log holds {have:,} events, not {args.events:,}: loading the benchmark file", flush=True)
        with engine.begin() as conn:
            empty_tables(conn, "event_log", "dead_letter")
        res = load_records(engine, read_jsonl(bench.events_file(args.events), "bench"))
        assert res.accepted == args.events, res.as_dict()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE event_log")
        projects = conn.execute(text("SELECT count(DISTINCT project_id) FROM event_log")).scalar_one()
    load0 = os.getloadavg()[0]
    print(f"replay benchmark: {args.events:,} events of {projects:,} projects; load average {load0:.1f}", flush=True)

    t: dict[str, float] = {}
    bare_scan(engine)  # warm the cache: every figure below reads a warm log
    t["bare scan"], n = bare_scan(engine)
    assert n == args.events
    print(f"  bare scan: {t['bare scan']:.2f} s", flush=True)
    t["replay"] = run_cli(["replay", "--as-of", AS_OF, "--json"], "replay", engine, url)
    print(f"  zhaoshang replay --as-of {AS_OF} --json: {t['replay']:.2f} s", flush=True)
    t["replay known"] = run_cli(["replay", "--as-of", AS_OF, "--known-at", KNOWN_AT, "--json"], "replay known", engine, url)
    print(f"  zhaoshang replay --as-of {AS_OF} --known-at {KNOWN_AT} --json: {t['replay known']:.2f} s", flush=True)
    t["kpis"] = run_cli(["report", "kpis", "--from", "2026-01-01", "--to", AS_OF, "--json"], "kpis", engine, url)
    print(f"  zhaoshang report kpis --json: {t['kpis']:.2f} s", flush=True)
    t["kpis by"] = run_cli(["report", "kpis", "--from", "2026-01-01", "--to", AS_OF, "--by", "unit", "--json"], "kpis by", engine, url)
    print(f"  zhaoshang report kpis --by unit --json: {t['kpis by']:.2f} s", flush=True)
    t["startup"] = run_cli(["deadletters", "list", "--limit", "1", "--json"], "startup", engine, url)
    print(f"  zhaoshang deadletters list --limit 1 (start-up and schema check): {t['startup']:.2f} s", flush=True)

    horizon = Horizon(date.fromisoformat(AS_OF))
    with gc_paused():  # as project_states does
        with engine.connect() as conn, timed("load_events (SQL + Event objects)", t):
            events = load_events(conn, horizon)
        with timed("fold", t):
            states = fold(events)
    with timed("rows", t):
        rows = [s.to_row(horizon.as_of) for s in states.values()]
    with timed("compute_kpis", t):
        compute_kpis(states.values(), date_from=date(2026, 1, 1), date_to=horizon.as_of)
    n_rows = len(rows)
    load1 = os.getloadavg()[0]
    print("CPU seconds:", {k: round(v, 1) for k, v in CPU.items()}, flush=True)
    del events, states, rows

    rate = lambda s: args.events / s  # noqa: E731
    print(f"\nbare scan          {rate(t['bare scan']):>10,.0f} events/s")
    print(f"replay --as-of     {rate(t['replay']):>10,.0f} events/s  ({t['replay'] / t['bare scan']:.1f}× the bare scan)")
    print(f"report kpis        {rate(t['kpis']):>10,.0f} events/s  ({t['kpis'] / t['bare scan']:.1f}× the bare scan)")

    bench.write_section(
        f"""
## Replay and KPI report over {args.events:,} events (`./run bench replay`)

{bench.machine_line()} The log of the benchmark events ({projects:,} projects), warm in the page cache.
The machine is shared: load average {load0:.1f} at the start and {load1:.1f} at the end of this run on
{os.cpu_count()} cores, so wall-clock seconds are inflated; CPU seconds move less.

| what | seconds | events/s | vs bare scan | CPU s (client + server) |
|---|---:|---:|---:|---:|
| bare scan: `SELECT event_id, project_id, type, occurred_at, recorded_at, schema_version, payload::text FROM event_log`, rows fetched through psycopg, nothing done with them | {t["bare scan"]:.1f} | {rate(t["bare scan"]):,.0f} | 1.0× | {CPU["bare scan"]:.1f} |
| `zhaoshang replay --as-of {AS_OF} --json` ({n_rows:,} rows to /dev/null) | {t["replay"]:.1f} | {rate(t["replay"]):,.0f} | {t["replay"] / t["bare scan"]:.1f}× | {CPU["replay"]:.1f} |
| `zhaoshang replay --as-of {AS_OF} --known-at {KNOWN_AT} --json` | {t["replay known"]:.1f} | {rate(t["replay known"]):,.0f} | {t["replay known"] / t["bare scan"]:.1f}× | {CPU["replay known"]:.1f} |
| `zhaoshang report kpis --from 2026-01-01 --to {AS_OF} --json` | {t["kpis"]:.1f} | {rate(t["kpis"]):,.0f} | {t["kpis"] / t["bare scan"]:.1f}× | {CPU["kpis"]:.1f} |
| `zhaoshang report kpis … --by unit --json` | {t["kpis by"]:.1f} | {rate(t["kpis by"]):,.0f} | {t["kpis by"] / t["bare scan"]:.1f}× | {CPU["kpis by"]:.1f} |

Where a replay's time goes (in-process): loading the events (SQL, `payload` JSON, `Event` objects)
{t["load_events (SQL + Event objects)"]:.1f} s, the fold {t["fold"]:.1f} s, the rows {t["rows"]:.1f} s; `compute_kpis` over the
folded states {t["compute_kpis"]:.2f} s. Start-up of a command with its schema check (Alembic), measured
as `zhaoshang deadletters list --limit 1`: {t["startup"]:.1f} s.
"""
    )


if __name__ == "__main__":
    main()
