"""Lifecycle events through Kafka: the publisher and the warehouse sink (exactly once in effect).

The sink assigns its partitions itself (no consumer group: no rebalancing, no broker-side offsets)
and keeps its position in the warehouse table ``stream_offset``, updated **in the same
transaction** as the events and dead letters a batch produces. A crash at any instant therefore
leaves either the whole batch with its new offsets, or neither: on restart the sink resumes at the
committed offset, and nothing is lost or doubled. ``event_id`` idempotency in the log is a second
guard (a re-sent message is counted as a duplicate, never stored twice).

Fencing, two layers:

1. For its whole lifetime the sink holds a PostgreSQL session advisory lock per
   (sink name, topic, partition) on the connection it writes with. A second sink on any of the
   same partitions is refused at start (or waits, with ``wait_for_lock``). If the connection
   dies, the lock and the transaction die together.
2. Every batch locks its offset rows (``SELECT … FOR UPDATE``) and checks they still hold the
   offsets this sink last committed; if anything else moved them, the batch is rolled back and
   the sink stops with :class:`SinkFenced`.

Every message read is accounted for: ``read = accepted + duplicates + rejected``, per batch, per
partition (the counters in ``stream_offset`` cover the sink's whole life) and per run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text

from events.canonical import canonicalize
from events.model import wire_json
from events.store import AppendResult, Fenced, Incoming
from events.validation import EventValidationError
from ingestion.broker import DEFAULT_TOPIC
from warehouse.collector import Collector, gc_paused
from warehouse.event_store import StagedBatch, append_raw, prepare, write_staged

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 3
DEFAULT_SINK_BATCH = 20_000
# How long the fetcher keeps adding polls to a batch before handing it to the writer.
BATCH_LINGER_S = 0.25
_LOCK_NAMESPACE = "zhaoshang.stream_offset"


class StreamError(RuntimeError):
    """The stream cannot go on (topic missing, broker unreachable, offsets inconsistent)."""


class SinkFenced(StreamError, Fenced):
    """Another sink holds, or has moved, the offsets of partitions this sink was asked to write."""


# --------------------------------------------------------------------------------------------
# Topic and publisher
# --------------------------------------------------------------------------------------------


def check_reachable(bootstrap: str, timeout_s: float = 3.0) -> None:
    """Fail fast (kafka-python would retry for 30 s) when no bootstrap server accepts a connection."""
    servers = [s.strip() for s in bootstrap.split(",") if s.strip()]
    if not servers:
        raise StreamError("no bootstrap server given (expected HOST:PORT)")
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not port.isdigit():
            raise StreamError(f"bootstrap server {server!r} is not HOST:PORT")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return
        except OSError:
            continue
    raise StreamError(f"no Kafka broker answers at {bootstrap} (start one with `zhaoshang broker`)")


def _admin(bootstrap: str) -> Any:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    check_reachable(bootstrap)
    try:
        return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="zhaoshang-admin", request_timeout_ms=15_000)
    except KafkaError as exc:
        raise StreamError(f"cannot talk to the Kafka broker at {bootstrap}: {exc}") from None


def topic_partitions(bootstrap: str, topic: str) -> list[int]:
    """Partition numbers of ``topic`` (empty when the topic does not exist)."""
    admin = _admin(bootstrap)
    try:
        if topic not in admin.list_topics():
            return []
        described = admin.describe_topics([topic])
    finally:
        admin.close()
    for entry in described:
        if entry.get("name", entry.get("topic")) == topic:
            return sorted(int(p.get("partition_index", p.get("partition"))) for p in entry.get("partitions", []))
    return []


def ensure_topic(bootstrap: str, topic: str, partitions: int = DEFAULT_PARTITIONS) -> int:
    """Create ``topic`` with ``partitions`` partitions unless it exists; returns its partition count.

    An existing topic is left as it is (Kafka cannot shrink a topic, and growing it would move
    projects to other partitions and break their per-project order).
    """
    from kafka.errors import TopicAlreadyExistsError

    if partitions < 1:
        raise ValueError(f"a topic needs at least one partition, got {partitions}")
    existing = topic_partitions(bootstrap, topic)
    if existing:
        return len(existing)
    admin = _admin(bootstrap)
    try:
        admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}}, wait_for_metadata=True)
    except TopicAlreadyExistsError:
        pass  # created meanwhile by another publisher
    finally:
        admin.close()
    return len(topic_partitions(bootstrap, topic)) or partitions


def _as_message(record: dict[str, Any] | str | Incoming) -> tuple[str | bytes, str | None]:
    """The message (bytes as read, or text) and its position, for a dict (serialised), a JSON text, or an
    :class:`Incoming`. A record's bytes are sent as they are: the sink explains what is wrong with them."""
    if isinstance(record, Incoming):
        return record.raw, record.position
    if isinstance(record, dict):
        return wire_json(record), None
    return record, None


