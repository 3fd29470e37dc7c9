"""Dagster's storage in the warehouse: the ``dagster.yaml`` the demo writes puts runs and their
events into the schema ``zhaoshang_dagster`` that ``zhaoshang setup`` creates, beside (never among)
the warehouse's own tables."""

from __future__ import annotations

import stat
from pathlib import Path

import dagster as dg
import yaml
from sqlalchemy import Engine, text

from assets.instance import MARKER, write_instance_yaml
from warehouse.db import DAGSTER_SCHEMA
from warehouse.roles import APP_ROLE


@dg.asset
def storage_probe() -> int:
    return 1


def test_setup_creates_the_dagster_schema_for_the_application(db: Engine) -> None:
    with db.connect() as conn:
        owner = conn.execute(text("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = :s"), {"s": DAGSTER_SCHEMA}).scalar()
    assert owner == APP_ROLE


def test_runs_of_an_instance_from_the_written_yaml_land_in_postgres(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    with db.connect() as conn:
        warehouse_version = conn.execute(text("SELECT version_num FROM public.alembic_version")).scalar_one()
    assert write_instance_yaml(home, db_url_str)
    assert stat.S_IMODE((home / "dagster.yaml").stat().st_mode) == 0o600

    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.materialize([storage_probe], instance=instance)
        assert result.success
        assert instance.get_run_by_id(result.run_id) is not None

    with db.connect() as conn:
        status = conn.execute(text(f"SELECT status FROM {DAGSTER_SCHEMA}.runs WHERE run_id = :r"), {"r": result.run_id}).scalar()
        events = conn.execute(
            text(f"SELECT count(*) FROM {DAGSTER_SCHEMA}.event_logs WHERE run_id = :r AND dagster_event_type = 'ASSET_MATERIALIZATION'"),
            {"r": result.run_id},
        ).scalar_one()
        public_runs = conn.execute(text("SELECT to_regclass('public.runs')")).scalar()
        version_after = conn.execute(text("SELECT version_num FROM public.alembic_version")).scalar_one()
    assert status == "SUCCESS"
    assert events == 1
    # Dagster's tables (and its own alembic_version) stay in their schema; the warehouse's are untouched.
    assert public_runs is None
    assert version_after == warehouse_version


def test_a_dagster_yaml_of_someone_else_is_kept_and_ours_follows_the_warehouse(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    theirs = "storage:\n  sqlite:\n    base_dir: /elsewhere\n"
    (home / "dagster.yaml").write_text(theirs, encoding="utf-8")
    assert not write_instance_yaml(home, "postgresql://u@db.example:5433/first")
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == theirs

    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")  # the demo's earlier file
    assert write_instance_yaml(home, "postgresql://u@db.example:5433/first")
    assert write_instance_yaml(home, "postgresql://u@db.example:5433/second")
    written = (home / "dagster.yaml").read_text(encoding="utf-8")
    assert written.startswith(MARKER)
    url = yaml.safe_load(written)["storage"]["postgres"]["postgres_url"]
    assert url == "postgresql+psycopg2://u@db.example:5433/second?options=-c+search_path%3Dzhaoshang_dagster"
