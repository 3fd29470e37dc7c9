"""The append-only event log and the dead letters.

Appends are batched: records are canonicalized (:mod:`events.canonical`) and formatted for COPY
without the database (:func:`prepare`), then COPYed straight into ``event_log``; only when an id of
the batch is stored already are they COPYed into a staging table, compared and the new ones
inserted. The same ``event_id`` with the same content is a *duplicate* and changes nothing; with
different content it is a *conflict*, dead-lettered with both versions.
Every record read is counted exactly once: ``read = accepted + duplicates + rejected``.

Functions that take a ``Connection`` never commit: the caller owns the transaction, so a stream
sink can write its offsets in the same transaction as the events.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg.errors
import sqlalchemy.exc
from sqlalchemy import Connection, Engine, text

from events.canonical import CanonicalEvent, explained_canonical, fast_canonical, from_event
from events.model import Event

# Incoming, AppendResult and DeadLetter are the log store's domain types (events.store); importers here keep working.
from events.store import AppendResult, DeadLetter, Incoming
from events.store import conflict_letter as _conflict_letter
from events.store import wire_of as _wire_of
from events.validation import EventValidationError
from warehouse.collector import gc_paused
from warehouse.copy_text import copy_escape, copy_in

DEFAULT_BATCH = 20_000
# Advisory lock key shared by appenders (shared) and read-model projectors (exclusive, briefly).
LOG_APPEND_LOCK = 0x7A5_0001


_STAGE_COLUMNS = (
    "event_id",
    "project_id",
    "type",
    "occurred_at",
    "recorded_at",
    "schema_version",
    "payload",
    "content_hash",
    "source",
    "source_position",
)


def _stage_table(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS _event_stage ("
        " ord integer, event_id text, project_id text, type text, occurred_at timestamptz, recorded_at timestamptz,"
        " schema_version integer, payload jsonb, content_hash text, source text, source_position text"
        ") ON COMMIT DELETE ROWS"
    )
    conn.exec_driver_sql("TRUNCATE _event_stage")


Prepared = tuple[CanonicalEvent, Incoming]


def _copy_rows(batch: list[Prepared], arrival: datetime) -> list[bytes]:
    """The rows of ``_STAGE_COLUMNS`` in COPY text format, built here (faster than per-value adaptation).

    ``occurred_at`` goes in as its UTC text and ``recorded_at`` with its own offset: the same instants.
    """
    arrival_text = arrival.isoformat()
    escape = copy_escape
    rows = []
    # Sources and positions repeat (one file, one topic): escaped once each.
    texts: dict[str | None, bytes] = {None: b"\\N"}
    for c, inc in batch:
        payload = c.payload_json
        if b"\\" in payload:  # JSON escapes: COPY text reads a backslash as its own escape
            payload = payload.replace(b"\\", b"\\\\")
        source = texts.get(inc.source)
        if source is None:
            source = texts[inc.source] = escape(inc.source).encode()
        position = inc.position
        rows.append(
            b"%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s"
            % (
                escape(c.event_id).encode(),
                escape(c.project_id).encode(),
                c.type.encode(),
                c.occurred_utc.encode(),
                (c.recorded_at or arrival_text).encode(),
                c.schema_version,
                payload,
                c.content_hash.encode(),
                source,
                b"\\N" if position is None else escape(position).encode(),
            )
        )
    return rows


def _stage_rows(conn: Connection, rows: list[bytes]) -> None:
    """COPY the rows into the staging table, numbered in input order."""
    data = b"".join(b"%d\t%s\n" % (i, row) for i, row in enumerate(rows))
    copy_in(conn, f"COPY _event_stage (ord, {', '.join(_STAGE_COLUMNS)}) FROM STDIN", data)


def _copy_into_log(conn: Connection, rows: list[bytes]) -> bool:
    """COPY the rows straight into ``event_log``: the fast path when none of their ids is there yet.

    When one is (a re-load, a conflict, a concurrent writer), the unique key stops the COPY; it is
    rolled back to a savepoint, nothing is written, and False tells the caller to stage and compare.
    """
    conn.exec_driver_sql("SAVEPOINT event_log_copy")
    try:
        copy_in(conn, f"COPY event_log ({', '.join(_STAGE_COLUMNS)}) FROM STDIN", b"\n".join(rows) + b"\n")
    except psycopg.errors.UniqueViolation:
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT event_log_copy")
        conn.exec_driver_sql("RELEASE SAVEPOINT event_log_copy")
        return False
    conn.exec_driver_sql("RELEASE SAVEPOINT event_log_copy")
    return True


def _storable(value: str | None) -> str | None:
    """Text PostgreSQL can hold: NUL and lone surrogates (from a broken sender) become U+FFFD."""
    if value is None:
        return None
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    return value


def _write_dead_letters(conn: Connection, letters: list[DeadLetter]) -> None:
    if not letters:
        return
    # Kept once per (source, raw record): a re-read adds nothing (the letter, open or resolved, stays as it is).
    conn.execute(
        text(
            "INSERT INTO dead_letter (raw, reason, event_id, source, source_position, raw_hash) "
            "VALUES (:raw, :reason, :event_id, :source, :position, :raw_hash) ON CONFLICT (source, raw_hash) DO NOTHING"
        ),
        [{k: _storable(v) for k, v in asdict(d).items()} for d in letters],
    )


def _stored_versions(conn: Connection, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored versions of these events (for a conflict's reason), by event_id."""
    if not event_ids:
        return {}
    rows = conn.execute(
        text(
            "SELECT event_id, project_id, type, occurred_at, schema_version, payload, source, source_position"
            " FROM event_log WHERE event_id = ANY(:ids)"
        ),
        {"ids": event_ids},
    ).all()
    return {
        row.event_id: {
            "event_id": row.event_id,
            "project_id": row.project_id,
            "type": row.type,
            "occurred_at": row.occurred_at.isoformat(),
            "schema_version": row.schema_version,
            "payload": row.payload,
            "stored_from": f"{row.source}@{row.source_position}",
        }
        for row in rows
    }