def _key_of(raw: str | bytes) -> bytes | None:
    """The partition key: the project_id, so each project's events stay in order in one partition.

    Whatever a record holds (broken JSON, bytes that are not UTF-8, nesting beyond any decoder's
    depth), it is still sent, without a key when none can be read: the sink dead-letters it with its position.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            return None
    pid = doc.get("project_id") if isinstance(doc, dict) else None
    if not isinstance(pid, str) or not pid:
        return None
    try:
        return pid.encode()
    except UnicodeEncodeError:  # a lone surrogate: no key, the sink refuses the record anyway
        return None


def publish_records(
    bootstrap: str,
    topic: str,
    records: Iterable[dict[str, Any] | str | Incoming],
    *,
    partitions: int = DEFAULT_PARTITIONS,
    validate: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Publish events (wire-format dicts or JSON texts), one message each, keyed by ``project_id``.

    The topic is created with ``partitions`` partitions when absent. With ``validate`` every
    record is checked first; invalid ones are not sent and are described in ``invalid_reasons``
    (record number or position, and the reason), as is a record larger than the producer's message
    size (never sent). Records are sent as read (bytes as they are), whatever they hold. Returns ``read``, ``sent``, ``invalid``,
    ``partitions`` and ``invalid_reasons`` (the first 50); ``read = sent + invalid``.
    ``on_progress`` is called with the number of records read so far, every 5,000.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError, MessageSizeTooLargeError

    n_partitions = ensure_topic(bootstrap, topic, partitions)
    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="zhaoshang-publisher",
            acks="all",
            linger_ms=20,
            batch_size=512 * 1024,
            max_request_size=8 * 1024 * 1024,
            retries=5,
        )
    except KafkaError as exc:
        raise StreamError(f"cannot talk to the Kafka broker at {bootstrap}: {exc}") from None
    counts: dict[str, Any] = {"read": 0, "sent": 0, "invalid": 0, "partitions": n_partitions, "invalid_reasons": []}
    failures: list[str] = []

    def failed(exc: BaseException) -> None:
        failures.append(str(exc))

    try:
        for record in records:
            counts["read"] += 1
            raw, position = _as_message(record)
            where = position or f"record {counts['read']}"
            try:
                if validate:
                    canonicalize(raw)
                value = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
                producer.send(topic, key=_key_of(raw), value=value).add_errback(failed)
            except (EventValidationError, MessageSizeTooLargeError) as exc:
                # One record that cannot be sent (invalid with --validate, or beyond the message size) stops nothing.
                counts["invalid"] += 1
                if len(counts["invalid_reasons"]) < 50:
                    counts["invalid_reasons"].append(f"{where}: {exc}")
                continue
            counts["sent"] += 1
            if on_progress and counts["read"] % 5000 == 0:
                on_progress(counts["read"])
        producer.flush()
    except KafkaError as exc:
        raise StreamError(f"publishing to {topic} at {bootstrap} failed: {exc}") from exc
    finally:
        producer.close(timeout=10)
    if failures:
        raise StreamError(f"{len(failures)} of {counts['sent']} messages were not acknowledged by {bootstrap}: {failures[0]}")
    if on_progress:
        on_progress(counts["read"])
    return counts


# --------------------------------------------------------------------------------------------
# Offsets in the warehouse
# --------------------------------------------------------------------------------------------


def sink_offsets(conn: Connection, *, sink_name: str | None = None, topic: str | None = None) -> list[dict[str, Any]]:
    """The committed positions and lifetime counters of the sinks (one row per partition)."""
    sql = (
        "SELECT sink_name, topic, partition, next_offset, records_read, records_accepted, records_duplicate,"
        " records_rejected, updated_at FROM stream_offset WHERE (CAST(:s AS text) IS NULL OR sink_name = :s)"
        " AND (CAST(:t AS text) IS NULL OR topic = :t) ORDER BY sink_name, topic, partition"
    )
    return [dict(r._mapping) for r in conn.execute(text(sql), {"s": sink_name, "t": topic})]


def _lock_key(sink_name: str, topic: str) -> str:
    return f"{_LOCK_NAMESPACE}:{sink_name}:{topic}"


def _lock_holders(conn: Connection, key: str, partitions: list[int]) -> list[str]:
    """Who holds the advisory locks of these partitions (application name, client address, pid)."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT a.application_name, coalesce(host(a.client_addr), 'local') AS client, a.pid"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND l.classid = CAST(hashtext(:k) AS oid) AND l.objid = ANY(CAST(:ps AS oid[])) AND l.objsubid = 2"
        ),
        {"k": key, "ps": partitions},
    ).all()
    return [f"{r.application_name or '?'} ({r.client}, backend {r.pid})" for r in rows]


