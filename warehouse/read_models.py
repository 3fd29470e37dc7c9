"""Read models kept from the log: answers "as of D, as known at T" without replaying the log.

The log stays the only source of truth. ``rm_project_version`` holds, for every project, the
valid-time versions of its state (``events.versions``) as known at one log position
(``rm_position.seq``). An answer at a horizon (D, T):

1. takes each project's version valid on D, except the *touched* projects: those with an event
   the projection and the horizon see differently — appended after the position, or recorded
   after T (a late record, a retraction not yet known at T);
2. re-folds the touched projects from their events (``events.projection.fold``) at the horizon.

So an answer is exact whatever the projection's lag: lag and old knowledge instants cost time,
never correctness. The full fold (``warehouse.replay.fold_states``) stays the reference; a property test
holds the two equal.

The projector (:func:`update`) advances the position in one transaction with the versions it
rewrites (a SIGKILL leaves the old position and the old versions). Readers hold the position row
``FOR SHARE`` for their transaction, so a projector cannot commit between their statements: a
reader never sees versions that disagree with the position it read.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, event, text

from events.calendar import months_before
from events.kpis import (
    UNASSIGNED,
    KpiGroup,
    KpiMode,
    accumulate_kpis,
    add_sums,
    finish_kpis,
    kpi_arguments,
    zero_sums,
)
from events.model import Event, EventType, local_date
from events.projection import (
    RECORD_FIELDS,
    STALLED_AFTER_MONTHS,
    ProjectState,
    fold,
    row_from_record,
    state_from_record,
)
from events.store import Horizon
from events.versions import Version, extend_versions, group_by_subject, versions
from warehouse.collector import gc_paused
from warehouse.copy_text import NULL, SPECIAL_PATTERN, copy_escape, copy_in
from warehouse.db import make_engine
from warehouse.event_store import LOG_APPEND_LOCK
from warehouse.horizon import NOT_YET_KNOWN, OCCURRED, horizon_clause
from warehouse.roles import assume_app_role

log = logging.getLogger(__name__)

PROJECTION = "project_versions"
OPEN_END = date(9999, 12, 31)  # valid_to of a version still in force
FOLLOWER_NICENESS = 10  # added to the follower process's nice value: the writer beside it comes first
_CHUNK_PROJECTS = 20_000  # projects re-versioned per step of a large update: bounds memory

_EVENT_COLUMNS = "seq, event_id, project_id, type, occurred_at, recorded_at, schema_version, payload::text"
_TYPES = {t.value: t for t in EventType}


# --- the log, as the read models read it -------------------------------------------------------


_LOG_SEQ_SQL = "SELECT coalesce(max(seq), 0) FROM event_log"


def settled_seq(conn: Connection) -> int:
    """The log's high-water mark below which no append is still in flight.

    Appends hold a shared advisory lock to their commit; taking it exclusively waits for them, so
    every seq up to the returned one is committed or never will be. One round trip: the lock and
    the read go as one query string, so on an autocommit connection (``refresh``) the server takes
    and releases the lock with no wait on this process, and appends queued behind the lock never
    wait for a client the scheduler has put aside (the follower runs at a lower CPU priority). In a
    transaction the lock is held to its end. The read is a statement of its own, so it sees every
    append the lock waited for.
    """
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"SELECT pg_advisory_xact_lock({LOG_APPEND_LOCK}); {_LOG_SEQ_SQL}")
        cursor.nextset()
        row = cursor.fetchone()
    finally:
        cursor.close()
    assert row is not None  # max() returns one row
    return int(row[0])


def _log_seq(conn: Connection) -> int:
    return int(conn.exec_driver_sql(_LOG_SEQ_SQL).scalar_one())


def _events(rows: Iterable[Any]) -> list[Event]:
    rows = list(rows)
    payloads = orjson.loads("[" + ",".join(r[7] for r in rows) + "]") if rows else []
    return [
        Event(r[1], r[2], _TYPES[r[3]], r[4], r[5], r[6], payload) for r, payload in zip(rows, payloads, strict=True)
    ]


_PROJECT_EVENTS_SQL = f"""
WITH RECURSIVE base AS (
    SELECT {_EVENT_COLUMNS} FROM event_log WHERE project_id = ANY(:pids) AND seq <= :upto
), withdrawing AS (
    SELECT {_EVENT_COLUMNS} FROM event_log
    WHERE type = 'retracted' AND payload->>'event_id' IN (SELECT event_id FROM base) AND seq <= :upto
    UNION
    SELECT {", ".join("e." + c.strip() for c in _EVENT_COLUMNS.split(","))} FROM event_log e
    JOIN withdrawing w ON e.type = 'retracted' AND e.payload->>'event_id' = w.event_id AND e.seq <= :upto
)
SELECT * FROM base UNION SELECT * FROM withdrawing
"""


def project_events(conn: Connection, project_ids: list[str], upto: int | None = None) -> list[Event]:
    """Every event that can change these projects' states: their own, and the retractions (of
    retractions…) of those, up to log position ``upto`` (None: all)."""
    if not project_ids:
        return []
    upto_seq = upto if upto is not None else 2**62
    rows = conn.execute(text(_PROJECT_EVENTS_SQL), {"pids": project_ids, "upto": upto_seq}).all()
    return _events(rows)


_SUBJECTS_SQL = """
WITH RECURSIVE walk(event_id, project_id, type, target, depth) AS (
    SELECT event_id, project_id, type, payload->>'event_id', 0 FROM event_log WHERE seq = ANY(:seqs)
    UNION
    SELECT e.event_id, e.project_id, e.type, e.payload->>'event_id', w.depth + 1
    FROM walk w JOIN event_log e ON w.type = 'retracted' AND e.event_id = w.target
    WHERE w.depth < 64
)
SELECT DISTINCT project_id FROM walk
"""


def _projects_of(conn: Connection, event_filter: str, params: dict[str, Any]) -> set[str]:
    """The projects the selected events can change: their own, and for retractions those of the
    events they withdraw (chains followed; a superset is safe, it only costs a re-fold)."""
    rows = conn.execute(text(f"SELECT seq, project_id, type FROM event_log WHERE {event_filter}"), params).all()
    projects = {r.project_id for r in rows}
    retraction_seqs = [r.seq for r in rows if r.type == "retracted"]
    if retraction_seqs:
        projects |= set(conn.execute(text(_SUBJECTS_SQL), {"seqs": retraction_seqs}).scalars())
    return projects


# --- the projector -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    """What an update did: from and to which log position, how many projects and versions it rewrote."""

    from_seq: int
    to_seq: int
    projects: int
    versions: int


def position(conn: Connection, *, lock: str = "") -> int:
    """The log position the project versions reflect (``lock``: '', 'FOR SHARE' or 'FOR UPDATE')."""
    query = text(f"SELECT seq FROM rm_position WHERE projection = :p {lock}")
    seq = conn.execute(query, {"p": PROJECTION}).scalar()
    if seq is None:  # an emptied warehouse: the projection starts from the beginning of the log
        conn.execute(text("INSERT INTO rm_position (projection, seq) VALUES (:p, 0) ON CONFLICT DO NOTHING"), {"p": PROJECTION})
        seq = conn.execute(query, {"p": PROJECTION}).scalar_one()
    return int(seq)


_VERSION_COLUMNS = (
    "project_id", "valid_from", "valid_to", "unit", "industry", "channel", "reached", "signed_on", "landed_on",
    "started_on", "produced_on", "cancelled_on", "last_change_on", "investment_wan", "funds_wan", "funds_on",
    "funds_cny_wan", "confidential", "merged_into", "name", "investor", "parcel_id", "factory_id", "anomalies",
)  # fmt: skip


def _last_site(r: dict[str, Any]) -> tuple[str | None, str | None]:
    """(parcel, factory) of the record's last landing; the parcel named at signing when it never landed."""
    site = r["sites"][-1] if r["sites"] else None
    return (site[2] if site else None) or r.get("intended_parcel_id"), site[3] if site else None