def append_validated(
    conn: Connection,
    batch: list[tuple[Event, Incoming]],
    *,
    arrival: datetime | None = None,
    dead_letter_conflicts: bool = True,
) -> AppendResult:
    """:func:`append_canonical` for events already parsed into :class:`Event` (ledgers, retries)."""
    return append_canonical(conn, [(from_event(ev), inc) for ev, inc in batch], arrival=arrival, dead_letter_conflicts=dead_letter_conflicts)


def append_canonical(
    conn: Connection,
    batch: list[Prepared],
    *,
    arrival: datetime | None = None,
    dead_letter_conflicts: bool = True,
) -> AppendResult:
    """Append valid events (in the caller's transaction); count duplicates, dead-letter conflicts.

    With ``dead_letter_conflicts=False`` conflicts are only counted and described in ``reasons``.
    """
    return write_staged(conn, stage(batch, [], arrival=arrival), dead_letter_conflicts=dead_letter_conflicts)


@dataclass(slots=True)
class StagedBatch:
    """A batch made ready for the database without it (so it can overlap with the previous batch's write).

    ``staged``: the first occurrence of each event id, with ``rows``, their COPY text; ``repeats``:
    later occurrences of an id within the batch (``firsts`` finds their first); ``letters``: the
    invalid records' dead letters.
    """

    staged: list[Prepared]
    rows: list[bytes]
    repeats: list[Prepared]
    firsts: dict[str, Prepared]
    letters: list[DeadLetter]
    arrival: datetime


def stage(valid: list[Prepared], letters: list[DeadLetter], *, arrival: datetime | None = None) -> StagedBatch:
    """Split off repeated ids and build the COPY rows; ``arrival`` stamps events without ``recorded_at``."""
    firsts: dict[str, Prepared] = {}
    repeats: list[Prepared] = []
    for item in valid:
        eid = item[0].event_id
        if eid in firsts:
            repeats.append(item)
        else:
            firsts[eid] = item
    staged = list(firsts.values()) if repeats else valid
    arrival = arrival or datetime.now(UTC)
    return StagedBatch(staged, _copy_rows(staged, arrival), repeats, firsts if repeats else {}, letters, arrival)


# What PostgreSQL says when it refuses a value (data exceptions, program limits such as an index
# entry's size, constraint violations): the record's fault, not the database's.
_REFUSALS = (psycopg.errors.DataError, psycopg.errors.ProgramLimitExceeded, psycopg.errors.IntegrityError)