def _try_lock_partitions(conn: Connection, key: str, partitions: list[int]) -> list[int]:
    """Take the session advisory locks of all ``partitions`` or none; returns the ones that were busy."""
    got: list[int] = []
    busy: list[int] = []
    for p in partitions:
        if conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:k), :p)"), {"k": key, "p": p}).scalar_one():
            got.append(p)
        else:
            busy.append(p)
    if busy:
        for p in got:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k), :p)"), {"k": key, "p": p})
    conn.commit()
    return busy


def _unlock_partitions(conn: Connection, key: str, partitions: list[int]) -> None:
    for p in partitions:
        conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k), :p)"), {"k": key, "p": p})
    conn.commit()


def prepare_offsets(conn: Connection, sink: str, topic: str, partitions: list[int], *, reset: bool) -> dict[int, int]:
    """Create missing offset rows (start of the topic) and return the committed ``next_offset`` per partition."""
    with conn.begin():
        conn.execute(
            text(
                "INSERT INTO stream_offset (sink_name, topic, partition) SELECT :s, :t, p FROM unnest(CAST(:ps AS int[])) AS p"
                " ON CONFLICT DO NOTHING"
            ),
            {"s": sink, "t": topic, "ps": partitions},
        )
        if reset:
            conn.execute(
                text(
                    "UPDATE stream_offset SET next_offset = 0, records_read = 0, records_accepted = 0, records_duplicate = 0,"
                    " records_rejected = 0, updated_at = now() WHERE sink_name = :s AND topic = :t AND partition = ANY(:ps)"
                ),
                {"s": sink, "t": topic, "ps": partitions},
            )
        rows = conn.execute(
            text("SELECT partition, next_offset FROM stream_offset WHERE sink_name = :s AND topic = :t AND partition = ANY(:ps)"),
            {"s": sink, "t": topic, "ps": partitions},
        ).all()
    return {int(r.partition): int(r.next_offset) for r in rows}


@dataclass(slots=True)
class PartitionBatch:
    """The messages of one partition in one batch: their records and the offset after the last one.

    ``prepared`` optionally holds the records already validated, canonicalized and formatted for
    COPY, and the dead letters of the others (the fetch thread does it while the writer waits on
    PostgreSQL); then ``records`` is not read again.
    """

    partition: int
    records: Iterable[Incoming]  # read once, inside the batch's transaction
    next_offset: int
    prepared: StagedBatch | None = None

    @classmethod
    def validated(cls, partition: int, records: Iterable[Incoming], next_offset: int) -> PartitionBatch:
        return cls(partition, [], next_offset, prepare(records))


def _append(conn: Connection, batch: PartitionBatch) -> AppendResult:
    if batch.prepared is None:
        return append_raw(conn, batch.records)
    return write_staged(conn, batch.prepared)


def write_batch(
    conn: Connection,
    sink_name: str,
    topic: str,
    batches: list[PartitionBatch],
    expected: dict[int, int],
) -> dict[int, AppendResult]:
    """Append one batch and move the offsets, in one transaction on ``conn``.

    ``expected`` holds the ``next_offset`` this sink last committed for each partition; if a row
    says otherwise, another writer moved it: nothing is written and :class:`SinkFenced` is raised.
    """
    parts = [b.partition for b in batches]
    with conn.begin():
        rows = conn.execute(
            text(
                "SELECT partition, next_offset FROM stream_offset WHERE sink_name = :s AND topic = :t AND partition = ANY(:ps)"
                " ORDER BY partition FOR UPDATE"
            ),
            {"s": sink_name, "t": topic, "ps": parts},
        ).all()
        found = {int(r.partition): int(r.next_offset) for r in rows}
        for p in parts:
            if found.get(p) != expected[p]:
                raise SinkFenced(
                    f"partition {p} of {topic}: sink {sink_name!r} expected next_offset {expected[p]},"
                    f" the warehouse says {found.get(p)}: another sink wrote it; this batch was not written"
                )
        results = {b.partition: _append(conn, b) for b in batches}
        conn.execute(
            text(
                "UPDATE stream_offset o SET next_offset = v.next_offset, records_read = o.records_read + v.n_read,"
                " records_accepted = o.records_accepted + v.n_acc, records_duplicate = o.records_duplicate + v.n_dup,"
                " records_rejected = o.records_rejected + v.n_rej, updated_at = now()"
                " FROM unnest(CAST(:ps AS int[]), CAST(:nx AS bigint[]), CAST(:rd AS bigint[]), CAST(:ac AS bigint[]),"
                " CAST(:du AS bigint[]), CAST(:rj AS bigint[])) AS v(partition, next_offset, n_read, n_acc, n_dup, n_rej)"
                " WHERE o.sink_name = :s AND o.topic = :t AND o.partition = v.partition"
            ),
            {
                "s": sink_name,
                "t": topic,
                "ps": parts,
                "nx": [b.next_offset for b in batches],
                "rd": [results[p].read for p in parts],
                "ac": [results[p].accepted for p in parts],
                "du": [results[p].duplicates for p in parts],
                "rj": [results[p].rejected for p in parts],
            },
        )
    return results