def _version_row(version: Version) -> tuple[Any, ...]:
    """The narrow row of ``rm_project_version`` (in :data:`_VERSION_COLUMNS` order; dates as ISO text)."""
    r = version.record
    cny_on = [f[0] for f in r["funds"] if f[2] == "CNY"]
    cny_wan = [f[1] for f in r["funds"] if f[2] == "CNY"]
    return (
        version.project_id,
        version.valid_from,
        version.valid_to or OPEN_END,
        r["unit"],
        r["industry"],
        r["channel"],
        r["reached"],
        r["signed_on"],
        r["landed_on"],
        r["started_on"],
        r["produced_on"],
        r["cancelled_on"],
        r["last_change_on"],
        r["investment_wan"],
        sum(cny_wan),
        cny_on,
        cny_wan,
        r["confidential"],
        r.get("merged_into"),
        r.get("name"),
        r.get("investor"),
        *_last_site(r),
        len(r["anomalies"]),
    )


_COPY_SPECIAL = re.compile(SPECIAL_PATTERN)


def _version_line(version: Version) -> str:
    """:func:`_version_row` as a line of COPY text (the record's dates are ISO text already)."""
    r = version.record
    funds = r["funds"]
    cny = [f for f in funds if f[2] == "CNY"] if funds else funds
    parcel, factory = _last_site(r)
    pid, unit, industry, channel, merged, name, investor = (
        version.project_id, r["unit"], r["industry"], r["channel"], r["merged_into"], r["name"], r["investor"]
    )  # fmt: skip
    # One look for COPY's special characters over the line's text fields (a None reads as "None"):
    # escaping field by field cost a third of the line (they almost never hold any).
    if _COPY_SPECIAL.search(f"{pid}{unit}{industry}{channel}{merged}{name}{investor}{parcel}{factory}"):
        pid = copy_escape(pid)
        unit, industry, channel, merged, name, investor, parcel, factory = (
            copy_escape(x) if x is not None else None for x in (unit, industry, channel, merged, name, investor, parcel, factory)
        )
    return "\t".join(
        (
            pid,
            version.valid_from.isoformat(),
            (version.valid_to or OPEN_END).isoformat(),
            NULL if unit is None else unit,
            NULL if industry is None else industry,
            NULL if channel is None else channel,
            str(r["reached"]),
            r["signed_on"] or NULL,
            r["landed_on"] or NULL,
            r["started_on"] or NULL,
            r["produced_on"] or NULL,
            r["cancelled_on"] or NULL,
            r["last_change_on"] or NULL,
            str(r["investment_wan"]),
            str(sum(f[1] for f in cny)) if cny else "0",
            "{" + ",".join(f[0] for f in cny) + "}",  # ISO dates and numbers: nothing to quote
            "{" + ",".join(str(f[1]) for f in cny) + "}",
            "t" if r["confidential"] else "f",
            NULL if merged is None else merged,
            NULL if name is None else name,
            NULL if investor is None else investor,
            NULL if parcel is None else parcel,
            NULL if factory is None else factory,
            str(len(r["anomalies"])),
        )
    )


