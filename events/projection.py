"""The lifecycle state machine and the fold from an event history to project states.

Projections are functions of the log: the same set of events gives the same states whatever
order they arrived in, because events are applied in ``Event.sort_key`` order (business time).
A well-formed event that contradicts its project's history is kept and reported as an
:class:`Anomaly`; it never disappears silently.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from events.calendar import months_before
from events.disclosure import is_confidential
from events.model import FUNNEL, FUNNEL_RANK, Event, EventType, Stage, local_date

STALLED_AFTER_MONTHS = 6


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A well-formed event that does not fit its project's history. ``code`` is stable for scripts."""

    code: str
    event_id: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail} (event {self.event_id})"


@dataclass(frozen=True, slots=True)
class Funds:
    """One arrival of capital: ``amount_wan`` in 万元 (CNY) or 万美元 (USD)."""

    arrived_on: date
    amount_wan: float
    currency: str


@dataclass(frozen=True, slots=True)
class SiteTake:
    """What a ``landed`` event takes: a parcel and/or factory, land in 亩, floor space in m²."""

    event_id: str
    landed_on: date
    parcel_id: str | None
    factory_id: str | None
    land_area_mu: float | None
    floor_area_m2: float | None
    location: tuple[float, float] | None  # (lon, lat) CGCS2000, from the signed event


@dataclass(slots=True)
class ProjectState:
    project_id: str
    name: str | None = None
    investor: str | None = None
    industry: str | None = None
    unit: str | None = None
    channel: str | None = None
    investment_wan: float = 0.0
    foreign: bool = False
    foreign_usd_wan: float | None = None
    confidential: bool = False  # events.disclosure.is_confidential over every signed event known
    location: tuple[float, float] | None = None
    intended_parcel_id: str | None = None
    reached: int = 0  # 0 none, 1 signed, 2 landed, 3 started, 4 produced
    signed_on: date | None = None
    landed_on: date | None = None
    started_on: date | None = None
    produced_on: date | None = None
    cancelled_on: date | None = None
    cancel_reason: str | None = None
    last_change_on: date | None = None
    funds: list[Funds] = field(default_factory=list)
    sites: list[SiteTake] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    merged_into: str | None = None  # 重复签约: a duplicate of that project; KPIs and land count the kept one only
    _signed_seen: bool = False

    @property
    def stage(self) -> Stage:
        if self.cancelled_on is not None:
            return Stage.CANCELLED
        return FUNNEL[self.reached - 1] if self.reached else Stage.NONE

    @property
    def funds_wan(self) -> float:
        """CNY funds in place, 万元."""
        return sum(f.amount_wan for f in self.funds if f.currency == "CNY")

    @property
    def funds_usd_wan(self) -> float:
        """Foreign funds in place, 万美元."""
        return sum(f.amount_wan for f in self.funds if f.currency == "USD")

    def stage_dates(self) -> dict[str, date | None]:
        return {
            "signed_on": self.signed_on,
            "landed_on": self.landed_on,
            "started_on": self.started_on,
            "produced_on": self.produced_on,
            "cancelled_on": self.cancelled_on,
        }

    def is_stalled(self, as_of: date) -> bool:
        """停滞: signed, neither cancelled nor produced, and no stage change for 6 months up to ``as_of``."""
        if self.cancelled_on is not None or self.reached in (0, 4) or self.last_change_on is None:
            return False
        return self.last_change_on <= months_before(as_of, STALLED_AFTER_MONTHS)

    def to_row(self, as_of: date) -> dict[str, Any]:
        """The replay row: JSON-ready, dates as ISO strings."""
        row: dict[str, Any] = {
            "project_id": self.project_id,
            "name": self.name,
            "stage": self.stage.value,
        }
        row.update({k: (v.isoformat() if v else None) for k, v in self.stage_dates().items()})
        row.update(
            {
                "investment_wan": round(self.investment_wan, 4),
                "funds_wan": round(self.funds_wan, 4),
                "funds_usd_wan": round(self.funds_usd_wan, 4),
                "unit": self.unit,
                "industry": self.industry,
                "channel": self.channel,
                "investor": self.investor,
                "confidential": self.confidential,
                "stalled": self.is_stalled(as_of),
                "anomalies": [str(a) for a in self.anomalies],
                "merged_into": self.merged_into,
            }
        )
        return row


