"""What holds for every command: closed vocabularies are enums typer checks, one meaning per option
name, one table of exit codes (README and ``zhaoshang --help`` alike)."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections import defaultdict
from collections.abc import Iterator
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from events.choices import Lang, member
from events.kpis import KpiGroup, KpiMode
from land.vocabulary import SITE_KIND_LABELS, SITE_KINDS, SiteKind
from maps.vocabulary import Basemap, Profile
from reports.bulletin_document import BulletinFormat, BulletinVersion
from zhaoshang.cli import app
from zhaoshang.common import EXIT_CODES, ExitCode
from zhaoshang.logs import LogFormat

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
# A database no command could use: a value typer refuses must end the command before it is reached.
NO_DATABASE = ["--database-url", "sqlite:///never-used.db"]
KPIS = ["report", "kpis", "--from", "2024-01-01", "--to", "2024-12-31"]
BULLETIN = ["report", "bulletin", "--month", "2024-03"]

# (the command and its required arguments, the option, its vocabulary)
CHOICES: list[tuple[list[str], str, type[StrEnum]]] = [
    (KPIS, "--mode", KpiMode),
    (KPIS, "--by", KpiGroup),
    (KPIS, "--lang", Lang),
    (BULLETIN, "--as", BulletinVersion),
    (BULLETIN, "--format", BulletinFormat),
    (["land", "load", "land.geojson"], "--kind", SiteKind),
    (["land", "history", "P1"], "--kind", SiteKind),
    (["match", "req.json"], "--lang", Lang),
    (["match", "req.json"], "--basemap", Basemap),
    (["maps", "publish", "--out", "maps"], "--profile", Profile),
    (["maps", "publish", "--out", "maps"], "--basemap", Basemap),
    (["maps", "publish", "--out", "maps"], "--lang", Lang),
    (["stream", "--bootstrap", "127.0.0.1:9"], "--log-format", LogFormat),
]


def flat(text: str) -> str:
    """Rich's boxes and wrapping taken out: one line of words."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def command_words(args: list[str]) -> list[str]:
    """``["report", "kpis", "--from", …]`` → ``["report", "kpis"]``: the path to the command."""
    group: Any = typer.main.get_command(app)
    words = []
    for word in args:
        if word not in getattr(group, "commands", {}):
            break
        words.append(word)
        group = group.commands[word]
    return words


@pytest.mark.parametrize(("args", "option", "vocabulary"), CHOICES, ids=lambda v: v if isinstance(v, str) else None)
def test_help_lists_the_choices(args: list[str], option: str, vocabulary: type[StrEnum]) -> None:
    shown = runner.invoke(app, [*command_words(args), "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    line = next(line for line in shown.stdout.splitlines() if f" {option} " in line)
    assert "<" + "|".join(v.value for v in vocabulary) + ">" in line


@pytest.mark.parametrize(("args", "option", "vocabulary"), CHOICES, ids=lambda v: v if isinstance(v, str) else None)
def test_a_bad_choice_is_a_usage_error(args: list[str], option: str, vocabulary: type[StrEnum]) -> None:
    done = runner.invoke(app, [*args, option, "bogus", *NO_DATABASE])
    assert done.exit_code == ExitCode.USAGE
    assert isinstance(done.exception, SystemExit)
    said = flat(done.stderr)
    assert said.startswith("Usage: zhaoshang ") and f"Invalid value for '{option}'" in said and "Traceback" not in said
    assert all(f"'{v.value}'" in said for v in vocabulary)  # typer names the allowed values


def test_every_closed_option_is_one_of_the_vocabularies() -> None:
    """No command keeps a hand-made list: every Choice option takes exactly one vocabulary's values."""
    vocabularies = {tuple(v.value for v in e) for e in (Lang, KpiMode, KpiGroup, SiteKind, Basemap, Profile, LogFormat, BulletinVersion, BulletinFormat)}
    choices = {(path, p.opts[0]): tuple(v.value for v in vocabulary_of(kind)) for path, p, kind in options() if vocabulary_of(kind)}
    assert choices and all(values in vocabularies for values in choices.values()), choices
    listed = {(" ".join(command_words(args)), option) for args, option, _ in CHOICES}
    assert set(choices) == listed  # and the tests above cover each one


def test_the_vocabularies_and_their_labels_agree() -> None:
    assert SITE_KINDS == tuple(SITE_KIND_LABELS) == tuple(SiteKind)
    assert member(KpiMode, "flow", "mode") is KpiMode.FLOW
    with pytest.raises(ValueError, match=r"basemap must be one of none, osm, tianditu, gaode, got 'bing'"):
        member(Basemap, "bing", "basemap")


def options() -> Iterator[tuple[str, Any, Any]]:
    """(command path, option, its Python type) for every option of every command (typer's own click objects)."""

    def walk(cmd: Any, path: list[str]) -> Iterator[tuple[str, Any, Any]]:
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*path, name])
        for param in cmd.params:
            if param.param_type_name == "option":
                yield " ".join(path), param, annotation_of(cmd, param.name)

    yield from walk(typer.main.get_command(app), [])