# A record is stored as the JSON array of its values in RECORD_FIELDS order: without its keys it is
# half the size, and PostgreSQL's json (checked, kept as text) takes it in at a third of jsonb's cost.
_record_values = itemgetter(*RECORD_FIELDS)


def _records(texts: list[str]) -> list[dict[str, Any]]:
    """Stored records (JSON arrays, as text) back as state records; one decode for all of them."""
    if not texts:
        return []
    return [dict(zip(RECORD_FIELDS, values, strict=True)) for values in orjson.loads("[" + ",".join(texts) + "]")]


def _version_copy(new: list[Version]) -> tuple[str, bytes]:
    """The COPY text of the versions' narrow rows and of their records (built here: per-value adaptation costs several times more)."""
    lines = "\n".join([_version_line(v) for v in new]) + "\n"
    dumps = orjson.dumps
    records = bytearray()
    for v in new:
        # JSON writes tabs and newlines as escapes; COPY reads a backslash as its own escape.
        records += f"{copy_escape(v.project_id)}\t{v.valid_from.isoformat()}\t".encode()
        records += dumps(_record_values(v.record)).replace(b"\\", b"\\\\")
        records += b"\n"
    return lines, bytes(records)


def _write_versions(conn: Connection, new: list[Version]) -> None:
    """COPY the versions and their records in."""
    if new:
        _copy_versions(conn, _version_copy(new))


def _copy_versions(conn: Connection, copy: tuple[str, bytes]) -> None:
    lines, records = copy
    copy_in(conn, f"COPY rm_project_version ({', '.join(_VERSION_COLUMNS)}) FROM STDIN", lines.encode())
    copy_in(conn, "COPY rm_project_record (project_id, valid_from, record) FROM STDIN", records)


def project_versions(conn: Connection, project_ids: list[str], upto: int | None) -> list[Version]:
    """The versions of these projects computed from the log up to ``upto`` (the reference the store is checked against)."""
    grouped = group_by_subject(project_events(conn, project_ids, upto))
    out: list[Version] = []
    for pid in sorted(project_ids):
        out.extend(versions(pid, grouped.get(pid, [])))
    return out


def _rewrite(
    conn: Connection, project_ids: list[str], upto: int, *, stored: bool, on_progress: Callable[[int], None] | None
) -> int:
    """Replace the stored versions of these projects with those of the log up to ``upto``, a chunk
    at a time, from all their events (``stored=False``: none are stored, nothing to delete)."""
    written = 0
    for i in range(0, len(project_ids), _CHUNK_PROJECTS):
        chunk = project_ids[i : i + _CHUNK_PROJECTS]
        with gc_paused():
            new = project_versions(conn, chunk, upto)
            if stored:
                conn.execute(text("DELETE FROM rm_project_version WHERE project_id = ANY(:p)"), {"p": chunk})
                conn.execute(text("DELETE FROM rm_project_record WHERE project_id = ANY(:p)"), {"p": chunk})
            _write_versions(conn, new)
        written += len(new)
        if on_progress:
            on_progress(len(chunk))
    return written


# Projects whose events appended in (lo, hi] a retraction withdraws (one appended before or after them).
_WITHDRAWN_NEW_SQL = """
SELECT DISTINCT e.project_id FROM event_log e
JOIN event_log r ON r.type = 'retracted' AND r.payload->>'event_id' = e.event_id AND r.seq <= :hi
WHERE e.seq > :lo AND e.seq <= :hi
"""
_NEW_EVENTS_SQL = f"SELECT {_EVENT_COLUMNS} FROM event_log WHERE seq > %(lo)s AND seq <= %(hi)s ORDER BY project_id, seq"
_FETCH_ROWS = 20_000  # smaller batches reuse memory: allocating fresh pages costs more than the round trips
_TOUCHED_COUNT_SQL = """
SELECT count(*) FROM (
    SELECT project_id FROM event_log WHERE seq > :lo AND seq <= :hi UNION SELECT unnest(CAST(:whole AS text[]))
) touched
"""
_OLD_LATEST_SQL = """
SELECT project_id, max(occurred_at) FROM event_log
WHERE project_id = ANY(:p) AND seq <= :lo AND type <> 'retracted' GROUP BY project_id
"""
_OPEN_VERSIONS_SQL = """
SELECT v.project_id, v.valid_from, r.record::text FROM rm_project_version v
JOIN rm_project_record r ON r.project_id = v.project_id AND r.valid_from = v.valid_from
WHERE v.project_id = ANY(:p) AND v.valid_to = DATE '9999-12-31'
"""
_CLOSE_SQL = """
UPDATE rm_project_version v SET valid_to = u.valid_to
FROM unnest(CAST(:p AS text[]), CAST(:f AS date[]), CAST(:t AS date[])) AS u(project_id, valid_from, valid_to)
WHERE v.project_id = u.project_id AND v.valid_from = u.valid_from
"""