def _refusal(exc: BaseException) -> psycopg.Error | None:
    orig = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) else exc
    return orig if isinstance(orig, _REFUSALS) else None


def write_staged(conn: Connection, batch: StagedBatch, *, dead_letter_conflicts: bool = True) -> AppendResult:
    """Append a staged batch in the caller's transaction: accept new ids, count duplicates, dead-letter the rest.

    Conflicts (an id already stored, or earlier in the batch, with other content) are dead-lettered
    with both versions, unless ``dead_letter_conflicts`` is False (then only counted and described).
    Should PostgreSQL refuse a record that validation passed, the batch is rolled back to its
    savepoint and written again in halves until that record stands alone; it is dead-lettered with
    the database's reason and the rest is stored (a sink never stops on one message).
    """
    # Held to the commit: a read model's projector waits for appends in flight before it takes the
    # log's high-water mark, so no lower seq can commit after it (warehouse.read_models.settled_seq).
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({LOG_APPEND_LOCK})")
    conn.exec_driver_sql("SAVEPOINT event_batch")
    try:
        result = _write_staged(conn, batch, dead_letter_conflicts)
    except (psycopg.Error, sqlalchemy.exc.DBAPIError) as exc:
        if _refusal(exc) is None:
            raise
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT event_batch")
        conn.exec_driver_sql("RELEASE SAVEPOINT event_batch")
        return _write_isolating(conn, batch, dead_letter_conflicts)
    conn.exec_driver_sql("RELEASE SAVEPOINT event_batch")
    return result


def _write_isolating(conn: Connection, batch: StagedBatch, dead_letter_conflicts: bool) -> AppendResult:
    """:func:`write_staged` by bisection, each part under its own savepoint (rare: costs log2(n) writes per refused record)."""
    result = AppendResult()
    refused: list[DeadLetter] = []

    def attempt(part: list[Prepared]) -> None:
        conn.exec_driver_sql("SAVEPOINT event_part")
        try:
            res = _write_staged(conn, stage(part, [], arrival=batch.arrival), dead_letter_conflicts)
        except (psycopg.Error, sqlalchemy.exc.DBAPIError) as exc:
            why = _refusal(exc)
            if why is None:
                raise
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT event_part")
            conn.exec_driver_sql("RELEASE SAVEPOINT event_part")
            if len(part) == 1:
                c, inc = part[0]
                message = (why.diag.message_primary or str(why)).strip()
                refused.append(DeadLetter.of(inc, f"refused by PostgreSQL ({why.sqlstate}): {message}", c.event_id))
                return
            mid = len(part) // 2
            attempt(part[:mid])
            attempt(part[mid:])
            return
        conn.exec_driver_sql("RELEASE SAVEPOINT event_part")
        result.add(res)

    # Firsts before their repeats, as in the batch: a repeat is judged against its first, now in the log.
    attempt(batch.staged + batch.repeats)
    letters = batch.letters + refused
    _write_dead_letters(conn, letters)
    result.read += len(letters)
    result.rejected += len(letters)
    result.reasons = ([d.reason for d in letters] + result.reasons)[:20]
    return result


def _write_staged(conn: Connection, batch: StagedBatch, dead_letter_conflicts: bool) -> AppendResult:
    staged, repeats, firsts = batch.staged, batch.repeats, batch.firsts
    result = AppendResult(read=len(staged) + len(repeats))
    letters: list[DeadLetter] = []
    if staged and _copy_into_log(conn, batch.rows):
        # Every id was new: all accepted; repeats within the batch are judged against their first.
        result.accepted = len(staged)
        for c, inc in repeats:
            first, first_inc = firsts[c.event_id]
            if c.content_hash == first.content_hash:
                result.duplicates += 1
            else:
                letters.append(_conflict_letter(c, inc, _wire_of(first_inc)))
    elif staged:
        result.accepted = _append_against_log(conn, batch, result, letters)
    return _finish(conn, result, letters, batch.letters, dead_letter_conflicts)


