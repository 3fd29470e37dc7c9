"""Validation of wire-format v1: every malformed kind is refused with a message naming the field."""

from __future__ import annotations

import json
from dataclasses import astuple
from datetime import UTC, datetime, timedelta, timezone

import pytest

from events.model import SHANGHAI, Event, EventType, end_of_day, local_date
from events.validation import EventValidationError, parse_event, validate_record


def rec(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": "e1",
        "project_id": "P1",
        "type": "signed",
        "occurred_at": "2024-03-01",
        "payload": {"name": "铝基新材料项目", "investment_wan": 5000},
    }
    base.update(over)
    return base


def refuse(raw: object) -> EventValidationError:
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    with pytest.raises(EventValidationError) as info:
        parse_event(text)
    return info.value


def test_a_valid_signed_event_parses_with_shanghai_midnight() -> None:
    ev = parse_event(json.dumps(rec(), ensure_ascii=False))
    assert ev == Event("e1", "P1", EventType.SIGNED, datetime(2024, 3, 1, tzinfo=SHANGHAI), None, 1, {"name": "铝基新材料项目", "investment_wan": 5000})
    assert ev.occurred_at.utcoffset() == timedelta(hours=8)


def test_naive_datetime_means_shanghai_and_z_means_utc() -> None:
    naive = parse_event(json.dumps(rec(occurred_at="2024-03-01T09:30:00")))
    assert naive.occurred_at == datetime(2024, 3, 1, 1, 30, tzinfo=UTC)
    zulu = parse_event(json.dumps(rec(occurred_at="2024-03-01T20:00:00Z", recorded_at="2024-03-02T08:00:00+08:00")))
    assert zulu.occurred_at == datetime(2024, 3, 1, 20, 0, tzinfo=UTC)
    assert local_date(zulu.occurred_at).isoformat() == "2024-03-02"  # 04:00 next day in Shanghai
    assert zulu.recorded_at == datetime(2024, 3, 2, 0, 0, tzinfo=UTC)


def test_end_of_day_is_next_local_midnight() -> None:
    from datetime import date

    assert end_of_day(date(2024, 11, 30)) == datetime(2024, 11, 30, 16, 0, tzinfo=UTC)


def test_content_hash_ignores_recorded_at_and_zone_spelling() -> None:
    a = parse_event(json.dumps(rec(occurred_at="2024-03-01T08:00:00+08:00", recorded_at="2024-03-05")))
    b = parse_event(json.dumps(rec(occurred_at="2024-03-01T00:00:00Z")))
    c = parse_event(json.dumps(rec(payload={"name": "铝基新材料项目", "investment_wan": 5001})))
    assert a.content_hash() == b.content_hash()
    assert a.content_hash() != c.content_hash()


def test_broken_json() -> None:
    err = refuse('{"event_id": "e1", "project_id": ')
    assert str(err).startswith("broken JSON: ")
    assert err.field is None and err.event_id is None


@pytest.mark.parametrize("raw", ["[1]", '"x"', "1", "null", "true"])
def test_non_object_json(raw: str) -> None:
    err = refuse(raw)
    kind = type(json.loads(raw)).__name__
    assert str(err) == f"an event must be a JSON object, got {kind}"


@pytest.mark.parametrize("field", ["event_id", "project_id", "type", "occurred_at"])
def test_missing_required_field(field: str) -> None:
    r = rec()
    del r[field]
    err = refuse(r)
    assert err.field == field
    assert f"field '{field}'" in str(err)
    if field == "occurred_at":
        assert "ISO 8601" in str(err)
    else:
        assert str(err).endswith("is required")


@pytest.mark.parametrize("field", ["event_id", "project_id", "type"])
@pytest.mark.parametrize("value", ["", "   "])
def test_empty_required_field(field: str, value: str) -> None:
    err = refuse(rec(**{field: value}))
    assert err.field == field
    assert str(err).endswith(f"field '{field}': must not be empty")


def test_empty_occurred_at() -> None:
    err = refuse(rec(occurred_at=""))
    assert err.field == "occurred_at"
    assert str(err) == "event 'e1': field 'occurred_at': must be an ISO 8601 date or date-time string, got ''"


def test_non_string_id() -> None:
    err = refuse(rec(event_id=17))
    assert err.field == "event_id" and "must be a string, got 17" in str(err)


def test_unknown_type() -> None:
    err = refuse(rec(type="visited"))
    assert err.field == "type" and err.event_id == "e1"
    assert str(err).startswith("event 'e1': field 'type': unknown event type 'visited' (expected one of signed, landed,")


