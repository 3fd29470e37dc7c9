"""Kafka → warehouse, against the real broker (Tansu) and the real PostGIS: exactly once in effect."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from demo.history import generate_history
from ingestion.broker import BrokerError, LocalBroker, free_port, port_is_open
from ingestion.kafka_stream import (
    PartitionBatch,
    SinkFenced,
    StreamError,
    publish_records,
    run_sink,
    sink_offsets,
    write_batch,
)
from tests.dbutil import truncate
from warehouse.event_store import Incoming
from zhaoshang.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _topic() -> str:
    return f"events-{uuid.uuid4().hex[:10]}"


def _history(n_projects: int, seed: int = 7, prefix: str = "") -> list[dict[str, Any]]:
    """Demo events; ``prefix`` makes their event and project ids distinct from another history's."""
    events = generate_history(seed=seed, n_projects=n_projects)
    if prefix:
        for e in events:
            e["event_id"] = prefix + e["event_id"]
            e["project_id"] = prefix + e["project_id"]
            if e["type"] == "retracted":
                e["payload"] = {**e["payload"], "event_id": prefix + e["payload"]["event_id"]}
    return events


def _with_faults(history: list[dict[str, Any]]) -> tuple[list[dict[str, Any] | str], dict[str, int]]:
    """The history with a re-sent event, a conflicting version (same project), broken and invalid records."""
    first = history[0]
    conflicting = {**first, "payload": {**first["payload"], "investment_wan": 1.0}}
    records: list[dict[str, Any] | str] = list(history[: len(history) // 2])
    records += ["{not json", json.dumps(first), json.dumps(conflicting)]
    records += [{"event_id": "bad-1", "project_id": first["project_id"], "type": "signed", "occurred_at": "2024-01-01"}]
    records += list(history[len(history) // 2 :])
    expected = {"accepted": len(history), "duplicates": 1, "rejected": 3}
    return records, expected


def _snapshot(engine: Engine) -> dict[str, Any]:
    """What the warehouse holds, without arrival times and serial ids (they differ run to run)."""
    with engine.connect() as conn:
        log = conn.execute(
            text(
                "SELECT event_id, project_id, type, occurred_at, recorded_at, payload::text, content_hash, source, source_position"
                " FROM event_log ORDER BY event_id"
            )
        ).all()
        letters = conn.execute(
            text("SELECT source, source_position, event_id, reason, raw, status FROM dead_letter ORDER BY source_position")
        ).all()
        offsets = conn.execute(
            text(
                "SELECT sink_name, topic, partition, next_offset, records_read, records_accepted, records_duplicate,"
                " records_rejected FROM stream_offset ORDER BY partition"
            )
        ).all()
    return {"log": [tuple(r) for r in log], "dead_letters": [tuple(r) for r in letters], "offsets": [tuple(r) for r in offsets]}


def _truncate(engine: Engine) -> None:
    with engine.begin() as conn:
        truncate(conn, "event_log", "dead_letter", "stream_offset")


def _sink_cmd(bootstrap: str, topic: str, db_url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "zhaoshang.cli", "stream", "--bootstrap", bootstrap, "--topic", topic, "--database-url", db_url, *extra]


def _sink_in_tx(engine: Engine, sink_name: str) -> bool:
    """True while the sink's connection has a transaction open (mid-batch)."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE :n"
                    " AND xact_start IS NOT NULL AND state <> 'idle'"
                ),
                {"n": f"zhaoshang stream {sink_name} %"},
            ).scalar_one()
        )


def _wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _committed(engine: Engine, sink_name: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(text("SELECT coalesce(sum(records_read), 0) FROM stream_offset WHERE sink_name = :s"), {"s": sink_name}).scalar_one()
        )


def test_everything_published_arrives_once_and_bad_messages_are_dead_lettered(db: Engine, kafka_bootstrap: str) -> None:
    topic = _topic()
    history = _history(250)
    records, expected = _with_faults(history)
    sent = publish_records(kafka_bootstrap, topic, records, partitions=3)
    assert sent == {"read": len(records), "sent": len(records), "invalid": 0, "partitions": 3, "invalid_reasons": []}

    result = run_sink(db, kafka_bootstrap, topic, stop_when_idle=1.0, batch_size=400, handle_signals=False)

    assert result["read"] == len(records)
    assert result["read"] == result["accepted"] + result["duplicates"] + result["rejected"]
    assert {k: result[k] for k in expected} == expected
    assert result["stopped_by"] == "idle"
    assert all(p["lag"] == 0 for p in result["partitions"].values())
    with db.connect() as conn:
        ids = conn.execute(text("SELECT event_id FROM event_log")).scalars().all()
        letters = conn.execute(text("SELECT source, source_position, reason, raw FROM dead_letter ORDER BY id")).all()
        offsets = sink_offsets(conn, sink_name="warehouse", topic=topic)
    assert sorted(ids) == sorted(e["event_id"] for e in history)
    reasons = " | ".join(r.reason for r in letters)
    assert "broken JSON" in reasons and "conflict" in reasons and "investment_wan" in reasons
    # Each dead letter names its topic, partition and offset; that message is exactly the stored raw text.
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None, enable_auto_commit=False)
    try:
        for letter in letters:
            assert letter.source == topic
            _, p, _, o = letter.source_position.split()
            tp = TopicPartition(topic, int(p))
            consumer.assign([tp])
            consumer.seek(tp, int(o))
            msgs = consumer.poll(timeout_ms=5000, max_records=1)[tp]
            assert msgs[0].offset == int(o) and msgs[0].value.decode() == letter.raw
    finally:
        consumer.close()
    # The lifetime counters in the warehouse agree with the run, partition by partition.
    assert sum(o["records_read"] for o in offsets) == len(records)
    for o in offsets:
        assert o["records_read"] == o["records_accepted"] + o["records_duplicate"] + o["records_rejected"]
        assert o["next_offset"] == result["partitions"][o["partition"]]["next_offset"]

    again = run_sink(db, kafka_bootstrap, topic, stop_when_idle=0.5, handle_signals=False)
    assert again["read"] == 0 and _snapshot(db)["log"] == _snapshot(db)["log"]
    reset = run_sink(db, kafka_bootstrap, topic, stop_when_idle=0.5, reset=True, handle_signals=False)
    assert reset["read"] == len(records) and reset["accepted"] == 0


def test_publish_keys_by_project_and_validate_keeps_invalid_out(db: Engine, kafka_bootstrap: str) -> None:
    topic = _topic()
    history = _history(60, seed=11)
    records: list[dict[str, Any] | str] = [*history, "{broken", {"event_id": "x", "type": "signed"}]
    counts = publish_records(kafka_bootstrap, topic, records, partitions=4, validate=True)
    assert (counts["read"], counts["sent"], counts["invalid"], counts["partitions"]) == (len(records), len(history), 2, 4)
    assert counts["invalid_reasons"][0].startswith(f"record {len(history) + 1}: broken JSON")
    assert "project_id" in counts["invalid_reasons"][1]

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(4)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    seen: dict[str, set[int]] = {}
    order: dict[str, list[str]] = {}
    n = 0
    deadline = time.monotonic() + 20
    while n < len(history) and time.monotonic() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=500).items():
            for m in msgs:
                ev = json.loads(m.value)
                assert m.key == ev["project_id"].encode()
                seen.setdefault(ev["project_id"], set()).add(tp.partition)
                order.setdefault(ev["project_id"], []).append(ev["event_id"])
                n += 1
    consumer.close()
    assert n == len(history)
    assert all(len(parts) == 1 for parts in seen.values())  # a project's events share one partition
    assert len({p for parts in seen.values() for p in parts}) > 1  # and projects spread over partitions
    # Within a project, the publication order is kept.
    for pid, ids in order.items():
        assert ids == [e["event_id"] for e in history if e["project_id"] == pid]


def test_cli_publish_stream_and_deadletters(db: Engine, db_url_str: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = _topic()
    history = _history(40, seed=3)
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(e, ensure_ascii=False) for e in history] + ["", "[1, 2]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    out = runner.invoke(app, ["events", "publish", str(path), "--bootstrap", kafka_bootstrap, "--topic", topic, "--partition-count", "2", "--json"])
    assert out.exit_code == 0, out.output
    published = json.loads(out.stdout)
    assert (published["read"], published["sent"], published["partitions"]) == (len(history) + 1, len(history) + 1, 2)

    out = runner.invoke(
        app, ["stream", "--bootstrap", kafka_bootstrap, "--topic", topic, "--stop-when-idle", "1", "--json", "--database-url", db_url_str]
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert (result["read"], result["accepted"], result["duplicates"], result["rejected"]) == (len(history) + 1, len(history), 0, 1)

    out = runner.invoke(app, ["deadletters", "list", "--json", "--database-url", db_url_str])
    assert out.exit_code == 0, out.output
    [letter] = json.loads(out.stdout)
    assert letter["source"] == topic and letter["source_position"].startswith("partition ") and letter["raw"] == "[1, 2]"
    assert "JSON object" in letter["reason"]

    # Re-driven after a fix: the corrected record is appended, the letter resolved.
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({**history[0], "event_id": "fixed-1"}), encoding="utf-8")
    out = runner.invoke(
        app, ["deadletters", "retry", "--id", str(letter["id"]), "--replace-with", str(fixed), "--json", "--database-url", db_url_str]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["accepted"] == 1
    with db.connect() as conn:
        assert conn.execute(text("SELECT source_position FROM event_log WHERE event_id = 'fixed-1'")).scalar_one() == letter["source_position"]

    out = runner.invoke(app, ["stream", "--bootstrap", kafka_bootstrap, "--topic", topic, "--partitions", "5", "--database-url", db_url_str])
    assert out.exit_code == 2 and "no partition [5]" in out.output
    out = runner.invoke(app, ["stream", "--bootstrap", kafka_bootstrap, "--topic", "nope-" + topic, "--database-url", db_url_str])
    assert out.exit_code == 2 and "does not exist" in out.output


def test_sigkill_mid_batch_and_restart_gives_the_same_warehouse(db: Engine, db_url_str: str, kafka_bootstrap: str) -> None:
    topic = _topic()
    history = _history(2500, seed=21)
    records, _ = _with_faults(history)
    publish_records(kafka_bootstrap, topic, records, partitions=3)

    # The uninterrupted run, with other batch boundaries.
    reference = run_sink(db, kafka_bootstrap, topic, name="killtest", stop_when_idle=1.0, batch_size=1500, handle_signals=False)
    assert reference["read"] == len(records)
    expected = _snapshot(db)
    _truncate(db)

    kills_mid_batch = 0
    for _ in range(3):
        before = _committed(db, "killtest")
        proc = subprocess.Popen(_sink_cmd(kafka_bootstrap, topic, db_url_str, "--name", "killtest", "--batch-size", "150"), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # Let it commit some batches, then kill it while a transaction is open.
            _wait_for(lambda b=before: _committed(db, "killtest") > b + 300, 60, "the sink to commit batches")
            _wait_for(lambda: _sink_in_tx(db, "killtest"), 20, "the sink to be inside a batch")
            proc.send_signal(signal.SIGKILL)
            kills_mid_batch += 1
        finally:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        assert _committed(db, "killtest") < len(records), "the sink finished before it could be killed"

    done = subprocess.run(
        _sink_cmd(kafka_bootstrap, topic, db_url_str, "--name", "killtest", "--batch-size", "150", "--stop-when-idle", "1", "--json"),
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout)
    assert last["read"] == last["accepted"] + last["duplicates"] + last["rejected"]
    assert kills_mid_batch == 3
    got = _snapshot(db)
    assert got["log"] == expected["log"]
    differing = [(a, b) for a, b in zip(got["dead_letters"], expected["dead_letters"], strict=False) if a != b]
    assert len(got["dead_letters"]) == len(expected["dead_letters"]) and not differing, differing
    assert got["offsets"] == expected["offsets"]  # same offsets and the same lifetime counters: nothing read twice


def test_two_sinks_on_the_same_partitions_never_both_write(db: Engine, db_url_str: str, kafka_bootstrap: str) -> None:
    topic = _topic()
    history = _history(300, seed=5)
    publish_records(kafka_bootstrap, topic, history, partitions=3)
    first = subprocess.Popen(
        _sink_cmd(kafka_bootstrap, topic, db_url_str, "--name", "fence", "--partitions", "0,1", "--stop-when-idle", "8", "--json"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        _wait_for(lambda: _committed(db, "fence") > 0, 30, "the first sink to start")
        # Same partitions, and an overlapping set: refused, with the holder named; nothing written.
        for parts in ("0,1", "1,2"):
            out = runner.invoke(
                app, ["stream", "--bootstrap", kafka_bootstrap, "--topic", topic, "--name", "fence", "--partitions", parts,
                      "--stop-when-idle", "1", "--database-url", db_url_str],
            )
            assert out.exit_code == 3, out.output
            assert "another sink" in out.output and "zhaoshang stream fence pid" in out.output
        # Another partition set of the same sink name runs alongside.
        other = run_sink(db, kafka_bootstrap, topic, name="fence", partitions=[2], stop_when_idle=1.0, handle_signals=False)
        assert other["read"] > 0
        # A standby sink waits for the lock, then takes over from the committed offsets.
        standby: dict[str, Any] = {}
        waiter = threading.Thread(
            target=lambda: standby.update(
                run_sink(db, kafka_bootstrap, topic, name="fence", partitions=[0, 1], stop_when_idle=3.0,
                         wait_for_lock=True, handle_signals=False)
            )
        )
        waiter.start()
        out_first, _ = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 0
    first_result = json.loads(out_first)
    extra = _history(30, seed=99, prefix="extra-")
    publish_records(kafka_bootstrap, topic, extra, partitions=3)
    waiter.join(timeout=60)
    assert not waiter.is_alive()
    rest = run_sink(db, kafka_bootstrap, topic, name="fence", partitions=[2], stop_when_idle=1.0, handle_signals=False)
    with db.connect() as conn:
        offsets = sink_offsets(conn, sink_name="fence", topic=topic)
        n_log = conn.execute(text("SELECT count(*) FROM event_log")).scalar_one()
    total_read = sum(o["records_read"] for o in offsets)
    assert total_read == len(history) + len(extra) == first_result["read"] + other["read"] + standby["read"] + rest["read"]
    assert standby["read"] > 0 and rest["read"] > 0
    assert first_result["duplicates"] == other["duplicates"] == standby["duplicates"] == rest["duplicates"] == 0
    assert n_log == len(history) + len(extra)


def test_a_batch_against_moved_offsets_is_rolled_back(db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(text("INSERT INTO stream_offset (sink_name, topic, partition, next_offset) VALUES ('w', 't', 0, 10)"))
    raw = json.dumps(_history(1)[0])
    batch = [PartitionBatch(0, [Incoming(raw, "t", "partition 0 offset 5")], 6)]
    with db.connect() as conn:
        with pytest.raises(SinkFenced, match="expected next_offset 5"):
            write_batch(conn, "w", "t", batch, {0: 5})
        results = write_batch(conn, "w", "t", [PartitionBatch(0, [Incoming(raw, "t", "partition 0 offset 10")], 11)], {0: 10})
    assert results[0].accepted == 1
    snap = _snapshot(db)
    assert len(snap["log"]) == 1 and snap["log"][0][-1] == "partition 0 offset 10"
    assert snap["offsets"] == [("w", "t", 0, 11, 1, 1, 0, 0)]


def test_sigterm_stops_the_sink_cleanly(db: Engine, db_url_str: str, kafka_bootstrap: str) -> None:
    topic = _topic()
    history = _history(100, seed=8)
    publish_records(kafka_bootstrap, topic, history, partitions=2)
    proc = subprocess.Popen(_sink_cmd(kafka_bootstrap, topic, db_url_str, "--name", "term", "--json"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _committed(db, "term") == len(history), 30, "the sink to catch up")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["stopped_by"] == "stop" and result["read"] == len(history)
    assert "events/s" in err and "lag p0=0 p1=0" in err  # progress on stderr: rate and lag per partition


def test_sigterm_stops_every_worker_process(db: Engine, db_url_str: str, kafka_bootstrap: str) -> None:
    topic = _topic()
    history = _history(100, seed=9)
    publish_records(kafka_bootstrap, topic, history, partitions=3)
    proc = subprocess.Popen(_sink_cmd(kafka_bootstrap, topic, db_url_str, "--name", "term2", "--workers", "2", "--json"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _committed(db, "term2") == len(history), 60, "the workers to catch up")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["workers"] == 2 and result["read"] == len(history) and result["stopped_by"] == "SIGTERM"
    with db.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'zhaoshang stream term2 %'")
        ).scalar_one()
    assert left == 0  # every worker closed its connection (and released its locks)


def test_local_broker_and_broker_command(tmp_path: Path) -> None:
    with LocalBroker() as broker:
        host, port = broker.bootstrap.split(":")
        assert host == "127.0.0.1" and port_is_open(host, int(port))
        with pytest.raises(BrokerError, match="already in use"):
            LocalBroker(int(port)).start()
    assert not port_is_open("127.0.0.1", int(port))

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "zhaoshang.cli", "broker", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"127.0.0.1:{port}"
        counts = publish_records(f"127.0.0.1:{port}", "t", [{"event_id": "e"}], partitions=1)
        assert counts["sent"] == 1
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert not port_is_open("127.0.0.1", port)


def test_unreachable_broker_fails_fast_with_a_clear_message(db: Engine) -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(StreamError, match="no Kafka broker answers"):
        publish_records(f"127.0.0.1:{port}", "t", [{"event_id": "e"}])
    with pytest.raises(StreamError, match="no Kafka broker answers"):
        run_sink(db, f"127.0.0.1:{port}", "t", handle_signals=False)
    assert time.monotonic() - started < 20


def test_worker_processes_share_the_partitions_exactly_once(db: Engine, db_url_str: str, kafka_bootstrap: str) -> None:
    topic = _topic()
    history = _history(200, seed=13)
    records, expected = _with_faults(history)
    publish_records(kafka_bootstrap, topic, records, partitions=3)
    out = runner.invoke(
        app,
        ["stream", "--bootstrap", kafka_bootstrap, "--topic", topic, "--workers", "2", "--stop-when-idle", "1", "--json",
         "--database-url", db_url_str],
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["workers"] == 2 and sorted(result["partitions"]) == ["0", "1", "2"]
    assert result["read"] == len(records) and {k: result[k] for k in expected} == expected
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_log")).scalar_one() == len(history)
        assert sum(o["records_read"] for o in sink_offsets(conn, topic=topic)) == len(records)


def test_demo_round_trip_with_its_own_broker_twice_then_with_a_given_one(db: Engine, kafka_bootstrap: str) -> None:
    from ingestion.kafka_stream import publish_and_stream

    history = _history(30, seed=4)
    first = publish_and_stream(db, history)
    assert first["published"]["sent"] == len(history) and first["bootstrap"] != kafka_bootstrap
    assert (first["sink"]["read"], first["sink"]["accepted"]) == (len(history), len(history))
    # A second demo run: a new broker, the same topic name; already-stored events are duplicates.
    second = publish_and_stream(db, history)
    assert (second["sink"]["read"], second["sink"]["accepted"], second["sink"]["duplicates"]) == (len(history), 0, len(history))
    # On a given cluster the sink goes on from its offsets: a re-run reads only the new messages.
    topic = _topic()
    third = publish_and_stream(db, history[:10], bootstrap=kafka_bootstrap, topic=topic)
    fourth = publish_and_stream(db, history[10:], bootstrap=kafka_bootstrap, topic=topic)
    assert (third["sink"]["read"], fourth["sink"]["read"], fourth["sink"]["accepted"]) == (10, len(history) - 10, 0)


def test_kafka_python_uses_the_crc32c_extension() -> None:
    # Without it kafka-python checks every record batch's CRC in pure Python (~8x slower consumption).
    from kafka.record import util

    assert util.crc32c_c is not None and util._crc32c is util.crc32c_c


def test_cli_publish_validate_reports_lines_that_are_not_events(kafka_bootstrap: str, tmp_path: Path) -> None:
    history = _history(5, seed=2)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        json.dumps(history[0], ensure_ascii=False).encode() + b"\n" + b'\xff\xfe{"event_id": 1}\n' + b"\n"
        + "\n".join(json.dumps(e, ensure_ascii=False) for e in history[1:]).encode() + b"\n"
    )
    out = runner.invoke(app, ["events", "publish", str(path), "--bootstrap", kafka_bootstrap, "--topic", _topic(), "--validate", "--json"])
    assert out.exit_code == 1, out.output  # one line kept out (README, exit codes)
    counts = json.loads(out.stdout)
    assert (counts["read"], counts["sent"], counts["invalid"]) == (len(history) + 1, len(history), 1)
    assert counts["invalid_reasons"][0].startswith("line 2: broken JSON")


def test_stream_log_format_json_writes_json_lines(db: Engine, db_url_str: str, kafka_bootstrap: str) -> None:
    """``stream --log-format json``: every stderr line is a JSON object; the sink's start and its last
    progress are among them, with the counters as fields. ``ZHAOSHANG_KAFKA_TOPIC`` names the topic."""
    _truncate(db)
    topic = _topic()
    history = _history(15, seed=11)
    publish_records(kafka_bootstrap, topic, history, partitions=2)
    env = {**os.environ, "ZHAOSHANG_KAFKA_TOPIC": topic, "ZHAOSHANG_LOG_FORMAT": "text", "ZHAOSHANG_LOG_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "zhaoshang.cli", "stream", "--bootstrap", kafka_bootstrap, "--database-url", db_url_str,
           "--stop-when-idle", "1", "--name", "jsonlog", "--log-format", "json", "--json"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["accepted"] == len(history)
    records = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    started = [r for r in records if r["logger"] == "ingestion.kafka_stream"]
    assert started and started[0]["topic"] == topic and started[0]["sink"] == "jsonlog"
    stopped = [r for r in records if r["message"] == "sink stopped"]
    assert len(stopped) == 1 and stopped[0]["accepted"] == len(history) and stopped[0]["topic"] == topic
    # After the sink, the read models are brought up to the log, said as a line of its own.
    assert records[-1]["logger"] == "warehouse.read_models" and records[-1]["message"].startswith("project versions")
