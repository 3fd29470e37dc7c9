"""Issue 18: one record never stops the rest, dead letters are kept once, numbers are compared as numbers.

Whatever a record holds, it alone becomes a dead letter with its reason; its batch and everything
after it load, through ``events load`` (the function and the command) and through the Kafka sink.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from events.canonical import canonicalize, fast_canonical
from events.validation import EventValidationError
from ingestion.kafka_stream import publish_records, run_sink
from tests.dbutil import truncate as empty_tables
from warehouse.db import drop_database, ensure_database, make_engine
from warehouse.event_store import (
    Incoming,
    append_raw,
    list_dead_letters,
    load_records,
    read_jsonl,
    retry_dead_letters,
)
from warehouse.migrate import upgrade

ZHAOSHANG = Path("/work/main/.venv/bin/zhaoshang")
BASE = {"project_id": "P1", "occurred_at": "2024-03-01"}


def ev(eid: str, type_: str = "started", **payload: Any) -> bytes:
    return json.dumps({"event_id": eid, **BASE, "type": type_, "payload": payload}, ensure_ascii=False).encode()


VALID: list[bytes] = [
    ev("v1", "signed", name="新材料项目", investment_wan=5000, unit="夏云工业园区管委会"),
    ev("v2", "landed", parcel_id="PB-1", land_area_mu=12.5),
    ev("v3", "funds_arrived", amount_wan=300.5, currency="CNY"),
    ev("v4", "started"),
    ev("v5", "retracted", event_id="v4", reason="更正"),
]

# (raw line, a fragment of its reason): the hostile records of the issue, one per class.
HOSTILE: list[tuple[bytes, str]] = [
    (b'{"event_id":"h1","project_id":"p","type":"started","occurred_at":"2024-03-01","payload":{"note":1e400}}', "must be finite"),
    (ev("h2", "signed", name="x", investment_wan=1.7e308), "must be ≤ 100,000,000"),
    (ev("h3", "landed", land_area_mu=2e6), "must be ≤ 1,000,000"),
    (ev("x" * 3000), "longer than 512 characters"),
    (json.dumps({"event_id": "h5", "project_id": "项" * 1000, "type": "started", "occurred_at": "2024-03-01"}).encode(), "longer than 512"),
    (b'{"event_id":"h6","project_id":"p","type":"started","occurred_at":"2024-03-01","payload":{"a":' + b"[" * 1000 + b"]" * 1000 + b"}}",
     "nested deeper than 32 levels"),
    (b'{"event_id":"h7","project_id":"p","type":"started","occurred_at":"2024-03-01","payload":' + b'{"a":' * 5000 + b"1" + b"}" * 5001,
     "broken JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "broken JSON"),
    (b'{"event_id":"h9","project_id":"p","type":"started","occurred_at":"2024-03-01","payload":{"note":"caf\xe9"}}',
     "not UTF-8: byte(s) e9 at byte offset 100"),
    (b'{"event_id":"h10","project_id":"p","type":"started","occurred_at":"2024-03-01","payload":{"n":' + b"9" * 5000 + b"}}", "broken JSON"),
    (b'{"event_id":"h11","project_id":"p","type":"started","occurred_at":"2024-03-01","payload":{"n":"\\u0000"}}', "NUL"),
]


def stored(engine: Engine, where: str = "TRUE") -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(f"SELECT event_id, project_id, type, occurred_at, payload::text, content_hash FROM event_log WHERE {where} ORDER BY event_id")
            )
        ]


def letters(engine: Engine, status: str | None = "open") -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return list_dead_letters(conn, status=status)


def scalar(engine: Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def truncate(engine: Engine) -> None:
    with engine.begin() as conn:
        empty_tables(conn, "event_log", "dead_letter", "stream_offset")


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def load(engine: Engine, path: Path, batch_size: int = 20_000) -> dict[str, int]:
    res = load_records(engine, read_jsonl(path), batch_size=batch_size).as_dict()
    assert res["read"] == res["accepted"] + res["duplicates"] + res["rejected"]
    return res


@pytest.mark.parametrize(("raw", "fragment"), HOSTILE, ids=[f"h{i}" for i in range(1, len(HOSTILE) + 1)])
def test_a_hostile_record_is_dead_lettered_alone_and_only_once(db: Engine, tmp_path: Path, raw: bytes, fragment: str) -> None:
    with pytest.raises(EventValidationError, match=re.escape(fragment)):
        canonicalize(raw)
    assert fast_canonical(raw) is None
    path = write_lines(tmp_path / "in.jsonl", [*VALID[:2], raw, *VALID[2:]])
    assert load(db, path) == {"read": 6, "accepted": 5, "duplicates": 0, "rejected": 1}
    [letter] = letters(db, None)
    assert fragment in letter["reason"] and letter["source_position"] == "line 3"
    # Read again (a re-load, a re-run after a crash): the letter is kept once.
    assert load(db, path) == {"read": 6, "accepted": 0, "duplicates": 5, "rejected": 1}
    assert scalar(db, "SELECT count(*) FROM dead_letter") == 1
    assert scalar(db, "SELECT count(*) FROM event_log") == 5


def test_a_record_postgresql_refuses_is_isolated_by_the_writer(db: Engine, tmp_path: Path) -> None:
    """A refusal validation did not foresee (here a constraint the test adds) costs that record alone."""
    with db.begin() as conn:
        conn.execute(text("ALTER TABLE event_log ADD CONSTRAINT poison_test CHECK (project_id <> 'POISON')"))
    try:
        lines = [ev(f"ok{i}") for i in range(40)]
        lines[17] = json.dumps({"event_id": "p1", "project_id": "POISON", "type": "started", "occurred_at": "2024-03-01"}).encode()
        lines.append(lines[3])  # a repeat within the batch stays a duplicate
        lines.append(b"{broken")
        path = write_lines(tmp_path / "in.jsonl", lines)
        assert load(db, path) == {"read": 42, "accepted": 39, "duplicates": 1, "rejected": 2}
        by_line = {d["source_position"]: d for d in letters(db)}
        assert set(by_line) == {"line 18", "line 42"}
        assert by_line["line 18"]["reason"].startswith("refused by PostgreSQL (23514)") and by_line["line 18"]["event_id"] == "p1"
        assert load(db, path) == {"read": 42, "accepted": 0, "duplicates": 40, "rejected": 2}
        assert scalar(db, "SELECT count(*) FROM dead_letter") == 2
    finally:
        with db.begin() as conn:
            conn.execute(text("ALTER TABLE event_log DROP CONSTRAINT poison_test"))


def test_a_failed_retry_keeps_the_original_record_beside_the_fix(db: Engine, tmp_path: Path) -> None:
    bad = ev("r1", "signed", name="补录项目")  # investment missing
    load(db, write_lines(tmp_path / "in.jsonl", [bad]))
    [letter] = letters(db)
    still_bad = ev("r1", "signed", name="补录项目", investment_wan=-5).decode()
    with db.begin() as conn:
        out = retry_dead_letters(conn, [letter["id"]], replacement=still_bad)
    assert out["still_failing"] == 1
    [after] = letters(db)
    assert (after["raw"], after["fixed_raw"], after["attempts"]) == (bad.decode(), still_bad, 1)
    assert "must be ≥ 0" in after["reason"]
    with db.begin() as conn:  # a later retry takes the fix (still failing), the original stays
        retry_dead_letters(conn, [letter["id"]])
    [after] = letters(db)
    assert (after["raw"], after["fixed_raw"], after["attempts"]) == (bad.decode(), still_bad, 2)
    good = ev("r1", "signed", name="补录项目", investment_wan=5).decode()
    with db.begin() as conn:
        assert retry_dead_letters(conn, [letter["id"]], replacement=good)["accepted"] == 1
    [done] = letters(db, None)
    assert (done["status"], done["raw"], done["fixed_raw"]) == ("resolved", bad.decode(), good)
    # Re-loading the file with the original bad line adds no new letter.
    assert load(db, tmp_path / "in.jsonl")["rejected"] == 1
    assert scalar(db, "SELECT count(*) FROM dead_letter") == 1


# --- fuzz: arbitrary JSON values and arbitrary bytes mixed into a valid stream ----------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_fields = st.sampled_from(["event_id", "project_id", "type", "occurred_at", "recorded_at", "schema_version", "payload"])
_number_tokens = st.sampled_from(["1e400", "-1e999", "1.7e308", "9" * 5000, "1e-400", "-0.0", "1E+8", "100000000.5"]) | st.from_regex(
    r"-?[1-9][0-9]{0,3}(\.[0-9]{1,3})?[eE][+-]?[0-9]{1,3}", fullmatch=True
)
_payload_keys = st.sampled_from(["name", "investment_wan", "amount_wan", "land_area_mu", "location", "currency", "event_id", "note"])


@st.composite
def _hostile(draw: st.DrawFn, n: int) -> bytes:
    kind = draw(st.integers(0, 5))
    if kind == 0:  # an arbitrary JSON value (NaN and Infinity spelled as Python does)
        return json.dumps(draw(_json_values)).encode()
    if kind == 1:  # arbitrary bytes, one line
        return draw(st.binary(max_size=80)).replace(b"\n", b" ")
    record = json.loads(VALID[draw(st.integers(0, len(VALID) - 1))])
    record["event_id"] = f"h{n}"
    if kind == 2:  # a field replaced by an arbitrary value (an id stays apart from the valid records' ids)
        field, value = draw(_fields), draw(_json_values)
        record[field] = "h" + value if field == "event_id" and isinstance(value, str) else value
    elif kind == 3:  # a payload field replaced by an arbitrary value
        record["payload"] = {**(record.get("payload") or {}), draw(_payload_keys): draw(_json_values)}
    elif kind == 4:  # deep nesting in the payload
        depth = draw(st.integers(30, 3000))
        record["payload"] = {"deep": "@"}
        return json.dumps(record).encode().replace(b'"@"', b"[" * depth + b"]" * depth)
    else:  # a number as no encoder writes it (1e400 reads as infinity, 5000 digits, ...) in a payload field
        key = draw(st.sampled_from(["note", "investment_wan", "amount_wan", "land_area_mu"]))
        record["payload"] = {**(record.get("payload") or {}), key: "@"}
        return json.dumps(record).encode().replace(b'"@"', draw(_number_tokens).encode())
    return json.dumps(record, ensure_ascii=draw(st.booleans())).encode()


_streams = st.integers(1, 6).flatmap(
    lambda k: st.tuples(st.lists(st.integers(0, len(VALID)), min_size=k, max_size=k), st.tuples(*[_hostile(i) for i in range(k)]))
)


def _mix(positions: list[int], hostile: tuple[bytes, ...]) -> list[bytes]:
    lines = list(VALID)
    for at, raw in sorted(zip(positions, hostile, strict=True), key=lambda x: -x[0]):
        lines.insert(at, raw)
    return lines


def _valid_rows_alone(engine: Engine, tmp_path: Path) -> list[tuple[Any, ...]]:
    truncate(engine)
    load(engine, write_lines(tmp_path / "valid.jsonl", VALID))
    return stored(engine)


def _accepted_ids(lines: list[bytes]) -> set[str]:
    ids = set()
    for raw in lines:
        with contextlib.suppress(EventValidationError):
            ids.add(canonicalize(raw).event_id)
    return ids


def _check_mixed(engine: Engine, result: dict[str, int], expected_rows: list[tuple[Any, ...]], lines: list[bytes]) -> None:
    """No exception got here; every record is counted; the valid records' rows are exactly as if
    loaded alone; of the hostile ones exactly those that are in fact valid events are stored."""
    assert result["read"] == result["accepted"] + result["duplicates"] + result["rejected"]
    assert stored(engine, "event_id NOT LIKE 'h%'") == expected_rows
    hostile_ids = {row[0] for row in stored(engine, "event_id LIKE 'h%'")}
    assert hostile_ids == {i for i in _accepted_ids(lines) if i.startswith("h")}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stream=_streams)
def test_fuzz_events_load(db: Engine, tmp_path: Path, stream: tuple[list[int], tuple[bytes, ...]]) -> None:
    expected = _valid_rows_alone(db, tmp_path)
    truncate(db)
    lines = _mix(*stream)
    path = write_lines(tmp_path / "mixed.jsonl", lines)
    result = load(db, path, batch_size=3)
    assert result["read"] == len(list(read_jsonl(path)))  # blank lines are no records
    _check_mixed(db, result, expected, lines)
    assert load(db, path, batch_size=3)["accepted"] == 0
    n_letters = scalar(db, "SELECT count(*) FROM dead_letter")
    assert n_letters <= result["rejected"]
    assert load(db, path, batch_size=3)["rejected"] == result["rejected"]
    assert scalar(db, "SELECT count(*) FROM dead_letter") == n_letters  # idempotent


def test_events_load_command_with_every_hostile_class(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    expected = _valid_rows_alone(db, tmp_path)
    truncate(db)
    lines = [VALID[0], *[raw for raw, _ in HOSTILE[:6]], *VALID[1:3], *[raw for raw, _ in HOSTILE[6:]], *VALID[3:]]
    path = write_lines(tmp_path / "hostile.jsonl", lines)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for _ in range(2):
        done = subprocess.run(
            [str(ZHAOSHANG), "events", "load", str(path), "--json", "--database-url", db_url_str],
            capture_output=True, text=True, env=env, check=False, timeout=120,
        )
        assert done.returncode == 1, done.stderr  # the exit-code table: ran, and records were rejected
        assert "Traceback" not in done.stderr
        counts = json.loads(done.stdout)
        assert counts["read"] == len(lines) and counts["rejected"] == len(HOSTILE)
        assert counts["read"] == counts["accepted"] + counts["duplicates"] + counts["rejected"]
    assert stored(db) == expected
    assert scalar(db, "SELECT count(*) FROM dead_letter") == len(HOSTILE)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stream=_streams)
def test_fuzz_kafka_publish_and_sink(db: Engine, tmp_path: Path, kafka_bootstrap: str, stream: tuple[list[int], tuple[bytes, ...]]) -> None:
    expected = _valid_rows_alone(db, tmp_path)
    truncate(db)
    lines = _mix(*stream) + [raw for raw, _ in HOSTILE]
    topic = f"poison-{uuid.uuid4().hex[:10]}"
    path = write_lines(tmp_path / "mixed.jsonl", lines)
    sent = publish_records(kafka_bootstrap, topic, read_jsonl(path), partitions=2)
    assert sent["invalid"] == 0 and sent["sent"] == sent["read"]
    counts: list[int] = []
    for attempt in range(2):  # a restart from scratch re-reads every message: nothing more is stored
        result = run_sink(db, kafka_bootstrap, topic, stop_when_idle=0.5, batch_size=4, handle_signals=False, reset=attempt > 0)
        assert result["read"] == sent["sent"]
        _check_mixed(db, {k: result[k] for k in ("read", "accepted", "duplicates", "rejected")}, expected, lines)
        n_letters = scalar(db, "SELECT count(*) FROM dead_letter")
        assert 0 < n_letters <= result["rejected"]
        counts.append(n_letters)
        if attempt:
            assert result["accepted"] == 0
    assert counts[0] == counts[1]
    assert scalar(db, "SELECT count(*) FROM event_log WHERE event_id NOT LIKE 'h%'") == len(expected)


def test_publish_validate_reports_every_hostile_class_and_goes_on(kafka_bootstrap: str, tmp_path: Path) -> None:
    lines = [VALID[0], *[raw for raw, _ in HOSTILE], *VALID[1:]]
    path = write_lines(tmp_path / "hostile.jsonl", lines)
    counts = publish_records(kafka_bootstrap, f"poison-{uuid.uuid4().hex[:10]}", read_jsonl(path), validate=True)
    assert (counts["read"], counts["sent"], counts["invalid"]) == (len(lines), len(VALID), len(HOSTILE))
    for reason, (_, fragment) in zip(counts["invalid_reasons"], HOSTILE, strict=True):
        assert fragment in reason


# --- the migration ------------------------------------------------------------------------------


def test_migration_merges_copies_and_rehashes_integral_floats(database_url: URL) -> None:
    """A warehouse at 0001 with multiplied letters and an event hashed with ``1000.0``: after the
    upgrade, one letter per (source, record) and re-loading the event is a duplicate."""
    url = database_url.set(database=f"{database_url.database}_mig")
    ensure_database(url)
    engine = make_engine(url)
    try:
        upgrade(engine, "0001_foundation")
        old_hash_record = ev("m1", "signed", name="x", investment_wan=1000.0)
        old = json.dumps(["m1", "P1", "signed", "2024-02-29T16:00:00+00:00", 1, {"investment_wan": 1000.0, "name": "x"}],
                         sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO event_log (event_id, project_id, type, occurred_at, recorded_at, payload, content_hash)"
                    " VALUES ('m1', 'P1', 'signed', '2024-03-01T00:00:00+08:00', now(), CAST(:p AS jsonb), :h)"
                ),
                {"p": '{"investment_wan":1000.0,"name":"x"}', "h": hashlib.sha256(old.encode()).hexdigest()},
            )
            for status in ("open", "open", "resolved", "open"):
                conn.execute(text("INSERT INTO dead_letter (raw, reason, source, status) VALUES ('[1]', 'r', 'a.jsonl', :s)"), {"s": status})
            conn.execute(text("INSERT INTO dead_letter (raw, reason, source) VALUES ('[1]', 'r', 'b.jsonl')"))
        upgrade(engine)
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(text("SELECT source, status FROM dead_letter ORDER BY source"))]
        assert rows == [("a.jsonl", "resolved"), ("b.jsonl", "open")]
        with engine.begin() as conn:
            res = append_raw(conn, [Incoming(old_hash_record, "again.jsonl", "line 1")])
        assert res.as_dict() == {"read": 1, "accepted": 0, "duplicates": 1, "rejected": 0}
        assert stored(engine)[0][4] == '{"name": "x", "investment_wan": 1000}'
    finally:
        engine.dispose()
        drop_database(url)
