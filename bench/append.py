"""Append 1,000,000 events through the real path, next to a raw COPY of the same rows.

    ./run bench append [--events N] [--profile N] [--database-url URL] [--work-dir DIR] [--cache-dir DIR] [--keep] [--no-doc]

1. Generates the event file once (JSON Lines, realistic payloads; see ``bench/_common.py``).
2. Raw COPY: the same rows, already in COPY text format (prepared before the clock starts), into a
   bare table without keys or indexes: the ceiling for getting rows into PostgreSQL (best of 3).
3. The real path: ``load_records`` over ``read_jsonl`` (what ``zhaoshang events load`` runs):
   parse, validate, content hash, COPY straight into the log (or, when a batch holds a known id, COPY
   into staging, duplicate/conflict check, insert), commit per batch.
4. Loading the same file again: every event is a duplicate, nothing is accepted.

``--profile N`` also runs cProfile over the real path for the first N events and prints where the time goes.
The run leaves the whole file in the log, so ``--keep`` (or ``--database-url``) gives ``bench/replay.py``
a loaded database: ``./run bench replay --database-url URL``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import os
import pstats
from pathlib import Path

from _common import FULL_EVENTS, N_EVENTS, Bench, CpuMeter, bench_run, empty_tables, parser, timed
from sqlalchemy import Engine, text

from events.validation import parse_event
from warehouse.copy_text import copy_escape
from warehouse.event_store import _STAGE_COLUMNS, load_records, read_jsonl

RAW_TABLE = "bench_raw_copy"


def _prepare_copy_text(path: Path, out: Path) -> int:
    """The rows the log would hold, as COPY text, written to ``out``; excluded from the timing."""
    n = 0
    with out.open("w", encoding="utf-8") as fh:
        for inc in read_jsonl(path, "bench"):
            ev = parse_event(inc.raw)
            payload = json.dumps(ev.payload, ensure_ascii=False, separators=(",", ":"))
            fields = (
                ev.event_id,
                ev.project_id,
                ev.type.value,
                ev.occurred_at.isoformat(),
                (ev.recorded_at.isoformat() if ev.recorded_at else "2026-11-22T00:00:00+00:00"),
                str(ev.schema_version),
                payload,
                ev.content_hash(),
                inc.source,
                inc.position or "",
            )
            fh.write("\t".join(copy_escape(f) for f in fields) + "\n")
            n += 1
    return n


# The log's own shape (keys, constraints, defaults) without its trigger: COPY into it measures what
# the schema alone costs PostgreSQL, the floor under any client.
KEYED_DDL = (
    f"CREATE TABLE {RAW_TABLE} (seq bigserial PRIMARY KEY, event_id text NOT NULL UNIQUE, project_id text NOT NULL,"
    " type text NOT NULL, occurred_at timestamptz NOT NULL, recorded_at timestamptz NOT NULL,"
    " schema_version integer NOT NULL DEFAULT 1, payload jsonb NOT NULL DEFAULT '{}'::jsonb, content_hash text NOT NULL,"
    " source text NOT NULL DEFAULT '', source_position text, appended_at timestamptz NOT NULL DEFAULT now())"
)
BARE_DDL = (
    f"CREATE TABLE {RAW_TABLE} (event_id text, project_id text, type text, occurred_at timestamptz,"
    " recorded_at timestamptz, schema_version integer, payload jsonb, content_hash text, source text,"
    " source_position text)"
)


def raw_copy(engine: Engine, copy_text: Path, ddl: str = BARE_DDL) -> CpuMeter:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        conn.exec_driver_sql(ddl)
    with engine.begin() as conn:
        conn.exec_driver_sql("CHECKPOINT")
    with CpuMeter(engine) as meter, engine.begin() as conn:
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        with dbapi.cursor() as cur, cur.copy(f"COPY {RAW_TABLE} ({', '.join(_STAGE_COLUMNS)}) FROM STDIN") as copy, copy_text.open("rb") as fh:
            while chunk := fh.read(8 << 20):
                copy.write(chunk)
    return meter


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--events", type=int, default=N_EVENTS, help=f"events to append (default $ZHAOSHANG_BENCH_EVENTS or {FULL_EVENTS:,})")
    ap.add_argument("--profile", type=int, default=0, help="cProfile the real path over this many events")
    args = ap.parse_args()
    with bench_run("append", args, published={"events": FULL_EVENTS}) as bench:
        run(bench, args)


def run(bench: Bench, args: argparse.Namespace) -> None:
    path = bench.events_file(args.events)
    engine = bench.engine
    assert engine is not None
    times: dict[str, float] = {}
    print(f"append benchmark: {args.events:,} events from {path} ({path.stat().st_size / 2**20:.0f} MiB)", flush=True)

    copy_text = bench.work / f"{path.stem}.copy.tsv"
    with timed("prepare COPY text (not part of any figure)", times):
        _prepare_copy_text(path, copy_text)

    cpu: dict[str, CpuMeter] = {}
    # The baseline's best of three: the shared machine slows single runs, and a slow baseline
    # would flatter the ratio.
    for attempt in range(1, 4):
        meter = raw_copy(engine, copy_text)
        assert count(engine, RAW_TABLE) == args.events
        print(f"  raw COPY, run {attempt}: {meter.wall:.2f} s", flush=True)
        if "raw COPY" not in cpu or meter.wall < cpu["raw COPY"].wall:
            cpu["raw COPY"] = meter
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE {RAW_TABLE}")
    times["raw COPY"] = cpu["raw COPY"].wall
    cpu["keyed COPY"] = raw_copy(engine, copy_text, KEYED_DDL)
    times["keyed COPY"] = cpu["keyed COPY"].wall
    print(f"  the same COPY into a table with the log's keys: {times['keyed COPY']:.2f} s", flush=True)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {RAW_TABLE}")

    with engine.begin() as conn:
        empty_tables(conn, "event_log", "dead_letter")
        conn.exec_driver_sql("CHECKPOINT")
    load_avg = os.getloadavg()[0]
    with timed("load_records (real path)", times), CpuMeter(engine) as cpu["real path"]:
        first = load_records(engine, read_jsonl(path, "bench"))
    assert first.accepted == args.events and first.read == args.events, first.as_dict()
    with timed("load_records again (all duplicates)", times), CpuMeter(engine) as cpu["re-load"]:
        again = load_records(engine, read_jsonl(path, "bench"))
    load_avg = max(load_avg, os.getloadavg()[0])
    assert again.accepted == 0 and again.duplicates == args.events, again.as_dict()
    with engine.connect() as conn:
        log_mib = conn.execute(text("SELECT pg_total_relation_size('event_log') / 1048576.0")).scalar_one()

    n = args.events
    raw_rate = n / times["raw COPY"]
    real_rate = n / times["load_records (real path)"]
    dup_rate = n / times["load_records again (all duplicates)"]
    ratio = real_rate / raw_rate
    print(f"\nraw COPY          {raw_rate:>10,.0f} events/s")
    print(f"real append       {real_rate:>10,.0f} events/s   ratio {ratio:.2f} of raw COPY (goal ≥ 0.50)")
    print(f"re-load (dups)    {dup_rate:>10,.0f} events/s")
    print(f"event_log size    {log_mib:,.0f} MiB (with indexes)")
    for name, m in cpu.items():
        print(f"CPU {name:<10} client {m.client:6.1f} s  server {m.server:6.1f} s  wall {m.wall:6.1f} s")
    cpu_ratio = (cpu["raw COPY"].client + cpu["raw COPY"].server) / (cpu["real path"].client + cpu["real path"].server)
    print(f"CPU-time ratio (raw COPY CPU ÷ real path CPU): {cpu_ratio:.2f}; load average up to {load_avg:.1f} on {os.cpu_count()} cores")

    profile_text = ""
    if args.profile:
        with engine.begin() as conn:
            empty_tables(conn, "event_log", "dead_letter")
        prof = cProfile.Profile()
        prof.enable()
        load_records(engine, itertools.islice(read_jsonl(path, "bench"), args.profile))
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(18)
        profile_text = buf.getvalue()
        print(profile_text)
        with engine.begin() as conn:  # leave the full log for bench/replay.py
            empty_tables(conn, "event_log", "dead_letter")
        load_records(engine, read_jsonl(path, "bench"))

    cpu_rows = "\n".join(
        f"| {name} | {m.client:.1f} | {m.server:.1f} | {1e6 * (m.client + m.server) / n:.1f} |" for name, m in cpu.items()
    )
    bench.write_section(
        f"""
