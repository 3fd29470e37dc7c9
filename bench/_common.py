"""What every benchmark shares, in one place: where it runs, what it measures on, its data, the results page.

Each benchmark is an entry point (``./run bench NAME [options]``, ``--help`` lists them) and runs
inside :func:`bench_run`, which gives it:

- **A database.** ``--database-url URL`` or ``ZHAOSHANG_BENCH_DATABASE_URL``: that database
  (created and migrated when needed, never dropped). It must be empty or one a benchmark used
  before (marked by a comment on the database), because benchmarks empty its tables. Otherwise a
  database of the run's own on the server of ``ZHAOSHANG_DATABASE_URL`` (the product's default:
  the local server), named ``<database>_bench_<name>_<random>``, dropped at the end unless ``--keep``.
  Two runs on one machine therefore never share a database unless told to.
- **A work folder.** ``--work-dir DIR`` or ``ZHAOSHANG_BENCH_DIR``: kept. Otherwise a fresh
  temporary folder per run, removed at the end unless ``--keep``.
- **A cache, only when asked.** ``--cache-dir DIR`` or ``ZHAOSHANG_BENCH_CACHE``: the generated
  event file is kept there under a name derived from the generator's parameters (and its source),
  written to a unique temporary file and renamed into place, so concurrent runs reuse it safely.
- **Provenance read at run time.** CPU model and count, memory, OS, Python, the PostgreSQL server
  (version, PostGIS, Unix socket or TCP as actually connected) and the date from the product's clock
  (``zhaoshang.clock.today()``, so ``ZHAOSHANG_TODAY`` pins it): printed at the start, and the first
  line of the benchmark's section in ``docs/benchmarks.md``.
- **The results page only for published sizes.** A benchmark rewrites its own section of
  ``docs/benchmarks.md`` only when it ran at the sizes the page reports (and not ``--no-doc``):
  a smaller run prints its figures and leaves the page alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The project's packages before bench/ itself: bench/land.py must not shadow the land package.
_BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [str(ROOT), *(p for p in sys.path if p not in (str(ROOT), _BENCH, "")), _BENCH]

from sqlalchemy import Connection, Engine, text  # noqa: E402
from sqlalchemy.engine import URL  # noqa: E402

from warehouse.db import create_postgis, drop_database, ensure_database, make_engine, resolve_url  # noqa: E402
from warehouse.migrate import upgrade  # noqa: E402
from zhaoshang import clock  # noqa: E402
from zhaoshang.settings import load_settings  # noqa: E402

FULL_EVENTS = 1_000_000
N_EVENTS = int(os.environ.get("ZHAOSHANG_BENCH_EVENTS", str(FULL_EVENTS)))
DOC = ROOT / "docs" / "benchmarks.md"
DATABASE_VAR = "ZHAOSHANG_BENCH_DATABASE_URL"
DIR_VAR = "ZHAOSHANG_BENCH_DIR"
CACHE_VAR = "ZHAOSHANG_BENCH_CACHE"
# Marks a database a benchmark may empty: its own, or a given one that was empty when first used.
BENCH_MARK = "zhaoshang benchmark data: benchmarks empty its tables"
# Seeded by migrations, never emptied: rm_position (the read models' position row), web_secret (the cookie-signing key).
NOT_DATA_TABLES = {"spatial_ref_sys", "alembic_version", "rm_position", "web_secret"}

# The event file's generator and its parameters (also the cache key).
SEED = 20261122
DISTRICT_PROJECTS = 5000
HISTORY_START, HISTORY_END = date(2012, 1, 1), date(2026, 10, 31)

DOC_INTRO = """# Benchmarks