def _new_event_groups(conn: Connection, lo: int, hi: int, skip: set[str]) -> Iterator[list[tuple[str, list[Event]]]]:
    """The events appended in (lo, hi] of every project not in ``skip``, by project in project order,
    a batch of projects at a time (read through a server-side cursor: memory stays bounded)."""
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    held: list[Any] = []  # the rows of the last project of a batch: it may go on in the next one
    with dbapi.cursor(name="rm_new_events") as cur:
        cur.execute(_NEW_EVENTS_SQL, {"lo": lo, "hi": hi})
        while True:
            fetched = cur.fetchmany(_FETCH_ROWS)
            rows = held + [r for r in fetched if r[2] not in skip]
            if fetched:  # hold the last project back
                last = rows[-1][2] if rows else None
                cut = len(rows)
                while cut > 0 and rows[cut - 1][2] == last:
                    cut -= 1
                rows, held = rows[:cut], rows[cut:]
            if rows:
                yield _grouped(_events(rows))
            if not fetched:
                return


def _grouped(events: list[Event]) -> list[tuple[str, list[Event]]]:
    """Events in project order, as (project, its events)."""
    out: list[tuple[str, list[Event]]] = []
    for ev in events:
        if out and out[-1][0] == ev.project_id:
            out[-1][1].append(ev)
        else:
            out.append((ev.project_id, [ev]))
    return out


@dataclass(slots=True)
class _Step:
    """What one batch of projects gives the store: versions to add (and their COPY text), open
    versions to close, projects to re-version whole."""

    new: list[Version]
    closed: list[tuple[str, date, date]]
    whole: list[str]
    copy: tuple[str, bytes] | None = None


@dataclass(slots=True)
class _Heads:
    """What the store and the log hold of a batch's projects before the new events."""

    latest: dict[str, datetime]  # each project's latest event (but retractions) up to the position
    open_versions: dict[str, Version]


def _heads(conn: Connection, pids: list[str], lo: int) -> _Heads:
    if lo == 0:  # nothing before: every project is new
        return _Heads({}, {})
    latest: dict[str, datetime] = {r[0]: r[1] for r in conn.execute(text(_OLD_LATEST_SQL), {"p": pids, "lo": lo})}
    rows = conn.execute(text(_OPEN_VERSIONS_SQL), {"p": pids}).all()
    records = _records([r[2] for r in rows])
    return _Heads(latest, {r[0]: Version(r[0], r[1], None, record) for r, record in zip(rows, records, strict=True)})


def _step(groups: list[tuple[str, list[Event]]], heads: _Heads) -> _Step:
    """Version a batch of projects from their new events alone where that is exact (:func:`_extends`); the others are left whole."""
    step = _Step([], [], [])
    for pid, evs in groups:
        last = heads.open_versions.get(pid)
        old_latest = heads.latest.get(pid)
        if old_latest is None and last is None:  # a new project: its new events are all it has
            step.new.extend(versions(pid, evs))
        elif _extends(last, old_latest, evs):
            assert last is not None
            extended = extend_versions(last, evs)
            if extended[0].valid_to is not None:
                step.closed.append((pid, last.valid_from, extended[0].valid_to))
                step.new.extend(extended[1:])
        else:
            step.whole.append(pid)
    if step.new:
        step.copy = _version_copy(step.new)
    return step


def _extends(last: Version | None, old_latest: datetime | None, evs: list[Event]) -> bool:
    """Whether the project's new events only extend its stored versions (``events.versions.extend_versions``):
    none signed (confidentiality looks at every signing), all after its other events and after the first day of its open version."""
    if last is None or old_latest is None:
        return False
    first = min(e.occurred_at for e in evs)
    return first > old_latest and local_date(first) > last.valid_from and all(e.type not in (EventType.SIGNED, EventType.MERGED) for e in evs)


def _store_step(conn: Connection, step: _Step) -> None:
    if step.closed:
        p, f, t = zip(*step.closed, strict=True)
        conn.execute(text(_CLOSE_SQL), {"p": list(p), "f": list(f), "t": list(t)})
    if step.copy is not None:
        _copy_versions(conn, step.copy)


