"""A SIGKILL during an append or a read-model update leaves nothing half-applied.

The real ``zhaoshang`` runs as a subprocess; the test waits until PostgreSQL shows it writing (the
log, or the read models), kills it with SIGKILL, waits for the server to roll its transaction
back, and then ``zhaoshang projections rebuild --check`` must find no difference between the read
models and the log at the position they claim; after an update, none either.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from demo.history import generate_history
from events.store import Horizon
from warehouse import read_models
from warehouse.event_store import load_records, read_jsonl
from warehouse.replay import fold_states

ROOT = Path(__file__).resolve().parent.parent
BOUND_S = 120  # only turns a hang into a failure; nothing is timed


def _events_file(tmp_path: Path, projects: int) -> Path:
    path = tmp_path / "events.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for ev in generate_history(seed=7, n_projects=projects, start=date(2021, 1, 1), end=date(2024, 12, 31)):
            fh.write(json.dumps(ev, ensure_ascii=False) + "\n")
    return path


def _zhaoshang(*args: str | Path) -> subprocess.Popen[str]:
    script = Path(sys.executable).parent / "zhaoshang"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "zhaoshang.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZHAOSHANG_TODAY": "2025-01-15"}
    return subprocess.Popen([*cmd, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = _zhaoshang(*args)
    out, err = proc.communicate(timeout=BOUND_S)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _other_backends(conn: Connection, condition: str, params: dict[str, str]) -> int:
    """How many other sessions on this database match ``condition`` (pg_stat_activity), read afresh."""
    n = conn.execute(
        text(f"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND {condition}"),
        params,
    ).scalar_one()
    conn.rollback()  # the next read sees a new snapshot of the statistics
    return int(n)


def _kill_when_writing(engine: Engine, proc: subprocess.Popen[str], pattern: str) -> None:
    """SIGKILL ``proc`` as soon as one of its statements matching ``pattern`` is running or its transaction is open after one."""
    deadline = time.monotonic() + BOUND_S
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            if _other_backends(conn, "state IN ('active', 'idle in transaction') AND query ILIKE :p", {"p": pattern}):
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=BOUND_S)
                return
            assert proc.poll() is None, f"finished before it could be killed: {proc.communicate()}"
            time.sleep(0.005)
    raise AssertionError(f"never saw {pattern!r}")


def _wait_rolled_back(engine: Engine) -> None:
    """Until the killed client's backend has gone (PostgreSQL rolls its transaction back)."""
    deadline = time.monotonic() + BOUND_S
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            if not _other_backends(conn, "state <> 'idle' AND backend_type = 'client backend'", {}):
                return
            time.sleep(0.05)
    raise AssertionError("the killed client's transaction is still open")


def _assert_consistent(db: Engine, url: str) -> None:
    checked = _run("projections", "rebuild", "--check", "--database-url", url, "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["differences"] == 0
    updated = _run("projections", "update", "--database-url", url)
    assert updated.returncode == 0, updated.stderr
    checked = _run("projections", "rebuild", "--check", "--database-url", url, "--json")
    assert checked.returncode == 0 and json.loads(checked.stdout)["differences"] == 0, checked.stdout
    horizon = Horizon(date(2024, 12, 31))
    with db.connect() as conn:
        assert read_models.states_at(conn, horizon) == fold_states(conn, horizon)


def test_sigkill_during_a_read_model_update(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    path = _events_file(tmp_path, 1500)
    load_records(db, read_jsonl(path, "crash"))
    with db.connect() as conn:
        assert read_models.position(conn) == 0
    proc = _zhaoshang("projections", "update", "--database-url", db_url_str)
    _kill_when_writing(db, proc, "%rm_project_%")
    assert proc.returncode == -signal.SIGKILL
    _wait_rolled_back(db)
    with db.connect() as conn:
        assert read_models.position(conn) == 0  # the update was one transaction: all of it or nothing
    _assert_consistent(db, db_url_str)


def test_sigkill_during_an_append(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    path = _events_file(tmp_path, 3000)
    lines = sum(1 for _ in path.open(encoding="utf-8"))
    proc = _zhaoshang("events", "load", path, "--batch-size", "200", "--database-url", db_url_str)
    # Killed while a batch is being written, after some batches are in.
    deadline = time.monotonic() + BOUND_S
    with db.connect() as conn:
        while conn.execute(text("SELECT count(*) FROM event_log")).scalar_one() < 1000 and time.monotonic() < deadline:
            conn.rollback()
            time.sleep(0.01)
    _kill_when_writing(db, proc, "%event_log%")
    _wait_rolled_back(db)
    with db.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM event_log")).scalar_one()
    assert 0 < stored < lines
    _assert_consistent(db, db_url_str)
    # Re-running the load completes it: what was in is a duplicate, the rest accepted, nothing lost.
    again = load_records(db, read_jsonl(path, "crash-rerun"))
    assert again.read == lines and again.rejected == 0
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_log")).scalar_one() == stored + again.accepted
    _assert_consistent(db, db_url_str)