## Append: {n:,} events (`./run bench append`)

{bench.machine_line()}

| path | seconds | events/s | vs raw COPY |
|---|---:|---:|---:|
| raw `COPY` of the same rows into a bare table (no keys, no indexes; rows pre-formatted; best of 3) | {times["raw COPY"]:.1f} | {raw_rate:,.0f} | 1.00 |
| the same `COPY` into a table with `event_log`'s keys (bigserial primary key, unique `event_id`): the schema's floor | {times["keyed COPY"]:.1f} | {n / times["keyed COPY"]:,.0f} | {times["raw COPY"] / times["keyed COPY"]:.2f} |
| `load_records` / `zhaoshang events load` into an empty log (parse, validate, hash, COPY into the log) | {times["load_records (real path)"]:.1f} | {real_rate:,.0f} | **{ratio:.2f}** |
| the same file again (every event a duplicate, nothing accepted: staged, looked up, counted) | {times["load_records again (all duplicates)"]:.1f} | {dup_rate:,.0f} | {dup_rate / raw_rate:.2f} |

CPU seconds (this process + its PostgreSQL backend), which move less with the machine's other load
(load average up to {load_avg:.1f} on {os.cpu_count()} cores during this run):

| path | client CPU s | server CPU s | µs CPU per event |
|---|---:|---:|---:|
{cpu_rows}

Goal: the real path at ≥ 0.5 of raw COPY — {"met" if ratio >= 0.5 else "**not met**"} (by CPU time: {cpu_ratio:.2f}).

Where the time goes. PostgreSQL alone, given pre-formatted rows, needs {times["keyed COPY"]:.1f} s to put them into a
table keyed like the log ({times["raw COPY"] / times["keyed COPY"]:.2f} of raw COPY): the unique `event_id` index and the
`seq` key are what make appends idempotent and give the sensors their high-water mark, and they cost
more than the bare COPY itself. On top of that floor, the client spends
{1e6 * cpu["real path"].client / n:.1f} µs of CPU per event (read, decode and check in C with msgspec, the canonical JSON and
SHA-256 hash, COPY text, plus the writer thread), overlapped with the server on the machine's
other core; the wall time is about the larger of the two plus what they contend for.
The event file: {path.stat().st_size / 2**20:.0f} MiB of JSON Lines (~220,000 projects in generated districts of 5,000,
realistic `signed` payloads with names, investors, units, industries, channels). Log size after loading: {log_mib:,.0f} MiB.
"""
    )


if __name__ == "__main__":
    main()