def _extend(conn: Connection, lo: int, hi: int, skip: set[str], on_progress: Callable[[int], None] | None) -> tuple[int, int, list[str]]:
    """Version every project with events appended in (lo, hi], but those in ``skip``, from these
    events alone where that is exact; (projects, versions written, projects left to re-version whole).

    PostgreSQL stores a batch (a thread waiting on the server) while the next one is computed
    here; the connection is used by one of them at a time.
    """
    projects = written = 0
    whole: list[str] = []
    ready: _Step | None = None  # computed, not yet stored
    pending: Future[None] | None = None
    # Paused throughout (events, records and COPY text are acyclic): left to allocation counts, the
    # collector would rescan each batch's objects several times (a third of the work, measured).
    with gc_paused() as collector, ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-model-copy") as storing:
        for groups in _new_event_groups(conn, lo, hi, skip):  # the connection is free here
            heads = _heads(conn, [pid for pid, _ in groups], lo)
            if ready is not None:
                pending = storing.submit(_store_step, conn, ready)
            step = _step(groups, heads)
            if pending is not None:
                pending.result()
                pending = None
            ready = step
            whole.extend(step.whole)
            projects += len(groups) - len(step.whole)
            written += len(step.new)
            if on_progress:
                on_progress(len(groups) - len(step.whole))
            collector.tick(wrote=False)  # whatever cycles the database layers leave: at most once a second
        if ready is not None:
            _store_step(conn, ready)
    return projects, written, whole


def _advance(conn: Connection, start: int, target: int, on_progress: Callable[[int, int], None] | None) -> Progress:
    """Bring the stored versions from log position ``start`` to ``target`` and move the position.

    The projects whose new events are their own lifecycle events, withdrawn by no retraction, are
    versioned from these events alone: a new project from them, a known one by extending its open
    version when they come after its other events (the stream's case). The others — retractions,
    late records, a new signing — are re-versioned from all their events.
    """
    params = {"lo": start, "hi": target}
    # Retractions appended, and events appended that a retraction withdraws: re-versioned whole.
    whole = _projects_of(conn, "seq > :lo AND seq <= :hi AND type IN ('retracted', 'merged')", params)
    whole |= set(conn.execute(text(_WITHDRAWN_NEW_SQL), params).scalars())
    total = 0
    if on_progress:
        total = int(conn.execute(text(_TOUCHED_COUNT_SQL), {**params, "whole": sorted(whole)}).scalar_one())
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if on_progress:
            on_progress(done, max(total, done))

    projects, written, rest = _extend(conn, start, target, whole, progress)
    whole.update(rest)
    if whole:
        stored = conn.execute(text("SELECT EXISTS (SELECT 1 FROM rm_project_version)")).scalar_one()
        written += _rewrite(conn, sorted(whole), target, stored=stored, on_progress=progress)
    conn.execute(text("UPDATE rm_position SET seq = :s, updated_at = now() WHERE projection = :p"), {"s": target, "p": PROJECTION})
    return Progress(start, target, projects + len(whole), written)


def update(conn: Connection, *, upto: int | None = None, on_progress: Callable[[int, int], None] | None = None) -> Progress:
    """Bring the project versions up to the log (or to ``upto``), in the caller's transaction.

    Re-versions only the projects touched by events appended since the stored position. The caller
    should take ``upto`` from :func:`settled_seq` in an earlier transaction (``refresh`` does).
    """
    start = position(conn, lock="FOR UPDATE")
    target = upto if upto is not None else _log_seq(conn)
    if target <= start:
        return Progress(start, start, 0, 0)
    if start == 0:  # nothing is reflected yet: whatever the store holds goes
        conn.exec_driver_sql("DELETE FROM rm_project_version")
        conn.exec_driver_sql("DELETE FROM rm_project_record")
    done = _advance(conn, start, target, on_progress)
    log.info("project versions %d → %d: %d projects, %d versions", start, target, done.projects, done.versions)
    return done


def refresh(engine: Engine, on_progress: Callable[[int, int], None] | None = None) -> Progress:
    """Settle the log's high-water mark, then :func:`update` to it: what commands run after appending."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        upto = settled_seq(conn)
    with engine.begin() as conn:
        return update(conn, upto=upto, on_progress=on_progress)


def rebuild(conn: Connection, on_progress: Callable[[int, int], None] | None = None) -> Progress:
    """Rebuild the versions from the log alone (in the caller's transaction)."""
    start = position(conn, lock="FOR UPDATE")
    target = _log_seq(conn)
    conn.exec_driver_sql("DELETE FROM rm_project_version")
    conn.exec_driver_sql("DELETE FROM rm_project_record")
    done = _advance(conn, 0, target, on_progress)
    return Progress(start, target, done.projects, done.versions)


@dataclass(frozen=True, slots=True)
class Difference:
    """A stored version that the log does not give (``stored``), or one it gives that is not stored (``expected``)."""

    project_id: str
    valid_from: date
    what: str  # 'missing', 'unexpected' or 'different'
    detail: str


def check(conn: Connection, on_progress: Callable[[int, int], None] | None = None) -> tuple[int, list[Difference]]:
    """Compare the stored versions with those the log gives up to the stored position; (position, differences)."""
    at = position(conn, lock="FOR SHARE")
    projects = sorted(
        set(conn.execute(text("SELECT DISTINCT project_id FROM event_log WHERE seq <= :t"), {"t": at}).scalars())
        | set(conn.exec_driver_sql("SELECT DISTINCT project_id FROM rm_project_version").scalars())
    )
    differences: list[Difference] = []
    for i in range(0, len(projects), _CHUNK_PROJECTS):
        chunk = projects[i : i + _CHUNK_PROJECTS]
        with gc_paused():
            expected = {(v.project_id, v.valid_from): v for v in project_versions(conn, chunk, at)}
        stored = _stored_versions(conn, chunk)
        for key in sorted(expected.keys() | stored.keys()):
            differences.extend(_compare(key, expected.get(key), stored.get(key)))
        if on_progress:
            on_progress(min(i + _CHUNK_PROJECTS, len(projects)), len(projects))
    return at, differences


def _stored_versions(conn: Connection, project_ids: list[str]) -> dict[tuple[str, date], dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT v.*, r.record::text AS record_text FROM rm_project_version v"
            " LEFT JOIN rm_project_record r USING (project_id, valid_from) WHERE v.project_id = ANY(:p)"
        ),
        {"p": project_ids},
    ).mappings()
    return {(r["project_id"], r["valid_from"]): dict(r) for r in rows}