# --------------------------------------------------------------------------------------------
# The sink
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Fetched:
    batches: list[PartitionBatch]
    n_records: int
    highwater: dict[int, int | None]


@dataclass(slots=True)
class _FetchFailed:
    error: BaseException


@dataclass(slots=True)
class _SinkState:
    started: float = field(default_factory=time.monotonic)
    last_commit: float | None = None
    batches: int = 0
    total: AppendResult = field(default_factory=AppendResult)
    per_partition: dict[int, AppendResult] = field(default_factory=dict)


def _raw(value: bytes | None) -> bytes:
    """A message's bytes; a tombstone is not an event: dead-lettered as broken JSON, with its position."""
    return b"" if value is None else value


def _fetch_loop(
    consumer: Any,
    topic: str,
    partitions: list[int],
    out: queue.Queue[_Fetched | _FetchFailed],
    stop: threading.Event,
    batch_size: int,
    last_message: list[float],
) -> None:
    """Poll Kafka and hand batches to the writer; runs in its own thread (the consumer is only used here).

    ``last_message`` is ``[monotonic time of the last poll that returned messages, 1.0 while this
    thread holds messages not yet queued]``: the writer's idle stop must not fire meanwhile.
    """
    from kafka import TopicPartition

    tps = {p: TopicPartition(topic, p) for p in partitions}
    try:
        while not stop.is_set():
            grouped: dict[int, list[Any]] = {}
            n = 0
            deadline = time.monotonic() + BATCH_LINGER_S
            got = consumer.poll(timeout_ms=200, max_records=batch_size)
            while got:
                last_message[0], last_message[1] = time.monotonic(), 1.0
                for tp, msgs in got.items():
                    grouped.setdefault(tp.partition, []).extend(msgs)
                    n += len(msgs)
                if n >= batch_size or time.monotonic() >= deadline or stop.is_set():
                    break
                got = consumer.poll(timeout_ms=20, max_records=batch_size - n)
            # Validation happens here, overlapping with the writer's wait on PostgreSQL.
            batches = [
                PartitionBatch.validated(
                    p,
                    (Incoming(_raw(m.value), topic, f"partition {p} offset {m.offset}") for m in msgs),
                    msgs[-1].offset + 1,
                )
                for p, msgs in sorted(grouped.items())
            ]
            item = _Fetched(batches, n, {p: consumer.highwater(tp) for p, tp in tps.items()})
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue
            last_message[1] = 0.0
    except BaseException as exc:  # noqa: BLE001 - handed to the writer thread, which raises it
        out.put(_FetchFailed(exc))


def _recreated(topic: str, sink_name: str, detail: str) -> str:
    return (
        f"topic {topic!r} holds fewer messages than sink {sink_name!r} has already taken ({detail}): it was recreated"
        " (a memory broker restarted?) or retention removed them. Use another --name, or --reset to read it again from the start."
    )


def _app_name(sink_name: str) -> str:
    return f"zhaoshang stream {sink_name} pid {os.getpid()}@{socket.gethostname()}"[:63]


def _wanted_partitions(bootstrap: str, topic: str, partitions: Iterable[int] | None) -> list[int]:
    """``partitions`` (default: all of the topic's), sorted; the topic and each partition must exist."""
    available = topic_partitions(bootstrap, topic)
    if not available:
        raise StreamError(f"topic {topic!r} does not exist at {bootstrap} (publish to it first: `zhaoshang events publish`)")
    wanted = sorted(set(partitions)) if partitions is not None else available
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise StreamError(f"topic {topic!r} has partitions {available}; no partition {unknown}")
    return wanted


