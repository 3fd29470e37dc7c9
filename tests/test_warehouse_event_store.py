"""The append-only log on the real PostGIS: loading files, COPY escaping, concurrent writers,
dead letters and their retry, the SQL reading of instants. Duplicates and conflicts as semantics
run on the in-memory store in ``test_log_semantics.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import Engine, text

from tests.kpi_district import DISTRICT
from warehouse.event_store import (
    Incoming,
    append_raw,
    list_dead_letters,
    load_records,
    read_jsonl,
    retry_dead_letters,
)


def write_jsonl(path: Path, records: list[Any]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


def load(db: Engine, path: Path, source: str | None = None, batch_size: int = 20_000) -> dict[str, int]:
    res = load_records(db, read_jsonl(path, source), batch_size=batch_size)
    out = res.as_dict()
    assert out["read"] == out["accepted"] + out["duplicates"] + out["rejected"]
    return out


def scalar(db: Engine, sql: str, **params: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def letters(db: Engine) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return list_dead_letters(conn, status=None)


def signed(eid: str = "e1", inv: float = 5000, **over: Any) -> dict[str, Any]:
    rec = {"event_id": eid, "project_id": "P1", "type": "signed", "occurred_at": "2024-03-01",
           "payload": {"name": "航空叶片制造及装备项目", "investment_wan": inv, "unit": "夏云工业园区管委会"}}
    rec.update(over)
    return rec


@pytest.mark.parametrize("batch_size", [20_000, 7])
def test_loading_the_same_file_twice_accepts_nothing_the_second_time(db: Engine, tmp_path: Path, batch_size: int) -> None:
    path = write_jsonl(tmp_path / "district.jsonl", DISTRICT)
    assert load(db, path, batch_size=batch_size) == {"read": 26, "accepted": 26, "duplicates": 0, "rejected": 0}
    assert load(db, path, batch_size=batch_size) == {"read": 26, "accepted": 0, "duplicates": 26, "rejected": 0}
    assert scalar(db, "SELECT count(*) FROM event_log") == 26
    assert scalar(db, "SELECT count(*) FROM dead_letter") == 0
    assert scalar(db, "SELECT count(DISTINCT project_id) FROM event_log") == 7
    row = scalar(db, "SELECT source || ' ' || source_position FROM event_log WHERE event_id = 'p2-l'")
    assert row == "district.jsonl line 8"


MALFORMED: list[tuple[str, str | None, str]] = [
    # (raw line, field named in the reason, a fragment of the reason)
    ('{"event_id": "m1", "project_id": ', None, "broken JSON"),
    ('{"project_id": "P1", "type": "started", "occurred_at": "2024-03-01"}', "event_id", "is required"),
    ('{"event_id": "m3", "type": "started", "occurred_at": "2024-03-01"}', "project_id", "is required"),
    ('{"event_id": "m4", "project_id": "", "type": "started", "occurred_at": "2024-03-01"}', "project_id", "must not be empty"),
    ('{"event_id": "m5", "project_id": "P1", "type": "visited", "occurred_at": "2024-03-01"}', "type", "unknown event type 'visited'"),
    ('{"event_id": "m6", "project_id": "P1", "type": "started", "occurred_at": "2024-02-30"}', "occurred_at", "not an ISO 8601"),
    ('{"event_id": "m7", "project_id": "P1", "type": "funds_arrived", "occurred_at": "2024-03-01", "payload": {"amount_wan": -100}}',
     "payload.amount_wan", "must be ≥ 0"),
    ("[1]", None, "must be a JSON object, got list"),
    ('"x"', None, "must be a JSON object, got str"),
    ('{"event_id": "m10", "project_id": "P1", "type": "started", "occurred_at": "2024-03-01", "payload": [1]}', "payload", "must be an object"),
    ('{"event_id": "m11", "project_id": "P1", "type": "signed", "occurred_at": "2024-03-01", "payload": {"investment_wan": 1}}',
     "payload.name", "is required"),
    ('{"event_id": "m12", "project_id": "P1", "type": "signed", "occurred_at": "2024-03-01", "payload": {"name": "x"}}',
     "payload.investment_wan", "is required"),
    ('{"event_id": "m13", "project_id": "P1", "type": "funds_arrived", "occurred_at": "2024-03-01", "payload": {"currency": "CNY"}}',
     "payload.amount_wan", "is required"),
    ('{"event_id": "m14", "project_id": "P1", "type": "retracted", "occurred_at": "2024-03-01", "payload": {"reason": "错"}}',
     "payload.event_id", "is required"),
    ('{"event_id": "m15", "project_id": "P1", "type": "started", "occurred_at": "2024-03-01", "payload": {"x": NaN}}', None, "NaN"),
    ('{"event_id": "m16", "project_id": "P1\\u0000", "type": "started", "occurred_at": "2024-03-01"}', "project_id", "NUL"),
    ('{"event_id": "m17", "project_id": "P1", "type": "started", "occurred_at": "2024-03-01", "payload": {"note": "\\udc80"}}',
     "payload.note", "surrogate"),
    ('{"event_id": "m18", "project_id": "P1", "type": "funds_arrived", "occurred_at": "2024-03-01", "payload": {"amount_wan": '
     + "9" * 400 + "}}", "payload.amount_wan", "too large"),
    ('{"event_id": "m19", "project_id": "P1\x00", "type": "started", "occurred_at": "2024-03-01"}', None, "broken JSON"),
]


def test_every_malformed_kind_is_dead_lettered_with_its_reason_and_counted(db: Engine, tmp_path: Path) -> None:
    lines = [json.dumps(signed("ok1"), ensure_ascii=False)]
    lines += [raw for raw, _, _ in MALFORMED]
    lines += ["", "   ", json.dumps(signed("ok2"), ensure_ascii=False)]  # blank lines are no records
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    res = load(db, path, source="县商务局台账")
    assert res == {"read": 2 + len(MALFORMED), "accepted": 2, "duplicates": 0, "rejected": len(MALFORMED)}
    got = letters(db)
    assert len(got) == len(MALFORMED)
    by_line = {dl["source_position"]: dl for dl in got}
    for i, (raw, fieldname, fragment) in enumerate(MALFORMED, start=2):
        dl = by_line[f"line {i}"]
        assert dl["source"] == "县商务局台账"
        assert fragment in dl["reason"], (raw, dl["reason"])
        if fieldname is not None:
            assert f"field '{fieldname}'" in dl["reason"], (raw, dl["reason"])
        assert dl["raw"] == raw.replace("\x00", "\ufffd"), "the raw input is kept (NUL, which PostgreSQL cannot store, replaced)"
    assert by_line["line 3"]["event_id"] is None  # no readable id
    assert by_line["line 6"]["event_id"] == "m5"
    assert scalar(db, "SELECT count(*) FROM event_log") == 2


def test_recorded_at_is_stamped_on_arrival_when_absent(db: Engine) -> None:
    before = datetime.now(UTC)
    with db.begin() as conn:
        res = append_raw(conn, [Incoming(json.dumps(signed()), "kafka:events", "partition 0 offset 17")])
    after = datetime.now(UTC)
    assert res.as_dict() == {"read": 1, "accepted": 1, "duplicates": 0, "rejected": 0}
    recorded = scalar(db, "SELECT recorded_at FROM event_log")
    assert before <= recorded <= after
    assert scalar(db, "SELECT source_position FROM event_log") == "partition 0 offset 17"


def test_the_log_is_append_only(db: Engine, tmp_path: Path) -> None:
    load(db, write_jsonl(tmp_path / "a.jsonl", [signed()]))
    for sql in ("UPDATE event_log SET project_id = 'P2'", "DELETE FROM event_log"):
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"), db.begin() as conn:
            conn.execute(text(sql))
    assert scalar(db, "SELECT project_id FROM event_log") == "P1"


def test_retry_after_a_fix_resolves_one_letter(db: Engine, tmp_path: Path) -> None:
    bad = signed("e9", payload={"investment_wan": 300})  # no name
    load(db, write_jsonl(tmp_path / "in.jsonl", [bad, "[1]"]))
    first, second = letters(db)
    fixed = json.dumps(signed("e9", payload={"name": "补录项目", "investment_wan": 300}), ensure_ascii=False)
    with db.begin() as conn:
        out = retry_dead_letters(conn, [first["id"]], replacement=fixed)
    assert out == {"retried": 1, "accepted": 1, "duplicates": 0, "still_failing": 0, "failures": []}
    with db.begin() as conn:
        again = retry_dead_letters(conn)  # every open one: only "[1]" is left, and still fails
    assert (again["retried"], again["still_failing"], again["failures"][0]["id"]) == (1, 1, second["id"])
    a, b = letters(db)
    # issue 18: the fix is kept beside the original record, which is never overwritten
    assert (a["status"], a["resolution"], a["attempts"], a["fixed_raw"]) == ("resolved", "accepted", 1, fixed)
    assert a["raw"] == json.dumps(bad, ensure_ascii=False)
    assert (b["status"], b["attempts"]) == ("open", 1)
    assert scalar(db, "SELECT source || ' ' || source_position FROM event_log WHERE event_id = 'e9'") == "in.jsonl line 1"
    with db.begin() as conn, pytest.raises(ValueError, match="no open dead letter"):
        retry_dead_letters(conn, [a["id"]])
    with db.begin() as conn, pytest.raises(ValueError, match="exactly one"):
        retry_dead_letters(conn, None, replacement=fixed)


def test_retrying_a_conflict_keeps_both_versions_in_the_reason(db: Engine, tmp_path: Path) -> None:
    load(db, write_jsonl(tmp_path / "a.jsonl", [signed(inv=5000)]))
    load(db, write_jsonl(tmp_path / "b.jsonl", [signed(inv=6000)]))
    [dl] = letters(db)
    with db.begin() as conn:
        out = retry_dead_letters(conn)
    assert out["still_failing"] == 1
    [after] = letters(db)
    assert after["attempts"] == 1
    assert '"investment_wan": 5000' in after["reason"] and '"investment_wan": 6000' in after["reason"]
    # Resolved by a retraction-free fix: the sender's corrected version equals the stored one → duplicate.
    with db.begin() as conn:
        out = retry_dead_letters(conn, [dl["id"]], replacement=json.dumps(signed(inv=5000), ensure_ascii=False))
    assert (out["accepted"], out["duplicates"]) == (0, 1)
    assert letters(db)[0]["resolution"] == "duplicate"


def test_text_with_tabs_newlines_and_backslashes_round_trips(db: Engine, tmp_path: Path) -> None:
    odd = 'tab\there, "quote", back\\slash, new\nline, cr\r, 中文'
    rec = signed("id\twith\\tab", payload={"name": odd, "investment_wan": 1, "investor": "\\N"})
    path = write_jsonl(tmp_path / "odd\tname.jsonl", [rec])
    assert load(db, path, source="src\\with\ttab") == {"read": 1, "accepted": 1, "duplicates": 0, "rejected": 0}
    with db.connect() as conn:
        row = conn.execute(text("SELECT event_id, payload, source FROM event_log")).one()
    assert (row.event_id, row.payload["name"], row.payload["investor"], row.source) == ("id\twith\\tab", odd, "\\N", "src\\with\ttab")
    assert load(db, path, source="again") == {"read": 1, "accepted": 0, "duplicates": 1, "rejected": 0}


def test_new_events_mixed_with_known_ones_in_one_batch(db: Engine, tmp_path: Path) -> None:
    """The straight COPY into the log stops at a known id; the batch is then staged and compared."""
    load(db, write_jsonl(tmp_path / "a.jsonl", [signed("A")]))
    res = load(db, write_jsonl(tmp_path / "b.jsonl", [signed("B"), signed("A"), signed("A", inv=1), signed("C"), signed("C")]))
    assert res == {"read": 5, "accepted": 2, "duplicates": 2, "rejected": 1}
    with db.connect() as conn:
        assert conn.execute(text("SELECT event_id FROM event_log ORDER BY seq")).scalars().all() == ["A", "B", "C"]
    [dl] = letters(db)
    assert (dl["event_id"], dl["source_position"]) == ("A", "line 3")
    # And the next batch, all new, goes straight in again in the same transaction.
    with db.begin() as conn:
        first = append_raw(conn, [Incoming(json.dumps(signed("A")), "s", "1"), Incoming(json.dumps(signed("D")), "s", "2")])
        second = append_raw(conn, [Incoming(json.dumps(signed("E")), "s", "3")])
    assert (first.as_dict(), second.as_dict()) == (
        {"read": 2, "accepted": 1, "duplicates": 1, "rejected": 0},
        {"read": 1, "accepted": 1, "duplicates": 0, "rejected": 0},
    )
    assert scalar(db, "SELECT count(*) FROM event_log") == 5


def _load_in_thread(db: Engine, records: list[dict[str, Any]], out: dict[str, Any]) -> Any:
    import threading

    def run() -> None:
        with db.begin() as conn:
            out["result"] = append_raw(conn, [Incoming(json.dumps(r), "second", f"line {i}") for i, r in enumerate(records, 1)]).as_dict()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("same", [True, False])
def test_a_concurrent_writer_of_the_same_id(db: Engine, same: bool) -> None:
    """Writer 1 holds A uncommitted; writer 2's COPY of A waits for it, then sees it as stored."""
    import time

    out: dict[str, Any] = {}
    with db.begin() as conn:
        append_raw(conn, [Incoming(json.dumps(signed("A", inv=5000)), "first", "line 1")])
        thread = _load_in_thread(db, [signed("A", inv=5000 if same else 6000), signed("B")], out)
        time.sleep(1.0)  # writer 2 is now blocked on A's index entry
    thread.join(30)
    expected = {"read": 2, "accepted": 1, "duplicates": 1, "rejected": 0} if same else {"read": 2, "accepted": 1, "duplicates": 0, "rejected": 1}
    assert out["result"] == expected
    assert scalar(db, "SELECT count(*) FROM event_log") == 2
    if not same:
        [dl] = letters(db)
        assert dl["event_id"] == "A" and "stored version" in dl["reason"] and '"investment_wan": 6000' in dl["reason"]


