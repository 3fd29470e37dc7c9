"""The log store's contract (``events.store``): cases any :class:`~events.store.LogStore` must pass.

Each case takes a factory of an empty store; ``tests/test_store_contract.py`` runs every case on
the in-memory store and on the PostgreSQL one, so the semantics the memory store lets other tests
use without services are those of the product's store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from events.store import Fenced, Horizon, Incoming, LogStore, PartitionRecords

StoreFactory = Callable[[], LogStore]


def rec(eid: str, project: str = "P1", type_: str = "signed", occurred: str = "2024-03-01", **over: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"signed": {"name": "航空叶片制造项目", "investment_wan": 5000}}.get(type_, {})
    out: dict[str, Any] = {"event_id": eid, "project_id": project, "type": type_, "occurred_at": occurred, "payload": payload}
    out.update(over)
    return out


def inc(record: dict[str, Any] | str | bytes, position: str = "line 1", source: str = "district.jsonl") -> Incoming:
    raw = record if isinstance(record, str | bytes) else json.dumps(record, ensure_ascii=False)
    return Incoming(raw, source, position)


def ids(store: LogStore, horizon: Horizon = Horizon(date(2100, 1, 1))) -> set[str]:
    return {e.event_id for e in store.events(horizon)}


def counts(res: Any) -> tuple[int, int, int, int]:
    assert res.read == res.accepted + res.duplicates + res.rejected
    return (res.read, res.accepted, res.duplicates, res.rejected)


def idempotent_append(make: StoreFactory) -> None:
    store = make()
    batch = [inc(rec("e1"), "line 1"), inc(rec("e2", "P2"), "line 2"), inc(rec("e3", "P3", recorded_at="2024-03-02T09:00:00+08:00"), "line 3")]
    assert counts(store.append(batch)) == (3, 3, 0, 0)
    before = {e.event_id: e.content_hash() for e in store.events(Horizon(date(2100, 1, 1)))}
    assert counts(store.append(batch)) == (3, 0, 3, 0)
    # The same facts written otherwise (bytes, other key order, spacing, 5000.0) are the same content.
    respelled = [inc(json.dumps(dict(reversed(list(rec(e, p).items()))), indent=1).replace("5000", "5000.0").encode()) for e, p in (("e1", "P1"), ("e2", "P2"))]
    assert counts(store.append(respelled)) == (2, 0, 2, 0)
    assert {e.event_id: e.content_hash() for e in store.events(Horizon(date(2100, 1, 1)))} == before
    assert set(before) == {"e1", "e2", "e3"}
    assert store.dead_letters() == []


def conflict(make: StoreFactory) -> None:
    store = make()
    original = rec("e1")
    store.append([inc(original)])
    other = rec("e1", payload={"name": "航空叶片制造项目", "investment_wan": 9000})
    res = store.append([inc(other, "line 7", "fix.jsonl")])
    assert counts(res) == (1, 0, 0, 1)
    assert res.reasons[0].startswith("conflict: event_id 'e1' is already in the log with different content")
    # Within one batch: the first occurrence is accepted, a different second one is the conflict.
    res = store.append([inc(rec("e2"), "line 1"), inc(rec("e2"), "line 2"), inc(rec("e2", occurred="2024-03-02"), "line 3")])
    assert counts(res) == (3, 1, 1, 1)
    (stored,) = [e for e in store.events(Horizon(date(2100, 1, 1))) if e.event_id == "e1"]
    assert stored.payload["investment_wan"] == 5000  # the original stays
    (e2,) = [e for e in store.events(Horizon(date(2100, 1, 1))) if e.event_id == "e2"]
    assert e2.occurred_at == datetime(2024, 2, 29, 16, tzinfo=UTC)
    letters = {(d.source, d.position, d.event_id): d for d in store.dead_letters()}
    assert set(letters) == {("fix.jsonl", "line 7", "e1"), ("district.jsonl", "line 3", "e2")}
    assert '"investment_wan": 9000' in letters["fix.jsonl", "line 7", "e1"].raw
    assert all(d.reason.startswith("conflict: event_id ") for d in letters.values())


def mixed_batch_counts_every_record_once(make: StoreFactory) -> None:
    store = make()
    store.append([inc(rec("old"))])
    batch = [
        inc(rec("a"), "line 1"),
        inc("{not json", "line 2"),
        inc(rec("a"), "line 3"),  # duplicate within the batch
        inc(rec("old"), "line 4"),  # duplicate of the log
        inc({k: v for k, v in rec("b").items() if k != "project_id"}, "line 5"),
        inc(rec("old", project="P9"), "line 6"),  # conflict with the log
        inc(rec("c", "P3"), "line 7"),
        inc(b'{"event_id": "d\xff"}', "line 8"),  # not UTF-8
        inc(rec("e", payload={"name": "x", "investment_wan": -1}), "line 9"),
    ]
    res = store.append(batch)
    assert counts(res) == (9, 2, 2, 5)
    assert len(res.reasons) == 5
    assert ids(store) == {"old", "a", "c"}
    assert sorted(d.position or "" for d in store.dead_letters()) == ["line 2", "line 5", "line 6", "line 8", "line 9"]
    by_position = {d.position: d for d in store.dead_letters()}
    assert "project_id" in by_position["line 5"].reason
    assert by_position["line 8"].raw.endswith("\ufffd(not UTF-8)")


def horizon(make: StoreFactory) -> None:
    store = make()
    arrival = datetime(2024, 12, 2, 10, tzinfo=UTC)
    store.append(
        [
            inc(rec("s1", occurred="2024-11-05", recorded_at="2024-11-05T10:00:00+08:00")),
            inc(rec("s2", "P2", occurred="2024-11-30T23:59:59+08:00", recorded_at="2024-12-01T08:00:00+08:00")),
            inc(rec("s3", "P3", occurred="2024-12-01T00:00:00+08:00", recorded_at="2024-12-01T00:00:00+08:00")),
            inc(rec("l2", "P2", "landed", occurred="2024-11-20", recorded_at="2024-11-21T00:00:00+08:00")),
            # A correction made on 12-04 withdraws the landing of 11-20: it applies by when it was known.
            inc(rec("r2", "P2", "retracted", occurred="2024-12-04", recorded_at="2024-12-04T09:00:00+08:00",
                    payload={"event_id": "l2", "reason": "录入错误"})),
            inc(rec("n1", "P4", occurred="2024-11-10")),  # no recorded_at: known from its arrival
        ],
        arrival=arrival,
    )
    nov30 = date(2024, 11, 30)
    assert ids(store, Horizon(nov30)) == {"s1", "s2", "l2", "r2", "n1"}
    assert ids(store, Horizon(date(2024, 12, 1))) == {"s1", "s2", "s3", "l2", "r2", "n1"}
    assert ids(store, Horizon(nov30, datetime(2024, 12, 1, 0, tzinfo=UTC))) == {"s1", "s2", "l2"}
    assert ids(store, Horizon(nov30, datetime(2024, 11, 30, 16, tzinfo=UTC))) == {"s1", "l2"}  # = 12-01 00:00 Shanghai
    assert ids(store, Horizon(nov30, datetime(2024, 11, 20, 16, tzinfo=UTC))) == {"s1", "l2"}  # known at exactly then
    assert ids(store, Horizon(nov30, datetime(2024, 11, 20, 15, 59, 59, tzinfo=UTC))) == {"s1"}
    assert ids(store, Horizon(nov30, arrival)) == {"s1", "s2", "l2", "n1"}
    assert ids(store, Horizon(nov30, datetime(2024, 12, 4, 1, tzinfo=UTC))) == {"s1", "s2", "l2", "r2", "n1"}
    assert ids(store, Horizon(date(2024, 11, 4))) == {"r2"}  # a retraction is seen whatever its own date
    (n1,) = [e for e in store.events(Horizon(nov30)) if e.event_id == "n1"]
    assert n1.recorded_at == arrival


def dead_letters_kept_once(make: StoreFactory) -> None:
    store = make()
    bad = '{"event_id": "x1", "type": "signed"}'
    assert counts(store.append([inc(bad, "line 1"), inc(bad, "line 9")])) == (2, 0, 0, 2)
    assert counts(store.append([inc(bad, "line 1")])) == (1, 0, 0, 1)  # counted each time it is read...
    assert counts(store.append([inc(bad.encode(), "line 3")])) == (1, 0, 0, 1)  # the same bytes
    letters = store.dead_letters()
    assert [(d.source, d.position, d.event_id) for d in letters] == [("district.jsonl", "line 1", "x1")]  # ...kept once
    store.append([inc(bad, "line 1", "other.jsonl"), inc(bad + " ", "line 2")])  # another source, other bytes
    assert [(d.source, d.position) for d in store.dead_letters()] == [
        ("district.jsonl", "line 1"), ("other.jsonl", "line 1"), ("district.jsonl", "line 2")]
    assert len({d.raw_hash for d in store.dead_letters()}) == 2


class BrokenRead(RuntimeError):
    pass


def failing_after(*records: Incoming) -> Iterator[Incoming]:
    """A partition's records whose reading fails after these (a reader that dies mid-batch)."""
    yield from records
    raise BrokenRead("connection lost while reading partition 1")