def _append_against_log(conn: Connection, batch: StagedBatch, result: AppendResult, letters: list[DeadLetter]) -> int:
    """The slow path, when some ids of the batch are stored already: stage, compare, insert the new ones."""
    staged, repeats, firsts = batch.staged, batch.repeats, batch.firsts
    _stage_table(conn)
    _stage_rows(conn, batch.rows)
    # Look-ups go through the event_id index (= ANY of the staged ids): a join with the staging
    # table is planned as a hash join over the whole log, which made each batch scan all of it.
    ord_of = {c.event_id: i for i, (c, _) in enumerate(staged)}
    stored_hash: dict[str, str] = dict(
        conn.exec_driver_sql(
            "SELECT event_id, content_hash FROM event_log WHERE event_id = ANY(ARRAY(SELECT event_id FROM _event_stage))"
        ).all()
    )
    clash = sorted(ord_of[eid] for eid in stored_hash)
    differing = {staged[i][0].event_id for i in clash if staged[i][0].content_hash != stored_hash[staged[i][0].event_id]}
    differing |= {c.event_id for c, _ in repeats if c.event_id in stored_hash and c.content_hash != stored_hash[c.event_id]}
    in_log = _stored_versions(conn, sorted(differing))  # only conflicts need the stored version
    for i in clash:
        c, inc = staged[i]
        if c.content_hash == stored_hash[c.event_id]:
            result.duplicates += 1
        else:
            letters.append(_conflict_letter(c, inc, in_log[c.event_id]))
    # A repeated id is judged against the log's version when there is one, else against its first
    # occurrence (which is accepted): the outcome does not depend on where batches are cut.
    for c, inc in repeats:
        if c.event_id in stored_hash:
            if c.content_hash == stored_hash[c.event_id]:
                result.duplicates += 1
            else:
                letters.append(_conflict_letter(c, inc, in_log.get(c.event_id, {})))
        else:
            first, first_inc = firsts[c.event_id]
            if c.content_hash == first.content_hash:
                result.duplicates += 1
            else:
                letters.append(_conflict_letter(c, inc, _wire_of(first_inc)))
    cols = ", ".join(_STAGE_COLUMNS)
    # ON CONFLICT skips the ids already in the log (through the index) and any a concurrent writer added.
    inserted_ids: set[str] = set()
    if len(clash) < len(staged):  # all of them in the log already (a re-load): nothing to insert
        inserted_ids = set(
            conn.exec_driver_sql(
                f"INSERT INTO event_log ({cols}) SELECT {cols} FROM _event_stage s"
                " ORDER BY s.ord ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
            ).scalars()
        )
    if len(inserted_ids) != len(staged) - len(clash):
        # Another writer appended some of these ids between our look-up and our insert.
        clashed = set(clash)
        raced = [i for i, (c, _) in enumerate(staged) if i not in clashed and c.event_id not in inserted_ids]
        now_stored: dict[str, str] = dict(
            conn.execute(
                text("SELECT event_id, content_hash FROM event_log WHERE event_id = ANY(:ids)"),
                {"ids": [staged[i][0].event_id for i in raced]},
            ).all()
        )
        for i in raced:
            c, inc = staged[i]
            if now_stored.get(c.event_id) == c.content_hash:
                result.duplicates += 1
            else:
                reason = f"conflict: event_id {c.event_id!r} was appended concurrently with different content"
                letters.append(DeadLetter.of(inc, reason, c.event_id))
    conn.exec_driver_sql("TRUNCATE _event_stage")
    return len(inserted_ids)


def _finish(
    conn: Connection, result: AppendResult, conflicts: list[DeadLetter], invalid: list[DeadLetter], dead_letter_conflicts: bool
) -> AppendResult:
    """Write the dead letters and count them: read = accepted + duplicates + rejected."""
    if dead_letter_conflicts:
        _write_dead_letters(conn, conflicts)
    _write_dead_letters(conn, invalid)
    result.read += len(invalid)
    result.rejected = len(conflicts) + len(invalid)
    # Retry (conflicts not dead-lettered here) rewrites its letter's reason with this one: keep it whole.
    reasons = [d.reason for d in invalid[:20]]
    reasons += [d.reason if not dead_letter_conflicts else d.reason[:300] for d in conflicts[: 20 - len(reasons)]]
    result.reasons = reasons
    return result