def _compare(key: tuple[str, date], expected: Version | None, stored: dict[str, Any] | None) -> list[Difference]:
    pid, valid_from = key
    if stored is None:
        return [Difference(pid, valid_from, "missing", "the log gives this version; it is not stored")]
    if expected is None:
        return [Difference(pid, valid_from, "unexpected", "stored, but the log gives no such version")]
    narrow = dict(zip(_VERSION_COLUMNS, _version_row(expected), strict=True))
    diffs = []
    for column, want in narrow.items():
        have = stored[column]
        if column.endswith("_on") and isinstance(want, str):
            want = date.fromisoformat(want)
        elif column == "funds_on":
            want = [date.fromisoformat(d) for d in want]
        if have != want:
            diffs.append(f"{column}: stored {have!r}, log {want!r}")
    record = _records([stored["record_text"]])[0] if stored["record_text"] else None
    if record != expected.record:
        diffs.append("record differs" if record is not None else "record missing")
    return [Difference(pid, valid_from, "different", "; ".join(diffs))] if diffs else []


def status(conn: Connection) -> dict[str, Any]:
    """The projection's position, the log's, the lag in events, and the size of the store."""
    row = conn.execute(
        text(
            f"SELECT p.seq, p.updated_at, ({_LOG_SEQ_SQL}) AS log_seq,"
            " (SELECT count(*) FROM rm_project_version) AS versions,"
            " (SELECT count(DISTINCT project_id) FROM rm_project_version WHERE valid_to = DATE '9999-12-31') AS projects"
            " FROM rm_position p WHERE p.projection = :p"
        ),
        {"p": PROJECTION},
    ).one()
    lag = int(conn.execute(text("SELECT count(*) FROM event_log WHERE seq > :s"), {"s": row.seq}).scalar_one())
    return {
        "projection": PROJECTION,
        "seq": int(row.seq),
        "log_seq": int(row.log_seq),
        "lag_events": lag,
        "updated_at": row.updated_at.isoformat(),
        "versions": int(row.versions),
        "open_projects": int(row.projects),
    }


# --- readers -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Reading:
    """What a reader at a horizon re-folds itself, and the position the rest is read at."""

    at: int
    touched: list[str]
    states: dict[str, ProjectState]


def current_version(conn: Connection) -> tuple[int, datetime] | None:
    """(position, updated_at) of the read models when they are current with the log, else None.

    Current means the log's newest event is the position: every event up to it was committed when
    the projector settled it (``read_models.settled_seq``) and the log is append-only, so every
    answer at any horizon stays the same until the log grows or the models are rebuilt (which
    moves ``updated_at``). Holds the position ``FOR SHARE`` for the caller's transaction, as readers do.
    """
    row = conn.execute(
        text(
            f"SELECT p.seq, p.updated_at, ({_LOG_SEQ_SQL}) AS log_seq"
            " FROM rm_position p WHERE p.projection = :p FOR SHARE OF p"
        ),
        {"p": PROJECTION},
    ).one_or_none()
    if row is None or row.seq != row.log_seq:
        return None
    return int(row.seq), row.updated_at


def _read(conn: Connection, horizon: Horizon) -> _Reading:
    at = position(conn, lock="FOR SHARE")
    clause, params = horizon_clause(horizon)
    params["at"] = at
    # Appended after the position and seen at the horizon.
    filters = [f"seq > :at AND {clause}"]
    if horizon.known_at is not None:
        # In the projection (it knows everything up to its position) but not yet known at the horizon.
        filters.append(f"seq <= :at AND {OCCURRED} AND {NOT_YET_KNOWN}")
    touched: set[str] = set()
    for event_filter in filters:
        touched |= _projects_of(conn, event_filter, params)
    ordered = sorted(touched)
    evs = [e for e in project_events(conn, ordered) if horizon.sees(e)]
    wanted = set(ordered)
    with gc_paused():
        states = {pid: s for pid, s in fold(evs).items() if pid in wanted}
    return _Reading(at, ordered, states)