Figures measured with `./run bench NAME` (scripts in `bench/`). Every section says the machine and
the date it was measured on; each benchmark prints its figures and rewrites only its own section.
"""


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def parser(doc: str | None, *, database: bool = True) -> argparse.ArgumentParser:
    """The benchmark's argument parser with the options every benchmark shares."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = ap.add_argument_group("where it runs (see bench/_common.py)")
    if database:
        where.add_argument(
            "--database-url",
            default=os.environ.get(DATABASE_VAR) or None,
            help=f"the database to use (default ${DATABASE_VAR}; else one of its own on the server of"
            " $ZHAOSHANG_DATABASE_URL, unique to the run, dropped at the end unless --keep)",
        )
    where.add_argument(
        "--work-dir",
        type=Path,
        default=os.environ.get(DIR_VAR) or None,
        help=f"folder for the run's files (default ${DIR_VAR}; else a fresh temporary folder, removed unless --keep)",
    )
    where.add_argument(
        "--cache-dir",
        type=Path,
        default=os.environ.get(CACHE_VAR) or None,
        help=f"opt-in cache for the generated event file, reused by later runs (default ${CACHE_VAR}; else none)",
    )
    where.add_argument("--keep", action="store_true", help="keep the run's own database and work folder")
    where.add_argument(
        "--no-doc",
        "--no-write",
        dest="no_doc",
        action="store_true",
        help="never write docs/benchmarks.md (it is written only after a run at the published sizes anyway)",
    )
    return ap


# --------------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------------


def _first_match(path: str, pattern: str) -> str | None:
    try:
        found = re.search(pattern, Path(path).read_text(encoding="utf-8", errors="replace"), re.M)
    except OSError:
        return None
    return found.group(1).strip() if found else None


@dataclass(frozen=True)
class Provenance:
    """What a run measured on, read when it runs."""

    cpu_model: str
    cpus: int
    memory_gib: float | None
    os: str
    python: str
    database: str | None  # "PostgreSQL 15.20 + PostGIS 3.3.2 over Unix socket /var/run/postgresql"
    day: date

    def line(self) -> str:
        memory = f", {self.memory_gib:.1f} GiB RAM" if self.memory_gib is not None else ""
        db = self.database or "no database"
        return (
            f"Machine: {self.cpu_model}, {self.cpus} CPUs{memory}, {self.os}; {db}; Python {self.python}."
            f" Date: {self.day.isoformat()}."
        )


def _server(engine: Engine) -> str:
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar_one()
        postgis = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")).scalar()
        info = conn.connection.driver_connection.info  # type: ignore[union-attr]
        host, port = info.host, info.port
    # libpq's own answer: the socket directory it connected through, or the TCP host.
    reached = f"Unix socket {host}" if str(host).startswith("/") else f"TCP {host}:{port}"
    return f"PostgreSQL {str(version).split()[0]}{f' + PostGIS {postgis}' if postgis else ''} over {reached}"


def provenance(engine: Engine | None) -> Provenance:
    mem_kib = _first_match("/proc/meminfo", r"^MemTotal:\s+(\d+)")
    distro = _first_match("/etc/os-release", r'^PRETTY_NAME="?([^"\n]*)') or platform.system()
    return Provenance(
        cpu_model=_first_match("/proc/cpuinfo", r"^model name\s*:\s*(.+)$") or platform.processor() or platform.machine(),
        cpus=os.cpu_count() or 0,
        memory_gib=int(mem_kib) / 2**20 if mem_kib else None,
        os=f"{distro} ({platform.system()} {platform.release()})",
        python=platform.python_version(),
        database=_server(engine) if engine is not None else None,
        day=clock.today(),  # a benchmark is an entry point: its date is the product's clock
    )


# --------------------------------------------------------------------------------------------
# The run: database, folders, results page
# --------------------------------------------------------------------------------------------


@dataclass
class Bench:
    name: str
    args: argparse.Namespace
    full: bool  # ran at the sizes docs/benchmarks.md reports
    work: Path
    cache: Path | None
    url: URL | None
    engine: Engine | None
    provenance: Provenance

    @property
    def database_url(self) -> str:
        assert self.url is not None, f"bench {self.name} runs without a database"
        return self.url.render_as_string(hide_password=False)

    def events_file(self, n: int) -> Path:
        """The event file in the cache folder when one is given (reused), else in the run's work folder."""
        return events_file(n, self.cache or self.work)

    def empty_tables(self) -> None:
        """Empty every table of the run's database (it is a benchmark's: see ``_claim``)."""
        assert self.engine is not None, f"bench {self.name} runs without a database"
        with self.engine.begin() as conn:
            tables = [t for t in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars() if t not in NOT_DATA_TABLES]
            empty_tables(conn, *tables)

    def machine_line(self) -> str:
        return self.provenance.line()

    def write_section(self, body: str) -> None:
        """Replace this benchmark's section of docs/benchmarks.md, when the run is one to publish."""
        if self.args.no_doc:
            print("docs/benchmarks.md not written (--no-doc)", flush=True)
        elif not self.full:
            print("docs/benchmarks.md not written: not the published sizes (see --help for the defaults)", flush=True)
        else:
            write_section(self.name, body)