@pytest.mark.parametrize("value", ["2024-13-01", "2024-02-30", "yesterday", "2024-03-01T25:00", "01/03/2024"])
def test_bad_date(value: str) -> None:
    err = refuse(rec(occurred_at=value))
    assert err.field == "occurred_at"
    assert str(err) == f"event 'e1': field 'occurred_at': not an ISO 8601 date or date-time: {value!r}"


def test_bad_recorded_at() -> None:
    err = refuse(rec(recorded_at="soon"))
    assert err.field == "recorded_at"


def test_negative_amounts() -> None:
    err = refuse(rec(payload={"name": "x", "investment_wan": -1}))
    assert err.field == "payload.investment_wan"
    assert str(err) == "event 'e1': field 'payload.investment_wan': must be ≥ 0, got -1"
    err = refuse(rec(type="funds_arrived", payload={"amount_wan": -0.5}))
    assert err.field == "payload.amount_wan" and "must be ≥ 0, got -0.5" in str(err)
    err = refuse(rec(type="landed", payload={"land_area_mu": -3}))
    assert err.field == "payload.land_area_mu"


@pytest.mark.parametrize("payload", [[1], "x", 3])
def test_payload_not_an_object(payload: object) -> None:
    err = refuse(rec(payload=payload))
    assert err.field == "payload"
    assert str(err) == f"event 'e1': field 'payload': must be an object, got {type(payload).__name__}"


def test_signed_needs_name_and_investment() -> None:
    err = refuse(rec(payload={"investment_wan": 100}))
    assert (err.field, str(err)) == ("payload.name", "event 'e1': field 'payload.name': is required")
    err = refuse(rec(payload={"name": " ", "investment_wan": 100}))
    assert (err.field, err.reason) == ("payload.name", "must not be empty")
    err = refuse(rec(payload={"name": "x"}))
    assert (err.field, err.reason) == ("payload.investment_wan", "is required")
    err = refuse(rec(payload={"name": "x", "investment_wan": "100"}))
    assert (err.field, err.reason) == ("payload.investment_wan", "must be a number, got '100'")
    err = refuse(rec(payload={"name": "x", "investment_wan": True}))
    assert err.field == "payload.investment_wan"
    err = refuse(rec(payload=None))  # no payload at all: a signed event still needs a name
    assert err.field == "payload.name"


def test_funds_need_amount_and_a_known_currency() -> None:
    err = refuse(rec(type="funds_arrived", payload={"currency": "CNY"}))
    assert (err.field, str(err)) == ("payload.amount_wan", "event 'e1': field 'payload.amount_wan': is required")
    err = refuse(rec(type="funds_arrived", payload={"amount_wan": 10, "currency": "EUR"}))
    assert err.field == "payload.currency"
    assert parse_event(json.dumps(rec(type="funds_arrived", payload={"amount_wan": 10, "currency": "USD"}))).payload["currency"] == "USD"


def test_retracted_needs_the_target_and_not_itself() -> None:
    err = refuse(rec(type="retracted", payload={"reason": "录入错误"}))
    assert (err.field, str(err)) == ("payload.event_id", "event 'e1': field 'payload.event_id': is required")
    err = refuse(rec(type="retracted", payload={"event_id": "e1"}))
    assert err.field == "payload.event_id" and "cannot withdraw itself" in str(err)


def test_nan_and_infinity_are_refused() -> None:
    err = refuse('{"event_id":"e1","project_id":"P1","type":"funds_arrived","occurred_at":"2024-03-01","payload":{"amount_wan":NaN}}')
    assert err.field in (None, "payload.amount_wan")
    err = refuse(rec(type="funds_arrived", payload={"amount_wan": 1e400}))  # json.dumps writes Infinity
    assert err.field in (None, "payload.amount_wan")


def test_a_huge_integer_is_a_validation_error_not_a_crash() -> None:
    err = refuse('{"event_id":"e1","project_id":"P1","type":"signed","occurred_at":"2024-03-01",'
                 '"payload":{"name":"x","investment_wan":' + "9" * 400 + "}}")
    assert err.field == "payload.investment_wan"


def test_nan_in_an_unchecked_payload_field_is_refused() -> None:
    """PostgreSQL's jsonb cannot hold NaN: it must be refused here, not fail the whole batch later."""
    raw = '{"event_id":"e1","project_id":"P1","type":"started","occurred_at":"2024-03-01","payload":{"note":NaN}}'
    err = refuse(raw)
    assert "NaN" in str(err)