def annotation_of(cmd: Any, name: str) -> Any:
    """The Python type the command's own function declares for a parameter (``X | None`` and
    ``list[X]`` read as X): read from the function, not from typer's internals, which change between releases."""
    if cmd.callback is None:
        return None
    hint = typing.get_type_hints(inspect.unwrap(cmd.callback)).get(name)
    while typing.get_origin(hint) in (types.UnionType, typing.Union, list):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def vocabulary_of(kind: Any) -> type[Enum] | None:
    return kind if isinstance(kind, type) and issubclass(kind, Enum) else None


def meaning(param: Any, kind: Any) -> tuple[Any, ...]:
    """What an option takes: its Python type (an enum names its vocabulary), bounds, repeated or not, a flag
    or not, and the environment variable that stands in for it."""
    bounds = (getattr(param.type, "min", None), getattr(param.type, "max", None))
    return (kind, *bounds, param.multiple, param.is_flag, param.envvar)


# The demo starts its own broker unless told otherwise: a ZHAOSHANG_KAFKA_BOOTSTRAP set for real work
# must not receive demo data, so its --bootstrap alone reads no variable.
UNBOUND = {("demo", "--bootstrap")}


def test_one_meaning_per_option_name() -> None:
    """An option name takes the same kind of value in every command (``--partitions`` once meant a count
    in ``events publish`` and a list in ``stream``; the count is ``--partition-count`` now)."""
    seen: dict[str, dict[tuple[Any, ...], list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, param, kind in options():
        for name in param.opts:
            if (path, name) not in UNBOUND:
                seen[name][meaning(param, kind)].append(path)
    assert {name: dict(by) for name, by in seen.items() if len(by) > 1} == {}
    used_by = {name: sorted(path for paths in by.values() for path in paths) for name, by in seen.items()}
    assert (used_by["--partition-count"], used_by["--partitions"]) == (["events publish"], ["stream"])


def test_the_exit_codes_are_one_table_in_help_and_readme() -> None:
    assert [int(c) for c in EXIT_CODES] == [int(c) for c in ExitCode] == [0, 1, 2, 3]
    shown = flat(runner.invoke(app, ["--help"]).stdout)
    readme = flat(re.sub(r"[|`]", " ", (ROOT / "README.md").read_text(encoding="utf-8")))
    for code, text in EXIT_CODES.items():
        assert f"{int(code)} {flat(text)}" in shown
        assert f"{int(code)} {flat(text)}" in readme


def test_bad_usage_exits_2_and_a_rejected_record_exits_1(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    """Three rows of the table, through real commands: 2 before any work, 1 when a record was refused, 0 else."""
    assert runner.invoke(app, ["replay", "--no-such-option"]).exit_code == ExitCode.USAGE
    assert runner.invoke(app, ["replay", "--as-of", "2024-13-01", "--database-url", db_url_str]).exit_code == ExitCode.USAGE
    good = '{"event_id": "e1", "project_id": "P1", "type": "signed", "occurred_at": "2024-01-10", "payload": {"name": "甲", "investment_wan": 1}}'
    clean, partial = tmp_path / "clean.jsonl", tmp_path / "partial.jsonl"
    clean.write_text(good + "\n", encoding="utf-8")
    partial.write_text(good + "\n[1, 2]\n", encoding="utf-8")
    loaded = runner.invoke(app, ["events", "load", str(clean), "--database-url", db_url_str])
    assert loaded.exit_code == ExitCode.OK, loaded.output
    refused = runner.invoke(app, ["events", "load", str(partial), "--json", "--database-url", db_url_str])
    assert refused.exit_code == ExitCode.FAILED, refused.output
    assert '"rejected": 1' in refused.stdout  # the counts are still printed