def _own_database_url(name: str) -> URL:
    base = resolve_url(load_settings().database_url)  # the server (and base name) of ZHAOSHANG_DATABASE_URL, or the product's default
    return base.set(database=f"{base.database}_bench_{name}_{uuid.uuid4().hex[:8]}")


def _claim(engine: Engine, url: URL) -> None:
    """Refuse a given database that holds data a benchmark did not put there; mark it as a benchmark's."""
    with engine.begin() as conn:
        mark = conn.execute(
            text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()")
        ).scalar()
        if mark == BENCH_MARK:
            return
        tables = [t for t in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars() if t not in NOT_DATA_TABLES]
        holding = [t for t in tables if conn.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{t}")')).scalar()]
        if holding:
            raise SystemExit(
                f"bench: refusing database {url.database!r}: it holds data ({', '.join(sorted(holding))}) no benchmark wrote,"
                " and benchmarks empty their tables. Give an empty database, or none (the run then makes its own)."
            )
        ident = conn.dialect.identifier_preparer.quote(url.database or "")
        conn.execute(text(f"COMMENT ON DATABASE {ident} IS '{BENCH_MARK}'"))


def prepare_database(url: URL) -> Engine:
    """The database created when missing, with PostGIS and the schema at head."""
    ensure_database(url)
    engine = make_engine(url, as_app=False)  # a scratch database: the benchmark empties its tables
    with engine.begin() as conn:
        create_postgis(conn)
    upgrade(engine)
    return engine


def is_full(args: argparse.Namespace, published: Mapping[str, Any]) -> bool:
    return all(getattr(args, key) == value for key, value in published.items())


@contextmanager
def bench_run(name: str, args: argparse.Namespace, *, published: Mapping[str, Any], database: bool = True) -> Iterator[Bench]:
    """Set up where benchmark ``name`` runs (see the module's docstring), print its provenance, clean up after."""
    given_dir = args.work_dir is not None
    work = Path(args.work_dir) if given_dir else Path(tempfile.mkdtemp(prefix=f"zhaoshang-bench-{name}-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache_dir) if args.cache_dir is not None else None
    given_db = database and args.database_url is not None
    url = (resolve_url(args.database_url) if given_db else _own_database_url(name)) if database else None
    engine: Engine | None = None
    try:
        if url is not None:
            engine = prepare_database(url)
            _claim(engine, url)
        bench = Bench(name, args, is_full(args, published), work, cache, url, engine, provenance(engine))
        print(bench.machine_line(), flush=True)
        where = f"work folder {work}" + (f", database {url.database!r}" if url is not None else "") + (f", cache {cache}" if cache else "")
        print(f"bench {name}: {where}", flush=True)
        yield bench
    finally:
        if engine is not None:
            engine.dispose()
        keep = args.keep
        if url is not None and not given_db:
            if keep:
                print(f"kept the run's database: {url.render_as_string(hide_password=True)}", flush=True)
            else:
                drop_database(url)
        if not given_dir:
            if keep:
                print(f"kept the run's work folder: {work}", flush=True)
            else:
                shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The 1,000,000-event file
# --------------------------------------------------------------------------------------------


def events_key(n: int) -> str:
    """The generator's parameters, and its source (a changed generator makes other events)."""
    source = (ROOT / "demo" / "history.py").read_bytes()
    params = {
        "n": n,
        "seed": SEED,
        "district_projects": DISTRICT_PROJECTS,
        "start": HISTORY_START.isoformat(),
        "end": HISTORY_END.isoformat(),
        "generator": hashlib.sha256(source).hexdigest(),
    }
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def _generate(n: int) -> list[dict[str, Any]]:
    from demo.history import generate_history

    # Districts of 5,000 projects each (the generator is quadratic in a rare correction path),
    # their ids prefixed so they never collide.
    history: list[dict[str, Any]] = []
    part = 0
    while len(history) < n:
        part += 1
        chunk = generate_history(seed=SEED + part, n_projects=DISTRICT_PROJECTS, start=HISTORY_START, end=HISTORY_END)
        for e in chunk:
            e["event_id"] = f"D{part:03d}-{e['event_id']}"
            e["project_id"] = f"D{part:03d}-{e['project_id']}"
            if e["type"] == "retracted":
                e["payload"] = {**e["payload"], "event_id": f"D{part:03d}-{e['payload']['event_id']}"}
        history.extend(chunk)
    return history[:n]


def events_file(n: int, folder: Path) -> Path:
    """``n`` events as JSON Lines in ``folder`` (generated districts of 5,000 projects each, ~220,000 projects for 1,000,000).

    Reused when ``folder`` already holds the file for the same parameters (a cache folder).
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"events_{n}_{events_key(n)}.jsonl"
    if path.is_file():
        print(f"events: {path} (cached)", flush=True)
        return path
    t0 = time.perf_counter()
    history = _generate(n)
    # A unique temporary name, then an atomic rename: a concurrent run sees the whole file or none.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for ev in history:
                fh.write(json.dumps(ev, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"generated {n:,} events in {time.perf_counter() - t0:.1f} s → {path}", flush=True)
    return path


# --------------------------------------------------------------------------------------------
# Measuring and publishing
# --------------------------------------------------------------------------------------------


@contextmanager
def timed(label: str, into: dict[str, float]) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    into[label] = time.perf_counter() - t0
    print(f"  {label}: {into[label]:.2f} s", flush=True)


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


def stop_when_consumed(proc: subprocess.Popen[str], consumed: Callable[[], int], expected: int, stall_s: float) -> None:
    """SIGTERM ``proc`` (a consumer that runs until stopped) once ``consumed()`` reaches ``expected``.

    Never earlier, whatever the pauses (no idle timeout: a busy machine once stopped a sink after
    199,615 of 500,000 events). SystemExit with a FAILED line when ``proc`` exits before, or when
    ``consumed()`` stays put for ``stall_s`` seconds.
    """
    last, since = -1, time.monotonic()
    while True:
        got = consumed()
        if got >= expected:
            proc.send_signal(signal.SIGTERM)
            return
        if proc.poll() is not None:
            raise SystemExit(
                f"FAILED: the consumer exited (code {proc.returncode}) after {got:,} of {expected:,} published events"
            )
        now = time.monotonic()
        if got != last:
            last, since = got, now
        elif now - since >= stall_s:
            raise SystemExit(f"FAILED: {got:,} of {expected:,} published events consumed, and no progress for {stall_s:.0f} s")
        time.sleep(0.25)


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


def empty_tables(conn: Connection, *tables: str) -> None:
    """Empty a benchmark database's tables, past the log's TRUNCATE trigger the way the test fixtures
    pass it (``session_replication_role``: a superuser, on a scratch database only)."""
    if not tables:
        return
    conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


# The log's indexes that only the read models need (migration 0010): dropped, the log is as it was
# before them, for the "before this issue" side of a comparison.
_READ_MODEL_LOG_INDEXES = {
    "event_log_project": "CREATE INDEX event_log_project ON event_log (project_id)",
    "event_log_recorded": "CREATE INDEX event_log_recorded ON event_log (recorded_at) INCLUDE (occurred_at, type, project_id)",
    "event_log_retraction_target": (
        "CREATE INDEX event_log_retraction_target ON event_log ((payload->>'event_id')) WHERE type = 'retracted'"
    ),
}


def read_model_log_indexes(conn: Connection, *, keep: bool) -> None:
    """Drop the read models' indexes on the (empty) log, and create them again when ``keep``."""
    for index, create in _READ_MODEL_LOG_INDEXES.items():
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
        if keep:
            conn.exec_driver_sql(create)


def empty_log(conn: Connection, *, read_model_indexes: bool, also: tuple[str, ...] = ()) -> None:
    """An empty log and empty read models at position 0 (and the tables ``also``), with the read
    models' log indexes or, for the "before this issue" side of a comparison, without them."""
    empty_tables(conn, "event_log", "dead_letter", "rm_project_version", "rm_project_record", *also)
    conn.exec_driver_sql("UPDATE rm_position SET seq = 0")
    read_model_log_indexes(conn, keep=read_model_indexes)