@pytest.mark.parametrize("same", [True, False])
def test_a_concurrent_writer_between_look_up_and_insert(db: Engine, same: bool) -> None:
    """X is stored, so writer 2 stages and looks up; A is not visible yet, its insert waits for writer 1."""
    import time

    load_records(db, [Incoming(json.dumps(signed("X")), "zero", "line 1")])
    out: dict[str, Any] = {}
    with db.begin() as conn:
        append_raw(conn, [Incoming(json.dumps(signed("A", inv=5000)), "first", "line 1")])
        thread = _load_in_thread(db, [signed("X"), signed("A", inv=5000 if same else 7000)], out)
        time.sleep(1.0)
    thread.join(30)
    if same:
        assert out["result"] == {"read": 2, "accepted": 0, "duplicates": 2, "rejected": 0}
    else:
        assert out["result"] == {"read": 2, "accepted": 0, "duplicates": 1, "rejected": 1}
        [dl] = letters(db)
        assert dl["reason"] == "conflict: event_id 'A' was appended concurrently with different content"
    assert scalar(db, "SELECT count(*) FROM event_log") == 2


def test_a_file_with_a_byte_order_mark_and_crlf_line_ends(db: Engine, tmp_path: Path) -> None:
    """Windows tools write a UTF-8 BOM and CRLF: the first event is no broken JSON for that."""
    path = tmp_path / "excel.jsonl"
    lines = [json.dumps(signed("A"), ensure_ascii=False), json.dumps(signed("B"), ensure_ascii=False)]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n")
    assert load(db, path) == {"read": 2, "accepted": 2, "duplicates": 0, "rejected": 0}
    assert [i.text for i in read_jsonl(path)] == lines


