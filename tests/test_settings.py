"""One settings object documents every environment variable the product reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhaoshang.cli import app
from zhaoshang.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("events", "land", "warehouse", "ingestion", "reports", "maps", "assets", "zhaoshang", "demo")


def test_every_variable_the_code_reads_is_a_documented_setting() -> None:
    declared = {variable for variable, _value, _description in Settings().variables()}
    used: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            used |= set(re.findall(r"\"((?:ZHAOSHANG_[A-Z_]+)|TIANDITU_KEY)\"", path.read_text(encoding="utf-8")))
    used -= {"ZHAOSHANG_TIANDITU_KEY"}  # the alias of TIANDITU_KEY
    assert used <= declared, sorted(used - declared)
    assert all(description for _v, _value, description in Settings().variables())


def test_settings_read_and_validate_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHAOSHANG_TODAY", "2028-02-29")
    monkeypatch.setenv("TIANDITU_KEY", "secret-key")
    monkeypatch.setenv("ZHAOSHANG_LOG_FORMAT", "json")
    settings = load_settings()
    assert str(settings.today) == "2028-02-29" and settings.log_format == "json" and settings.tianditu_key == "secret-key"
    shown = dict((v, value) for v, value, _d in settings.variables())
    assert shown["TIANDITU_KEY"] == "********"  # a secret is never printed


def test_the_settings_command_lists_them_and_refuses_a_bad_one(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["settings", "--json"])
    assert listed.exit_code == 0, listed.stderr
    names = {row["variable"] for row in json.loads(listed.stdout)}
    assert {"ZHAOSHANG_DATABASE_URL", "ZHAOSHANG_TODAY", "ZHAOSHANG_LOG_FORMAT", "TIANDITU_KEY"} <= names
    monkeypatch.setenv("ZHAOSHANG_LOG_FORMAT", "xml")
    bad = runner.invoke(app, ["settings"])
    assert bad.exit_code == 2 and "ZHAOSHANG_LOG_FORMAT" in bad.stderr


def test_logs_as_json_lines_on_stderr(db_url_str: str) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "ZHAOSHANG_LOG_FORMAT": "json", "ZHAOSHANG_LOG_LEVEL": "INFO"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "zhaoshang"), "setup", "--database-url", db_url_str], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["logger"] == "warehouse.provision" and r["level"] == "INFO" and "database" in r for r in records)
    assert '"level"' not in done.stdout  # logs never mix with a command's result


def test_every_bad_variable_is_named_with_its_reason_and_an_empty_one_is_unset() -> None:
    from zhaoshang.settings import InvalidSettings

    with pytest.raises(InvalidSettings) as caught:
        load_settings({"ZHAOSHANG_STATEMENT_TIMEOUT": "-1", "ZHAOSHANG_DEBUG": "maybe", "ZHAOSHANG_TODAY": "2026-02-30", "ZHAOSHANG_KAFKA_TOPIC": "t"})
    named = {variable for variable, _raw, _reason in caught.value.problems}
    assert named == {"ZHAOSHANG_STATEMENT_TIMEOUT", "ZHAOSHANG_DEBUG", "ZHAOSHANG_TODAY"}
    assert "ZHAOSHANG_DEBUG='maybe': must be true or false" in str(caught.value)
    settings = load_settings({"zhaoshang_debug": "YES", "ZHAOSHANG_LOG_LEVEL": "info", "ZHAOSHANG_CONNECT_TIMEOUT": " ", "DAGSTER_HOME": "/tmp/d"})
    assert settings.debug and settings.log_level == "INFO" and settings.connect_timeout == 10
    assert settings.is_set("dagster_home") and not settings.is_set("connect_timeout") and str(settings.dagster_home) == "/tmp/d"
    assert Settings.variable("tianditu_key") == "TIANDITU_KEY" and Settings.variable("today") == "ZHAOSHANG_TODAY"