def active_events(events: Iterable[Event]) -> list[Event]:
    """Drop retracted events. A retraction that is itself retracted no longer withdraws its target."""
    evs = list(events)
    retractions = {e.event_id: e.payload["event_id"] for e in evs if e.type is EventType.RETRACTED}
    memo: dict[str, bool] = {}

    def is_active_retraction(rid: str, seen: frozenset[str]) -> bool:
        if rid in memo:
            return memo[rid]
        if rid in seen:  # a cycle of retractions: let each stand
            return True
        retractors = by_target.get(rid, ())
        withdrawn = any(is_active_retraction(r, seen | {rid}) for r in retractors)
        memo[rid] = not withdrawn
        return memo[rid]

    by_target: dict[str, list[str]] = defaultdict(list)
    for rid, target in retractions.items():
        by_target[target].append(rid)
    withdrawn_ids = {target for rid, target in retractions.items() if is_active_retraction(rid, frozenset())}
    return [e for e in evs if e.event_id not in withdrawn_ids and e.type is not EventType.RETRACTED]


def _apply_signed(state: ProjectState, ev: Event, on: date) -> None:
    if state._signed_seen:
        state.anomalies.append(Anomaly("duplicate_signed", ev.event_id, f"signed again on {on}"))
        return
    p = ev.payload
    state._signed_seen = True
    state.name = p.get("name")
    state.investor = p.get("investor")
    state.industry = p.get("industry")
    state.unit = p.get("unit")
    state.channel = p.get("channel")
    state.investment_wan = float(p.get("investment_wan") or 0.0)
    state.foreign = bool(p.get("foreign", False))
    state.foreign_usd_wan = p.get("foreign_usd_wan")
    loc = p.get("location")
    state.location = (float(loc["lon"]), float(loc["lat"])) if loc else None
    state.intended_parcel_id = p.get("parcel_id")
    state.signed_on = on
    if state.reached == 0:
        state.reached = 1
        state.last_change_on = on


def _funnel_step_refused(state: ProjectState, ev: Event, on: date, rank: int) -> bool:
    """Record the anomalies of a landed/started/produced event; True when it must not move the funnel."""
    t = ev.type
    if state.cancelled_on is not None:
        state.anomalies.append(Anomaly(f"{t.value}_after_cancelled", ev.event_id, f"{t.value} on {on} after cancellation on {state.cancelled_on}"))
        return True
    if not state._signed_seen:
        state.anomalies.append(Anomaly(f"{t.value}_before_signed", ev.event_id, f"{t.value} on {on} before any signing"))
    if rank <= state.reached:
        code = f"duplicate_{t.value}" if rank == state.reached else f"{t.value}_after_{FUNNEL[state.reached - 1].value}"
        state.anomalies.append(Anomaly(code, ev.event_id, f"{t.value} on {on} but the project is already {state.stage.value}"))
        return True
    if rank > state.reached + 1 and state._signed_seen:
        skipped = ", ".join(s.value for s in FUNNEL[state.reached : rank - 1])
        state.anomalies.append(Anomaly("skipped_stage", ev.event_id, f"{t.value} on {on} without {skipped}"))
    return False


def _apply_funnel_step(state: ProjectState, ev: Event, on: date) -> None:
    """landed, started or produced: the funnel moves forward only."""
    rank = FUNNEL_RANK[ev.type.value]
    if _funnel_step_refused(state, ev, on, rank):
        return
    state.reached = rank
    state.last_change_on = on
    if ev.type is EventType.LANDED:
        p = ev.payload
        state.landed_on = on
        state.sites.append(
            SiteTake(
                event_id=ev.event_id,
                landed_on=on,
                parcel_id=p.get("parcel_id"),
                factory_id=p.get("factory_id"),
                land_area_mu=p.get("land_area_mu"),
                floor_area_m2=p.get("floor_area_m2"),
                location=state.location,
            )
        )
    elif ev.type is EventType.STARTED:
        state.started_on = on
    else:
        state.produced_on = on


def _apply_cancelled(state: ProjectState, ev: Event, on: date) -> None:
    if state.cancelled_on is not None:
        state.anomalies.append(Anomaly("duplicate_cancelled", ev.event_id, f"cancelled again on {on}"))
        return
    if state.reached == 4:
        state.anomalies.append(Anomaly("cancelled_after_produced", ev.event_id, f"cancelled on {on} after production on {state.produced_on}"))
        return
    if not state._signed_seen:
        state.anomalies.append(Anomaly("cancelled_before_signed", ev.event_id, f"cancelled on {on} before any signing"))
    state.cancelled_on = on
    state.cancel_reason = ev.payload.get("reason")
    state.last_change_on = on


