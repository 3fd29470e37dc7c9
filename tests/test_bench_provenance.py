"""Benchmarks run where they are told, say what they measured on, and never stop before their input is consumed.

One benchmark (``bench/append.py``, 1,500 events: a couple of seconds) runs as a user runs it,
against a given database and work folder, then with neither; the shared parts of
``bench/_common.py`` (the event-file cache, the consumer stop) are tested in-process.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from warehouse.db import drop_database, make_engine
from warehouse.event_store import Incoming, load_records

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DOC = ROOT / "docs" / "benchmarks.md"
PINNED = "2027-03-01"
N = 1500


def _common() -> ModuleType:
    """bench/_common.py, loaded fresh (tests patch its module globals)."""
    spec = importlib.util.spec_from_file_location("bench_common_under_test", BENCH / "_common.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def _cpu_model() -> str:
    found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    return found.group(1).strip() if found else ""


def _reached(url: URL) -> str:
    host = url.query.get("host") or url.host
    if isinstance(host, tuple):
        host = host[0]
    return f"Unix socket {host}" if str(host).startswith("/") else f"TCP {host}:{url.port or 5432}"


def _databases_like(engine: Engine, prefix: str) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": prefix + "%"}).scalars())


@pytest.fixture
def bench_env(tmp_path: Path, database_url: URL) -> dict[str, Any]:
    """An environment where anything a benchmark makes on its own can be found: a private temp
    folder, and a server default whose database name is unique to this test."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    base = database_url.set(database=f"zs_benchtest_{uuid.uuid4().hex[:8]}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZHAOSHANG_BENCH")}
    env.update(
        PYTHONPATH=str(ROOT),
        TMPDIR=str(tmpdir),
        ZHAOSHANG_TODAY=PINNED,
        ZHAOSHANG_DATABASE_URL=base.render_as_string(hide_password=False),
    )
    return {"env": env, "tmpdir": tmpdir, "prefix": base.database}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH / "append.py"), "--events", str(N), *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("reach", ["as configured", "tcp"])
def test_append_uses_the_database_and_folder_it_is_given(db: Engine, database_url: URL, bench_env: dict[str, Any], tmp_path: Path, reach: str) -> None:
    url = database_url
    if reach == "tcp":
        if not _reached(url).startswith("Unix socket"):
            pytest.skip("the test server is reached over TCP already")
        url = url.set(host="127.0.0.1", port=5432, query={})
    work = tmp_path / "work"
    doc_before = DOC.read_bytes()

    proc = _run(["--database-url", url.render_as_string(hide_password=False), "--work-dir", str(work)], bench_env["env"])
    assert proc.returncode == 0, proc.stderr[-3000:]

    # The database it was given holds its tables and the events; no database of its own was made.
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_log")).scalar_one() == N
        version = conn.execute(text("SHOW server_version")).scalar_one().split()[0]
    assert _databases_like(db, bench_env["prefix"]) == []
    # Its files are in the folder it was given, nothing in the default temporary folder.
    assert [p.name for p in work.glob(f"events_{N}_*.jsonl")], sorted(p.name for p in work.iterdir())
    assert list(bench_env["tmpdir"].iterdir()) == []
    # The provenance names this machine, its server as reached, and the clock's date.
    machine = next(line for line in proc.stdout.splitlines() if line.startswith("Machine: "))
    assert _cpu_model() in machine and f"{os.cpu_count()} CPUs" in machine
    assert f"PostgreSQL {version}" in machine and _reached(url) in machine
    assert f"Python {sys.version.split()[0]}" in machine
    assert machine.endswith(f"Date: {PINNED}.")
    # A tiny run does not touch the results page.
    assert "docs/benchmarks.md not written" in proc.stdout
    assert DOC.read_bytes() == doc_before


