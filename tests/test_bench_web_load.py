"""The workspace load harness (``bench/web_load.py``) end to end at a tiny size.

It builds its warehouse (2,000 events, 500 parcels) in a database of its own, serves it with
``zhaoshang serve``, runs locust headless for a few seconds as a subprocess and prints the figures.
Asserted: the figures are there, the endpoints that exist answered without a failure, a page not
built yet is reported and left out, a failing endpoint is reported without ending the run, and the
harness itself never imports locust or gevent (locust patches the standard library on import).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from warehouse.db import drop_database, resolve_url

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = "web_load summary: "
# What the workspace has on every branch: the floors of the mix (static file, session lookup).
PRESENT = ("GET /static/app.css", "GET /api/me")


@pytest.fixture(scope="module")
def load_db() -> Iterator[URL]:
    base = resolve_url(os.environ.get("ZHAOSHANG_TEST_DATABASE_URL"))
    url = base.set(database=f"{base.database}_webload_{uuid.uuid4().hex[:8]}")
    yield url
    drop_database(url)


def _harness(url: URL, work: Path, *extra: str) -> tuple[str, dict[str, Any]]:
    cmd = [
        sys.executable, str(ROOT / "bench" / "web_load.py"),
        "--events", "2000", "--parcels", "500", "--factories", "40", "--users", "2", "--workers", "1",
        "--duration", "5s", "--think", "0", "--no-doc",
        "--database-url", url.render_as_string(hide_password=False), "--work-dir", str(work), *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith(SUMMARY))
    return done.stdout, json.loads(line[len(SUMMARY) :])


@pytest.fixture(scope="module")
def default_run(load_db: URL, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """The harness with its built-in mix: builds the warehouse the other runs reuse."""
    return _harness(load_db, tmp_path_factory.mktemp("web_load"))


@pytest.mark.slow  # two runs of the harness: about 30 s on an idle machine, a minute on a busy one
def test_the_default_mix_runs_without_failures(default_run: tuple[str, dict[str, Any]]) -> None:
    out, summary = default_run
    assert "warehouse: built" in out
    assert "| endpoint | requests | failures | p50 ms | p95 ms | p99 ms | max ms |" in out
    assert "**all requests**" in out and "Goal p95 ≤ 300 ms with no errors:" in out
    assert summary["requests"] > 0 and summary["failures"] == 0, summary["failure_reasons"]
    for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
        assert summary[key] is not None and summary[key] >= 0
    # Logged in (each user once, measured apart) and browsed what exists, without a failure.
    assert summary["logged_in"] and summary["logins"]["POST /login"]["requests"] == 2
    assert summary["logins"]["POST /login"]["failures"] == 0 and "POST /login" not in summary["endpoints"]
    for name in PRESENT:
        assert summary["endpoints"][name]["requests"] > 0 and summary["endpoints"][name]["failures"] == 0
    # Whatever the probe found missing was left out of the load, not failed.
    for name in summary["missing"]:
        assert name not in summary["endpoints"]


def _endpoints(tmp_path: Path, specs: list[dict[str, Any]]) -> Path:
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps(specs), encoding="utf-8")
    return path


@pytest.mark.slow
def test_missing_and_failing_endpoints_are_reported_not_fatal(
    default_run: tuple[str, dict[str, Any]], load_db: URL, tmp_path: Path
) -> None:
    specs = [
        {"path": "/static/app.css"},
        {"path": "/not-built-yet?page={page}"},
        {"path": "/api/me?as=expects-204", "expect": [204]},  # always "fails": the run goes on and says why
    ]
    out, summary = _harness(load_db, tmp_path / "run", "--endpoints", str(_endpoints(tmp_path, specs)))
    assert "warehouse: reused" in out  # same sizes as the default run
    assert summary["missing"] == ["GET /not-built-yet?page={page}"]
    assert "`GET /not-built-yet?page={page}` (404)" in out
    failing = summary["endpoints"]["GET /api/me?as=expects-204"]
    assert failing["requests"] > 0 and failing["failures"] == failing["requests"]
    assert any(f["name"] == "GET /api/me?as=expects-204" and "HTTP 200" in f["error"] for f in summary["failure_reasons"])
    assert summary["endpoints"]["GET /static/app.css"]["failures"] == 0
    assert "**not met**" in out


def test_the_harness_never_imports_locust_or_gevent() -> None:
    code = (
        "import sys; sys.path.insert(0, 'bench'); import web_load; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')); "
        "assert not bad, bad; import importlib.util as u; assert u.find_spec('locust') and u.find_spec('gevent')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
