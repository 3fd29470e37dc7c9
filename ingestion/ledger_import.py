"""Importing a ledger: read it, diff it against the log, write the events (warehouse or Kafka),
and check that the warehouse now says what the ledger says."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from events.model import Event, wire_json
from events.projection import fold
from events.store import AppendResult, Horizon, Incoming
from ingestion.ledger import LedgerProject, LedgerTable, Mapping, ledger_totals, read_ledger, series_name
from ingestion.ledger_events import LedgerPlan, plan_ledger
from warehouse.event_store import append_validated
from warehouse.ledger_log import load_ledger_scope, lock_ledger_imports

log = logging.getLogger(__name__)

TOTAL_KEYS = ("signed", "landed", "started", "produced", "cancelled", "investment_wan", "funds_wan")


class LedgerPlanChanged(ValueError):
    """The log changed between a preview and its confirmation: the events would differ from those shown."""


def plan_digest(plan: LedgerPlan) -> str:
    """SHA-256 of the planned events (their wire JSON, in order): what a preview showed, to confirm exactly that."""
    digest = hashlib.sha256()
    for e in plan.events:
        digest.update(_wire_text(e).encode())
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(slots=True)
class LedgerImport:
    table: LedgerTable
    as_of: date
    as_of_from: str  # option, title, file name, today
    plan: LedgerPlan
    append: AppendResult | None = None  # when written to the warehouse
    published: dict[str, Any] | None = None  # when sent to Kafka
    reconcile: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    series: str = ""

    def totals_row_mismatches(self) -> list[dict[str, Any]]:
        """Where the ledger's own 合计 row disagrees with the sum of its project rows."""
        t = self.table
        out = []
        for key, stated in t.stated_totals.items():
            rows_sum = round(sum(getattr(p, key) or 0.0 for p in t.projects), 4)
            if abs(stated - rows_sum) > 1e-4:
                out.append({"row": t.skipped["total"][0], "field": key, "stated": stated, "rows_sum": rows_sum})
        return out

    def as_dict(self) -> dict[str, Any]:
        t = self.table
        return {
            "source": t.source,
            "series": self.series,
            "title": t.title,
            "header_row": t.header_row,
            "as_of": self.as_of.isoformat(),
            "as_of_from": self.as_of_from,
            "columns": {c.field: c.header for c in t.columns},
            "unmapped_headers": t.unmapped,
            "rows": {
                "read": t.rows_read,
                "projects": len(t.projects),
                "skipped": t.skipped_count,
                "rejected": len(t.rejected),
            },
            "skipped": t.skipped,
            "rejected": [{"row": n.row, "reason": n.message} for n in t.rejected],
            "warnings": [{"row": n.row, "message": n.message} for n in t.warnings],
            "events": {"planned": len(self.plan.events), "by_type": self.plan.events_by_type()},
            "changes": self.plan.counts(),
            "unchanged_projects": self.plan.unchanged_projects,
            "details": [c.as_dict() for c in self.plan.changes],
            "append": None if self.append is None else {**self.append.as_dict(), "reasons": self.append.reasons},
            "published": self.published,
            "reconcile": self.reconcile,
            "stated_totals": t.stated_totals,
            "totals_row_mismatches": self.totals_row_mismatches(),
            "notes": self.notes,
        }


def resolve_as_of(table: LedgerTable, file_name: str, as_of: date | None, today: date | None) -> tuple[date, str]:
    """--as-of, else a date in the title, else one in the file name, else ``today`` (the caller's clock)."""
    from ingestion.ledger import LedgerError, date_in_text

    if as_of is not None:
        return as_of, "option"
    in_title = date_in_text(table.title)
    if in_title is not None:
        return in_title, "title"
    in_name = date_in_text(file_name)
    if in_name is not None:
        return in_name, "file name"
    if today is None:
        raise LedgerError(f"{file_name}: no date in the title or the file name; give the ledger's date (--as-of)")
    return today, "today"


def warehouse_totals(events: Sequence[Event], project_ids: set[str], as_of: date) -> dict[str, float]:
    """The same totals as :func:`ledger_totals`, from the log folded as of the ledger's date."""
    horizon = Horizon(as_of)
    states = fold(e for e in events if horizon.sees(e))
    ours = [s for pid, s in states.items() if pid in project_ids]
    return {
        "signed": sum(1 for s in ours if s.signed_on),
        "landed": sum(1 for s in ours if s.landed_on),
        "started": sum(1 for s in ours if s.started_on),
        "produced": sum(1 for s in ours if s.produced_on),
        "cancelled": sum(1 for s in ours if s.cancelled_on),
        "investment_wan": round(sum(s.investment_wan for s in ours if s.signed_on), 4),
        "funds_wan": round(sum(s.funds_wan for s in ours), 4),
    }


