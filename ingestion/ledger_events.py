"""A ledger's rows → the events that bring the log in line with them. Pure: no I/O.

A ledger is a snapshot: each month the bureau states every project's dates and its cumulative
到位资金. The log is a history. :func:`plan_ledger` compares the snapshot with the project's
*active* events (retractions applied) and yields only what changed:

- a date the log lacks → the stage event; a changed date (or changed 总投资/名称/…) → a
  ``retracted`` event for the old one and the corrected event; a date the ledger clears → a
  retraction, when an earlier ledger put it there (a fact from another source is kept and noted);
- more 到位资金 than the log holds → ``funds_arrived`` for the difference on the as-of date; less
  → noted, no event (capital is not taken back by a spreadsheet);
- 取消/终止 → ``cancelled`` with 取消原因 (dated 取消时间, else the as-of date);
- a project an earlier month of the ledger had and this one lacks → noted, never cancelled.

Event ids are functions of project, stage, date and content (``ledger:{project}:{stage}:{date}``
plus a short hash of the payload when there is one), so importing the same ledger twice, or
publishing it twice, adds nothing. Every event is recorded at the ledger's as-of date, so a replay
"as known at" the end of a month reproduces that month's ledger.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from events.model import SHANGHAI, Event, EventType, canonical_json, local_date
from events.projection import active_events, fold_project
from ingestion.ledger import FIELD_LABELS_ZH, LedgerProject, derive_project_id

LEDGER_PREFIX = "ledger:"
STAGE_FIELDS: tuple[tuple[EventType, str], ...] = (
    (EventType.SIGNED, "signed_on"),
    (EventType.LANDED, "landed_on"),
    (EventType.STARTED, "started_on"),
    (EventType.PRODUCED, "produced_on"),
    (EventType.CANCELLED, "cancelled_on"),
)
_AMOUNT_EPS = 1e-4  # 1 元: below it two amounts in 万元 are the same


class LedgerOrderError(ValueError):
    """A ledger older than one already imported: importing it would undo the later corrections."""


@dataclass(frozen=True, slots=True)
class Change:
    """One thing the import did or noticed. ``kind`` is stable for scripts:
    new, corrected, cleared, reinstated, funds, funds_decrease, kept, missing, future."""

    project_id: str
    row: int | None
    kind: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"project_id": self.project_id, "row": self.row, "kind": self.kind, "detail": self.detail}


@dataclass(slots=True)
class LedgerPlan:
    as_of: date
    recorded_at: datetime
    events: list[Event] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    unchanged_projects: int = 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for c in self.changes:
            out[c.kind] += 1
        return dict(sorted(out.items()))

    def events_by_type(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for e in self.events:
            out[e.type.value] += 1
        return dict(sorted(out.items()))


def recorded_instant(as_of: date) -> datetime:
    """When a ledger's facts became known: the start of its as-of day (Asia/Shanghai)."""
    return datetime.combine(as_of, time(0), tzinfo=SHANGHAI)


def _instant(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def _payload_tag(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:8]


def stage_event_id(project_id: str, type_: EventType, day: date, payload: dict[str, Any]) -> str:
    base = f"{LEDGER_PREFIX}{project_id}:{type_.value}:{day.isoformat()}"
    return f"{base}:{_payload_tag(payload)}" if payload else base


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) and not isinstance(b, bool):
        return abs(float(a) - float(b)) < _AMOUNT_EPS
    return bool(a == b)


def _fmt_amount(x: float) -> str:
    return f"{x:,.4f}".rstrip("0").rstrip(".")


def wanted_payload(p: LedgerProject, type_: EventType) -> dict[str, Any]:
    """The payload fields the ledger states for a stage (only those it has a value for)."""
    if type_ is EventType.SIGNED:
        out: dict[str, Any] = {"name": p.name, "investment_wan": p.investment_wan}
        for key in ("investor", "industry", "unit", "channel"):
            value = getattr(p, key)
            if value is not None:
                out[key] = value
        if p.foreign_usd_wan is not None:
            out["foreign"] = True
            out["foreign_usd_wan"] = p.foreign_usd_wan
        if p.parcel_id is not None and p.landed_on is None:
            out["parcel_id"] = p.parcel_id  # the intended site, until the project lands on it
        return out
    if type_ is EventType.LANDED:
        return {"parcel_id": p.parcel_id} if p.parcel_id is not None else {}
    if type_ is EventType.CANCELLED:
        return {"reason": p.cancel_reason} if p.cancel_reason is not None else {}
    return {}


def _describe(type_: EventType, old: Event, new_day: date, want: dict[str, Any]) -> str:
    label = FIELD_LABELS_ZH.get(f"{type_.value}_on", type_.value)
    parts = []
    old_day = local_date(old.occurred_at)
    if old_day != new_day:
        parts.append(f"{label} {old_day} → {new_day}")
    for key, value in want.items():
        if not _same(old.payload.get(key), value):
            parts.append(f"{key} {old.payload.get(key)!r} → {value!r}")
    return "; ".join(parts) or label


