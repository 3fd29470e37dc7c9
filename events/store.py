"""The log store's contract, in domain terms: what the append-only event log promises, whatever holds it.

Two implementations keep it: ``ingestion.log_store.PostgisLogStore`` (the product's, PostgreSQL)
and :class:`events.memory_store.MemoryLogStore` (pure, for semantic tests without services);
``tests/store_contract.py`` holds both to the same cases. The promises:

- **append**: every record read is counted once, ``read = accepted + duplicates + rejected``. The
  same ``event_id`` with the same content (:attr:`CanonicalEvent.content_hash`) is a duplicate and
  changes nothing; with other content it is a conflict: the stored version stays, the new one is
  dead-lettered with both. An invalid record is dead-lettered with the validator's reason.
- **dead letters** are kept once per (source, hash of the raw bytes), however often a record is read.
- **events(horizon)**: what a replay at a :class:`Horizon` may see.
- **offsets**: a stream sink commits a batch of appends together with its partitions' next offsets
  in one unit (all or nothing), and is refused (:class:`Fenced`, nothing written) when an offset
  is no longer the one it last committed: another writer with the same sink name moved it.

This module holds the types both sides share (moved here from ``warehouse.event_store``, which
re-exports them) and no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple, Protocol

from events.canonical import CanonicalEvent
from events.model import CORRECTION_TYPES, Event, end_of_day
from events.validation import parse_event


class Incoming(NamedTuple):
    """One raw record as read: its bytes or text, where it came from (file or topic) and its position there.

    Readers hand over bytes as they come (decoding is part of parsing); :attr:`text` is the record
    as text for people and the dead letters.
    """

    raw: str | bytes
    source: str
    position: str | None = None

    @property
    def text(self) -> str:
        return raw_text(self.raw)


def raw_text(raw: str | bytes) -> str:
    """A record as text; bytes that are not UTF-8 keep their readable part and say so."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace") + "\ufffd(not UTF-8)"


@dataclass(slots=True)
class AppendResult:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)  # first few rejection reasons, for the user

    def add(self, other: AppendResult) -> None:
        self.read += other.read
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.reasons.extend(other.reasons[: max(0, 20 - len(self.reasons))])

    def as_dict(self) -> dict[str, int]:
        d = asdict(self)
        d.pop("reasons")
        return d


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected record. ``raw_hash`` (of the bytes as read) with ``source`` is its identity: the
    same bad record from the same source is kept once, however often it is read."""

    raw: str
    reason: str
    source: str
    position: str | None
    event_id: str | None
    raw_hash: str

    @classmethod
    def of(cls, inc: Incoming, reason: str, event_id: str | None = None) -> DeadLetter:
        raw = inc.raw
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
        return cls(inc.text, reason, inc.source, inc.position, event_id, hashlib.sha256(data).hexdigest())


def wire_of(inc: Incoming) -> dict[str, Any]:
    """The wire form of a record already known to be valid (for a conflict's reason; rare)."""
    return parse_event(inc.text).to_wire()


def conflict_letter(c: CanonicalEvent, inc: Incoming, stored: dict[str, Any]) -> DeadLetter:
    """The dead letter of a conflicting version, naming the stored one (``stored``: its wire form)."""
    stored_text = json.dumps(stored, ensure_ascii=False, sort_keys=True, default=str)
    new_text = json.dumps(wire_of(inc), ensure_ascii=False, sort_keys=True, default=str)
    reason = (
        f"conflict: event_id {c.event_id!r} is already in the log with different content; "
        f"stored version: {stored_text}; this version: {new_text}"
    )
    return DeadLetter.of(inc, reason, c.event_id)


@dataclass(frozen=True, slots=True)
class Horizon:
    """What a replay may see: business time up to ``as_of`` (inclusive day), knowledge up to ``known_at``.

    Retractions are seen by ``recorded_at`` alone: a correction made later, but known by
    ``known_at``, corrects the past.
    """

    as_of: date
    known_at: datetime | None = None

    @property
    def occurred_before(self) -> datetime:
        return end_of_day(self.as_of)

    def sees(self, ev: Event) -> bool:
        """Whether a stored event (``recorded_at`` set) is within the horizon (its SQL form is ``warehouse.horizon.horizon_clause``)."""
        if ev.occurred_at >= self.occurred_before and ev.type not in CORRECTION_TYPES:
            return False
        return self.known_at is None or (ev.recorded_at is not None and ev.recorded_at <= self.known_at)

    def describe(self) -> str:
        known = f", known at {self.known_at.isoformat()}" if self.known_at else ""
        return f"as of {self.as_of.isoformat()}{known}"


class Fenced(RuntimeError):
    """A writer's claim on a partition is stale: its offset moved since it last committed. Nothing was written."""


@dataclass(slots=True)
class PartitionRecords:
    """The records of one partition in one stream batch and the offset after the last of them."""

    partition: int
    records: Iterable[Incoming]
    next_offset: int


class LogStore(Protocol):
    """The append-only event log with its dead letters and stream offsets (see the module's promises)."""

    def append(self, records: Iterable[Incoming], *, arrival: datetime | None = None) -> AppendResult:
        """Validate and append, in one unit; ``arrival`` stamps events without ``recorded_at`` (default: now)."""
        ...

    def events(self, horizon: Horizon) -> list[Event]:
        """The stored events ``horizon`` sees (in no particular order)."""
        ...

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter, oldest first."""
        ...

    def claim(self, sink: str, topic: str, partitions: Sequence[int], *, reset: bool = False) -> dict[int, int]:
        """The committed next offset of each partition (0 for a new one; 0 again with ``reset``)."""
        ...

    def commit(
        self, sink: str, topic: str, batches: Sequence[PartitionRecords], expected: dict[int, int]
    ) -> dict[int, AppendResult]:
        """Append each partition's records and move its offset to ``next_offset``, all in one unit.

        Raises :class:`Fenced` (nothing written) when a partition's committed offset is not ``expected``;
        any other failure also writes nothing, neither rows nor offsets.
        """
        ...
