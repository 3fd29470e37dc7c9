"""Parse and validate wire-format events with messages that name the field and the fault."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from typing import Any

import orjson

from events.model import CORRECTION_TYPES, SCHEMA_VERSION, SHANGHAI, Event, EventType

# The log's column is a 32-bit integer.
MAX_SCHEMA_VERSION = 2**31 - 1
# event_id and project_id are keys of btree indexes (the log, the marts), whose entries PostgreSQL
# caps at about 2,700 bytes: 512 characters are at most 2,048 bytes of UTF-8.
MAX_ID_LENGTH = 512
# Nesting of the payload (it is stored as jsonb and hashed by recursive encoders); v1's own fields
# nest two deep, so this leaves room for the format to grow.
MAX_PAYLOAD_DEPTH = 32
# Plausible upper bounds of the amounts (README, "Semantics"): larger values are typing errors
# (a figure in 元 entered as 万元, digits repeated), and they keep every KPI sum finite.
AMOUNT_MAX: dict[str, float] = {
    "investment_wan": 1e8,  # 万元: 1 万亿元
    "foreign_usd_wan": 1e8,  # 万美元
    "amount_wan": 1e8,  # 万元 or 万美元
    "land_area_mu": 1e6,  # 亩: about 667 km²
    "floor_area_m2": 1e7,  # m²: 10 km² of floor space
}


class EventValidationError(ValueError):
    """A record that is not a valid event. ``event_id`` is set when the record had a readable one."""

    def __init__(self, reason: str, *, field: str | None = None, event_id: str | None = None) -> None:
        self.reason = reason
        self.field = field
        self.event_id = event_id
        where = f"field '{field}': " if field else ""
        who = f"event {event_id!r}: " if event_id else ""
        super().__init__(f"{who}{where}{reason}")


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_instant(value: Any, field: str, *, event_id: str | None = None) -> datetime:
    """ISO 8601 date or date-time; no zone means Asia/Shanghai; a bare date means its local midnight."""
    if not isinstance(value, str) or not value.strip():
        raise EventValidationError(f"must be an ISO 8601 date or date-time string, got {value!r}", field=field, event_id=event_id)
    text = value.strip()
    try:
        if _DATE_ONLY.match(text):
            d = date.fromisoformat(text)
            instant = datetime(d.year, d.month, d.day, tzinfo=SHANGHAI)
        else:
            instant = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise EventValidationError(f"not an ISO 8601 date or date-time: {value!r}", field=field, event_id=event_id) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=SHANGHAI)
    try:
        instant.astimezone(UTC)  # the log keeps and hashes instants in UTC
    except OverflowError:
        raise EventValidationError(f"out of range in UTC: {value!r}", field=field, event_id=event_id) from None
    return instant


def _number(payload: dict[str, Any], key: str, *, required: bool, event_id: str, minimum: float | None = 0.0) -> None:
    fname = f"payload.{key}"
    if key not in payload or payload[key] is None:
        if required:
            raise EventValidationError("is required", field=fname, event_id=event_id)
        return
    value = payload[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventValidationError(f"must be a number, got {value!r}", field=fname, event_id=event_id)
    if isinstance(value, int) and not -1e300 < value < 1e300:  # float() would overflow in the fold
        raise EventValidationError(f"is too large ({len(str(abs(value)))} digits)", field=fname, event_id=event_id)
    if not math.isfinite(value):
        raise EventValidationError(f"must be finite, got {value!r}", field=fname, event_id=event_id)
    if minimum is not None and value < minimum:
        raise EventValidationError(f"must be ≥ {minimum:g}, got {value!r}", field=fname, event_id=event_id)
    maximum = AMOUNT_MAX.get(key)
    if maximum is not None and value > maximum:
        raise EventValidationError(f"must be ≤ {maximum:,.0f}, got {value!r}", field=fname, event_id=event_id)


def _string(payload: dict[str, Any], key: str, *, required: bool, event_id: str) -> None:
    fname = f"payload.{key}"
    if key not in payload or payload[key] is None:
        if required:
            raise EventValidationError("is required", field=fname, event_id=event_id)
        return
    value = payload[key]
    if not isinstance(value, str):
        raise EventValidationError(f"must be a string, got {value!r}", field=fname, event_id=event_id)
    if required and not value.strip():
        raise EventValidationError("must not be empty", field=fname, event_id=event_id)


def _validate_payload(type_: EventType, payload: dict[str, Any], event_id: str, project_id: str = "") -> None:
    if type_ is EventType.SIGNED:
        _string(payload, "name", required=True, event_id=event_id)
        _number(payload, "investment_wan", required=True, event_id=event_id)
        _number(payload, "foreign_usd_wan", required=False, event_id=event_id)
        for key in ("investor", "industry", "unit", "channel", "parcel_id"):
            _string(payload, key, required=False, event_id=event_id)
        for key in ("foreign", "confidential"):
            if key in payload and payload[key] is not None and not isinstance(payload[key], bool):
                raise EventValidationError(f"must be true or false, got {payload[key]!r}", field=f"payload.{key}", event_id=event_id)
        if payload.get("location") is not None:
            loc = payload["location"]
            if not isinstance(loc, dict):
                raise EventValidationError(f"must be an object {{lon, lat}}, got {loc!r}", field="payload.location", event_id=event_id)
            _number(loc, "lon", required=True, event_id=event_id, minimum=-180)
            _number(loc, "lat", required=True, event_id=event_id, minimum=-90)
            if loc["lon"] > 180 or loc["lat"] > 90:
                raise EventValidationError(f"lon/lat out of range: {loc!r}", field="payload.location", event_id=event_id)
    elif type_ is EventType.LANDED:
        _string(payload, "parcel_id", required=False, event_id=event_id)
        _string(payload, "factory_id", required=False, event_id=event_id)
        _number(payload, "land_area_mu", required=False, event_id=event_id)
        _number(payload, "floor_area_m2", required=False, event_id=event_id)
    elif type_ is EventType.CANCELLED:
        _string(payload, "reason", required=False, event_id=event_id)
    elif type_ is EventType.FUNDS_ARRIVED:
        _number(payload, "amount_wan", required=True, event_id=event_id)
        currency = payload.get("currency", "CNY")
        if currency not in ("CNY", "USD"):
            raise EventValidationError(f"must be 'CNY' or 'USD', got {currency!r}", field="payload.currency", event_id=event_id)
    elif type_.value in CORRECTION_TYPES:
        _validate_correction(type_, payload, event_id, project_id)


def _validate_correction(type_: EventType, payload: dict[str, Any], event_id: str, project_id: str) -> None:
    """``merged`` (payload.into: the project this one duplicates) and ``retracted`` (payload.event_id)."""
    if type_ is EventType.MERGED:
        _string(payload, "into", required=True, event_id=event_id)
        if payload["into"] == project_id:
            raise EventValidationError("a project cannot be merged into itself", field="payload.into", event_id=event_id)
        _string(payload, "reason", required=False, event_id=event_id)
    elif type_ is EventType.RETRACTED:
        _string(payload, "event_id", required=True, event_id=event_id)
        if payload["event_id"] == event_id:
            raise EventValidationError("a retraction cannot withdraw itself", field="payload.event_id", event_id=event_id)
        _string(payload, "reason", required=False, event_id=event_id)


def _required_str(record: dict[str, Any], key: str, event_id: str | None) -> str:
    if key not in record or record[key] is None:
        raise EventValidationError("is required", field=key, event_id=event_id)
    value = record[key]
    if not isinstance(value, str):
        raise EventValidationError(f"must be a string, got {value!r}", field=key, event_id=event_id)
    if not value.strip():
        raise EventValidationError("must not be empty", field=key, event_id=event_id)
    if len(value) > MAX_ID_LENGTH:
        raise EventValidationError(f"is longer than {MAX_ID_LENGTH} characters ({len(value)})", field=key, event_id=event_id)
    return value


def _check_tree(payload: dict[str, Any], event_id: str) -> None:
    """Refuse what no field check sees: nesting deeper than :data:`MAX_PAYLOAD_DEPTH` and numbers that
    are not finite (``1e400`` reads as infinity; jsonb cannot hold it). Iterative: no depth can
    exhaust the stack here."""
    stack: list[tuple[Any, str, int]] = [(payload, "payload", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                raise EventValidationError(f"must be finite, got {value!r}", field=path, event_id=event_id)
            continue
        if isinstance(value, dict):
            children = [(v, f"{path}.{k}", depth + 1) for k, v in value.items()]
        elif isinstance(value, list):
            children = [(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        else:
            continue
        if depth > MAX_PAYLOAD_DEPTH:
            raise EventValidationError(f"is nested deeper than {MAX_PAYLOAD_DEPTH} levels", field="payload", event_id=event_id)
        stack.extend(reversed(children))


def validate_record(record: Any) -> Event:
    """Turn a decoded JSON value into an :class:`Event`, or raise :class:`EventValidationError`."""
    if not isinstance(record, dict):
        raise EventValidationError(f"an event must be a JSON object, got {type(record).__name__}")
    raw_id = record.get("event_id")
    eid = raw_id if isinstance(raw_id, str) and raw_id.strip() else None
    event_id = _required_str(record, "event_id", None)
    project_id = _required_str(record, "project_id", eid)
    type_text = _required_str(record, "type", eid)
    try:
        type_ = EventType(type_text)
    except ValueError:
        allowed = ", ".join(t.value for t in EventType)
        raise EventValidationError(f"unknown event type {type_text!r} (expected one of {allowed})", field="type", event_id=eid) from None
    schema_version = record.get("schema_version", SCHEMA_VERSION)
    if schema_version is None:
        schema_version = SCHEMA_VERSION
    if isinstance(schema_version, bool) or not isinstance(schema_version, int) or not 1 <= schema_version <= MAX_SCHEMA_VERSION:
        raise EventValidationError(
            f"must be a positive integer up to {MAX_SCHEMA_VERSION}, got {schema_version!r}", field="schema_version", event_id=eid
        )
    occurred_at = parse_instant(record.get("occurred_at"), "occurred_at", event_id=eid)
    recorded_at = None
    if record.get("recorded_at") is not None:
        recorded_at = parse_instant(record["recorded_at"], "recorded_at", event_id=eid)
    payload = record.get("payload", {})
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise EventValidationError(f"must be an object, got {type(payload).__name__}", field="payload", event_id=eid)
    _validate_payload(type_, payload, event_id, project_id)
    _check_tree(payload, eid or event_id)
    return Event(
        event_id=event_id,
        project_id=project_id,
        type=type_,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        schema_version=schema_version,
        payload=payload,
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (PostgreSQL's jsonb cannot hold it)")


# One decoder for every record (json.loads with an option would build one per call).
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)

# JSON escapes of what PostgreSQL text and jsonb cannot hold: NUL and lone UTF-16 surrogates.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _find_unstorable(value: Any, path: str) -> str | None:
    """The path of the first string (or key) PostgreSQL cannot store, or None (iterative: any depth)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _unstorable(item):
                return where
        elif isinstance(item, dict):
            children = []
            for k, v in item.items():
                sub = f"{where}.{k}" if where else str(k)
                if _unstorable(k):
                    return sub
                children.append((v, sub))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed([(v, f"{where}[{i}]") for i, v in enumerate(item)]))
    return None