@pytest.mark.parametrize("keep", [False, True])
def test_without_a_database_or_folder_a_run_makes_its_own(session_engine: Engine, bench_env: dict[str, Any], keep: bool) -> None:
    proc = _run(["--keep"] if keep else [], bench_env["env"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = re.search(r"work folder (\S+), database '([^']+)'", proc.stdout)
    assert said, proc.stdout
    folder, name = Path(said.group(1)), said.group(2)
    # Unique per run, on the server of ZHAOSHANG_DATABASE_URL, under the temporary folder.
    assert re.fullmatch(re.escape(bench_env["prefix"]) + r"_bench_append_[0-9a-f]{8}", name)
    assert folder.parent == bench_env["tmpdir"]
    try:
        assert _databases_like(session_engine, bench_env["prefix"]) == ([name] if keep else [])
        assert folder.is_dir() == keep
        if keep:
            engine = make_engine(session_engine.url.set(database=name))
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM event_log")).scalar_one() == N
            engine.dispose()
    finally:
        drop_database(session_engine.url.set(database=name))


def test_a_given_database_holding_other_data_is_refused(db: Engine, db_url_str: str, bench_env: dict[str, Any], tmp_path: Path) -> None:
    event = '{"event_id": "e1", "project_id": "p1", "type": "signed", "occurred_at": "2026-01-05", "payload": {"name": "甲", "investment_wan": 1000}}'
    assert load_records(db, [Incoming(event, "bureau", "1")]).accepted == 1
    with db.begin() as conn:  # not a database a benchmark used before
        conn.execute(text(f'COMMENT ON DATABASE "{db.url.database}" IS NULL'))

    proc = _run(["--database-url", db_url_str, "--work-dir", str(tmp_path / "work")], bench_env["env"])
    assert proc.returncode != 0
    assert "refusing database" in proc.stderr and "event_log" in proc.stderr
    with db.connect() as conn:
        assert conn.execute(text("SELECT event_id FROM event_log")).scalars().all() == ["e1"]


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_")))
def test_every_benchmark_has_help_with_the_shared_options(name: str) -> None:
    proc = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--help"], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for option in ("--work-dir", "--keep", "--no-doc"):
        assert option in proc.stdout
    uses_database = name not in ("maps", "match")
    assert ("--database-url" in proc.stdout) == uses_database


# --------------------------------------------------------------------------------------------
# The event-file cache
# --------------------------------------------------------------------------------------------


def test_cached_event_file_is_reused_and_keyed_by_the_generator_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    common = _common()
    # A crashed run's partial file under the temporary naming is never taken for the file.
    first = common.events_file(200, tmp_path)
    (tmp_path / f"{first.name}.crashed.tmp").write_text('{"event_id": "half', encoding="utf-8")
    assert len(first.read_text(encoding="utf-8").splitlines()) == 200
    stamp = first.stat().st_mtime_ns
    again = common.events_file(200, tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp  # reused, not regenerated
    assert common.events_file(150, tmp_path) != first
    monkeypatch.setattr(common, "SEED", common.SEED + 1)
    other_seed = common.events_file(200, tmp_path)
    assert other_seed != first and other_seed.read_text(encoding="utf-8") != first.read_text(encoding="utf-8")
    # Only whole files besides the crashed one: every write went through a temporary name and a rename.
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tmp") == [f"{first.name}.crashed.tmp"]


# --------------------------------------------------------------------------------------------
# Consumers are stopped only once their input is consumed
# --------------------------------------------------------------------------------------------


def _child(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], text=True)


def test_a_consumer_is_stopped_once_everything_is_consumed() -> None:
    common = _common()
    proc = _child("import time; time.sleep(120)")
    counts = iter([0, 10, 10, 25, 29, 30])
    seen: list[int] = []

    def consumed() -> int:
        seen.append(next(counts))
        return seen[-1]

    try:
        common.stop_when_consumed(proc, consumed, 30, stall_s=60)
        assert seen == [0, 10, 10, 25, 29, 30]  # not stopped before the last event
        assert proc.wait(timeout=30) == -signal.SIGTERM
    finally:
        proc.kill()


@pytest.mark.parametrize(
    ("code", "counts", "said"),
    [
        pytest.param("import sys; sys.exit(0)", [5], "exited (code 0) after 5 of 30", id="exits-early-with-success"),
        pytest.param("import sys; sys.exit(3)", [0], "exited (code 3) after 0 of 30", id="exits-early-with-failure"),
        pytest.param("import time; time.sleep(120)", [7], "7 of 30 published events consumed, and no progress", id="stalls"),
    ],
)
def test_a_consumer_that_ends_or_stalls_short_fails_loudly(code: str, counts: list[int], said: str) -> None:
    common = _common()
    proc = _child(code)
    if "exit" in code:
        proc.wait(timeout=60)  # it has ended before the first look
    try:
        with pytest.raises(SystemExit) as failed:
            common.stop_when_consumed(proc, lambda: counts[0], 30, stall_s=0.5)
        assert str(failed.value).startswith("FAILED: ") and said in str(failed.value)
    finally:
        proc.kill()
        proc.wait(timeout=30)
