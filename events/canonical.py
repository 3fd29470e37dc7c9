"""Events in the canonical form the log stores and hashes, decoded straight from wire bytes.

:func:`fast_canonical` decodes and checks the common shape of a v1 event in C (msgspec typed
structs: one per event type, the payload's fields declared in sorted order so re-encoding them *is*
the canonical JSON; the usual instant form turned to UTC from tables of days and hours). Whatever
it does not take (an unknown payload field, a number printed in exponent form, an escape that might
spell a NUL or a surrogate, and every invalid record) goes through :func:`parse_event`, which is the
specification and explains each refusal; :func:`canonicalize` chains the two, as appends do
(``warehouse.event_store.prepare``). Both give identical results for every record the fast path
takes (``tests/test_events_canonical.py`` holds them to that).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, NamedTuple, Union

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from events.model import SCHEMA_VERSION, Event
from events.validation import (
    AMOUNT_MAX,
    MAX_ID_LENGTH,
    MAX_SCHEMA_VERSION,
    EventValidationError,
    parse_event,
    parse_instant,
)


class CanonicalEvent(NamedTuple):
    """An event as the log stores it.

    ``occurred_utc`` is ISO 8601 text in UTC (what the content hash covers); ``recorded_at`` ISO 8601
    text with an explicit offset that PostgreSQL reads as Python does (it is not hashed); ``payload_json`` is the
    payload's canonical JSON in UTF-8 (sorted keys, no spaces); ``content_hash`` the hex SHA-256 of
    ``[event_id, project_id, type, occurred_at, schema_version, payload]`` in the same form.
    """

    event_id: str
    project_id: str
    type: str
    occurred_utc: str
    recorded_at: str | None
    schema_version: int
    payload_json: bytes
    content_hash: str


def from_event(ev: Event) -> CanonicalEvent:
    """The canonical form of a validated :class:`Event` (the explaining path's result)."""
    digest, payload_text = ev.hash_and_payload_text()
    return CanonicalEvent(
        ev.event_id,
        ev.project_id,
        ev.type.value,
        ev.occurred_at.astimezone(UTC).isoformat(),
        ev.recorded_at.astimezone(UTC).isoformat() if ev.recorded_at is not None else None,
        ev.schema_version,
        payload_text.encode(),
        digest,
    )


# --- the fast path's types ---------------------------------------------------------------------
# A field that may be absent (UNSET, left out when re-encoded), null, or a value: absent and null
# hash differently, as they do in the explaining path.


# Amounts in [0, AMOUNT_MAX[field]], as the explaining path bounds them (outside: it explains).
_MONEY_MAX, _MU_MAX, _M2_MAX = AMOUNT_MAX["investment_wan"], AMOUNT_MAX["land_area_mu"], AMOUNT_MAX["floor_area_m2"]
assert AMOUNT_MAX["foreign_usd_wan"] == AMOUNT_MAX["amount_wan"] == _MONEY_MAX  # one type for the three sums of money
_Money = Annotated[int, Meta(ge=0, le=int(_MONEY_MAX))] | Annotated[float, Meta(ge=0, le=_MONEY_MAX)]
_Mu = Annotated[int, Meta(ge=0, le=int(_MU_MAX))] | Annotated[float, Meta(ge=0, le=_MU_MAX)]
_M2 = Annotated[int, Meta(ge=0, le=int(_M2_MAX))] | Annotated[float, Meta(ge=0, le=_M2_MAX)]
_Id = Annotated[str, Meta(max_length=MAX_ID_LENGTH)]
_Text = str | None | UnsetType
_Degrees = int | float


class _Payload(Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """Payload fields must be declared in sorted order (code points): encoding keeps declaration order."""


class _Location(_Payload):
    lat: _Degrees
    lon: _Degrees


class _SignedPayload(_Payload):
    channel: _Text = UNSET
    confidential: bool | None | UnsetType = UNSET
    foreign: bool | None | UnsetType = UNSET
    foreign_usd_wan: _Money | None | UnsetType = UNSET
    industry: _Text = UNSET
    investment_wan: _Money | UnsetType = UNSET
    investor: _Text = UNSET
    location: _Location | None | UnsetType = UNSET
    name: str | UnsetType = UNSET
    parcel_id: _Text = UNSET
    unit: _Text = UNSET


class _LandedPayload(_Payload):
    factory_id: _Text = UNSET
    floor_area_m2: _M2 | None | UnsetType = UNSET
    land_area_mu: _Mu | None | UnsetType = UNSET
    parcel_id: _Text = UNSET


class _EmptyPayload(_Payload):
    pass


class _CancelledPayload(_Payload):
    reason: _Text = UNSET


class _FundsPayload(_Payload):
    amount_wan: _Money | UnsetType = UNSET
    currency: Literal["CNY", "USD"] | UnsetType = UNSET


class _RetractedPayload(_Payload):
    event_id: str | UnsetType = UNSET
    reason: _Text = UNSET


class _Wire(Struct, tag_field="type", gc=False):
    event_id: _Id
    project_id: _Id
    occurred_at: str
    recorded_at: str | None = None
    schema_version: Annotated[int, Meta(ge=1, le=MAX_SCHEMA_VERSION)] | None = None


class _Signed(_Wire, tag="signed"):
    payload: _SignedPayload | None = None


class _Landed(_Wire, tag="landed"):
    payload: _LandedPayload | None = None


class _Started(_Wire, tag="started"):
    payload: _EmptyPayload | None = None


class _Produced(_Wire, tag="produced"):
    payload: _EmptyPayload | None = None


class _Cancelled(_Wire, tag="cancelled"):
    payload: _CancelledPayload | None = None


class _Funds(_Wire, tag="funds_arrived"):
    payload: _FundsPayload | None = None


class _Retracted(_Wire, tag="retracted"):
    payload: _RetractedPayload | None = None


_WIRE_TYPES = (_Signed, _Landed, _Started, _Produced, _Cancelled, _Funds, _Retracted)
_DECODER = msgspec.json.Decoder(Union[_WIRE_TYPES])  # noqa: UP007 - a union built from the tuple
_TYPE_OF: dict[type, str] = {cls: str(cls.__struct_config__.tag) for cls in _WIRE_TYPES}
_ENCODER = msgspec.json.Encoder()
_EMPTY = b"{}"

_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SUSPECT_ESCAPE_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_fromiso = datetime.fromisoformat
_new_canonical = tuple.__new__  # CanonicalEvent without NamedTuple's Python-level __new__ (once per event)


_SIXTY = frozenset(f"{i:02d}" for i in range(60))
_HOUR_OF = {f"{h:02d}": h for h in range(24)}
_HH = tuple(f"{h:02d}" for h in range(24))
# "YYYY-MM-DD±HH:00" → (the day before, the day, the day after, as "YYYY-MM-DDT"; the offset in
# hours to add for UTC), or None when it names no day or offset. None for a neighbour beyond
# Python's dates. Events share days: a few thousand entries cover years of history.
_DayEntry = tuple[str | None, str, str | None, int]
_DAYS: dict[str, _DayEntry | None] = {}


def _day_entry(value: str) -> _DayEntry | None:
    if value[4] != "-" or value[7] != "-" or value[10] != "T" or value[19] not in "+-":
        return None
    offset = _HOUR_OF.get(value[20:22])
    if offset is None:
        return None
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    neighbours: list[str | None] = []
    for step in (-1, 1):
        try:
            neighbours.append((day + timedelta(days=step)).isoformat() + "T")
        except OverflowError:
            neighbours.append(None)
    return neighbours[0], day.isoformat() + "T", neighbours[1], -offset if value[19] == "+" else offset


def _strict_form(value: str) -> bool:
    """Shaped ``YYYY-MM-DDTHH:MM:SS±HH:00`` with valid minutes and seconds (the rest: :func:`_utc_hour`)."""
    return (
        len(value) == 25
        and value[10] == "T"  # Python also reads a space there; PostgreSQL's reading of the rest is what "strict" promises
        and value[4] == "-"
        and value[7] == "-"
        and value[19] in "+-"
        and value[13] == ":"
        and value[16] == ":"
        and value[22:] == ":00"
        and value[14:16] in _SIXTY
        and value[17:19] in _SIXTY
    )


# "YYYY-MM-DDTHH±HH:00" → that hour in UTC as "YYYY-MM-DDTHH", or None (see _utc_hour).
_HOURS: dict[str, str | None] = {}


def _utc_hour(value: str) -> str | None:
    """The UTC hour of a :func:`_strict_form` instant, or None when it is not one (or its UTC day
    is beyond Python's dates): then ``parse_instant`` decides."""
    key = value[:13] + value[19:]
    try:
        return _HOURS[key]
    except KeyError:
        pass
    utc: str | None = None
    day_key = value[:10] + value[19:]
    if day_key in _DAYS:
        entry = _DAYS[day_key]
    else:
        entry = _DAYS[day_key] = _day_entry(value)
    hour = _HOUR_OF.get(value[11:13])
    if entry is not None and hour is not None:
        hour += entry[3]
        if hour < 0:
            prefix, hour = entry[0], hour + 24
        elif hour >= 24:
            prefix, hour = entry[2], hour - 24
        else:
            prefix = entry[1]
        utc = None if prefix is None else prefix + _HH[hour]
    if len(_HOURS) > 500_000:  # bounded: decades of hours; cleared, not grown, past that
        _HOURS.clear()
        _DAYS.clear()
    _HOURS[key] = utc
    return utc


def _utc_text(value: str, field: str) -> str:
    """The UTC ISO text of an instant, exactly as ``parse_instant(value).astimezone(UTC).isoformat()``.

    The usual form (``YYYY-MM-DDTHH:MM:SS±HH:00``) from tables of hours and days: a fifth of the
    cost of the datetime round trip, which takes every other form.
    """
    if _strict_form(value):
        hour = _utc_hour(value)
        if hour is not None:
            return hour + value[13:19] + "+00:00"
    return parse_instant(value, field).astimezone(UTC).isoformat()


def _recorded_text(value: str) -> str:
    """``recorded_at`` as stored: the text itself when it is in the strict form (``YYYY-MM-DDTHH:MM:SS±HH:00``,
    an offset PostgreSQL accepts, at most 15 hours), which Python and PostgreSQL read alike; else its
    UTC form. Python reads more forms than PostgreSQL does (week dates, ``14:30.00``), and reads
    some differently, so nothing looser passes through."""
    if _strict_form(value) and value[20:22] <= "15" and _utc_hour(value) is not None:
        return value
    return _utc_text(value, "recorded_at")


def _plain_number(value: float) -> bool:
    """Printed alike by msgspec and Python's json (no exponent form, which the two spell differently)."""
    magnitude = abs(value)
    return magnitude == 0 or 1e-4 <= magnitude < 1e16


def _optional_number_ok(payload: Any, name: str) -> bool:
    """An optional number (absent, null or a number) prints alike; an integral float becomes an int."""
    v = getattr(payload, name)
    if type(v) in (int, float):
        if not _plain_number(v):
            return False
        if type(v) is float and v.is_integer():
            setattr(payload, name, int(v))
    return True


def _location_ok(loc: Any) -> bool:
    """An optional location (WGS84 degrees) is on the globe and prints alike; integral floats become ints."""
    if loc is None or loc is UNSET:
        return True
    lon, lat = loc.lon, loc.lat
    if not (-180 <= lon <= 180 and -90 <= lat <= 90 and _plain_number(lon) and _plain_number(lat)):
        return False
    if type(lon) is float and lon.is_integer():
        loc.lon = int(lon)
    if type(lat) is float and lat.is_integer():
        loc.lat = int(lat)
    return True


def _signed_ok(wire: Any) -> bool:
    p = wire.payload
    v = p.investment_wan
    if p.name is UNSET or not p.name.strip() or v is UNSET or not _plain_number(v):
        return False
    if type(v) is float and v.is_integer():
        p.investment_wan = int(v)
    return _optional_number_ok(p, "foreign_usd_wan") and _location_ok(p.location)


def _landed_ok(wire: Any) -> bool:
    return all(_optional_number_ok(wire.payload, name) for name in ("land_area_mu", "floor_area_m2"))


def _funds_ok(wire: Any) -> bool:
    p = wire.payload
    v = p.amount_wan
    if v is UNSET or not _plain_number(v):
        return False
    if type(v) is float and v.is_integer():
        p.amount_wan = int(v)
    return True


def _retracted_ok(wire: Any) -> bool:
    p = wire.payload
    return p.event_id is not UNSET and bool(p.event_id.strip()) and p.event_id != wire.event_id


# The payload checks per wire type (a payload not listed has nothing typed decoding misses).
_PAYLOAD_CHECKS: dict[type[_Wire], Callable[[Any], bool]] = {
    _Signed: _signed_ok,
    _Landed: _landed_ok,
    _Funds: _funds_ok,
    _Retracted: _retracted_ok,
}


def _payload_ok(wire: Any) -> bool:
    """The checks typed decoding cannot express; False sends the record to the explaining path.

    Also gives integral floats their canonical form (``1000.0`` → ``1000``, as
    :func:`events.model.canonical_numbers` does): the amounts are bounded far below 1e16, so
    every integral one qualifies.
    """
    if wire.payload is None:
        return type(wire) in (_Started, _Produced, _Cancelled, _Landed)
    check = _PAYLOAD_CHECKS.get(type(wire))
    return True if check is None else check(wire)


def fast_canonical(raw: bytes | str) -> CanonicalEvent | None:
    """The canonical form by the fast path, or None when the explaining path must decide."""
    # An escape may spell a NUL or a surrogate (PostgreSQL stores neither NUL nor a lone one).
    if isinstance(raw, bytes):
        if b"\\u" in raw and _SUSPECT_ESCAPE_BYTES.search(raw):
            return None
        # msgspec checks UTF-8 only in what it decodes, not in the fields it skips.
        if not raw.isascii():
            try:
                raw.decode()
            except UnicodeDecodeError:
                return None
    elif "\\u" in raw and _SUSPECT_ESCAPE.search(raw):
        return None
    try:
        wire = _DECODER.decode(raw)
    except (ValueError, RecursionError):  # msgspec errors, bad UTF-8, deep nesting: the other path explains them
        return None
    event_id, project_id = wire.event_id, wire.project_id
    if not event_id.strip() or not project_id.strip() or not _payload_ok(wire):
        return None
    try:
        occurred = _utc_text(wire.occurred_at, "occurred_at")
        recorded = None if wire.recorded_at is None else _recorded_text(wire.recorded_at)
    except ValueError:
        return None
    version = SCHEMA_VERSION if wire.schema_version is None else wire.schema_version
    type_ = _TYPE_OF[type(wire)]
    payload_json = _EMPTY if wire.payload is None else _ENCODER.encode(wire.payload)
    head = _ENCODER.encode((event_id, project_id, type_, occurred, version))
    digest = hashlib.sha256(b"".join((head[:-1], b",", payload_json, b"]"))).hexdigest()
    return _new_canonical(CanonicalEvent, (event_id, project_id, type_, occurred, recorded, version, payload_json, digest))


def explained_canonical(raw: bytes | str) -> CanonicalEvent:
    """The canonical form by the explaining path; raises only :class:`EventValidationError`.

    This is where one record is isolated from the rest: whatever it holds, it ends as a refusal
    with a reason (a dead letter), never as an error that would stop its batch or a stream. An
    error other than a refusal means the specification missed a case: the reason names it.
    """
    try:
        return from_event(parse_event(raw))
    except EventValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - poison isolation, see above
        raise EventValidationError(f"cannot be read ({type(exc).__name__}: {str(exc)[:200]})") from exc


def canonicalize(raw: bytes | str) -> CanonicalEvent:
    """Decode, validate and canonicalize one wire record (a JSON Lines line or a Kafka message).

    Raises :class:`~events.validation.EventValidationError` naming the field and the fault.
    """
    fast = fast_canonical(raw)
    return fast if fast is not None else explained_canonical(raw)