def _stop_on_signals(stop: threading.Event, stopped_by: list[str]) -> dict[signal.Signals, Any]:
    """SIGTERM and SIGINT set ``stop`` (their name noted in ``stopped_by``); returns the handlers they replaced."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped_by.append(signal.Signals(signum).name)
        stop.set()

    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore_signals(previous: dict[signal.Signals, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _lock_partitions(
    conn: Connection,
    key: str,
    name: str,
    topic: str,
    wanted: list[int],
    *,
    wait_for_lock: bool,
    on_progress: Callable[[dict[str, Any]], None] | None,
    stop: threading.Event,
) -> bool:
    """Take the advisory locks of ``wanted``; with ``wait_for_lock`` wait for their holder to stop, else
    raise :class:`SinkFenced`. False when ``stop`` is set while waiting (no lock is held then)."""
    while True:
        busy = _try_lock_partitions(conn, key, wanted)
        if not busy:
            return True
        holders = _lock_holders(conn, key, busy)
        conn.commit()
        if not wait_for_lock:
            raise SinkFenced(
                f"另一个 sink 正在写入 another sink named {name!r} is already streaming partition(s)"
                f" {', '.join(map(str, busy))} of {topic!r}: {'; '.join(holders) or 'holder unknown'}."
                " Stop it first, choose other --partitions, or pass --wait to take over when it stops."
            )
        if on_progress:
            on_progress({"waiting_for": holders, "partitions_busy": busy})
        if stop.wait(1.0):
            return False


def _not_started(stopped_by: list[str]) -> dict[str, Any]:
    """The counts of a sink stopped while it waited for the partitions' locks."""
    return {"read": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "partitions": {}, "batches": 0,
            "elapsed_s": 0.0, "events_per_s": 0.0, "stopped_by": (stopped_by or ["stop"])[0], "reasons": []}  # fmt: skip


def _open_consumer(bootstrap: str, name: str, batch_size: int) -> Any:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        return KafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=f"zhaoshang-sink-{name}",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",  # an offset past the end is an error, never a silent restart
            max_poll_records=batch_size,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            fetch_max_wait_ms=200,
            receive_buffer_bytes=4 * 1024 * 1024,
        )
    except KafkaError as exc:
        raise StreamError(f"cannot talk to the Kafka broker at {bootstrap}: {exc}") from None


def _seek_committed(consumer: Any, topic: str, wanted: list[int], position: dict[int, int]) -> list[str]:
    """Assign ``wanted`` to ``consumer`` at the committed offsets; warns about offsets retention deleted unread."""
    from kafka import TopicPartition

    tps = [TopicPartition(topic, p) for p in wanted]
    consumer.assign(tps)
    # Not end_offsets(): Tansu answers "latest" with the base offset of the last record batch.
    # The high watermarks of the fetch responses are right, and give the lag.
    begins = consumer.beginning_offsets(tps)
    warnings: list[str] = []
    for tp in tps:
        if begins[tp] > position[tp.partition]:
            warnings.append(
                f"partition {tp.partition}: offsets {position[tp.partition]}–{begins[tp] - 1} were deleted by the"
                " topic's retention before this sink read them (raise retention, or reload those events from files)"
            )
        consumer.seek(tp, max(position[tp.partition], begins[tp]))
    return warnings