def prepare(records: Iterable[Incoming], *, arrival: datetime | None = None) -> StagedBatch:
    """Validate and canonicalize raw records and stage them; each invalid one gets a dead letter with the reason."""
    valid: list[Prepared] = []
    letters: list[DeadLetter] = []
    fast = fast_canonical
    with gc_paused():
        for inc in records:
            c = fast(inc[0])
            if c is None:
                try:
                    # Whatever the record holds, it ends here as an event or a dead letter (poison isolation).
                    c = explained_canonical(inc[0])
                except EventValidationError as exc:
                    letters.append(DeadLetter.of(inc, str(exc), exc.event_id))
                    continue
            valid.append((c, inc))
        return stage(valid, letters, arrival=arrival)


def append_raw(conn: Connection, records: Iterable[Incoming], *, arrival: datetime | None = None) -> AppendResult:
    """Validate raw records and append the valid ones; invalid ones go to the dead letters with the reason."""
    return write_staged(conn, prepare(records, arrival=arrival))


_READ_CHUNK = 4 << 20


def read_jsonl(path: Path, source: str | None = None) -> Iterator[Incoming]:
    """Each line of a JSON Lines file as a record (its bytes); blank lines are not records. Position = line number.

    A UTF-8 byte-order mark (as Windows tools write) before the first line is no part of the record,
    nor is a carriage return before a line's end. Reads in large chunks (splitting lines in C).
    """
    src = source or path.name
    new = tuple.__new__  # Incoming(...) without its Python-level __new__: this loop runs per line
    lineno = 0
    pending: list[bytes] = []  # the start of a line that has not ended yet
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_READ_CHUNK)
            if lineno == 0 and not pending and chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]
            if not chunk:
                lines = [b"".join(pending)] if pending else []
            elif b"\n" not in chunk:
                pending.append(chunk)  # a line longer than a chunk: joined once, when it ends
                continue
            else:
                lines = chunk.split(b"\n")
                if pending:
                    lines[0] = b"".join((*pending, lines[0]))
                pending = [lines.pop()]
            for line in lines:
                lineno += 1
                if line[-1:] == b"\r":
                    line = line[:-1]
                if line[:1] != b"{" and not line.strip():
                    continue
                yield new(Incoming, (line, src, f"line {lineno}"))
            if not chunk:
                return


def batched(items: Iterable[Incoming], size: int) -> Iterator[list[Incoming]]:
    batch: list[Incoming] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


_DONE = object()


class _LogWriter:
    """A thread that writes and commits staged batches one after another, in the order handed over.

    It holds at most one batch waiting (so the caller prepares the next while it writes); results
    are counted in ``total`` only once committed, and its error is re-raised in the caller's thread.
    """

    def __init__(self, engine: Engine, on_batch: Callable[[AppendResult], None] | None) -> None:
        self.engine = engine
        self.on_batch = on_batch
        self.total = AppendResult()
        self.todo: queue.Queue[Any] = queue.Queue(maxsize=1)
        self.done: queue.Queue[AppendResult | BaseException] = queue.Queue()
        self.thread = threading.Thread(target=self._write_all, name="event-log-writer", daemon=True)

    def _write_all(self) -> None:
        while (batch := self.todo.get()) is not _DONE:
            try:
                with self.engine.begin() as conn:
                    result = write_staged(conn, batch)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self.done.put(exc)
                return
            self.done.put(result)  # only once committed: what is counted is in the log

    def collect(self, block: bool) -> None:
        """Count the committed batches (waiting for one with ``block``); raise the writer's error."""
        while True:
            try:
                res = self.done.get(block=block)
            except queue.Empty:
                return
            if isinstance(res, BaseException):
                raise res
            self.total.add(res)
            if self.on_batch:
                self.on_batch(res)
            block = False

    def hand_over(self, staged: StagedBatch) -> None:
        """Queue ``staged`` once the writer takes it, counting what it committed meanwhile."""
        while True:
            self.collect(block=False)
            try:
                self.todo.put(staged, timeout=0.5)
                return
            except queue.Full:
                if not self.thread.is_alive():
                    self.collect(block=True)

    def finish(self) -> None:
        """The writer finishes what it holds, then stops; its results (or its error) are left to collect."""
        while self.thread.is_alive():
            try:
                self.todo.put(_DONE, timeout=0.5)
                break
            except queue.Full:
                continue
        self.thread.join()


