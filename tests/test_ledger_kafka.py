"""``ledger import --publish``: the ledger's events through Kafka and the sink into the warehouse."""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, text
from typer.testing import CliRunner

from events.model import local_date
from ingestion.kafka_stream import run_sink
from tests.ledger_fixtures import MONTH1_TOTALS, write_month1, write_month2
from warehouse.replay import kpi_report, parse_known_at
from zhaoshang.cli import app

KPI_FIELDS = tuple(MONTH1_TOTALS)


def _publish(path: Path, bootstrap: str, topic: str, db_url_str: str) -> dict:  # type: ignore[type-arg]
    res = CliRunner().invoke(
        app, ["ledger", "import", str(path), "--publish", "--bootstrap", bootstrap, "--topic", topic, "--database-url", db_url_str, "--json"]
    )
    assert res.exit_code == 0, res.output
    out: dict = json.loads(res.stdout)  # type: ignore[type-arg]
    assert out["append"] is None, "published, not written"
    return out


def test_publish_two_months_through_the_sink(db: Engine, db_url_str: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"ledger-{uuid.uuid4().hex[:8]}"
    first = _publish(write_month1(tmp_path), kafka_bootstrap, topic, db_url_str)
    assert first["published"]["sent"] == 10
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_log")).scalar_one() == 0
    sunk = run_sink(db, kafka_bootstrap, topic, name=f"t-{topic}", stop_when_idle=2.0, handle_signals=False)
    assert sunk["accepted"] == 10
    # the sink caught up: the next month diffs against it
    second = _publish(write_month2(tmp_path), kafka_bootstrap, topic, db_url_str)
    assert second["published"]["sent"] == 3
    assert second["events"]["by_type"] == {"funds_arrived": 1, "retracted": 1, "started": 1}
    sunk = run_sink(db, kafka_bootstrap, topic, name=f"t-{topic}", stop_when_idle=2.0, handle_signals=False)
    assert sunk["accepted"] == 3
    with db.connect() as conn:
        then = kpi_report(conn, date_from=date(2018, 1, 1), date_to=date(2018, 4, 30), known_at=parse_known_at("2018-03-31"))
        now = kpi_report(conn, date_from=date(2018, 1, 1), date_to=date(2018, 4, 30))
        recorded = conn.execute(text("SELECT DISTINCT recorded_at FROM event_log")).scalars().all()
    assert {k: then[k] for k in KPI_FIELDS} == MONTH1_TOTALS
    assert now["funds_wan"] == 4700.0
    assert sorted(local_date(r) for r in recorded) == [date(2018, 3, 31), date(2018, 4, 30)], "recorded_at is the ledger's date"


def test_publish_to_an_unreachable_broker_is_a_clear_error(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["ledger", "import", str(write_month1(tmp_path)), "--publish", "--bootstrap", "127.0.0.1:1", "--database-url", db_url_str]
    )
    assert res.exit_code == 2 and "cannot publish to Kafka" in res.output