@dataclass(slots=True)
class _SinkLoop:
    """The writer side of a running sink: takes the fetcher's batches, checks them against the committed
    offsets, writes each in one transaction with its offsets, reports progress and notices idleness."""

    conn: Connection
    name: str
    topic: str
    bootstrap: str
    wanted: list[int]
    position: dict[int, int]  # committed next_offset per partition
    inbox: queue.Queue[_Fetched | _FetchFailed]
    # Written by the fetch thread: when messages last arrived, and whether it holds some not yet handed over.
    last_message: list[float]
    state: _SinkState
    collector: Collector
    on_progress: Callable[[dict[str, Any]], None] | None
    highwater: dict[int, int | None] = field(default_factory=dict)
    last_report: float = 0.0

    def __post_init__(self) -> None:
        self.highwater = {p: None for p in self.wanted}
        for p in self.wanted:
            self.state.per_partition[p] = AppendResult()

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        elapsed = ((self.state.last_commit or now) - self.state.started) or 1e-9
        lag = {p: (max(0, hw - self.position[p]) if hw is not None else None) for p, hw in self.highwater.items()}
        return {
            **self.state.total.as_dict(),
            "batches": self.state.batches,
            "events_per_s": self.state.total.read / elapsed,
            "lag": lag,
            "idle_s": now - self.last_message[0],
        }

    def poll(self) -> _Fetched | None:
        """The next batch of the fetch thread (None after a short wait); its failure is raised here."""
        from kafka.errors import OffsetOutOfRangeError

        try:
            item = self.inbox.get(timeout=0.25)
        except queue.Empty:
            return None
        if isinstance(item, _FetchFailed):
            if isinstance(item.error, OffsetOutOfRangeError):
                raise StreamError(_recreated(self.topic, self.name, str(item.error))) from item.error
            raise StreamError(f"reading {self.topic!r} from {self.bootstrap} failed: {item.error}") from item.error
        return item

    def check_watermarks(self, item: _Fetched) -> None:
        """A topic whose high watermark is below a committed offset was recreated or trimmed: stop."""
        self.highwater.update({p: hw for p, hw in item.highwater.items() if hw is not None})
        behind = {p: hw for p, hw in self.highwater.items() if hw is not None and hw < self.position[p]}
        if behind:
            raise StreamError(_recreated(self.topic, self.name, f"high watermarks {behind}, committed offsets {self.position}"))

    def write(self, item: _Fetched) -> None:
        """Append the batch and move its offsets in one transaction, then count it."""
        results = write_batch(self.conn, self.name, self.topic, item.batches, self.position)
        self.advance_offsets(item.batches, results)

    def advance_offsets(self, batches: list[PartitionBatch], results: dict[int, AppendResult]) -> None:
        """What the warehouse committed: the new offsets and the counts per partition and in all."""
        for b in batches:
            self.position[b.partition] = b.next_offset
            self.state.per_partition[b.partition].add(results[b.partition])
            self.state.total.add(results[b.partition])
        self.state.batches += 1
        self.state.last_commit = time.monotonic()

    def report(self, now: float) -> None:
        if self.on_progress and now - self.last_report >= 0.5:
            self.on_progress(self.status())
            self.last_report = now

    def idle_for(self, now: float, stop_when_idle: float | None) -> bool:
        """No message for ``stop_when_idle`` seconds, none held by the fetcher and none queued."""
        return (
            stop_when_idle is not None
            and now - self.last_message[0] >= stop_when_idle
            and not self.last_message[1]
            and self.inbox.empty()
        )

    def run(self, stop: threading.Event, stop_when_idle: float | None, stopped_by: list[str]) -> None:
        while not stop.is_set():
            item = self.poll()
            wrote = False
            if item is not None:
                self.check_watermarks(item)
                if item.n_records:
                    self.write(item)
                    wrote = True
            self.collector.tick(wrote=wrote)
            now = time.monotonic()
            self.report(now)
            if self.idle_for(now, stop_when_idle):
                stopped_by.append("idle")
                break

    def result(self, stopped_by: list[str], warnings: list[str]) -> dict[str, Any]:
        """The counts of this run (see :func:`run_sink`); the final status goes to ``on_progress`` too."""
        final = self.status()
        if self.on_progress:
            self.on_progress({**final, "final": True})
        state = self.state
        return {
            **state.total.as_dict(),
            "sink": self.name,
            "topic": self.topic,
            "partitions": {
                p: {"next_offset": self.position[p], "lag": final["lag"].get(p), **state.per_partition[p].as_dict()}
                for p in self.wanted
            },
            "batches": state.batches,
            "elapsed_s": round(((state.last_commit or time.monotonic()) - state.started), 3),
            "events_per_s": round(final["events_per_s"], 1),
            "stopped_by": (stopped_by or ["stop"])[0],
            "reasons": state.total.reasons,
            "warnings": warnings,
        }