def offsets_commit_with_rows(make: StoreFactory) -> None:
    store = make()
    assert store.claim("sink", "t", [0, 1]) == {0: 0, 1: 0}
    results = store.commit(
        "sink", "t",
        [PartitionRecords(0, [inc(rec("a"), "0:0"), inc("{", "0:1")], 2), PartitionRecords(1, [inc(rec("b", "P2"), "1:0")], 1)],
        {0: 0, 1: 0},
    )
    assert {p: counts(r) for p, r in results.items()} == {0: (2, 1, 0, 1), 1: (1, 1, 0, 0)}
    assert store.claim("sink", "t", [0, 1]) == {0: 2, 1: 1}
    assert ids(store) == {"a", "b"}
    # A batch that fails while partition 1 is read, after partition 0 was appended: neither rows,
    # nor dead letters, nor offsets.
    with pytest.raises(BrokenRead):
        store.commit(
            "sink", "t",
            [PartitionRecords(0, [inc(rec("c", "P3"), "0:2"), inc("{{", "0:3")], 4), PartitionRecords(1, failing_after(inc(rec("d", "P4"), "1:1")), 2)],
            {0: 2, 1: 1},
        )
    assert ids(store) == {"a", "b"}
    assert [d.position for d in store.dead_letters()] == ["0:1"]
    assert store.claim("sink", "t", [0, 1]) == {0: 2, 1: 1}
    # Re-read from the committed offsets, the batch goes through whole.
    store.commit("sink", "t", [PartitionRecords(0, [inc(rec("c", "P3"), "0:2")], 3)], {0: 2})
    assert (ids(store), store.claim("sink", "t", [0, 1])) == ({"a", "b", "c"}, {0: 3, 1: 1})
    assert store.claim("sink", "t", [0], reset=True) == {0: 0}
    assert store.claim("other", "t", [1]) == {1: 0}  # offsets are per sink name