def reconcile(projects: Sequence[LedgerProject], events: Sequence[Event], as_of: date) -> dict[str, Any]:
    ledger = ledger_totals(projects)
    held = warehouse_totals(events, {p.project_id for p in projects}, as_of)
    diffs = [k for k in TOTAL_KEYS if abs(float(ledger[k]) - float(held[k])) > 1e-4]
    return {"ledger": ledger, "warehouse": held, "mismatches": diffs}


def import_ledger(
    engine: Engine,
    path: Path,
    *,
    sheet: str | None = None,
    as_of: date | None = None,
    today: date | None = None,
    mapping: Mapping | None = None,
    publish: tuple[str, str] | None = None,
    dry_run: bool = False,
    series: str | None = None,
    recorded_by: str | None = None,
    expect_plan: str | None = None,
) -> LedgerImport:
    """Read ``path``, diff it against the log and write the events.

    Into the warehouse in one transaction (``append_validated``), or with ``publish=(bootstrap,
    topic)`` to Kafka. ``dry_run`` plans and reports only. ``series`` names the ledger whose
    successive months these are (default: its title without the date, see :func:`series_name`).
    ``recorded_by`` (e.g. ``web:planner1``) is added to each event's ``source_position``: the
    ``source`` stays ``ledger:{series}``, which later months of the ledger look for.
    ``expect_plan``: the :func:`plan_digest` a preview showed; when the events to write differ (the
    log changed since), :class:`LedgerPlanChanged` is raised and nothing is written (an empty plan
    writes nothing anyway: confirming twice adds nothing). Raises :class:`ingestion.ledger.LedgerError`
    for an unreadable ledger and :class:`ingestion.ledger_events.LedgerOrderError` for one older
    than a ledger already imported.
    """
    table = read_ledger(path, sheet=sheet, mapping=mapping)
    day, day_from = resolve_as_of(table, path.stem, as_of, today)
    ids = [p.project_id for p in table.projects]
    series = series or series_name(table.title, path.stem)
    source = f"ledger:{series}"
    rows_by_project = {p.project_id: p.row for p in table.projects}
    with engine.begin() as conn:
        lock_ledger_imports(conn)
        existing, earlier = load_ledger_scope(conn, ids, source)
        plan = plan_ledger(table.projects, existing, day, earlier_projects=earlier)
        result = LedgerImport(table, day, day_from, plan, series=series)
        if dry_run:
            result.notes.append("dry run: nothing written")
            return result
        if expect_plan is not None and plan.events and plan_digest(plan) != expect_plan:
            raise LedgerPlanChanged(
                f"the log changed since the preview: {len(plan.events)} events would be written, not those shown · 数据已变化，请重新预览"
            )
        if publish is None:
            batch = [
                (e, Incoming(_wire_text(e), source, _position(table.source, rows_by_project.get(e.project_id), day, recorded_by)))
                for e in plan.events
            ]
            result.append = append_validated(conn, batch)
            log.info(
                "ledger %s as of %s: %d events planned", path.name, day, len(plan.events),
                extra={"ledger": str(path), "as_of": str(day), "series": series, **result.append.as_dict()},
            )
    if publish is not None:
        from ingestion.kafka_stream import publish_records

        bootstrap, topic = publish
        result.published = publish_records(bootstrap, topic, [e.to_wire() for e in plan.events])
        result.notes.append("published to Kafka: the warehouse shows them once the sink has consumed the topic")
        return result
    with engine.connect() as conn:
        after, _ = load_ledger_scope(conn, ids, source)
    result.reconcile = reconcile(table.projects, after, day)
    return result


def _wire_text(e: Event) -> str:
    return wire_json(e.to_wire())


def _position(where: str, row: int | None, as_of: date, recorded_by: str | None = None) -> str:
    text = f"{where} row {row} as of {as_of.isoformat()}" if row is not None else f"{where} as of {as_of.isoformat()}"
    return f"{text} by {recorded_by}" if recorded_by else text