@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800"])
def test_text_postgresql_cannot_store_is_refused(bad: str) -> None:
    raw = '{"event_id":"e1","project_id":"P' + bad + '","type":"started","occurred_at":"2024-03-01"}'
    err = refuse(raw)
    assert err.field == "project_id"
    raw = '{"event_id":"e1","project_id":"P1","type":"started","occurred_at":"2024-03-01","payload":{"note":"a' + bad + '"}}'
    err = refuse(raw)
    assert err.field == "payload.note"


def test_location_range_and_schema_version() -> None:
    err = refuse(rec(payload={"name": "x", "investment_wan": 1, "location": {"lon": 200, "lat": 26}}))
    assert err.field == "payload.location"
    err = refuse(rec(schema_version=0))
    assert err.field == "schema_version"
    err = refuse(rec(schema_version="1"))
    assert err.field == "schema_version"
    ok = validate_record(rec(schema_version=None, recorded_at=None))
    assert ok.schema_version == 1 and ok.recorded_at is None


def test_offsets_other_than_shanghai_keep_the_instant() -> None:
    ev = parse_event(json.dumps(rec(occurred_at="2024-03-01T00:30:00-05:00")))
    assert ev.occurred_at == datetime(2024, 3, 1, 5, 30, tzinfo=UTC)
    assert ev.occurred_at.tzinfo == timezone(timedelta(hours=-5))
    assert local_date(ev.occurred_at).isoformat() == "2024-03-01"


def _old_content_hash(ev: Event) -> str:
    """The content hash as first defined (one json.dumps of the whole list): stored hashes must not change."""
    import hashlib

    canonical = json.dumps(
        [ev.event_id, ev.project_id, str(ev.type), ev.occurred_at.astimezone(UTC).isoformat(), ev.schema_version, ev.payload],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"name": "航空叶片制造及装备项目", "investment_wan": 51499.0, "unit": "夏云工业园区管委会", "foreign": False, "foreign_usd_wan": 7253.4},
        {"name": 'tab\there "quoted" back\\slash\nnewline', "investment_wan": 1e-7, "location": {"lon": 106.26, "lat": 26.41}},
        {"z": [1, 2.5, None, True, {"b": 1, "a": [{}]}], "a": "\u2028\u00e9", "emoji": "🏭"},
    ],
)
def test_content_hash_is_unchanged_and_payload_text_is_canonical(payload: dict[str, object]) -> None:
    """Stored hashes do not change, except (issue 18) where an integral float (51499.0) is now
    written as the integer it equals: the hash is the old one of the payload written that way."""
    ev = Event("e\t1", "P1", EventType.SIGNED, datetime(2024, 3, 1, 9, 30, tzinfo=SHANGHAI), None, 1, payload)
    as_integers = json.loads(json.dumps(payload), parse_float=lambda s: int(float(s)) if float(s).is_integer() else float(s))
    digest, text = ev.hash_and_payload_text()
    assert digest == ev.content_hash() == _old_content_hash(Event(*[*astuple(ev)[:6], as_integers]))
    if as_integers == payload and all(type(a) is type(b) for a, b in zip(as_integers.values(), payload.values(), strict=True)):
        assert digest == _old_content_hash(ev)
    assert text == json.dumps(as_integers, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert json.loads(text) == payload


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"investment_wan": 1000, "name": "x"}, {"investment_wan": 1000.0, "name": "x"}),
        ({"investment_wan": 0, "name": "x"}, {"investment_wan": -0.0, "name": "x"}),
        ({"note": [1, {"k": 3}]}, {"note": [1.0, {"k": 3.0}]}),
    ],
)
def test_numerically_equal_payloads_hash_alike(a: dict[str, object], b: dict[str, object]) -> None:
    when = datetime(2024, 3, 1, tzinfo=SHANGHAI)
    ea, eb = (Event("e1", "P1", EventType.SIGNED, when, None, 1, p) for p in (a, b))
    assert ea.hash_and_payload_text() == eb.hash_and_payload_text()
    assert ea.content_hash() == _old_content_hash(ea), "integer-valued data hashes as before"


def test_content_hash_of_a_known_event() -> None:
    ev = Event("e1", "P1", EventType.FUNDS_ARRIVED, datetime(2024, 3, 1, tzinfo=SHANGHAI), None, 1, {"amount_wan": 300, "currency": "CNY"})
    import hashlib

    expected = '["e1","P1","funds_arrived","2024-02-29T16:00:00+00:00",1,{"amount_wan":300,"currency":"CNY"}]'
    assert ev.content_hash() == hashlib.sha256(expected.encode()).hexdigest()