def fencing(make: StoreFactory) -> None:
    store = make()
    # Two writers with one sink name claim the same partition at the same offset.
    first = store.claim("sink", "t", [0, 1])
    second = store.claim("sink", "t", [0])
    store.commit("sink", "t", [PartitionRecords(0, [inc(rec("a"), "0:0")], 1)], first)
    first = {**first, 0: 1}
    with pytest.raises(Fenced):  # the second's claim is stale: refused, nothing of its batch written
        store.commit("sink", "t", [PartitionRecords(0, [inc(rec("z", "P9"), "0:0"), inc("{", "0:1")], 2)], second)
    with pytest.raises(Fenced):  # one stale partition refuses the whole batch
        store.commit("sink", "t", [PartitionRecords(1, [inc(rec("y", "P8"), "1:0")], 1), PartitionRecords(0, [], 5)], {0: 0, 1: 0})
    assert ids(store) == {"a"}
    assert store.dead_letters() == []
    assert store.claim("sink", "t", [0, 1]) == {0: 1, 1: 0}
    store.commit("sink", "t", [PartitionRecords(0, [inc(rec("b", "P2"), "0:1")], 2)], first)  # the holder goes on
    assert (ids(store), store.claim("sink", "t", [0])) == ({"a", "b"}, {0: 2})


CASES: list[Callable[[StoreFactory], None]] = [
    idempotent_append,
    conflict,
    mixed_batch_counts_every_record_once,
    horizon,
    dead_letters_kept_once,
    offsets_commit_with_rows,
    fencing,
]