def _not_utf8(raw: bytes, exc: UnicodeDecodeError) -> EventValidationError:
    bad = raw[exc.start : exc.end].hex(" ")
    return EventValidationError(f"not UTF-8: byte(s) {bad} at byte offset {exc.start} ({exc.reason})")


def parse_event(raw: str | bytes) -> Event:
    """Decode one JSON text (a Kafka message or a JSON Lines line) and validate it.

    Besides broken JSON, refuses what PostgreSQL cannot store (NaN/Infinity, NUL characters, lone
    surrogates), so one such record is dead-lettered instead of failing its whole batch.
    """
    decoded: str | None = raw if isinstance(raw, str) else None
    if isinstance(raw, bytes) and not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not raw.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in raw[:4]:  # not UTF-16/32 JSON
                raise _not_utf8(raw, exc) from None
    try:
        # orjson is strict (RFC 8259, UTF-8, 64-bit integers) and about 4x faster than the stdlib
        # decoder; whatever it refuses goes through the stdlib decoder, which explains the fault.
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            decoded = raw if isinstance(raw, str) else raw.decode(json.detect_encoding(raw), "surrogatepass")
            record = _DECODER.decode(decoded)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, NaN, over-long integers
            raise EventValidationError(f"broken JSON: {exc}") from None
    suspect = False
    if decoded is not None:  # text, or bytes read with surrogatepass (encoded surrogates get through)
        suspect = _UNSTORABLE_ESCAPE.search(decoded) is not None or _unstorable(decoded)
    elif isinstance(raw, bytes):  # bytes orjson read: valid UTF-8, so only escapes can spell what PostgreSQL cannot store
        suspect = _UNSTORABLE_ESCAPE.search(raw.decode("utf-8", "replace")) is not None
    if suspect:
        where = _find_unstorable(record, "")
        if where is not None:
            raw_id = record.get("event_id") if isinstance(record, dict) else None
            eid = raw_id if isinstance(raw_id, str) and not _unstorable(raw_id) else None
            raise EventValidationError("contains a NUL character or a lone surrogate, which PostgreSQL cannot store", field=where, event_id=eid)
    return validate_record(record)
