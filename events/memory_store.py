"""The log store in memory (no I/O): :class:`events.store.LogStore` for semantic tests without services.

It decides with the same domain functions as the PostgreSQL store (``warehouse.event_store``):
:func:`events.canonical.canonicalize` for validation, the canonical form and the content hash,
:class:`~events.store.DeadLetter` for a rejected record's identity, :func:`~events.store.conflict_letter`
for a conflict's reason, :meth:`~events.store.Horizon.sees` for replay. Only the storage is its own:
dictionaries, with each unit (an append, a commit) applied whole or not at all.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from events.canonical import CanonicalEvent, canonicalize
from events.model import Event, EventType
from events.store import (
    AppendResult,
    DeadLetter,
    Fenced,
    Horizon,
    Incoming,
    LogStore,
    PartitionRecords,
    conflict_letter,
    wire_of,
)
from events.validation import EventValidationError


@dataclass(frozen=True, slots=True)
class _Stored:
    event: CanonicalEvent
    recorded_at: datetime
    source: str
    position: str | None

    def wire(self) -> dict[str, Any]:
        """The stored version as a conflict's reason names it (the columns ``warehouse.event_store`` reads back)."""
        c = self.event
        return {
            "event_id": c.event_id,
            "project_id": c.project_id,
            "type": c.type,
            "occurred_at": c.occurred_utc,
            "schema_version": c.schema_version,
            "payload": json.loads(c.payload_json),
            "stored_from": f"{self.source}@{self.position}",
        }


class MemoryLogStore:
    """An in-memory log store; ``now`` stamps arrivals (``recorded_at`` of events that carry none)."""

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now
        self._log: dict[str, _Stored] = {}
        self._letters: list[DeadLetter] = []
        self._letter_keys: set[tuple[str, str]] = set()
        self._offsets: dict[tuple[str, str, int], int] = {}

    @contextlib.contextmanager
    def _unit(self) -> Iterator[None]:
        """All of a unit's changes or none (as a transaction): restored on any exception."""
        saved = (dict(self._log), list(self._letters), set(self._letter_keys), dict(self._offsets))
        try:
            yield
        except BaseException:
            self._log, self._letters, self._letter_keys, self._offsets = saved
            raise

    def _keep_letters(self, letters: list[DeadLetter]) -> None:
        for d in letters:  # once per (source, raw record), the first one kept as it is
            key = (d.source, d.raw_hash)
            if key not in self._letter_keys:
                self._letter_keys.add(key)
                self._letters.append(d)

    def _append(self, records: Iterable[Incoming], arrival: datetime | None) -> AppendResult:
        arrival = arrival or self._now()
        invalid: list[DeadLetter] = []
        conflicts: list[DeadLetter] = []
        firsts: dict[str, tuple[CanonicalEvent, Incoming]] = {}
        result = AppendResult()
        for inc in records:
            result.read += 1
            try:
                c = canonicalize(inc.raw)
            except EventValidationError as exc:
                invalid.append(DeadLetter.of(inc, str(exc), exc.event_id))
                continue
            stored = self._log.get(c.event_id)
            first = firsts.get(c.event_id)
            # Judged against the log's version when there is one, else against the batch's first occurrence.
            if stored is not None:
                if c.content_hash == stored.event.content_hash:
                    result.duplicates += 1
                else:
                    conflicts.append(conflict_letter(c, inc, stored.wire()))
            elif first is not None:
                if c.content_hash == first[0].content_hash:
                    result.duplicates += 1
                else:
                    conflicts.append(conflict_letter(c, inc, wire_of(first[1])))
            else:
                firsts[c.event_id] = (c, inc)
        for c, inc in firsts.values():
            recorded = datetime.fromisoformat(c.recorded_at) if c.recorded_at else arrival
            self._log[c.event_id] = _Stored(c, recorded, inc.source, inc.position)
        result.accepted = len(firsts)
        self._keep_letters(conflicts)
        self._keep_letters(invalid)
        result.rejected = len(conflicts) + len(invalid)
        reasons = [d.reason for d in invalid[:20]]
        result.reasons = reasons + [d.reason[:300] for d in conflicts[: 20 - len(reasons)]]
        return result

    def append(self, records: Iterable[Incoming], *, arrival: datetime | None = None) -> AppendResult:
        with self._unit():
            return self._append(records, arrival)

    def events(self, horizon: Horizon) -> list[Event]:
        out = []
        for s in self._log.values():
            c = s.event
            ev = Event(
                c.event_id,
                c.project_id,
                EventType(c.type),
                datetime.fromisoformat(c.occurred_utc),
                s.recorded_at,
                c.schema_version,
                json.loads(c.payload_json),
            )
            if horizon.sees(ev):
                out.append(ev)
        return out

    def dead_letters(self) -> list[DeadLetter]:
        return list(self._letters)

    def claim(self, sink: str, topic: str, partitions: Sequence[int], *, reset: bool = False) -> dict[int, int]:
        with self._unit():
            for p in partitions:
                key = (sink, topic, p)
                if reset or key not in self._offsets:
                    self._offsets[key] = 0
            return {p: self._offsets[(sink, topic, p)] for p in partitions}

    def commit(
        self, sink: str, topic: str, batches: Sequence[PartitionRecords], expected: dict[int, int]
    ) -> dict[int, AppendResult]:
        with self._unit():
            for b in batches:
                found = self._offsets.get((sink, topic, b.partition))
                if found != expected[b.partition]:
                    raise Fenced(
                        f"partition {b.partition} of {topic}: sink {sink!r} expected next_offset {expected[b.partition]},"
                        f" the store says {found}: another sink wrote it; this batch was not written"
                    )
            results = {b.partition: self._append(b.records, None) for b in batches}
            for b in batches:
                self._offsets[(sink, topic, b.partition)] = b.next_offset
            return results


if TYPE_CHECKING:
    _IS_A_LOG_STORE: type[LogStore] = MemoryLogStore  # mypy holds the class to the Protocol