_VALID_ON = "v.valid_from <= :d AND v.valid_to > :d"
# The same versions in two parts the planner can answer from indexes: the open versions (the state
# from its last change on, which is "today" for nearly every project: the partial index
# rm_project_version_open) and the closed ones still valid on :d (few, unless :d lies in the past).
_VALID_ON_PARTS = (
    "v.valid_to = DATE '9999-12-31' AND v.valid_from <= :d",
    "v.valid_to > :d AND v.valid_to < DATE '9999-12-31' AND v.valid_from <= :d",
)
_COUNTED = "v.merged_into IS NULL"  # a merged duplicate counts as its kept project only (events.kpis)
_IN_UNIT = "(CAST(:unit AS text) IS NULL OR v.unit = :unit)"  # one responsible unit (a unit officer's view), or all
_UNTOUCHED = "LEFT JOIN unnest(CAST(:touched AS text[])) AS t(pid) ON t.pid = v.project_id"


def _untouched_records(conn: Connection, horizon: Horizon, reading: _Reading) -> Iterator[dict[str, Any]]:
    """The stored state records valid on the horizon's day of every project the reading did not re-fold."""
    texts = conn.execute(
        text(
            f"SELECT r.record::text FROM rm_project_version v {_UNTOUCHED}"
            " JOIN rm_project_record r ON r.project_id = v.project_id AND r.valid_from = v.valid_from"
            f" WHERE t.pid IS NULL AND {_VALID_ON}"
        ),
        {"d": horizon.as_of, "touched": reading.touched},
    ).scalars()
    batch: list[str] = []
    for t in texts:  # one JSON array per batch decodes faster than a loads per record
        batch.append(t)
        if len(batch) == 50_000:
            yield from _records(batch)
            batch = []
    yield from _records(batch)


def states_at(conn: Connection, horizon: Horizon) -> dict[str, ProjectState]:
    """Every project's state at the horizon, by project id (ordered), from the read model."""
    reading = _read(conn, horizon)
    out: dict[str, ProjectState] = dict(reading.states)
    with gc_paused():
        for record in _untouched_records(conn, horizon, reading):
            out[record["project_id"]] = state_from_record(record)
    return dict(sorted(out.items()))


def rows_at(conn: Connection, horizon: Horizon) -> list[dict[str, Any]]:
    """The replay rows (``ProjectState.to_row``) of every project at the horizon, ordered by project id."""
    reading = _read(conn, horizon)
    rows = [s.to_row(horizon.as_of) for s in reading.states.values()]
    with gc_paused():
        rows.extend(row_from_record(r, horizon.as_of) for r in _untouched_records(conn, horizon, reading))
    rows.sort(key=lambda r: r["project_id"])
    return rows


_STALLED = "(v.reached BETWEEN 1 AND 3 AND v.cancelled_on IS NULL AND v.last_change_on <= :stalled_by)"


def _in(column: str) -> str:
    return f"(v.{column} BETWEEN :lo AND :hi)"


# Most versions have no arrival in the period: the array test skips the unnest and its aggregate for
# them (it is evaluated for the filter and again for the sum: 2/5 of a flow statement's time).
_FLOW_FUNDS = (
    "CASE WHEN :lo <= ANY(v.funds_on) THEN coalesce((SELECT sum(a) FROM unnest(v.funds_on, v.funds_cny_wan) AS f(d, a)"
    " WHERE d BETWEEN :lo AND :hi), 0) ELSE 0 END"
)


def _kpi_sql(mode: KpiMode, by: KpiGroup | None) -> str:
    key = f"coalesce(nullif(v.{by.value}, ''), :unassigned)" if by is not None else "''"
    if mode is KpiMode.COHORT:
        sums = (
            "count(*) AS signed, count(*) FILTER (WHERE v.reached >= 2) AS landed,"
            " count(*) FILTER (WHERE v.reached >= 3) AS started, count(*) FILTER (WHERE v.reached >= 4) AS produced,"
            " count(*) FILTER (WHERE v.cancelled_on IS NOT NULL) AS cancelled,"
            " coalesce(sum(v.investment_wan), 0) AS investment_wan, coalesce(sum(v.funds_wan), 0) AS funds_wan,"
            f" count(*) FILTER (WHERE {_STALLED}) AS stalled"
        )
        # In the two parts of _VALID_ON_PARTS: the open versions of the projects signed in the period
        # are read from their index alone (rm_project_version_open covers every column summed here).
        valid = " UNION ALL ".join(
            f"SELECT * FROM rm_project_version v WHERE {part} AND {_COUNTED} AND {_IN_UNIT} AND {_in('signed_on')}" for part in _VALID_ON_PARTS
        )
        return f"SELECT {key} AS key, {sums} FROM ({valid}) v {_UNTOUCHED} WHERE t.pid IS NULL GROUP BY 1"
    # flow: each stage entry within [lo, hi]; a project counts where it contributes anything
    per_row = (
        f"SELECT {key} AS key, {_in('signed_on')} AS s, {_in('landed_on')} AS l, {_in('started_on')} AS st,"
        f" {_in('produced_on')} AS p, {_in('cancelled_on')} AS c, v.investment_wan AS inv, {_FLOW_FUNDS} AS f,"
        f" {_STALLED} AS stall FROM rm_project_version v {_UNTOUCHED} WHERE t.pid IS NULL AND {_VALID_ON} AND {_COUNTED} AND {_IN_UNIT}"
    )
    return (
        "SELECT key, count(*) FILTER (WHERE s) AS signed, count(*) FILTER (WHERE l) AS landed,"
        " count(*) FILTER (WHERE st) AS started, count(*) FILTER (WHERE p) AS produced,"
        " count(*) FILTER (WHERE c) AS cancelled, coalesce(sum(inv) FILTER (WHERE s), 0) AS investment_wan,"
        " coalesce(sum(f), 0) AS funds_wan, count(*) FILTER (WHERE stall) AS stalled"
        f" FROM ({per_row}) x WHERE s OR l OR st OR p OR c OR f <> 0 OR stall GROUP BY 1"
    )


