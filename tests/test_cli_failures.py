"""Every command, given each class of bad input, ends in one line that names the input: no traceback, no hang.

The real ``zhaoshang`` console script runs as a subprocess (the net under the commands is its
``main``). ``ZHAOSHANG_CONNECT_TIMEOUT=2`` keeps the silent-server cases short; the subprocess
timeout is only the bound that turns a hang into a failure, nothing is timed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, text

from demo.requirements import demo_requirements
from tests.kpi_district import DISTRICT

ROOT = Path(__file__).resolve().parent.parent
HANG_BOUND = 120  # seconds: far above the 2 s connect timeout, far below a hang


def zhaoshang(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "zhaoshang"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "zhaoshang.cli"]
    full_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ZHAOSHANG_CONNECT_TIMEOUT": "2",
        "ZHAOSHANG_TODAY": "2025-01-15",
        **(env or {}),
    }
    full_env.pop("ZHAOSHANG_DEBUG", None)
    return subprocess.run(
        [*cmd, *map(str, args)], capture_output=True, text=True, env=full_env, timeout=HANG_BOUND, stdin=subprocess.DEVNULL
    )


def assert_one_line(result: subprocess.CompletedProcess[str], names: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert names in lines[0], lines[0]


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@dataclass
class Inputs:
    """Valid inputs for every command, so that only the input under test is bad."""

    events: Path
    ledger: Path
    land: Path
    requirement: Path
    requirements_dir: Path
    tmp: Path


def square(lon: float, lat: float, d: float = 0.002) -> list[list[list[float]]]:
    return [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]]


def land_file(path: Path, ids: list[str]) -> Path:
    features = [
        {"type": "Feature", "properties": {"地块编号": sid, "状态": "闲置"}, "geometry": {"type": "Polygon", "coordinates": square(106.3 + int(sid[1:]) * 0.01, 26.4)}}
        for sid in ids  # a site's square depends on its id only: the same site in two files is unchanged
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in DISTRICT), encoding="utf-8")
    ledger = tmp_path / "台账.csv"
    ledger.write_text("项目编号,项目名称,投资方,签约时间\nPB-1,某项目,某公司,2024-01-05\n", encoding="utf-8")
    requirement = tmp_path / "需求.json"
    requirement.write_text(json.dumps(demo_requirements()["精细化工"], ensure_ascii=False), encoding="utf-8")
    batch = tmp_path / "reqs"
    batch.mkdir()
    (batch / "a.json").write_text(requirement.read_text(encoding="utf-8"), encoding="utf-8")
    return Inputs(events, ledger, land_file(tmp_path / "parcels.geojson", ["L1", "L2"]), requirement, batch, tmp_path)


# Every command that uses the warehouse, as a valid invocation.
DB_COMMANDS: dict[str, Callable[[Inputs], list[str | Path]]] = {
    "events load": lambda f: ["events", "load", f.events],
    "replay": lambda f: ["replay", "--as-of", "2024-12-31"],
    "report kpis": lambda f: ["report", "kpis", "--from", "2024-01-01", "--to", "2024-12-31"],
    "deadletters list": lambda f: ["deadletters", "list"],
    "deadletters retry": lambda f: ["deadletters", "retry"],
    "ledger import": lambda f: ["ledger", "import", f.ledger, "--as-of", "2024-03-31"],
    "land load": lambda f: ["land", "load", f.land, "--kind", "idle", "--valid-from", "2024-01-01"],
    "land status": lambda f: ["land", "status", "--as-of", "2024-12-31"],
    "match": lambda f: ["match", f.requirement, "--as-of", "2024-12-31"],
    "maps publish": lambda f: ["maps", "publish", "--out", f.tmp / "maps", "--as-of", "2024-12-31"],
    "stream": lambda f: ["stream", "--bootstrap", "127.0.0.1:1", "--topic", "t", "--stop-when-idle", "1"],
}


@pytest.mark.parametrize("command", DB_COMMANDS)
def test_a_database_url_that_is_no_url(command: str, inputs: Inputs) -> None:
    result = zhaoshang(*DB_COMMANDS[command](inputs), "--database-url", "not-a-url")
    assert_one_line(result, "not-a-url")


@pytest.mark.parametrize("command", DB_COMMANDS)
def test_a_database_server_that_never_answers(command: str, inputs: Inputs, silent_port: int) -> None:
    result = zhaoshang(*DB_COMMANDS[command](inputs), "--database-url", f"postgresql://u@127.0.0.1:{silent_port}/db")
    assert_one_line(result, f"127.0.0.1:{silent_port}")
    assert "timeout" in result.stderr


def test_a_bad_timeout_setting_is_named(inputs: Inputs, db_url_str: str) -> None:
    result = zhaoshang("replay", "--as-of", "2024-12-31", "--database-url", db_url_str, env={"ZHAOSHANG_CONNECT_TIMEOUT": "soon"})
    assert_one_line(result, "ZHAOSHANG_CONNECT_TIMEOUT")


KAFKA_COMMANDS: dict[str, Callable[[Inputs, str], list[str | Path]]] = {
    "events publish": lambda f, boot: ["events", "publish", f.events, "--bootstrap", boot, "--topic", "t"],
    "stream": lambda f, boot: ["stream", "--bootstrap", boot, "--topic", "t", "--stop-when-idle", "1"],
    "ledger import --publish": lambda f, boot: ["ledger", "import", f.ledger, "--as-of", "2024-03-31", "--publish", "--bootstrap", boot],
}


@pytest.mark.parametrize("command", KAFKA_COMMANDS)
def test_a_kafka_broker_that_never_answers(command: str, inputs: Inputs, silent_port: int, db: Engine, db_url_str: str) -> None:
    # events publish takes no database option: the environment names the database for all three.
    result = zhaoshang(*KAFKA_COMMANDS[command](inputs, f"127.0.0.1:{silent_port}"), env={"ZHAOSHANG_DATABASE_URL": db_url_str})
    assert_one_line(result, f"127.0.0.1:{silent_port}")


NOT_UTF8 = "{\"investor\": \"某公司\", \"industry\": \"化工\"}".encode("gbk") + b"\xff"

TEXT_INPUTS: dict[str, Callable[[Inputs, Path], list[str | Path]]] = {
    "match": lambda f, bad: ["match", bad, "--as-of", "2024-12-31"],
    "deadletters retry --replace-with": lambda f, bad: ["deadletters", "retry", "--id", "1", "--replace-with", bad],
    "maps publish --requirement": lambda f, bad: ["maps", "publish", "--out", f.tmp / "maps", "--requirement", bad],
    "ledger import --mapping": lambda f, bad: ["ledger", "import", f.ledger, "--mapping", bad],
}


@pytest.mark.parametrize("command", TEXT_INPUTS)
def test_a_text_input_that_is_not_utf8(command: str, inputs: Inputs, db: Engine, db_url_str: str) -> None:
    bad = inputs.tmp / "需求-gbk.json"
    bad.write_bytes(NOT_UTF8)
    result = zhaoshang(*TEXT_INPUTS[command](inputs, bad), "--database-url", db_url_str)
    assert_one_line(result, "需求-gbk.json")


def _truncated_xlsx(path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["项目编号", "项目名称", "签约时间"])
    ws.append(["PB-1", "某项目", "2024-01-05"])
    wb.save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _zip_without_workbook(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not a workbook")


def _broken_sheet_xml(path: Path) -> None:
    wb = Workbook()
    wb.save(path)
    with zipfile.ZipFile(path) as src:
        parts = {name: src.read(name) for name in src.namelist()}
    parts["xl/worksheets/sheet1.xml"] = b"<worksheet><sheetData><row"
    with zipfile.ZipFile(path, "w") as dst:
        for name, data in parts.items():
            dst.writestr(name, data)


BAD_WORKBOOKS: dict[str, Callable[[Path], None]] = {
    "empty": lambda p: p.write_bytes(b""),
    "random bytes": lambda p: p.write_bytes(os.urandom(4096)),
    "truncated": _truncated_xlsx,
    "a zip but no workbook": _zip_without_workbook,
    "broken sheet XML": _broken_sheet_xml,
}


@pytest.mark.parametrize("kind", BAD_WORKBOOKS)
def test_a_corrupt_or_empty_workbook(kind: str, db: Engine, db_url_str: str, tmp_path: Path) -> None:
    path = tmp_path / "台账2024年3月.xlsx"
    BAD_WORKBOOKS[kind](path)
    result = zhaoshang("ledger", "import", path, "--database-url", db_url_str)
    assert_one_line(result, "台账2024年3月.xlsx")
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_log")).scalar_one() == 0


OUTPUTS: dict[str, Callable[[Inputs, Path], list[str | Path]]] = {
    "maps publish --out": lambda f, target: ["maps", "publish", "--out", target],
    "match --batch --out": lambda f, target: ["match", "--batch", f.requirements_dir, "--out", target],
    "match --map": lambda f, target: ["match", f.requirement, "--map", target / "m.html"],
    "report kpis --xlsx": lambda f, target: ["report", "kpis", "--from", "2024-01-01", "--to", "2024-12-31", "--xlsx", target / "k.xlsx"],
    "demo --out": lambda f, target: ["demo", "--out", target],
}


@pytest.mark.parametrize("where", ["an existing file", "an impossible path"])
@pytest.mark.parametrize("command", OUTPUTS)
def test_an_output_that_cannot_be_written(command: str, where: str, inputs: Inputs, db: Engine, db_url_str: str) -> None:
    blocker = inputs.tmp / "已有文件"
    blocker.write_text("x", encoding="utf-8")
    # A file where a folder must go: as the folder itself, or as a parent of it (no mkdir can get past it).
    target = blocker if where == "an existing file" else blocker / "子目录" / "更深"
    if command in ("match --map", "report kpis --xlsx") and where == "an existing file":
        target = blocker / "x"  # these name a file: the existing file stands where their folder must be
    result = zhaoshang(*OUTPUTS[command](inputs, target), "--database-url", db_url_str)
    assert_one_line(result, str(blocker))


def test_a_killed_connection_mid_load_is_one_line(db: Engine, db_url_str: str, inputs: Inputs) -> None:
    """``pg_terminate_backend`` on the load's connection while it waits for the log."""
    for_each = {
        "events load": (["events", "load", inputs.events], "event_log"),
        "land load": (["land", "load", inputs.land, "--kind", "idle", "--valid-from", "2024-01-01"], "land_inventory"),
        "ledger import": (["ledger", "import", inputs.ledger, "--as-of", "2024-03-31"], "event_log"),
    }
    script = Path(sys.executable).parent / "zhaoshang"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "zhaoshang.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ZHAOSHANG_DEBUG", None)
    for name, (args, table) in for_each.items():
        with db.connect() as holder:
            holder.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))  # the load queues behind it
            proc = subprocess.Popen([*cmd, *map(str, args), "--database-url", db_url_str], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            try:
                victim = None
                deadline = time.monotonic() + HANG_BOUND
                while victim is None and proc.poll() is None and time.monotonic() < deadline:
                    with db.connect() as probe:
                        victim = probe.execute(
                            text(
                                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                " AND wait_event_type = 'Lock' AND pid <> :me"
                            ),
                            {"me": holder.execute(text("SELECT pg_backend_pid()")).scalar_one()},
                        ).scalar()
                    time.sleep(0.05)
                assert victim is not None, f"{name}: never reached the locked table: {proc.communicate()}"
                with db.connect() as killer:
                    assert killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": victim}).scalar_one()
            finally:
                holder.rollback()
            _, stderr = proc.communicate(timeout=HANG_BOUND)
        result = subprocess.CompletedProcess(args, proc.returncode, "", stderr)
        assert_one_line(result, "database")
        assert "connection" in stderr, (name, stderr)  # psycopg: "the connection is lost"
        assert db_url_str.split("?")[0].split("///")[-1] in stderr, (name, stderr)  # the database's name


class TestLandFileThatWouldEmptyTheInventory:
    def load(self, db_url_str: str, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return zhaoshang("land", "load", path, "--kind", "idle", "--valid-from", "2024-06-01", "--database-url", db_url_str, "--json", *extra)

    def open_ids(self, db: Engine) -> list[str]:
        with db.connect() as conn:
            return conn.execute(text("SELECT site_id FROM land_inventory WHERE kind = 'idle' AND valid_to IS NULL ORDER BY 1")).scalars().all()  # type: ignore[return-value]

    @pytest.mark.parametrize(
        ("content", "code"),
        [
            ('{"type": "FeatureCollection", "features": []}', 0),
            # Allowed, it still rejected a feature: exit 1 (README, exit codes).
            ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"地块编号": "X"}, "geometry": null}]}', 1),
        ],
        ids=["no features", "every feature rejected"],
    )
    def test_an_empty_file_is_refused(self, content: str, code: int, db: Engine, db_url_str: str, inputs: Inputs) -> None:
        assert zhaoshang("land", "load", inputs.land, "--kind", "idle", "--valid-from", "2024-01-01", "--database-url", db_url_str).returncode == 0
        empty = inputs.tmp / "空.geojson"
        empty.write_text(content, encoding="utf-8")
        assert_one_line(self.load(db_url_str, empty), "空.geojson")
        assert self.open_ids(db) == ["L1", "L2"]
        allowed = self.load(db_url_str, empty, "--allow-empty")
        assert allowed.returncode == code, allowed.stderr
        assert json.loads(allowed.stdout)["closed"] == 2
        assert self.open_ids(db) == []

    def test_an_empty_file_into_an_empty_inventory_is_refused_too(self, db: Engine, db_url_str: str, inputs: Inputs) -> None:
        empty = inputs.tmp / "空.geojson"
        empty.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
        assert_one_line(self.load(db_url_str, empty), "空.geojson")

    def test_a_file_naming_none_of_the_open_sites(self, db: Engine, db_url_str: str, inputs: Inputs) -> None:
        assert zhaoshang("land", "load", inputs.land, "--kind", "idle", "--valid-from", "2024-01-01", "--database-url", db_url_str).returncode == 0
        other = land_file(inputs.tmp / "别的.geojson", ["Z1"])
        assert_one_line(self.load(db_url_str, other), "别的.geojson")
        assert self.open_ids(db) == ["L1", "L2"]
        partial = self.load(db_url_str, other, "--partial")
        assert partial.returncode == 0, partial.stderr
        assert self.open_ids(db) == ["L1", "L2", "Z1"]

    def test_a_file_keeping_one_open_site_loads(self, db: Engine, db_url_str: str, inputs: Inputs) -> None:
        assert zhaoshang("land", "load", inputs.land, "--kind", "idle", "--valid-from", "2024-01-01", "--database-url", db_url_str).returncode == 0
        result = self.load(db_url_str, land_file(inputs.tmp / "新.geojson", ["L2", "L3"]))
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["closed"] == 1
        assert self.open_ids(db) == ["L2", "L3"]