def _apply_funds(state: ProjectState, ev: Event, on: date) -> None:
    if not state._signed_seen:
        state.anomalies.append(Anomaly("funds_before_signed", ev.event_id, f"funds on {on} before any signing"))
    p = ev.payload
    state.funds.append(Funds(on, float(p["amount_wan"]), p.get("currency", "CNY")))


# What each event type does to its project's state (``retracted`` is resolved before the fold).
_APPLY: dict[EventType, Callable[[ProjectState, Event, date], None]] = {
    EventType.SIGNED: _apply_signed,
    EventType.LANDED: _apply_funnel_step,
    EventType.STARTED: _apply_funnel_step,
    EventType.PRODUCED: _apply_funnel_step,
    EventType.CANCELLED: _apply_cancelled,
    EventType.FUNDS_ARRIVED: _apply_funds,
}


def _apply(state: ProjectState, ev: Event) -> None:
    apply_event(state, ev, local_date(ev.occurred_at))


def apply_event(state: ProjectState, ev: Event, on: date) -> None:
    """One step of the fold: an active (not withdrawn) event that occurred on the local day ``on``."""
    apply_type = _APPLY.get(ev.type)
    if apply_type is not None:
        apply_type(state, ev, on)


def fold_project(project_id: str, events: Iterable[Event], *, retracted_signed: Iterable[Event] = ()) -> ProjectState:
    """Fold one project's (already de-retracted) events into its state.

    ``retracted_signed``: its withdrawn ``signed`` events, which still count for confidentiality
    (``events.disclosure``).
    """
    state = ProjectState(project_id=project_id)
    evs = sorted(events, key=Event.sort_key)
    for ev in evs:
        _apply(state, ev)
    withdrawn = list(retracted_signed)
    state.confidential = is_confidential([*evs, *withdrawn], {e.event_id for e in withdrawn})
    return state


def merge_targets(active: Iterable[Event]) -> dict[str, str]:
    """project → the project it is a duplicate of, from the active ``merged`` events (the latest in
    the fold's order wins). A merge changes no lifecycle date: it says which record to count."""
    merges = sorted((e for e in active if e.type is EventType.MERGED), key=Event.sort_key)
    return {e.project_id: str(e.payload["into"]) for e in merges}


def fold(events: Iterable[Event]) -> dict[str, ProjectState]:
    """Fold a whole history (retractions included) into one state per project."""
    evs = list(events)
    active = active_events(evs)
    active_ids = {e.event_id for e in active}
    merged = merge_targets(active)
    by_project: dict[str, list[Event]] = defaultdict(list)
    for ev in active:
        if ev.type is not EventType.MERGED:  # a merge alone makes no project
            by_project[ev.project_id].append(ev)
    withdrawn: dict[str, list[Event]] = defaultdict(list)
    for ev in evs:
        if ev.type is EventType.SIGNED and ev.event_id not in active_ids:
            withdrawn[ev.project_id].append(ev)
    # A project whose every event was withdrawn has no state, whatever its secret.
    states = {pid: fold_project(pid, evs, retracted_signed=withdrawn.get(pid, ())) for pid, evs in sorted(by_project.items())}
    for pid, into in merged.items():
        if pid in states:
            states[pid].merged_into = into
    return states


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


# The keys of a state record, in the order state_record writes them: a store may keep a record as
# the list of its values (warehouse.read_models keeps a million of them) and rebuild it from this.
RECORD_FIELDS = (
    "project_id", "name", "investor", "industry", "unit", "channel", "investment_wan", "foreign",
    "foreign_usd_wan", "confidential", "location", "intended_parcel_id", "reached", "signed_on",
    "landed_on", "started_on", "produced_on", "cancelled_on", "cancel_reason", "last_change_on",
    "funds", "sites", "anomalies", "merged_into", "signed_seen",
)  # fmt: skip