def run_sink(
    engine: Engine,
    bootstrap: str,
    topic: str,
    *,
    name: str = "warehouse",
    partitions: Iterable[int] | None = None,
    stop_when_idle: float | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    batch_size: int = DEFAULT_SINK_BATCH,
    wait_for_lock: bool = False,
    reset: bool = False,
    stop_event: threading.Event | None = None,
    handle_signals: bool = True,
) -> dict[str, Any]:
    """Stream ``topic`` into the warehouse until stopped; returns the counts of this run.

    ``partitions`` defaults to all of the topic's. Stops on ``stop_event``, on SIGTERM/SIGINT
    (with ``handle_signals``, in the main thread) and after ``stop_when_idle`` seconds without a
    new message. ``wait_for_lock`` waits for another sink on the same partitions to finish instead
    of refusing to start. ``reset`` starts this sink's partitions again from the beginning of
    the topic (events already in the log then count as duplicates). ``on_progress`` gets a dict
    with the counts, ``events_per_s`` and ``lag`` per partition, about twice a second.

    Returns ``read``, ``accepted``, ``duplicates``, ``rejected``, ``partitions`` (per partition:
    ``next_offset``, ``lag`` and the counts of this run), ``batches``, ``elapsed_s`` (start to last
    commit), ``events_per_s``, ``stopped_by`` and ``reasons`` (the first rejection reasons).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    stop = stop_event or threading.Event()
    wanted = _wanted_partitions(bootstrap, topic, partitions)
    if not wanted:
        raise StreamError("no partitions to stream")

    stopped_by: list[str] = []
    previous_handlers: dict[signal.Signals, Any] = {}
    if handle_signals and threading.current_thread() is threading.main_thread():
        previous_handlers = _stop_on_signals(stop, stopped_by)

    key = _lock_key(name, topic)
    conn = engine.connect()
    consumer = None
    fetcher: threading.Thread | None = None
    fetch_stop = threading.Event()
    locked = False
    paused = contextlib.ExitStack()  # the collector's pause, from the first batch to the end
    try:
        conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": _app_name(name)})
        conn.commit()
        locked = _lock_partitions(conn, key, name, topic, wanted, wait_for_lock=wait_for_lock, on_progress=on_progress, stop=stop)
        if not locked:
            return _not_started(stopped_by)

        position = prepare_offsets(conn, name, topic, wanted, reset=reset)
        consumer = _open_consumer(bootstrap, name, batch_size)
        warnings = _seek_committed(consumer, topic, wanted, position)

        state = _SinkState()
        log.info("sink %s reads %s partitions %s", name, topic, wanted, extra={"sink": name, "topic": topic, "offsets": {str(p): position[p] for p in wanted}})
        collector = paused.enter_context(gc_paused())
        inbox: queue.Queue[_Fetched | _FetchFailed] = queue.Queue(maxsize=2)
        last_message = [time.monotonic(), 0.0]
        loop = _SinkLoop(conn, name, topic, bootstrap, wanted, position, inbox, last_message, state, collector, on_progress)
        fetcher = threading.Thread(
            target=_fetch_loop, args=(consumer, topic, wanted, inbox, fetch_stop, batch_size, last_message), name=f"kafka-fetch-{name}", daemon=True
        )
        fetcher.start()
        loop.run(stop, stop_when_idle, stopped_by)
        return loop.result(stopped_by, warnings)
    finally:
        paused.close()
        fetch_stop.set()
        if fetcher is not None:
            fetcher.join(timeout=5)
        if consumer is not None:
            consumer.close()
        if locked:
            # The connection may be gone; its locks went with it.
            with contextlib.suppress(Exception):
                _unlock_partitions(conn, key, wanted)
        conn.close()
        _restore_signals(previous_handlers)


# --------------------------------------------------------------------------------------------
# Several sink processes, one per partition subset (the same design as sinks on several machines)
# --------------------------------------------------------------------------------------------


def _sink_worker(
    index: int,
    database_url: str,
    bootstrap: str,
    topic: str,
    options: dict[str, Any],
    reports: Any,
) -> None:
    """One sink process of :func:`run_sink_workers`; reports progress and its result on ``reports``."""
    from ingestion.broker import _die_with_parent
    from warehouse.db import make_engine

    _die_with_parent()  # a parent killed outright takes its workers with it (they stop cleanly on SIGTERM)

    engine = make_engine(database_url)
    last = [0.0]

    def progress(st: dict[str, Any]) -> None:
        if time.monotonic() - last[0] >= 0.5:
            last[0] = time.monotonic()
            reports.put((index, "progress", st))

    try:
        result = run_sink(engine, bootstrap, topic, on_progress=progress, handle_signals=True, **options)
        reports.put((index, "done", result))
    except SinkFenced as exc:
        reports.put((index, "fenced", str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the whole run
        reports.put((index, "error", f"{type(exc).__name__}: {exc}"))
    finally:
        engine.dispose()


def _merge_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: sum(r[k] for r in results) for k in ("read", "accepted", "duplicates", "rejected", "batches")}
    elapsed = max((r["elapsed_s"] for r in results), default=0.0)
    merged.update(
        sink=results[0]["sink"] if results else None,
        topic=results[0]["topic"] if results else None,
        partitions={p: info for r in results for p, info in r["partitions"].items()},
        elapsed_s=elapsed,
        events_per_s=round(merged["read"] / elapsed, 1) if elapsed else 0.0,
        stopped_by=results[0]["stopped_by"] if results else "stop",
        reasons=[reason for r in results for reason in r["reasons"]][:20],
        warnings=[w for r in results for w in r.get("warnings", [])],
        workers=len(results),
    )
    return merged


def _terminate_live(procs: list[Any]) -> None:
    """SIGTERM to every worker still running: each stops cleanly, committing what it holds."""
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGTERM)


def _dead_worker(procs: list[Any], results: dict[int, dict[str, Any]], reports: Any) -> tuple[str, str] | None:
    """A worker that died without reporting (killed, crashed interpreter), once its reports are all read."""
    dead = [p for i, p in enumerate(procs) if not p.is_alive() and i not in results and p.exitcode not in (0, None)]
    if dead and reports.empty():
        return ("error", f"sink process {dead[0].name} died with exit code {dead[0].exitcode}")
    return None


def _combined_progress(latest: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The workers' latest progress reports as one: counts and rates summed, lags side by side."""
    sts = list(latest.values())
    return {
        **{k: sum(s.get(k, 0) for s in sts) for k in ("read", "accepted", "duplicates", "rejected", "batches")},
        "events_per_s": sum(s.get("events_per_s", 0.0) for s in sts),
        "lag": {p: v for s in sts for p, v in s.get("lag", {}).items()},
    }