def test_an_empty_file_reads_nothing(db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n  \n", encoding="utf-8")
    assert load(db, path) == {"read": 0, "accepted": 0, "duplicates": 0, "rejected": 0}


def test_load_records_raises_what_the_writer_met_and_keeps_what_was_committed(db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from warehouse import event_store

    real_write = event_store.write_staged
    calls = []

    def failing(conn: Any, batch: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_write(conn, batch, **kw)

    monkeypatch.setattr(event_store, "write_staged", failing)
    records = [Incoming(json.dumps(signed(f"W{i}")), "w", f"line {i}") for i in range(5)]
    with pytest.raises(RuntimeError, match="disk full"):
        load_records(db, records, batch_size=1)
    assert scalar(db, "SELECT count(*) FROM event_log WHERE source = 'w'") == 1


def test_load_records_raises_what_the_reader_met_after_writing_what_came_before(db: Engine) -> None:
    def reader() -> Iterator[Incoming]:
        yield Incoming(json.dumps(signed("R1")), "r", "line 1")
        yield Incoming(json.dumps(signed("R2")), "r", "line 2")
        raise OSError("file vanished")

    with pytest.raises(OSError, match="file vanished"):
        load_records(db, reader(), batch_size=1)
    assert scalar(db, "SELECT count(*) FROM event_log WHERE source = 'r'") == 2


def test_recorded_at_in_forms_python_and_postgresql_read_differently(db: Engine, tmp_path: Path) -> None:
    """Python reads `14:30.00` and week dates; PostgreSQL reads the first otherwise and refuses the
    second. Each is stored as the instant the wire format means, and none fails its batch."""
    from events.validation import parse_instant

    forms = ["2024-03-06T14:30.00+08:00", "2024-W10-3T14:30:00+08:00", "2024-03-06T143000,5+08:00",
             "2024-03-06T14:30:00+20:00", "2024-03-06T14:30:00+15:00", "2024-03-06T14:30:00-03:30", "2024-03-06"]
    path = write_jsonl(tmp_path / "forms.jsonl", [signed(f"rf{i}", recorded_at=form) for i, form in enumerate(forms)])
    assert load(db, path) == {"read": len(forms), "accepted": len(forms), "duplicates": 0, "rejected": 0}
    with db.connect() as conn:
        stored = dict(conn.execute(text("SELECT event_id, recorded_at FROM event_log WHERE event_id LIKE 'rf%'")).all())
    for i, form in enumerate(forms):
        assert stored[f"rf{i}"] == parse_instant(form, "recorded_at"), form


def test_a_conflict_with_bad_utf8_in_an_unknown_field_is_dead_lettered_not_fatal(db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    first = json.dumps(signed("bu1"), ensure_ascii=False).encode()
    second = json.dumps(signed("bu1", project_id="P2"), ensure_ascii=False).encode()[:-1] + b',"note":"caf\xe9"}'
    path.write_bytes(first + b"\n" + second + b"\n")
    assert load(db, path) == {"read": 2, "accepted": 1, "duplicates": 0, "rejected": 1}