def state_record(state: ProjectState) -> dict[str, Any]:
    """Everything a :class:`ProjectState` holds, JSON-ready (dates as ISO strings): what a read model
    stores, so :func:`state_from_record` gives back an equal state without the events."""
    # Spelled out field by field: the projector builds one record per version (a million of them).
    loc = state.location
    return {
        "project_id": state.project_id,
        "name": state.name,
        "investor": state.investor,
        "industry": state.industry,
        "unit": state.unit,
        "channel": state.channel,
        "investment_wan": state.investment_wan,
        "foreign": state.foreign,
        "foreign_usd_wan": state.foreign_usd_wan,
        "confidential": state.confidential,
        "location": [loc[0], loc[1]] if loc else None,
        "intended_parcel_id": state.intended_parcel_id,
        "reached": state.reached,
        "signed_on": state.signed_on.isoformat() if state.signed_on else None,
        "landed_on": state.landed_on.isoformat() if state.landed_on else None,
        "started_on": state.started_on.isoformat() if state.started_on else None,
        "produced_on": state.produced_on.isoformat() if state.produced_on else None,
        "cancelled_on": state.cancelled_on.isoformat() if state.cancelled_on else None,
        "cancel_reason": state.cancel_reason,
        "last_change_on": state.last_change_on.isoformat() if state.last_change_on else None,
        "funds": [[f.arrived_on.isoformat(), f.amount_wan, f.currency] for f in state.funds] if state.funds else [],
        "sites": [
            [s.event_id, s.landed_on.isoformat(), s.parcel_id, s.factory_id, s.land_area_mu, s.floor_area_m2, list(s.location) if s.location else None]
            for s in state.sites
        ]
        if state.sites
        else [],
        "anomalies": [[a.code, a.event_id, a.detail] for a in state.anomalies] if state.anomalies else [],
        "merged_into": state.merged_into,
        "signed_seen": state._signed_seen,
    }


def state_from_record(record: dict[str, Any]) -> ProjectState:
    """The inverse of :func:`state_record`."""
    loc = record["location"]
    state = ProjectState(
        project_id=record["project_id"],
        name=record["name"],
        investor=record["investor"],
        industry=record["industry"],
        unit=record["unit"],
        channel=record["channel"],
        investment_wan=record["investment_wan"],
        foreign=record["foreign"],
        foreign_usd_wan=record["foreign_usd_wan"],
        confidential=record["confidential"],
        location=(loc[0], loc[1]) if loc else None,
        intended_parcel_id=record["intended_parcel_id"],
        reached=record["reached"],
        signed_on=_day(record["signed_on"]),
        landed_on=_day(record["landed_on"]),
        started_on=_day(record["started_on"]),
        produced_on=_day(record["produced_on"]),
        cancelled_on=_day(record["cancelled_on"]),
        cancel_reason=record["cancel_reason"],
        last_change_on=_day(record["last_change_on"]),
        funds=[Funds(date.fromisoformat(d), amount, currency) for d, amount, currency in record["funds"]],
        sites=[
            SiteTake(eid, date.fromisoformat(on), parcel, factory, land, floor, (site_loc[0], site_loc[1]) if site_loc else None)
            for eid, on, parcel, factory, land, floor, site_loc in record["sites"]
        ],
        anomalies=[Anomaly(code, eid, detail) for code, eid, detail in record["anomalies"]],
        merged_into=record.get("merged_into"),
    )
    state._signed_seen = record["signed_seen"]
    return state


def row_from_record(record: dict[str, Any], as_of: date) -> dict[str, Any]:
    """``state_from_record(record).to_row(as_of)``, without building the state (a replay of every project)."""
    cancelled = record["cancelled_on"]
    reached = record["reached"]
    stage = Stage.CANCELLED if cancelled else (FUNNEL[reached - 1] if reached else Stage.NONE)
    cny = usd = 0.0
    for _, amount, currency in record["funds"]:
        if currency == "CNY":
            cny += amount
        elif currency == "USD":
            usd += amount
    last = record["last_change_on"]
    stalled = (
        cancelled is None and reached not in (0, 4) and last is not None and date.fromisoformat(last) <= months_before(as_of, STALLED_AFTER_MONTHS)
    )
    return {
        "project_id": record["project_id"],
        "name": record["name"],
        "stage": stage.value,
        "signed_on": record["signed_on"],
        "landed_on": record["landed_on"],
        "started_on": record["started_on"],
        "produced_on": record["produced_on"],
        "cancelled_on": cancelled,
        "investment_wan": round(record["investment_wan"], 4),
        "funds_wan": round(cny, 4),
        "funds_usd_wan": round(usd, 4),
        "unit": record["unit"],
        "industry": record["industry"],
        "channel": record["channel"],
        "investor": record["investor"],
        "confidential": record["confidential"],
        "stalled": stalled,
        "anomalies": [f"{code}: {detail} (event {eid})" for code, eid, detail in record["anomalies"]],
        "merged_into": record.get("merged_into"),
    }