def _watch_workers(
    procs: list[Any],
    reports: Any,
    stop: threading.Event,
    on_progress: Callable[[dict[str, Any]], None] | None,
    results: dict[int, dict[str, Any]],
    failures: list[tuple[str, str]],
) -> None:
    """Read the workers' reports into ``results`` and ``failures`` until each has finished or one failed.

    ``stop`` sends every worker SIGTERM (once); a failure sets ``stop``, so the others stop too.
    """
    latest: dict[int, dict[str, Any]] = {}
    signalled = False
    while len(results) + len(failures) < len(procs):
        if stop.is_set() and not signalled:
            _terminate_live(procs)
            signalled = True
        try:
            index, kind, payload = reports.get(timeout=0.25)
        except queue.Empty:
            died = _dead_worker(procs, results, reports)
            if died is not None:
                failures.append(died)
                break
            continue
        if kind == "progress":
            latest[index] = payload
            if on_progress and "lag" in payload:
                on_progress(_combined_progress(latest))
        elif kind == "done":
            results[index] = payload
        else:
            failures.append((kind, payload))
            stop.set()


def _stop_workers(procs: list[Any], failures: list[tuple[str, str]], stop: threading.Event) -> None:
    """After a failure or a stop, SIGTERM to the workers still running; then wait (killing after 30 s)."""
    for proc in procs:
        if proc.is_alive() and proc.pid is not None and (failures or stop.is_set()):
            os.kill(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()


def run_sink_workers(
    database_url: str,
    bootstrap: str,
    topic: str,
    *,
    workers: int,
    name: str = "warehouse",
    partitions: Iterable[int] | None = None,
    stop_when_idle: float | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    batch_size: int = DEFAULT_SINK_BATCH,
    wait_for_lock: bool = False,
    reset: bool = False,
    stop_event: threading.Event | None = None,
) -> dict[str, Any]:
    """:func:`run_sink` in ``workers`` processes, the partitions dealt out round-robin.

    Each process is an ordinary sink (its own connection, advisory locks and offset rows), so the
    guarantees are the same as for one sink; the processes just use more cores. ``stop_event``
    (or SIGTERM to this process, when called from the main thread) stops them all. Returns the
    counts of all workers together (``events_per_s`` = read / the slowest worker's elapsed time).
    """
    import multiprocessing as mp

    wanted = _wanted_partitions(bootstrap, topic, partitions)
    shares = [wanted[i :: max(1, workers)] for i in range(max(1, workers))]
    shares = [s for s in shares if s]
    # spawn, not fork: the parent holds threads and connection pools that must not be copied.
    ctx = mp.get_context("spawn")
    reports = ctx.Queue()
    stop = stop_event or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    options = {"name": name, "stop_when_idle": stop_when_idle, "batch_size": batch_size, "wait_for_lock": wait_for_lock, "reset": reset}
    procs = [
        ctx.Process(target=_sink_worker, args=(i, database_url, bootstrap, topic, {**options, "partitions": share}, reports),
                    name=f"zhaoshang-sink-{name}-{i}")
        for i, share in enumerate(shares)
    ]  # fmt: skip
    results: dict[int, dict[str, Any]] = {}
    failures: list[tuple[str, str]] = []
    try:
        for proc in procs:
            proc.start()
        _watch_workers(procs, reports, stop, on_progress, results, failures)
    finally:
        _stop_workers(procs, failures, stop)
        _restore_signals(previous)
    if failures:
        kind, message = failures[0]
        raise (SinkFenced if kind == "fenced" else StreamError)(message)
    return _merge_results([results[i] for i in sorted(results)])


def publish_and_stream(
    engine: Engine,
    records: Iterable[dict[str, Any] | str | Incoming],
    *,
    bootstrap: str | None = None,
    topic: str = DEFAULT_TOPIC,
    partitions: int = DEFAULT_PARTITIONS,
    name: str = "demo",
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """For the demo: publish ``records`` to Kafka and stream them into the warehouse, then stop.

    Without ``bootstrap`` a local Tansu is started for the round trip and stopped after it. That
    broker keeps nothing between runs, so the sink then reads its fresh topic from the start
    (``reset``); events already in the warehouse from an earlier run count as duplicates. With
    ``bootstrap`` the sink goes on from its committed offsets on that cluster.
    Returns ``{"bootstrap", "published": publish counts, "sink": sink counts}``.
    """
    from ingestion.broker import LocalBroker

    def round_trip(address: str, reset: bool) -> dict[str, Any]:
        published = publish_records(address, topic, records, partitions=partitions)
        sink = run_sink(
            engine, address, topic, name=name, stop_when_idle=1.0, reset=reset, on_progress=on_progress, handle_signals=False
        )
        return {"bootstrap": address, "published": published, "sink": sink}

    if bootstrap is not None:
        return round_trip(bootstrap, reset=False)
    with LocalBroker() as broker:
        return round_trip(broker.bootstrap, reset=True)
