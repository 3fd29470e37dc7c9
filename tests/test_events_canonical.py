"""The fast path of :mod:`events.canonical` agrees with the explaining path (``parse_event``).

For every record: if the fast path takes it, ``parse_event`` accepts it too and both give the
same canonical event (same content hash, same stored columns); if ``parse_event`` refuses it,
the fast path does not take it (so the refusal and its reason come from the explaining path).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from demo.history import generate_history
from events import canonical
from events.canonical import CanonicalEvent, canonicalize, fast_canonical, from_event
from events.validation import EventValidationError, parse_event


def explained(raw: str | bytes) -> CanonicalEvent | None:
    try:
        return from_event(parse_event(raw))
    except EventValidationError:
        return None


def same(a: CanonicalEvent, b: CanonicalEvent) -> bool:
    """Equal, with ``recorded_at`` compared as the instant it names (its text may keep its own offset)."""
    if a._replace(recorded_at=None) != b._replace(recorded_at=None):
        return False
    if (a.recorded_at is None) != (b.recorded_at is None):
        return False
    return a.recorded_at is None or datetime.fromisoformat(a.recorded_at) == datetime.fromisoformat(b.recorded_at or "")


# What PostgreSQL reads exactly as Python does: recorded_at is stored in one of these two forms.
STRICT_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-](0\d|1[0-5]):00")
UTC_FORM = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00")


def check(raw: str | bytes) -> CanonicalEvent | None:
    fast = fast_canonical(raw)
    slow = explained(raw)
    if fast is not None:
        assert slow is not None, f"fast path took what parse_event refuses: {raw!r}"
        assert same(fast, slow), (raw, fast, slow)
    for c in (fast, slow):
        if c is not None and c.recorded_at is not None:
            assert STRICT_OFFSET.fullmatch(c.recorded_at) or UTC_FORM.fullmatch(c.recorded_at), c.recorded_at
        if c is not None:
            assert UTC_FORM.fullmatch(c.occurred_utc), c.occurred_utc
    return fast


def test_the_demo_history_takes_the_fast_path_with_the_same_hashes() -> None:
    history = generate_history(seed=7, n_projects=300, start=date(2019, 1, 1), end=date(2026, 10, 31))
    taken = 0
    for record in history:
        for raw in (json.dumps(record, ensure_ascii=False).encode(), json.dumps(record)):
            taken += check(raw) is not None
    assert taken >= 0.95 * 2 * len(history)


BASE = {"event_id": "e1", "project_id": "P1", "occurred_at": "2024-03-06T14:30:00+08:00"}
SIGNED = {**BASE, "type": "signed", "payload": {"name": "新材料项目", "investment_wan": 5000}}


@pytest.mark.parametrize(
    ("record", "fast_taken"),
    [
        (SIGNED, True),
        ({**SIGNED, "recorded_at": "2024-03-06T15:00:00Z"}, True),
        ({**SIGNED, "occurred_at": "2024-03-06"}, True),  # a date: Asia/Shanghai midnight
        ({**SIGNED, "occurred_at": "2024-03-06T14:30:00"}, True),  # naive: Asia/Shanghai
        ({**SIGNED, "occurred_at": "2024-03-06T02:30:00+08:00"}, True),  # the UTC day before
        ({**SIGNED, "occurred_at": "2024-03-06T14:30:00+05:45"}, True),
        ({**SIGNED, "occurred_at": "2024-02-30T14:30:00+08:00"}, False),
        ({**SIGNED, "occurred_at": "  "}, False),
        # issue 18: amounts are bounded (investment_wan ≤ 1e8 万元); these were valid before
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 1e16}}, False),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 10**40}}, False),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 10**301}}, False),  # read as a float
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 1.7e308}}, False),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 10**8}}, True),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 1e8}}, True),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 10**8 + 1}}, False),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 5000.0, "foreign_usd_wan": 700.0, "location": {"lon": 106.0, "lat": 26.5}}}, True),
        ({**BASE, "type": "landed", "payload": {"land_area_mu": 1e6 + 1}}, False),
        ({**BASE, "type": "landed", "payload": {"floor_area_m2": 2e7}}, False),
        ({**BASE, "type": "landed", "payload": {"land_area_mu": 30.0, "floor_area_m2": 1e7}}, True),
        ({**BASE, "type": "funds_arrived", "payload": {"amount_wan": 1e9}}, False),
        ({**BASE, "type": "funds_arrived", "payload": {"amount_wan": 250.0}}, True),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 0.00001}}, True),  # exponent form: explained path
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 1, "note": 1e20}}, True),
        ({**SIGNED, "event_id": "x" * 512}, True),
        ({**SIGNED, "event_id": "x" * 513}, False),
        ({**SIGNED, "project_id": "项" * 512}, True),
        ({**SIGNED, "project_id": "项" * 513}, False),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 1, "note": [[[[1]]]]}}, True),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 1, "note": json.loads("[" * 31 + "]" * 31)}}, True),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 1, "note": json.loads("[" * 32 + "]" * 32)}}, False),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": -1}}, False),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": True}}, False),
        ({**SIGNED, "payload": {"name": "  ", "investment_wan": 1}}, False),
        ({**SIGNED, "payload": {"name": "x"}}, False),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 1, "extra": [1.5e-7, {"b": 1, "a": 2}]}}, True),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 1, "investor": None, "location": {"lon": 106.4, "lat": 26.5}}}, True),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 1, "location": {"lon": 186.4, "lat": 26.5}}}, False),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 1, "location": {"lon": "106", "lat": 26.5}}}, False),
        ({**SIGNED, "payload": {"name": "x", "investment_wan": 1, "foreign": "yes"}}, False),
        ({**SIGNED, "payload": {"name": "带\"引号\"和\\反斜杠\t", "investment_wan": 1}}, True),
        ({**SIGNED, "payload": {"name": "x\u0000", "investment_wan": 1}}, False),
        ({**SIGNED, "payload": None}, False),
        ({**SIGNED, "schema_version": None}, True),
        ({**SIGNED, "schema_version": 2}, True),
        ({**SIGNED, "schema_version": 1.0}, False),
        ({**SIGNED, "schema_version": True}, False),
        ({**SIGNED, "schema_version": 0}, False),
        ({**SIGNED, "event_id": " "}, False),
        ({**SIGNED, "event_id": "id\twith\ttabs\\"}, True),
        ({**SIGNED, "project_id": 7}, False),
        ({**SIGNED, "type": "moved"}, False),
        ({**SIGNED, "unknown_top_level": {"kept": "out of the hash"}}, True),
        ({**BASE, "type": "landed"}, True),
        ({**BASE, "type": "landed", "payload": None}, True),
        ({**BASE, "type": "landed", "payload": {"parcel_id": "PB-1", "land_area_mu": 12.5, "floor_area_m2": None}}, True),
        ({**BASE, "type": "landed", "payload": {"land_area_mu": -2}}, False),
        ({**BASE, "type": "started", "payload": {"note": "开工仪式"}}, True),
        ({**BASE, "type": "produced"}, True),
        ({**BASE, "type": "cancelled", "payload": {"reason": 5}}, False),
        ({**BASE, "type": "funds_arrived", "payload": {"amount_wan": 100}}, True),
        ({**BASE, "type": "funds_arrived", "payload": {"amount_wan": 100, "currency": "USD"}}, True),
        ({**BASE, "type": "funds_arrived", "payload": {"amount_wan": 100, "currency": None}}, False),
        ({**BASE, "type": "funds_arrived", "payload": {"amount_wan": 100, "currency": "EUR"}}, False),
        ({**BASE, "type": "funds_arrived", "payload": {}}, False),
        ({**BASE, "type": "retracted", "payload": {"event_id": "e0", "reason": "更正"}}, True),
        ({**BASE, "type": "retracted", "payload": {"event_id": "e1"}}, False),
        ({**BASE, "type": "retracted", "payload": {"event_id": ""}}, False),
        ([SIGNED], False),
        ("signed", False),
    ],
)
def test_edge_cases_agree(record: Any, fast_taken: bool) -> None:
    """``fast_taken`` is whether the record is valid; the fast path may still leave a valid one to the other."""
    raw = json.dumps(record, ensure_ascii=False)
    fast = check(raw)
    check(raw.encode())
    assert (explained(raw) is not None) == fast_taken
    if fast is None:
        if fast_taken:
            assert canonicalize(raw) == explained(raw)
        else:
            with pytest.raises(EventValidationError):
                canonicalize(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_id":"e1","project_id":"P","type":"landed","occurred_at":"2024-03-06T14:30:00+08:00","payload":{"parcel_id":"a","parcel_id":"b"}}',
        b'{"event_id":"e1","project_id":"P","type":"landed","type":"signed","occurred_at":"2024-03-06T14:30:00+08:00"}',
        b'{"event_id":"e1","project_id":"P","type":"landed","occurred_at":"2024-03-06T14:30:00+08:00","payload":{},"payload":null}',
        b'{"event_id":"e1","project_id":"P","type":"landed","occurred_at":"2024-03-06T14:30:00+08:00","x":' + b"[" * 3000 + b"]" * 3000 + b"}",
        b'{"event_id":"e1","project_id":"P","type":"landed","occurred_at":"2024-03-06T14:30:00+08:00","payload":{"parcel_id":"\xff"}}',
        b'{"event_id":"e\\ud800","project_id":"P","type":"landed","occurred_at":"2024-03-06T14:30:00+08:00"}',
        b'{"event_id":"e\\ud83d\\ude00","project_id":"P","type":"landed","occurred_at":"2024-03-06T14:30:00+08:00"}',
        b'{"event_id":"e1","project_id":"P","type":"landed","occurred_at":"2024-03-06T14:30:00+08:00","payload":{"land_area_mu":NaN}}',
        b'{"event_id":"e1","project_id":"P","type":"landed","occurred_at":"2024-03-06T14:30:00+08:00","payload":{"land_area_mu":1e400}}',
        b'{"event_id":"e1","project_id":"P","type":"landed","occurred_at":"2024-03-06T14:30:00+08:00"} trailing',
        b"",
        # msgspec skips unknown fields without checking their UTF-8: the fast path must not take them
        b'{"event_id":"u2","project_id":"P","type":"started","occurred_at":"2024-03-06T14:30:00+08:00","note":"caf\xe9"}',
        b'{"event_id":"u2","project_id":"P","type":"started","occurred_at":"2024-03-06T14:30:00+08:00","x\xff":1}',
        # an encoded surrogate (CESU-8): refused with the reason, not a UnicodeEncodeError
        b'{"event_id":"c","project_id":"P","type":"cancelled","occurred_at":"2024-03-06T14:30:00+08:00","payload":{"reason":"\xed\xa0\x80"}}',
    ],
)
def test_raw_oddities_agree(raw: bytes) -> None:
    check(raw)
    check(raw.decode("utf-8", "replace"))


def test_payload_fields_are_declared_in_sorted_order() -> None:
    """Re-encoding a payload struct is its canonical JSON only if its fields are in code-point order."""
    structs = [v for v in vars(canonical).values() if isinstance(v, type) and issubclass(v, canonical._Payload)]
    assert len(structs) >= 7
    for struct in structs:
        assert list(struct.__struct_fields__) == sorted(struct.__struct_fields__), struct.__name__
        assert struct.__struct_config__.forbid_unknown_fields


# --- property: arbitrary records, valid or nearly so --------------------------------------------
texts = st.one_of(st.text(max_size=6), st.sampled_from(["", " ", "PB-1", "区商务局", 'a"b\\c', "\t"]))
numbers = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 0.0, -0.0, 1e-5, 1e16, 12345.6, 0.0001]),
)
values = st.one_of(st.none(), st.booleans(), texts, numbers)
valid_instants = st.one_of(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)).map(lambda d: d.isoformat()),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["2024-03-06T14:30:00+08:00", "2024-03-06T23:59:59-11:00", "2024-03-06T14:30:00Z"]),
)
instants = st.one_of(valid_instants, st.sampled_from(["2024-13-01T00:00:00+08:00", "yesterday", ""]), values)
payload_keys = st.sampled_from(
    ["name", "investment_wan", "investor", "industry", "unit", "channel", "foreign", "confidential", "foreign_usd_wan",
     "parcel_id", "factory_id", "land_area_mu", "floor_area_m2", "reason", "amount_wan", "currency", "event_id", "location", "other"]
)
payload_values = st.one_of(values, st.sampled_from(["CNY", "USD"]), st.fixed_dictionaries({"lon": numbers, "lat": numbers}))


VALID_PAYLOADS: dict[str, dict[str, Any]] = {
    "signed": {"name": "新材料项目", "investment_wan": 5000.5, "investor": "某公司", "unit": "区商务局", "foreign": False,
               "location": {"lon": 106.41, "lat": 26.47}},
    "landed": {"parcel_id": "PB-1", "land_area_mu": 12.5},
    "started": {},
    "produced": {},
    "cancelled": {"reason": "企业战略调整"},
    "funds_arrived": {"amount_wan": 100, "currency": "USD"},
    "retracted": {"event_id": "e0", "reason": "更正"},
}


def mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any] = values) -> st.SearchStrategy[Any]:
    """Valid values nine times in ten, anything else now and then."""
    return st.integers(0, 9).flatmap(lambda roll: other if roll == 0 else valid)


@st.composite
def records(draw: st.DrawFn) -> Any:
    """Valid events, most of them touched by a mutation or two (a field changed, added or removed)."""
    kind = draw(mostly(st.sampled_from(list(VALID_PAYLOADS))))
    record: dict[str, Any] = {
        "event_id": draw(mostly(st.sampled_from(["e1", "e2", "D001-PB2024-0001-signed-00001"]))),
        "project_id": draw(mostly(st.just("P1"))),
        "type": kind,
        "occurred_at": draw(mostly(valid_instants, instants)),
    }
    if draw(st.booleans()):
        record["recorded_at"] = draw(mostly(valid_instants, instants))
    if draw(st.booleans()):
        record["schema_version"] = draw(mostly(st.integers(1, 3), st.one_of(st.integers(-1, 0), values)))
    payload: Any = dict(VALID_PAYLOADS.get(kind, {})) if isinstance(kind, str) else {}
    for _ in range(max(0, draw(st.integers(-2, 2)))):
        key = draw(st.one_of(st.sampled_from(sorted(payload) or ["name"]), payload_keys))
        if draw(st.integers(0, 3)) == 0:
            payload.pop(key, None)
        else:
            payload[key] = draw(payload_values)
    if draw(st.integers(0, 9)):
        record["payload"] = payload
    elif draw(st.booleans()):
        record["payload"] = draw(st.one_of(st.none(), values))
    for key in draw(st.lists(st.sampled_from(sorted(record)), max_size=1)) if draw(st.integers(0, 9)) == 0 else []:
        del record[key]
    return record


@settings(max_examples=1500, deadline=None)
@given(record=records(), as_bytes=st.booleans())
def test_any_record_fast_path_agrees(record: Any, as_bytes: bool) -> None:
    # Two writers of JSON (msgspec spells numbers differently from the stdlib), as bytes or as text.
    check(msgspec.json.encode(record) if as_bytes else json.dumps(record, ensure_ascii=False))


@st.composite
def offset_instants(draw: st.DrawFn) -> str:
    """``YYYY-MM-DD?HH:MM:SS±HH:MM`` with every part possibly out of range (the fast path's tables)."""
    year = draw(st.sampled_from([1, 2, 1999, 2000, 2024, 9998, 9999]))
    parts = [draw(st.integers(0, hi)) for hi in (13, 32, 25, 61, 61, 25)]
    minutes = draw(st.sampled_from([0, 0, 30, 45, 61]))
    sep = draw(st.sampled_from(["T", "T", " "]))
    sign = draw(st.sampled_from("+-"))
    month, day, hour, minute, second, off = parts
    return f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}{sign}{off:02d}:{minutes:02d}"


