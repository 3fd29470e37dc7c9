"""The PostgreSQL event log as an :class:`events.store.LogStore`: the existing functions, one unit per call.

Nothing here decides anything: appends are ``warehouse.event_store.append_raw`` (the COPY fast
path included), reads ``warehouse.replay.load_events``, offsets and fencing
``ingestion.kafka_stream.prepare_offsets`` / ``write_batch`` (whose :class:`SinkFenced` is a
:class:`events.store.Fenced`). It exists so one contract (``tests/store_contract.py``) holds this
store and the in-memory one to the same semantics. It lives in ``ingestion`` rather than
``warehouse`` because the offsets' transaction (``write_batch``) is the Kafka sink's, and
``warehouse`` imports nothing of ``ingestion`` (README, Layout).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from events.model import Event
from events.store import AppendResult, DeadLetter, Horizon, Incoming, LogStore, PartitionRecords
from ingestion.kafka_stream import PartitionBatch, prepare_offsets, write_batch
from warehouse.event_store import append_raw
from warehouse.replay import load_events


class PostgisLogStore:
    """The log in the database behind ``engine``; each call is its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, records: Iterable[Incoming], *, arrival: datetime | None = None) -> AppendResult:
        with self.engine.begin() as conn:
            return append_raw(conn, records, arrival=arrival)

    def events(self, horizon: Horizon) -> list[Event]:
        with self.engine.connect() as conn:
            return load_events(conn, horizon)

    def dead_letters(self) -> list[DeadLetter]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT raw, reason, source, source_position, event_id, raw_hash FROM dead_letter ORDER BY id")
            ).all()
        return [DeadLetter(r.raw, r.reason, r.source, r.source_position, r.event_id, r.raw_hash) for r in rows]

    def claim(self, sink: str, topic: str, partitions: Sequence[int], *, reset: bool = False) -> dict[int, int]:
        with self.engine.connect() as conn:
            return prepare_offsets(conn, sink, topic, list(partitions), reset=reset)

    def commit(
        self, sink: str, topic: str, batches: Sequence[PartitionRecords], expected: dict[int, int]
    ) -> dict[int, AppendResult]:
        with self.engine.connect() as conn:
            return write_batch(conn, sink, topic, [PartitionBatch(b.partition, b.records, b.next_offset) for b in batches], expected)


if TYPE_CHECKING:
    _IS_A_LOG_STORE: type[LogStore] = PostgisLogStore  # mypy holds the class to the Protocol
