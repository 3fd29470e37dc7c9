"""A command imports only what it runs: the command line loads the modules of the command it was given."""

from __future__ import annotations

import gc
import subprocess
import sys

from sqlalchemy import Engine

from zhaoshang import cli


def test_every_command_is_mapped_to_the_modules_that_define_it() -> None:
    app = cli.load_commands(cli.ALL_MODULES)
    assert set(cli.ALL_MODULES) == {m for ms in cli.COMMAND_MODULES.values() for m in ms}
    top = {c.name: [c.callback.__module__ if c.callback else ""] for c in app.registered_commands}
    for group in app.registered_groups:
        assert group.typer_instance is not None
        top[str(group.name)] = [c.callback.__module__ if c.callback else "" for c in group.typer_instance.registered_commands]
    assert set(top) == set(cli.COMMAND_MODULES)
    for name, modules in top.items():
        assert set(modules) <= set(cli.COMMAND_MODULES[name]), (name, modules)
    assert cli.modules_for(["deadletters", "list", "--limit", "1"]) == ("zhaoshang.commands.core",)
    assert cli.modules_for(["--help"]) == cli.modules_for(["no-such-command"]) == cli.ALL_MODULES


def test_a_database_command_starts_without_the_heavy_layers(db: Engine, db_url_str: str) -> None:
    """The console script run as a user runs it, to its answer: the import graph of what it did."""
    heavy = ("fastapi", "dagster", "geopandas", "pandas", "folium", "kafka", "openpyxl", "alembic", "pydantic")
    probe = (
        "import sys\n"
        "from zhaoshang.cli import main\n"
        f"sys.argv = ['zhaoshang', 'deadletters', 'list', '--limit', '1', '--database-url', {db_url_str!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
        f"print('loaded:', ','.join(m for m in {heavy!r} if m in sys.modules))\n"
        "import gc\n"
        "from zhaoshang import common\n"
        "print('left:', len(common._ENGINES), gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-2:] == ["loaded: ", "left: 0 True"], done.stdout


def test_the_console_script_leaves_its_objects_out_of_the_final_collection(db: Engine, db_url_str: str) -> None:
    """``leave`` (the console script's last step) closes the engines ``engine_of`` made, so the
    command's connection is gone while the process still lives, and freezes the heap."""
    probe = (
        "import gc, sys\n"
        "from zhaoshang import common\n"
        f"engine = common.engine_of({db_url_str!r})\n"
        "with engine.connect() as conn:\n"
        "    pid = conn.exec_driver_sql('SELECT pg_backend_pid()').scalar_one()\n"
        "common.leave()\n"
        "print(pid, engine.pool.checkedin(), not common._ENGINES, gc.get_freeze_count() > 0, flush=True)\n"
        "sys.stdin.read()\n"  # alive until the test has looked at the server
    )
    with subprocess.Popen([sys.executable, "-c", probe], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        pid, checked_in, cleared, frozen = line.split()
        assert (checked_in, cleared, frozen) == ("0", "True", "True"), line
        with db.connect() as conn:  # the process lives on, its connection closed
            assert not conn.exec_driver_sql(f"SELECT 1 FROM pg_stat_activity WHERE pid = {int(pid)}").first()
        proc.stdin.close()
    assert proc.returncode == 0


def test_each_command_runs_as_itself_when_only_its_modules_are_loaded() -> None:
    # A module with one command (`demo`, `match`, `settings`) must not become the whole program.
    probe = (
        "import sys\n"
        "from zhaoshang.cli import load_commands, modules_for\n"
        "app = load_commands(modules_for(sys.argv[1:]))\n"
        "app(prog_name='zhaoshang')\n"
    )
    names = sorted(cli.COMMAND_MODULES)
    runs = [subprocess.Popen([sys.executable, "-c", probe, name, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in names]
    for name, run in zip(names, runs, strict=True):
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, (name, err)
        assert f"Usage: zhaoshang {name} " in " ".join(out.split()), (name, out[:300])


def test_an_engine_a_command_let_go_of_is_not_kept(db: Engine, db_url_str: str) -> None:
    """Commands run in one process (the tests do) must not pile up engines and their connections
    until the server refuses more: ``engine_of`` remembers an engine only while it is in use."""
    from zhaoshang import common

    for _ in range(3):
        engine = common.engine_of(db_url_str)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    assert engine in common._ENGINES
    del engine, conn
    gc.collect()
    assert not common._ENGINES