class _Log:
    """The warehouse's events for the ledger's projects, indexed for the diff."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.all = list(events)
        self.by_id = {e.event_id: e for e in self.all}
        self.active = active_events(self.all)
        self.active_ids = {e.event_id for e in self.active}
        self.by_project: dict[str, list[Event]] = defaultdict(list)
        for e in self.active:
            self.by_project[e.project_id].append(e)
        self.retractions_of: dict[str, list[str]] = defaultdict(list)
        for e in self.all:
            if e.type is EventType.RETRACTED:
                self.retractions_of[e.payload["event_id"]].append(e.event_id)
        self._effective: dict[str, bool] = {}

    def effective_retraction(self, rid: str, seen: frozenset[str] = frozenset()) -> bool:
        """A retraction withdraws its target unless it is itself withdrawn (same rule as ``active_events``)."""
        if rid in self._effective:
            return self._effective[rid]
        if rid in seen:
            return True
        result = not any(self.effective_retraction(r, seen | {rid}) for r in self.retractions_of.get(rid, ()))
        self._effective[rid] = result
        return result


class _Planner:
    def __init__(self, log: _Log, as_of: date) -> None:
        self.log = log
        self.as_of = as_of
        self.recorded_at = recorded_instant(as_of)
        self.plan = LedgerPlan(as_of=as_of, recorded_at=self.recorded_at)
        self._emitted: set[str] = set()

    def emit(self, event_id: str, project_id: str, type_: EventType, day: date, payload: dict[str, Any]) -> None:
        if event_id in self._emitted:
            return
        self._emitted.add(event_id)
        self.plan.events.append(Event(event_id, project_id, type_, _instant(day), self.recorded_at, 1, payload))

    def retract(self, target: Event, reason: str) -> None:
        rid = f"{LEDGER_PREFIX}{target.project_id}:retracted:{target.event_id}@{self.as_of.isoformat()}"
        self.emit(rid, target.project_id, EventType.RETRACTED, self.as_of, {"event_id": target.event_id, "reason": reason})

    def put(self, p: LedgerProject, type_: EventType, day: date, payload: dict[str, Any]) -> bool:
        """Make the event (project, type, day, payload) active: append it, or undo what withdrew it.
        True when it was reinstated rather than appended."""
        eid = stage_event_id(p.project_id, type_, day, payload)
        if eid in self.log.active_ids:
            return False
        if eid in self.log.by_id:  # withdrawn by an earlier ledger and now stated again
            for rid in self.log.retractions_of.get(eid, ()):
                if self.log.effective_retraction(rid):
                    self.retract(self.log.by_id[rid], f"台账恢复 ledger as of {self.as_of} states {eid} again")
            self.plan.changes.append(Change(p.project_id, p.row, "reinstated", f"{type_.value} {day} stated again"))
            return True
        self.emit(eid, p.project_id, type_, day, payload)
        return False

    def stage(self, p: LedgerProject, type_: EventType, want_day: date | None) -> bool:
        """Reconcile one stage; True when something changed."""
        current = sorted((e for e in self.log.by_project.get(p.project_id, ()) if e.type is type_), key=Event.sort_key)
        label = FIELD_LABELS_ZH.get(f"{type_.value}_on", type_.value)
        if type_ is EventType.CANCELLED:
            if not p.cancelled:
                want_day = None
            elif want_day is None:  # no 取消时间: the log's date stands, else the as-of date
                want_day = local_date(current[0].occurred_at) if current else self.as_of
        if want_day is None:
            changed = False
            for e in current:
                day = local_date(e.occurred_at)
                if e.event_id.startswith(LEDGER_PREFIX):
                    self.retract(e, f"台账清空 ledger as of {self.as_of} clears {label} {day}")
                    self.plan.changes.append(Change(p.project_id, p.row, "cleared", f"{label} {day} cleared"))
                    changed = True
                else:
                    self.plan.changes.append(
                        Change(p.project_id, p.row, "kept", f"{label} {day} from {e.event_id} kept: the ledger leaves it blank")
                    )
            return changed
        want = wanted_payload(p, type_)
        matching = [
            e for e in current if local_date(e.occurred_at) == want_day and all(_same(e.payload.get(k), v) for k, v in want.items())
        ]
        if matching:
            keep = matching[0]
            changed = False
            for e in current:
                if e is not keep and e.event_id.startswith(LEDGER_PREFIX):
                    self.retract(e, f"台账更正 ledger as of {self.as_of}: {label} is {want_day}")
                    self.plan.changes.append(Change(p.project_id, p.row, "corrected", _describe(type_, e, want_day, want)))
                    changed = True
            return changed
        # Keep what the ledger does not state (a location, a confidential flag from another source).
        payload = {**(current[0].payload if current else {}), **want}
        reinstated = self.put(p, type_, want_day, payload)
        for e in current:
            self.retract(e, f"台账更正 ledger correction as of {self.as_of}: {_describe(type_, e, want_day, want)}")
        if current:
            self.plan.changes.append(Change(p.project_id, p.row, "corrected", _describe(type_, current[0], want_day, want)))
        elif not reinstated:
            self.plan.changes.append(Change(p.project_id, p.row, "new", f"{label} {want_day}"))
        if want_day > self.as_of:
            self.plan.changes.append(Change(p.project_id, p.row, "future", f"{label} {want_day} is after the ledger's date {self.as_of}"))
        return True

    def funds(self, p: LedgerProject, stated: float | None, currency: str) -> bool:
        if stated is None:
            return False
        held = sum(
            float(e.payload["amount_wan"])
            for e in self.log.by_project.get(p.project_id, ())
            if e.type is EventType.FUNDS_ARRIVED and e.payload.get("currency", "CNY") == currency
        )
        unit = "万元" if currency == "CNY" else "万美元"
        diff = round(stated - held, 4)
        if diff >= _AMOUNT_EPS:
            eid = f"{LEDGER_PREFIX}{p.project_id}:funds_arrived:{self.as_of.isoformat()}:{currency}:{_fmt_amount(stated)}"
            if eid in self.log.by_id:
                self.plan.changes.append(Change(p.project_id, p.row, "kept", f"{eid} is in the log but withdrawn: not re-sent"))
                return False
            payload: dict[str, Any] = {"amount_wan": diff}
            if currency != "CNY":
                payload["currency"] = currency
            self.emit(eid, p.project_id, EventType.FUNDS_ARRIVED, self.as_of, payload)
            self.plan.changes.append(
                Change(p.project_id, p.row, "funds", f"到位资金 {_fmt_amount(held)} → {_fmt_amount(stated)} {unit}: +{_fmt_amount(diff)}")
            )
            return True
        if diff <= -_AMOUNT_EPS:
            self.plan.changes.append(
                Change(
                    p.project_id,
                    p.row,
                    "funds_decrease",
                    f"到位资金 {_fmt_amount(stated)} {unit} is less than the {_fmt_amount(held)} already recorded: no event "
                    "(retract the wrong funds_arrived event if the earlier figure was wrong)",
                )
            )
        return False


def plan_ledger(
    projects: Sequence[LedgerProject], existing: Iterable[Event], as_of: date, *, earlier_projects: set[str] | None = None
) -> LedgerPlan:
    """The events that make the log say what the ledger says, and what the import noticed.

    ``existing`` is the warehouse's log (retractions included) for at least the ledger's projects
    and ``earlier_projects``, the projects earlier months of this ledger listed (default: every
    project with ledger events in ``existing``). Raises :class:`LedgerOrderError` when a later
    ledger was already imported for these projects.
    """
    log = _Log(existing)
    planner = _Planner(log, as_of)
    ours = {p.project_id for p in projects}
    later = [
        e.recorded_at
        for e in log.all
        if e.project_id in ours and e.event_id.startswith(LEDGER_PREFIX) and e.recorded_at is not None and e.recorded_at > planner.recorded_at
    ]
    if later:
        newest = local_date(max(later))
        raise LedgerOrderError(
            f"a later ledger (as of {newest}) was already imported for these projects; importing one as of {as_of} "
            f"would undo its corrections · 已导入更晚的台账({newest})，请按月份顺序导入"
        )
    for p in projects:
        changed = False
        for type_, attr in STAGE_FIELDS:
            changed |= planner.stage(p, type_, getattr(p, attr))
        changed |= planner.funds(p, p.funds_wan, "CNY")
        changed |= planner.funds(p, p.funds_usd_wan, "USD")
        if not changed:
            planner.plan.unchanged_projects += 1
    # Projects an earlier ledger put in the log that this one no longer lists.
    with_ledger_events = {e.project_id for e in log.active if e.event_id.startswith(LEDGER_PREFIX)}
    earlier = (with_ledger_events if earlier_projects is None else with_ledger_events & earlier_projects) - ours
    # A project listed without 项目编号 last month and with one now shows up under a new id.
    by_derived = {derive_project_id(p.name, p.investor): p for p in projects if p.id_from_ledger}
    for pid in sorted(earlier):
        state = fold_project(pid, log.by_project[pid])
        detail = f"{state.name or pid} ({state.stage.value}) is not in this ledger: reported, not cancelled"
        renamed = by_derived.get(pid)
        if renamed is not None:
            detail += f"; row {renamed.row} has the same 项目名称 + 投资方 under 项目编号 {renamed.project_id}"
        planner.plan.changes.append(Change(pid, None, "missing", detail))
    return planner.plan
