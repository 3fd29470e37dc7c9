"""What the benchmarks share: their own database, the 1,000,000-event file, timing, the results page.

The benchmarks use a database of their own (``zhaoshang_bench`` on the server of
``ZHAOSHANG_DATABASE_URL``, or ``ZHAOSHANG_BENCH_DATABASE_URL``) so they never disturb the
demo's or the tests' data. The event file is generated once (seeded, realistic payloads from
``ingestion.demo_history``) and kept in the temp directory for later runs.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.engine import URL  # noqa: E402

from warehouse.db import ensure_database, make_engine, resolve_url  # noqa: E402
from warehouse.migrate import upgrade  # noqa: E402

N_EVENTS = int(os.environ.get("ZHAOSHANG_BENCH_EVENTS", "1000000"))
SEED = 20261122
BENCH_DIR = Path(os.environ.get("ZHAOSHANG_BENCH_DIR", Path(tempfile.gettempdir()) / "zhaoshang_bench"))
DOC = ROOT / "docs" / "benchmarks.md"
MACHINE = "2 cores, 24 GiB RAM, Debian 12, PostgreSQL 15 + PostGIS 3 (local, Unix socket)"
RUN_DATE = "2026-11-22"

DOC_INTRO = """# Benchmarks

Figures measured with `./run bench NAME` (scripts in `bench/`). Every section says the machine and
the date it was measured on; each benchmark prints its figures and rewrites only its own section.
"""


def bench_url() -> URL:
    explicit = os.environ.get("ZHAOSHANG_BENCH_DATABASE_URL")
    if explicit:
        return resolve_url(explicit)
    return resolve_url().set(database="zhaoshang_bench")


def bench_engine() -> Engine:
    """The benchmark database, created and migrated when needed."""
    url = bench_url()
    ensure_database(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    upgrade(engine)
    return engine


def events_file(n: int = N_EVENTS) -> Path:
    """``n`` events as JSON Lines, generated once (generated districts of 5,000 projects each, ~220,000 in all)."""
    from ingestion.demo_history import generate_history

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"events_{n}_{SEED}.jsonl"
    if path.is_file():
        return path
    t0 = time.perf_counter()
    # Districts of 5,000 projects each (the generator is quadratic in a rare correction path),
    # their ids prefixed so they never collide.
    history: list[dict[str, object]] = []
    part = 0
    while len(history) < n:
        part += 1
        chunk = generate_history(seed=SEED + part, n_projects=5000, start=date(2012, 1, 1), end=date(2026, 10, 31))
        for e in chunk:
            e["event_id"] = f"D{part:03d}-{e['event_id']}"
            e["project_id"] = f"D{part:03d}-{e['project_id']}"
            if e["type"] == "retracted":
                e["payload"] = {**e["payload"], "event_id": f"D{part:03d}-{e['payload']['event_id']}"}
        history.extend(chunk)
    tmp = path.with_suffix(".part")
    with tmp.open("w", encoding="utf-8") as fh:
        for ev in history[:n]:
            fh.write(json.dumps(ev, ensure_ascii=False) + "\n")
    tmp.rename(path)
    print(f"generated {n:,} events in {time.perf_counter() - t0:.1f} s → {path}", flush=True)
    return path


@contextmanager
def timed(label: str, into: dict[str, float]) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    into[label] = time.perf_counter() - t0
    print(f"  {label}: {into[label]:.2f} s", flush=True)


def machine_line() -> str:
    return f"Machine: {MACHINE} (Python {platform.python_version()}). Date: {RUN_DATE}."


def write_section(name: str, body: str) -> None:
    """Replace (or add) the section between ``<!-- bench:name -->`` markers in docs/benchmarks.md."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    current = DOC.read_text(encoding="utf-8") if DOC.is_file() else DOC_INTRO
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _m: block, current)
    else:
        updated = current.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(updated, encoding="utf-8")
    print(f"written to {DOC}", flush=True)


class CpuMeter:
    """CPU seconds used by this process and by the PostgreSQL backends of one database.

    On a shared machine wall-clock figures move with everybody else's load; CPU seconds do not
    (much). Backends are read from /proc (the server is local), so it only counts when we may read them.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tick = os.sysconf("SC_CLK_TCK")

    def _backends(self) -> float:
        with self.engine.connect() as conn:
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            ).scalars().all()
        total = 0.0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / self.tick  # utime, stime
        return total

    def __enter__(self) -> CpuMeter:
        self.client0, self.server0 = time.process_time(), self._backends()
        self.wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.client = time.process_time() - self.client0
        self.server = self._backends() - self.server0
