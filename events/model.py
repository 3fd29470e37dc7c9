"""The typed v1 event model (wire format in ``shared/DOMAIN.md``).

Pure domain: nothing here touches storage or the network.
Instants are timezone-aware; a date or a naive date-time on the wire means Asia/Shanghai.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCHEMA_VERSION = 1


class EventType(StrEnum):
    SIGNED = "signed"
    LANDED = "landed"
    STARTED = "started"
    PRODUCED = "produced"
    CANCELLED = "cancelled"
    FUNDS_ARRIVED = "funds_arrived"
    RETRACTED = "retracted"
    MERGED = "merged"  # 重复签约: this project is a duplicate of payload.into (a correction, like a retraction)


class Stage(StrEnum):
    """A project's lifecycle stage; the order of the first four is the funnel."""

    NONE = "none"
    SIGNED = "signed"
    LANDED = "landed"
    STARTED = "started"
    PRODUCED = "produced"
    CANCELLED = "cancelled"


FUNNEL: tuple[Stage, ...] = (Stage.SIGNED, Stage.LANDED, Stage.STARTED, Stage.PRODUCED)
FUNNEL_RANK: dict[str, int] = {s.value: i + 1 for i, s in enumerate(FUNNEL)}

STAGE_LABELS: dict[str, tuple[str, str]] = {
    "none": ("未签约", "Not signed"),
    "signed": ("签约", "Signed"),
    "landed": ("落地", "Landed"),
    "started": ("开工", "Started"),
    "produced": ("投产", "Produced"),
    "cancelled": ("取消", "Cancelled"),
}
# Event types that correct the record rather than report progress: a horizon sees them by when they
# were recorded alone, whatever their occurred_at (a duplicate was never a second project).
CORRECTION_TYPES: frozenset[str] = frozenset({"retracted", "merged"})

STAGE_LABEL_ZH: dict[str, str] = {code: pair[0] for code, pair in STAGE_LABELS.items()}

# Same-instant events are applied in lifecycle order, so a day on which a project is signed and
# landed folds the same whatever order the lines arrived in.
TYPE_ORDER: dict[str, int] = {
    "signed": 0,
    "landed": 1,
    "started": 2,
    "produced": 3,
    "funds_arrived": 4,
    "cancelled": 5,
    "retracted": 6,
    "merged": 7,
}


@dataclass(frozen=True, slots=True)
class Event:
    """One validated lifecycle event.

    ``occurred_at`` and ``recorded_at`` are aware datetimes; ``recorded_at`` is ``None`` only
    before arrival stamps it.
    """

    event_id: str
    project_id: str
    type: EventType
    occurred_at: datetime
    recorded_at: datetime | None = None
    schema_version: int = SCHEMA_VERSION
    payload: dict[str, Any] = field(default_factory=dict)

    def sort_key(self) -> tuple[datetime, int, str]:
        """Order used by every fold: business time, then lifecycle order, then id (never arrival)."""
        return (self.occurred_at, TYPE_ORDER[self.type], self.event_id)

    def content_hash(self) -> str:
        """Hash of what the event says; ``recorded_at`` is excluded because re-sending a fact is no conflict."""
        return content_hash(self.event_id, self.project_id, self.type, self.occurred_at, self.schema_version, self.payload)

    def hash_and_payload_text(self) -> tuple[str, str]:
        """:meth:`content_hash` and the payload's canonical JSON, for an append that stores both."""
        return hash_and_payload_text(self.event_id, self.project_id, self.type, self.occurred_at, self.schema_version, self.payload)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "project_id": self.project_id,
            "type": str(self.type),
            "occurred_at": self.occurred_at.isoformat(),
            "schema_version": self.schema_version,
            "payload": self.payload,
        }
        if self.recorded_at is not None:
            out["recorded_at"] = self.recorded_at.isoformat()
        return out


# Built once: json.dumps with options builds an encoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
_WIRE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# Integral floats below this magnitude are written as integers; beyond it a float's digits are not
# the number it was written as, so it keeps its own form.
_EXACT_INTEGRAL = 1e16


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value``: sorted keys, no spaces, non-ASCII as itself (stdlib ``json``).

    What content hashes and ledger event ids are computed over; the msgspec fast path in
    :mod:`events.canonical` writes the same bytes for the records it takes (tested). Numbers are
    written as they are: the content hash first applies :func:`canonical_numbers`.
    """
    return _CANONICAL.encode(value)


def wire_json(record: dict[str, Any]) -> str:
    """One record as a line of the wire (JSON lines, Kafka): its keys in their order, no spaces, non-ASCII as itself."""
    return _WIRE.encode(record)


def canonical_numbers(value: Any) -> Any:
    """``value`` with numerically equal JSON numbers in one form: an integral float becomes the
    integer (``1000.0`` → ``1000``), so re-sending ``1000`` as ``1000.0`` is a duplicate, not a
    conflict. Integers and other floats are left as they are, so their hashes do not change."""
    if type(value) is float:
        return int(value) if value.is_integer() and -_EXACT_INTEGRAL < value < _EXACT_INTEGRAL else value
    if isinstance(value, dict):
        return {k: canonical_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical_numbers(v) for v in value]
    return value


def content_hash(
    event_id: str, project_id: str, type_: str, occurred_at: datetime, schema_version: int, payload: dict[str, Any]
) -> str:
    return hash_and_payload_text(event_id, project_id, type_, occurred_at, schema_version, payload)[0]


def hash_and_payload_text(
    event_id: str, project_id: str, type_: str, occurred_at: datetime, schema_version: int, payload: dict[str, Any]
) -> tuple[str, str]:
    """The content hash and the payload's canonical JSON (which the hash covers), each encoded once.

    The hash is the SHA-256 of the canonical JSON (sorted keys, no spaces, integral floats as
    integers: :func:`canonical_numbers`) of
    ``[event_id, project_id, type, occurred_at in UTC, schema_version, payload]``.
    """
    head = canonical_json([event_id, project_id, str(type_), occurred_at.astimezone(UTC).isoformat(), schema_version])
    payload_text = canonical_json(canonical_numbers(payload))
    canonical = head[:-1] + "," + payload_text + "]"
    return hashlib.sha256(canonical.encode()).hexdigest(), payload_text


def end_of_day(day: date) -> datetime:
    """The first instant after ``day`` in Asia/Shanghai: 'as of a date' includes all of that day."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=SHANGHAI)


def local_date(instant: datetime) -> date:
    """The Asia/Shanghai calendar date of an instant."""
    return instant.astimezone(SHANGHAI).date()
