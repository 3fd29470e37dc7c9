"""The schema is declared once (warehouse/schema.py) and the migrations build exactly it; only
``zhaoshang setup`` migrates, every other command checks the revision with one query."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from warehouse.db import drop_database, ensure_database
from warehouse.migrate import alembic_config, head_revision
from warehouse.revision import SCHEMA_REVISION

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def test_the_migrations_have_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [head_revision()]
    # What commands check without loading Alembic (warehouse/revision.py).
    assert head_revision() == SCHEMA_REVISION


def test_declared_schema_equals_the_migrations(session_engine: Engine) -> None:
    command.check(alembic_config(session_engine))  # raises when autogenerate would emit anything


def test_alembic_check_from_the_command_line(database_url: URL) -> None:
    env = {**os.environ, "ZHAOSHANG_DATABASE_URL": database_url.render_as_string(hide_password=False)}
    done = subprocess.run(
        [str(BIN / "alembic"), "-c", "warehouse/alembic.ini", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "No new upgrade operations detected" in done.stdout + done.stderr


def test_commands_do_not_migrate_they_say_to_run_setup(database_url: URL) -> None:
    bare = database_url.set(database=f"{database_url.database}_bare_{uuid.uuid4().hex[:6]}")
    ensure_database(bare)
    try:
        url = bare.render_as_string(hide_password=False)
        done = subprocess.run([str(BIN / "zhaoshang"), "replay", "--database-url", url], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "zhaoshang setup" in done.stderr and "Traceback" not in done.stderr
        assert head_revision() in done.stderr
        setup = subprocess.run([str(BIN / "zhaoshang"), "setup", "--database-url", url], capture_output=True, text=True, timeout=300)
        assert setup.returncode == 0, setup.stderr[-2000:]
        again = subprocess.run([str(BIN / "zhaoshang"), "replay", "--json", "--database-url", url], capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and again.stdout.strip() == "[]"
    finally:
        drop_database(bare)
