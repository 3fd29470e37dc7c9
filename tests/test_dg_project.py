"""The repository is a `dg` project (``[tool.dg]`` in pyproject.toml): ``dg list defs`` run from its
root finds every asset, check, job, schedule and sensor of ``tests/snapshots/asset_graph.json``.

Loading the definitions touches no database, so this needs no service: the warehouse URL points
at a port where nothing listens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def test_dg_list_defs_sees_the_whole_asset_graph(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        # dg warns when the activated virtual environment is not the project's own .venv.
        "VIRTUAL_ENV": sys.prefix,
        "ZHAOSHANG_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nowhere",
        "ZHAOSHANG_OUTPUT_DIR": str(tmp_path / "out"),
    }
    proc = subprocess.run(
        [str(BIN / "dg"), "list", "defs", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    listed = json.loads(proc.stdout)
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))

    assets = {a["asset_key"]: a for a in listed["assets"]}
    assert set(assets) == set(expected["assets"])
    for key, node in expected["assets"].items():
        assert assets[key]["group_name"] == node["group"], key
        assert sorted(assets[key]["dependency_keys"]) == node["deps"], key
    checks = {(c["asset_key"], c["name"]) for c in listed["asset_checks"]}
    assert checks == {(key, check) for key, node in expected["assets"].items() for check in node["checks"]}
    assert sorted(j["name"] for j in listed["jobs"]) == expected["jobs"]
    assert sorted([s["name"], s["cron_schedule"]] for s in listed["schedules"]) == expected["schedules"]
    assert sorted(s["name"] for s in listed["sensors"]) == expected["sensors"]
    assert {r["name"] for r in listed["resources"]} == {"warehouse", "kafka", "output"}
