"""重复签约 duplicate projects: candidates for a planner, merges and their retraction, as events.

The same project is often "signed" again at a later promotion event (推介会) under a slightly
different name. A candidate pair has the same investor (compared without spaces, brackets and
punctuation), a similar name, the same industry (or one unknown), amounts within
:data:`AMOUNT_TOLERANCE` and signing dates within :data:`SIGNED_WITHIN_DAYS`. A planner's merge is a
``merged`` event on the duplicate (``payload.into`` the kept project); KPIs count the kept one only;
retracting the merge event undoes it. Nothing is overwritten.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from difflib import SequenceMatcher
from itertools import combinations
from typing import Any

import orjson
from sqlalchemy import Connection, text

from events.model import SHANGHAI, EventType
from events.projection import active_events
from events.store import AppendResult, Incoming
from warehouse.event_store import append_raw
from warehouse.read_models import project_events

NAME_SIMILARITY = 0.6  # difflib ratio of the names without common suffixes
AMOUNT_TOLERANCE = 0.3  # |a - b| / max(a, b)
SIGNED_WITHIN_DAYS = 400
_NAME_NOISE = ("项目", "建设", "一期", "二期", "新建", "年产")


class MergeError(ValueError):
    """A merge that may not be made (names the projects and the reason)."""


@dataclass(frozen=True, slots=True)
class Signed:
    project_id: str
    name: str
    investor: str
    industry: str | None
    unit: str | None
    channel: str | None
    investment_wan: float
    signed_on: date | None
    confidential: bool


@dataclass(frozen=True, slots=True)
class Candidate:
    keep: Signed  # the earlier registration
    duplicate: Signed
    score: float
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (zh, en)


_NORMAL_INVESTOR = r"regexp_replace(lower(v.investor), '[[:space:]()（）·.,，、\-]', '', 'g')"

_CANDIDATE_ROWS = f"""
WITH named AS (
    SELECT v.project_id, v.valid_from, v.signed_on, v.investment_wan, v.industry, v.unit, v.channel, v.confidential,
           v.name, v.investor, {_NORMAL_INVESTOR} AS investor_key
    FROM rm_project_version v
    WHERE v.valid_from <= :d AND v.valid_to > :d AND v.merged_into IS NULL AND v.cancelled_on IS NULL AND v.signed_on IS NOT NULL
      AND (CAST(:unit AS text) IS NULL OR v.unit = :unit) AND coalesce(v.investor, '') <> ''
)
SELECT * FROM named WHERE investor_key IN (SELECT investor_key FROM named GROUP BY 1 HAVING count(*) > 1)
ORDER BY investor_key, signed_on, project_id
"""


def _core(name: str) -> str:
    for noise in _NAME_NOISE:
        name = name.replace(noise, "")
    return "".join(name.split())


def _pair(a: Signed, b: Signed) -> Candidate | None:
    keep, dup = (a, b) if (a.signed_on or date.max, a.project_id) <= (b.signed_on or date.max, b.project_id) else (b, a)
    similarity = SequenceMatcher(None, _core(a.name), _core(b.name)).ratio()
    if similarity < NAME_SIMILARITY:
        return None
    if a.industry and b.industry and a.industry != b.industry:
        return None
    top = max(a.investment_wan, b.investment_wan)
    spread = abs(a.investment_wan - b.investment_wan) / top if top > 0 else 0.0
    if spread > AMOUNT_TOLERANCE:
        return None
    days = abs((a.signed_on - b.signed_on).days) if a.signed_on and b.signed_on else 0
    if days > SIGNED_WITHIN_DAYS:
        return None
    reasons = [
        ("同一投资方", "same investor"),
        (f"名称相似度 {similarity:.0%}", f"names {similarity:.0%} alike"),
        (f"投资额相差 {spread:.0%}", f"amounts {spread:.0%} apart"),
        (f"签约相隔 {days} 天", f"signed {days} days apart"),
    ]
    if a.channel and b.channel and a.channel != b.channel:
        reasons.append((f"在两次活动签约:{keep.channel} / {dup.channel}", f"signed at two events: {keep.channel} / {dup.channel}"))
    score = round(similarity * (1 - spread) * (1 - days / (SIGNED_WITHIN_DAYS * 2)), 4)
    return Candidate(keep, dup, score, reasons)


def candidates(conn: Connection, as_of: date, *, unit: str | None = None, limit: int = 200) -> list[Candidate]:
    """Candidate duplicate pairs among the projects open on ``as_of`` (from the read models), best first."""
    rows = conn.execute(text(_CANDIDATE_ROWS), {"d": as_of, "unit": unit}).all()
    groups: dict[str, list[Signed]] = {}
    for r in rows:
        groups.setdefault(r.investor_key, []).append(
            Signed(r.project_id, r.name or r.project_id, r.investor, r.industry, r.unit, r.channel, float(r.investment_wan), r.signed_on, r.confidential)
        )
    found = [c for group in groups.values() for a, b in combinations(group, 2) if (c := _pair(a, b)) is not None]
    return sorted(found, key=lambda c: (-c.score, c.duplicate.project_id))[:limit]


def _append_one(conn: Connection, wire: dict[str, Any], source: str) -> AppendResult:
    result = append_raw(conn, [Incoming(orjson.dumps(wire), source, wire["event_id"])])
    if result.accepted != 1:
        raise MergeError(f"event {wire['event_id']} refused: {'; '.join(result.reasons) or 'a duplicate'}")
    return result


def _noon(day: date) -> str:
    return datetime(day.year, day.month, day.day, 12, tzinfo=SHANGHAI).isoformat()


def merge(conn: Connection, *, duplicate: str, into: str, on: date, reason: str, by: str) -> str:
    """Append the ``merged`` event of ``duplicate`` into ``into``; returns its event id."""
    if duplicate == into:
        raise MergeError(f"project {duplicate!r} cannot be merged into itself")
    known = set(conn.execute(text("SELECT DISTINCT project_id FROM event_log WHERE project_id IN (:a, :b)"), {"a": duplicate, "b": into}).scalars())
    missing = {duplicate, into} - known
    if missing:
        raise MergeError(f"no such project in the log: {', '.join(sorted(missing))}")
    if into in active_merges(conn, [into]):
        raise MergeError(f"project {into!r} is itself merged into another: merge into that one")
    event_id = f"merge-{uuid.uuid4().hex[:16]}"
    wire = {
        "event_id": event_id, "project_id": duplicate, "type": "merged", "occurred_at": _noon(on),
        "payload": {"into": into, "reason": reason or "重复签约 duplicate signing", "merged_by": by},
    }
    _append_one(conn, wire, by)
    return event_id


def unmerge(conn: Connection, *, merge_event_id: str, on: date, reason: str, by: str) -> str:
    """Retract a merge event (the projects count separately again); returns the retraction's id."""
    row = conn.execute(text("SELECT project_id, type FROM event_log WHERE event_id = :e"), {"e": merge_event_id}).first()
    if row is None or row.type != "merged":
        raise MergeError(f"{merge_event_id!r} is not a merge event")
    event_id = f"unmerge-{uuid.uuid4().hex[:16]}"
    wire = {
        "event_id": event_id, "project_id": row.project_id, "type": "retracted", "occurred_at": _noon(on),
        "payload": {"event_id": merge_event_id, "reason": reason or "撤销合并 merge withdrawn", "retracted_by": by},
    }
    _append_one(conn, wire, by)
    return event_id


@dataclass(frozen=True, slots=True)
class Merge:
    event_id: str
    duplicate: str
    into: str
    reason: str
    recorded_at: datetime | None
    source: str


def active_merges(conn: Connection, project_ids: list[str] | None = None) -> dict[str, Merge]:
    """duplicate project → its merge in force (retraction chains resolved), known now."""
    if project_ids is None:
        project_ids = list(conn.execute(text("SELECT DISTINCT project_id FROM event_log WHERE type = 'merged'")).scalars())
    if not project_ids:
        return {}
    events = project_events(conn, project_ids)
    sources: dict[str, str] = dict(conn.execute(text("SELECT event_id, source FROM event_log WHERE type = 'merged' AND project_id = ANY(:p)"), {"p": project_ids}).all())
    out: dict[str, Merge] = {}
    for e in sorted(active_events(events), key=lambda e: e.sort_key()):
        if e.type is EventType.MERGED:
            out[e.project_id] = Merge(e.event_id, e.project_id, str(e.payload["into"]), str(e.payload.get("reason", "")), e.recorded_at, sources.get(e.event_id, ""))
    return out