def load_records(
    engine: Engine,
    records: Iterable[Incoming],
    *,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[AppendResult], None] | None = None,
) -> AppendResult:
    """Append records in batches, committing each: re-running after a crash only yields duplicates.

    Batch n+1 is parsed, hashed and formatted here while a writer thread has PostgreSQL store
    batch n (waiting on the server releases the interpreter), so the two overlap on separate cores.
    Batches are written and committed one after another, in order.
    """
    log = _LogWriter(engine, on_batch)
    log.thread.start()
    # Paused for the whole load, not only while each batch is built: re-enabled in between, the
    # collector would walk the queued batch's objects at every pass. Nothing here makes cycles.
    with gc_paused() as collector:
        try:
            for records_batch in batched(records, batch_size):
                collector.tick()  # by hand: whatever cycles the database layers left behind
                log.hand_over(prepare(records_batch))
        finally:
            log.finish()
    log.collect(block=False)
    return log.total


def list_dead_letters(conn: Connection, *, status: str | None = "open", limit: int | None = None) -> list[dict[str, Any]]:
    sql = (
        "SELECT id, source, source_position, event_id, reason, raw, fixed_raw, status, attempts, created_at, resolved_at, resolution"
        " FROM dead_letter"
    )
    params: dict[str, Any] = {}
    if status:
        sql += " WHERE status = :status"
        params["status"] = status
    sql += " ORDER BY id"
    if limit:
        sql += " LIMIT :limit"
        params["limit"] = limit
    return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def retry_dead_letters(conn: Connection, ids: list[int] | None = None, *, replacement: str | None = None) -> dict[str, Any]:
    """Re-drive open dead letters through validation and append (after a fix in the code or the data).

    ``replacement`` substitutes a corrected raw text (only with exactly one id); it is kept in
    ``fixed_raw`` beside the original ``raw``, which is never overwritten, and later retries of
    the letter take it. A letter that is accepted, or found to be a duplicate now, is resolved; one
    that still fails keeps its row with the new reason and one more attempt. The event log keeps
    the same counting rule.
    """
    if replacement is not None and (not ids or len(ids) != 1):
        raise ValueError("a replacement text needs exactly one dead-letter id")
    sql = "SELECT id, coalesce(fixed_raw, raw) AS raw, source, source_position FROM dead_letter WHERE status = 'open'"
    params: dict[str, Any] = {}
    if ids:
        sql += " AND id = ANY(:ids)"
        params["ids"] = ids
    rows = conn.execute(text(sql + " ORDER BY id FOR UPDATE"), params).all()
    if ids:
        missing = sorted(set(ids) - {r.id for r in rows})
        if missing:
            raise ValueError(f"no open dead letter with id {', '.join(map(str, missing))}")
    outcome: dict[str, Any] = {"retried": 0, "accepted": 0, "duplicates": 0, "still_failing": 0, "failures": []}
    for row in rows:
        raw = replacement if replacement is not None else row.raw
        outcome["retried"] += 1
        try:
            c = explained_canonical(raw)
        except EventValidationError as exc:
            _still_failing(conn, row.id, str(exc), replacement)
            outcome["still_failing"] += 1
            outcome["failures"].append({"id": row.id, "reason": str(exc)})
            continue
        res = append_canonical(conn, [(c, Incoming(raw, row.source, row.source_position))], dead_letter_conflicts=False)
        if res.rejected:
            _still_failing(conn, row.id, res.reasons[0], replacement)
            outcome["still_failing"] += 1
            outcome["failures"].append({"id": row.id, "reason": res.reasons[0]})
            continue
        outcome["accepted"] += res.accepted
        outcome["duplicates"] += res.duplicates
        conn.execute(
            text(
                "UPDATE dead_letter SET status = 'resolved', resolved_at = now(), attempts = attempts + 1,"
                " resolution = :resolution, fixed_raw = coalesce(:fixed, fixed_raw) WHERE id = :id"
            ),
            {"id": row.id, "fixed": _storable(replacement), "resolution": "accepted" if res.accepted else "duplicate"},
        )
    return outcome


def _still_failing(conn: Connection, letter_id: int, reason: str, replacement: str | None) -> None:
    conn.execute(
        text("UPDATE dead_letter SET reason = :reason, fixed_raw = coalesce(:fixed, fixed_raw), attempts = attempts + 1 WHERE id = :id"),
        {"id": letter_id, "reason": _storable(reason), "fixed": _storable(replacement)},
    )
