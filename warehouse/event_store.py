"""The append-only event log and the dead letters.

Appends are batched: valid events are COPYed into a temporary staging table, then inserted into
``event_log`` in one statement. The same ``event_id`` with the same content is a *duplicate* and
changes nothing; with different content it is a *conflict*, dead-lettered with both versions.
Every record read is counted exactly once: ``read = accepted + duplicates + rejected``.

Functions that take a ``Connection`` never commit: the caller owns the transaction, so a stream
sink can write its offsets in the same transaction as the events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg.errors
from sqlalchemy import Connection, Engine, text

from events.model import Event
from events.validation import EventValidationError, parse_event

DEFAULT_BATCH = 20_000


@dataclass(frozen=True, slots=True)
class Incoming:
    """One raw record as read: its text, where it came from (file or topic) and its position there."""

    raw: str
    source: str
    position: str | None = None


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
    raw: str
    reason: str
    source: str
    position: str | None
    event_id: str | None = None


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


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_escape(value: str) -> str:
    if _COPY_SPECIAL.search(value) is None:  # the usual case: nothing to escape
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_rows(batch: list[tuple[Event, str, Incoming]], arrival: datetime, payload_texts: list[str]) -> list[str]:
    """The rows of ``_STAGE_COLUMNS`` in COPY text format, built here (faster than per-value adaptation).

    ``payload_texts`` are the payloads' canonical JSON, already encoded for the content hash.
    """
    rows = []
    for i, (ev, digest, inc) in enumerate(batch):
        recorded = (ev.recorded_at or arrival).isoformat()
        rows.append(
            "\t".join(
                (
                    _copy_escape(ev.event_id),
                    _copy_escape(ev.project_id),
                    ev.type.value,
                    ev.occurred_at.isoformat(),
                    recorded,
                    str(ev.schema_version),
                    _copy_escape(payload_texts[i]),
                    digest,
                    _copy_escape(inc.source),
                    "\\N" if inc.position is None else _copy_escape(inc.position),
                )
            )
        )
    return rows


def _copy(conn: Connection, statement: str, data: bytes) -> None:
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    with dbapi.cursor() as cur, cur.copy(statement) as copy:
        copy.write(data)


def _stage_rows(conn: Connection, rows: list[str]) -> None:
    """COPY the rows into the staging table, numbered in input order."""
    data = "".join(f"{i}\t{row}\n" for i, row in enumerate(rows)).encode()
    _copy(conn, f"COPY _event_stage (ord, {', '.join(_STAGE_COLUMNS)}) FROM STDIN", data)


def _copy_into_log(conn: Connection, rows: list[str]) -> bool:
    """COPY the rows straight into ``event_log``: the fast path when none of their ids is there yet.

    When one is (a re-load, a conflict, a concurrent writer), the unique key stops the COPY; it is
    rolled back to a savepoint, nothing is written, and False tells the caller to stage and compare.
    """
    conn.exec_driver_sql("SAVEPOINT event_log_copy")
    try:
        _copy(conn, f"COPY event_log ({', '.join(_STAGE_COLUMNS)}) FROM STDIN", ("\n".join(rows) + "\n").encode())
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
    conn.execute(
        text(
            "INSERT INTO dead_letter (raw, reason, event_id, source, source_position) "
            "VALUES (:raw, :reason, :event_id, :source, :position)"
        ),
        [{k: _storable(v) for k, v in asdict(d).items()} for d in letters],
    )


def _conflict_reason(event_id: str, stored: dict[str, Any], new_wire: dict[str, Any]) -> str:
    stored_text = json.dumps(stored, ensure_ascii=False, sort_keys=True, default=str)
    new_text = json.dumps(new_wire, ensure_ascii=False, sort_keys=True, default=str)
    return (
        f"conflict: event_id {event_id!r} is already in the log with different content; "
        f"stored version: {stored_text}; this version: {new_text}"
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
    """Append validated events (in the caller's transaction); count duplicates, dead-letter conflicts.

    With ``dead_letter_conflicts=False`` conflicts are only counted and described in ``reasons``.
    """
    result = AppendResult(read=len(batch))
    if not batch:
        return result
    arrival = arrival or datetime.now(UTC)
    letters: list[DeadLetter] = []
    firsts: dict[str, tuple[Event, str, Incoming]] = {}
    payload_texts: list[str] = []  # aligned with ``firsts``
    repeats: list[tuple[Event, str, Incoming]] = []  # later occurrences of an id within this batch
    for ev, inc in batch:
        digest, payload_text = ev.hash_and_payload_text()
        if ev.event_id in firsts:
            repeats.append((ev, digest, inc))
        else:
            firsts[ev.event_id] = (ev, digest, inc)
            payload_texts.append(payload_text)
    staged = list(firsts.values())
    rows = _copy_rows(staged, arrival, payload_texts)
    if _copy_into_log(conn, rows):
        # Every id was new: all accepted; repeats within the batch are judged against their first.
        result.accepted = len(staged)
        for ev, digest, inc in repeats:
            first_ev, ref_hash, _ = firsts[ev.event_id]
            if digest == ref_hash:
                result.duplicates += 1
            else:
                letters.append(DeadLetter(inc.raw, _conflict_reason(ev.event_id, first_ev.to_wire(), ev.to_wire()), inc.source, inc.position, ev.event_id))
        return _finish(conn, result, letters, dead_letter_conflicts)
    _stage_table(conn)
    _stage_rows(conn, rows)
    # Look-ups go through the event_id index (= ANY of the staged ids): a join with the staging
    # table is planned as a hash join over the whole log, which made each batch scan all of it.
    ord_of = {ev.event_id: i for i, (ev, _, _) in enumerate(staged)}
    stored_hash: dict[str, str] = dict(
        conn.exec_driver_sql(
            "SELECT event_id, content_hash FROM event_log WHERE event_id = ANY(ARRAY(SELECT event_id FROM _event_stage))"
        ).all()
    )
    clash = sorted(ord_of[eid] for eid in stored_hash)
    differing = {staged[i][0].event_id for i in clash if staged[i][1] != stored_hash[staged[i][0].event_id]}
    differing |= {ev.event_id for ev, digest, _ in repeats if ev.event_id in stored_hash and digest != stored_hash[ev.event_id]}
    in_log = _stored_versions(conn, sorted(differing))  # only conflicts need the stored version
    for i in clash:
        ev, digest, inc = staged[i]
        if digest == stored_hash[ev.event_id]:
            result.duplicates += 1
        else:
            letters.append(DeadLetter(inc.raw, _conflict_reason(ev.event_id, in_log[ev.event_id], ev.to_wire()), inc.source, inc.position, ev.event_id))
    # A repeated id is judged against the log's version when there is one, else against its first
    # occurrence (which is accepted): the outcome does not depend on where batches are cut.
    for ev, digest, inc in repeats:
        if ev.event_id in stored_hash:
            ref_hash = stored_hash[ev.event_id]
            ref_wire = in_log.get(ev.event_id, {})
        else:
            first_ev, ref_hash, _ = firsts[ev.event_id]
            ref_wire = first_ev.to_wire()
        if digest == ref_hash:
            result.duplicates += 1
        else:
            letters.append(DeadLetter(inc.raw, _conflict_reason(ev.event_id, ref_wire, ev.to_wire()), inc.source, inc.position, ev.event_id))
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
    inserted = len(inserted_ids)
    if inserted != len(staged) - len(clash):
        # Another writer appended some of these ids between our look-up and our insert.
        clashed = set(clash)
        raced = [i for i, (ev, _, _) in enumerate(staged) if i not in clashed and ev.event_id not in inserted_ids]
        now_stored: dict[str, str] = dict(
            conn.execute(
                text("SELECT event_id, content_hash FROM event_log WHERE event_id = ANY(:ids)"),
                {"ids": [staged[i][0].event_id for i in raced]},
            ).all()
        )
        for i in raced:
            ev, digest, inc = staged[i]
            if now_stored.get(ev.event_id) == digest:
                result.duplicates += 1
            else:
                reason = f"conflict: event_id {ev.event_id!r} was appended concurrently with different content"
                letters.append(DeadLetter(inc.raw, reason, inc.source, inc.position, ev.event_id))
    result.accepted = inserted
    conn.exec_driver_sql("TRUNCATE _event_stage")
    return _finish(conn, result, letters, dead_letter_conflicts)


def _finish(conn: Connection, result: AppendResult, letters: list[DeadLetter], dead_letter_conflicts: bool) -> AppendResult:
    if dead_letter_conflicts:
        _write_dead_letters(conn, letters)
    result.rejected = len(letters)
    # Retry (conflicts not dead-lettered here) rewrites its letter's reason with this one: keep it whole.
    result.reasons = [d.reason if not dead_letter_conflicts else d.reason[:300] for d in letters[:20]]
    return result


def append_raw(conn: Connection, records: Iterable[Incoming], *, arrival: datetime | None = None) -> AppendResult:
    """Validate raw records and append the valid ones; invalid ones go to the dead letters with the reason."""
    valid: list[tuple[Event, Incoming]] = []
    letters: list[DeadLetter] = []
    for inc in records:
        try:
            valid.append((parse_event(inc.raw), inc))
        except EventValidationError as exc:
            letters.append(DeadLetter(inc.raw, str(exc), inc.source, inc.position, exc.event_id))
    result = append_validated(conn, valid, arrival=arrival)
    _write_dead_letters(conn, letters)
    result.read += len(letters)
    result.rejected += len(letters)
    result.reasons = ([d.reason for d in letters] + result.reasons)[:20]
    return result


def read_jsonl(path: Path, source: str | None = None) -> Iterator[Incoming]:
    """Each line of a JSON Lines file as a record; blank lines are not records. Position = line number.

    A UTF-8 byte-order mark (as Windows tools write) before the first line is no part of the record.
    """
    src = source or path.name
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not line.strip():
                continue
            try:
                decoded = line.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                decoded = line.decode("utf-8", errors="replace").rstrip("\r\n") + "\ufffd(not UTF-8)"
            yield Incoming(decoded, src, f"line {lineno}")


def batched(items: Iterable[Incoming], size: int) -> Iterator[list[Incoming]]:
    batch: list[Incoming] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_records(
    engine: Engine,
    records: Iterable[Incoming],
    *,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[AppendResult], None] | None = None,
) -> AppendResult:
    """Append records in batches, committing each: re-running after a crash only yields duplicates."""
    total = AppendResult()
    for batch in batched(records, batch_size):
        with engine.begin() as conn:
            res = append_raw(conn, batch)
        total.add(res)
        if on_batch:
            on_batch(res)
    return total


def list_dead_letters(conn: Connection, *, status: str | None = "open", limit: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT id, source, source_position, event_id, reason, raw, status, attempts, created_at, resolved_at, resolution FROM dead_letter"
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

    ``replacement`` substitutes a corrected raw text (only with exactly one id). A letter that is
    accepted, or found to be a duplicate now, is resolved; one that still fails keeps its row with
    the new reason and one more attempt. The event log keeps the same counting rule.
    """
    if replacement is not None and (not ids or len(ids) != 1):
        raise ValueError("a replacement text needs exactly one dead-letter id")
    sql = "SELECT id, raw, source, source_position FROM dead_letter WHERE status = 'open'"
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
            ev = parse_event(raw)
        except EventValidationError as exc:
            _still_failing(conn, row.id, str(exc), raw)
            outcome["still_failing"] += 1
            outcome["failures"].append({"id": row.id, "reason": str(exc)})
            continue
        res = append_validated(conn, [(ev, Incoming(raw, row.source, row.source_position))], dead_letter_conflicts=False)
        if res.rejected:
            _still_failing(conn, row.id, res.reasons[0], raw)
            outcome["still_failing"] += 1
            outcome["failures"].append({"id": row.id, "reason": res.reasons[0]})
            continue
        outcome["accepted"] += res.accepted
        outcome["duplicates"] += res.duplicates
        conn.execute(
            text(
                "UPDATE dead_letter SET status = 'resolved', resolved_at = now(), attempts = attempts + 1,"
                " resolution = :resolution, raw = :raw WHERE id = :id"
            ),
            {"id": row.id, "raw": raw, "resolution": "accepted" if res.accepted else "duplicate"},
        )
    return outcome


def _still_failing(conn: Connection, letter_id: int, reason: str, raw: str) -> None:
    conn.execute(
        text("UPDATE dead_letter SET reason = :reason, raw = :raw, attempts = attempts + 1 WHERE id = :id"),
        {"id": letter_id, "reason": reason, "raw": raw},
    )