def kpis_at(
    conn: Connection,
    *,
    date_from: date,
    date_to: date,
    as_of: date | None = None,
    known_at: datetime | None = None,
    mode: KpiMode | str = KpiMode.COHORT,
    by: KpiGroup | str | None = None,
    unit: str | None = None,
) -> dict[str, Any]:
    """``events.kpis.compute_kpis`` over the states at (as_of, known_at), summed in the warehouse;
    ``unit``: only the projects of that responsible unit (a unit officer's view)."""
    day, kpi_mode, group = kpi_arguments(date_from, date_to, as_of, mode, by)
    horizon = Horizon(day, known_at)
    reading = _read(conn, horizon)
    states = [s for s in reading.states.values() if unit is None or s.unit == unit]
    total, groups = accumulate_kpis(states, date_from=date_from, date_to=date_to, as_of=day, mode=kpi_mode, by=group)
    rows = conn.execute(
        text(_kpi_sql(kpi_mode, group)),
        {
            "d": day,
            "lo": date_from,
            "hi": date_to,
            "stalled_by": months_before(day, STALLED_AFTER_MONTHS),
            "touched": reading.touched,
            "unassigned": UNASSIGNED,
            "unit": unit,
        },
    ).mappings()
    for row in rows:
        sums = {k: float(v) for k, v in row.items() if k != "key"}
        add_sums(total, sums)
        if group is not None:
            add_sums(groups.setdefault(row["key"], zero_sums()), sums)
    return finish_kpis(total, groups, group)


@dataclass(frozen=True, slots=True)
class ProjectAt:
    """One project at a horizon: its state (None before anything is known of it) and the events the
    horizon sees, in the fold's order (retractions included, so a correction shows as one)."""

    state: ProjectState | None
    events: list[Event]


def project_at(conn: Connection, project_id: str, horizon: Horizon) -> ProjectAt:
    """One project's state and history at the horizon, from its own events (an index look-up, no scan)."""
    seen = [e for e in project_events(conn, [project_id]) if horizon.sees(e)]
    state = fold(seen).get(project_id)
    return ProjectAt(state, sorted(seen, key=Event.sort_key))


class Follower:
    """The projector following the log beside a long-running writer (``zhaoshang stream``): a
    process that brings the read models up to the log every ``every_s`` seconds while there is lag.

    A process of its own, so the writer keeps its interpreter to itself (a thread shared its lock),
    at a lower CPU priority (``FOLLOWER_NICENESS``): on a busy machine the writer's appends come
    first and the models lag, then catch up when it is quiet (answers are exact meanwhile). It can
    afford to be put aside because the server takes and releases the advisory lock of
    :func:`settled_seq` in one query string: no append ever waits on this process. Its own
    connections; that lock orders it with the appends. A failed round is logged and retried at the
    next one (answers stay exact while the models lag); whatever is left is caught up by the
    writer's last refresh.
    """

    def __init__(self, engine: Engine, every_s: float) -> None:
        self.every_s = every_s
        spawn = multiprocessing.get_context("spawn")  # no fork of a process holding connections and threads
        self.stop = spawn.Event()
        self._rounds = spawn.Value("i", 0)
        url = engine.url.render_as_string(hide_password=False)
        as_app = event.contains(engine, "connect", assume_app_role)
        self.process = spawn.Process(
            target=_follow, args=(url, as_app, every_s, self.stop, self._rounds, os.getpid()), name="read-model-follower", daemon=True
        )

    @property
    def rounds(self) -> int:
        """Rounds that moved the position."""
        return int(self._rounds.value)

    def __enter__(self) -> Follower:
        if self.every_s > 0:
            self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.process.pid is not None:
            self.process.join()


def _follow(url: str, as_app: bool, every_s: float, stop: Any, rounds: Any, writer_pid: int) -> None:
    """The follower process: a refresh every ``every_s`` seconds until ``stop`` is set or the writer is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the writer stops it (an interrupt reaches the whole group)
    os.nice(FOLLOWER_NICENESS)
    engine = make_engine(url, as_app=as_app)
    try:
        while not stop.wait(every_s) and os.getppid() == writer_pid:  # a killed writer leaves no orphan behind
            try:
                done = refresh(engine)
            except Exception:  # the writer goes on; the next round or the final refresh catches up
                log.exception("read models: a follow round failed")
                continue
            if done.to_seq > done.from_seq:
                with rounds.get_lock():
                    rounds.value += 1
    finally:
        engine.dispose()