@settings(max_examples=3000, deadline=None)
@given(value=offset_instants())
def test_instant_tables_agree_with_parse_instant(value: str) -> None:
    from datetime import UTC

    from events.validation import parse_instant

    try:
        instant = parse_instant(value, "occurred_at")
    except EventValidationError:
        with pytest.raises(EventValidationError):
            canonical._utc_text(value, "occurred_at")
        with pytest.raises(EventValidationError):
            canonical._recorded_text(value)
        return
    assert canonical._utc_text(value, "occurred_at") == instant.astimezone(UTC).isoformat()
    assert datetime.fromisoformat(canonical._recorded_text(value)) == instant


@pytest.mark.parametrize(
    "recorded_at",
    [
        "2024-03-06T14:30.00+08:00",  # Python: 14:30:00; PostgreSQL would read minutes and seconds
        "2024-W10-3T14:30:00+08:00",  # a week date: PostgreSQL refuses it
        "2024-03-06T143000,5+08:00",
        "2024-03-06T14:30:00+20:00",  # beyond PostgreSQL's offsets
        "2024-03-06T14:30:00+15:00",
        "2024-03-06T14:30:00-03:30",
        "2024-03-06T14:30:00.123+08:00",
        "2024-03-06",
    ],
)
def test_recorded_at_is_stored_in_a_form_postgresql_reads_alike(recorded_at: str) -> None:
    raw = json.dumps({**BASE, "type": "started", "recorded_at": recorded_at})
    c = canonicalize(raw)
    assert c.recorded_at is not None
    assert STRICT_OFFSET.fullmatch(c.recorded_at) or UTC_FORM.fullmatch(c.recorded_at), c.recorded_at
    check(raw)
    check(raw.encode())


SEED_EVENTS = [
    json.dumps(SIGNED, ensure_ascii=False).encode(),
    json.dumps({**BASE, "type": "landed", "recorded_at": "2024-03-07T09:00:00+08:00", "payload": {"parcel_id": "地块-7", "land_area_mu": 12.5}}, ensure_ascii=False).encode(),
    json.dumps({**BASE, "type": "funds_arrived", "payload": {"amount_wan": 100, "currency": "USD"}}).encode(),
]


@settings(max_examples=3000, deadline=None)
@given(
    seed=st.sampled_from(SEED_EVENTS),
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 2), st.binary(min_size=1, max_size=3)), min_size=1, max_size=3),
)
def test_byte_mutations_agree(seed: bytes, edits: list[tuple[float, int, bytes]]) -> None:
    """Bytes inserted, replaced or deleted anywhere in a valid event: both paths still agree."""
    raw = bytearray(seed)
    for where, how, data in edits:
        at = int(where * len(raw))
        if how == 0:
            raw[at:at] = data
        elif how == 1:
            raw[at : at + len(data)] = data
        else:
            del raw[at : at + len(data)]
    check(bytes(raw))
