"""进度上报 progress reports: every SQL statement of the report → sign-off → event workflow.

A report waits as ``pending``; :func:`approve` appends its lifecycle event (``recorded_by``,
``approved_by``, the evidence hashes in the payload; ``source`` the approver) and marks the report
in one transaction, so an approved report always has its event and a crash leaves neither.
:func:`reject` keeps the reason and appends nothing: no figure changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, text

from events.model import SHANGHAI
from events.store import Incoming
from warehouse.event_store import append_raw
from warehouse.uploads import Upload

KINDS = ("landed", "started", "produced", "funds_arrived", "cancelled")
STATUSES = ("pending", "approved", "rejected")


class ReportError(ValueError):
    """A report that cannot be made or decided as asked (names the report and the reason)."""


@dataclass(frozen=True, slots=True)
class Evidence:
    upload_id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Report:
    report_id: int
    project_id: str
    unit: str | None
    kind: str
    occurred_on: date
    payload: dict[str, Any]
    note: str
    evidence: list[Evidence]
    reported_by: str
    reported_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    event_id: str | None


def evidence_of(upload: Upload) -> Evidence:
    return Evidence(upload.upload_id, upload.filename, upload.content_type, upload.size_bytes, upload.sha256)


def create_report(
    conn: Connection,
    *,
    project_id: str,
    unit: str | None,
    kind: str,
    occurred_on: date,
    payload: dict[str, Any],
    note: str,
    evidence: list[Evidence],
    reported_by: str,
) -> int:
    if kind not in KINDS:
        raise ReportError(f"project {project_id!r}: {kind!r} is not a reportable stage ({', '.join(KINDS)})")
    report_id = conn.execute(
        text(
            "INSERT INTO progress_report (project_id, unit, kind, occurred_on, payload, note, evidence_ids, evidence_sha256, reported_by)"
            " VALUES (:pid, :unit, :kind, :on, CAST(:payload AS jsonb), :note, :ids, :hashes, :by) RETURNING report_id"
        ),
        {
            "pid": project_id,
            "unit": unit,
            "kind": kind,
            "on": occurred_on,
            "payload": orjson.dumps(payload).decode(),
            "note": note,
            "ids": [e.upload_id for e in evidence],
            "hashes": [e.sha256 for e in evidence],
            "by": reported_by,
        },
    ).scalar_one()
    return int(report_id)


_REPORT_SQL = """
SELECT r.*, coalesce(
    (SELECT json_agg(json_build_object('upload_id', u.upload_id, 'filename', u.filename, 'content_type', u.content_type,
                                       'size_bytes', u.size_bytes, 'sha256', u.sha256) ORDER BY u.upload_id)
     FROM web_upload u WHERE u.upload_id = ANY(r.evidence_ids)), '[]') AS evidence_files
FROM progress_report r
"""


def _report(row: Any) -> Report:
    evidence = [Evidence(**e) for e in row.evidence_files]
    return Report(
        row.report_id, row.project_id, row.unit, row.kind, row.occurred_on, dict(row.payload), row.note, evidence,
        row.reported_by, row.reported_at, row.status, row.decided_by, row.decided_at, row.reason, row.event_id,
    )


def get_report(conn: Connection, report_id: int, *, lock: bool = False) -> Report | None:
    sql = _REPORT_SQL + " WHERE r.report_id = :id" + (" FOR UPDATE OF r" if lock else "")
    row = conn.execute(text(sql), {"id": report_id}).first()
    return _report(row) if row else None


def list_reports(
    conn: Connection, *, unit: str | None = None, status: str | None = None, project_id: str | None = None, limit: int = 200
) -> list[Report]:
    """Reports newest first; ``unit`` limits to one responsible unit (a unit officer's queue)."""
    where: list[str] = ["true"]
    params: dict[str, Any] = {"limit": limit}
    if unit is not None:
        where.append("r.unit = :unit")
        params["unit"] = unit
    if status is not None:
        where.append("r.status = :status")
        params["status"] = status
    if project_id is not None:
        where.append("r.project_id = :pid")
        params["pid"] = project_id
    rows = conn.execute(text(_REPORT_SQL + f" WHERE {' AND '.join(where)} ORDER BY r.report_id DESC LIMIT :limit"), params).all()
    return [_report(r) for r in rows]


def pending_count(conn: Connection, unit: str | None = None) -> int:
    sql = "SELECT count(*) FROM progress_report WHERE status = 'pending'" + (" AND unit = :unit" if unit is not None else "")
    return int(conn.execute(text(sql), {"unit": unit}).scalar_one())


def evidence_file(conn: Connection, report_id: int, upload_id: int) -> tuple[str, str, bytes] | None:
    """(file name, content type, bytes) of one evidence file of a report (None if not that report's)."""
    row = conn.execute(
        text(
            "SELECT u.filename, u.content_type, u.content FROM progress_report r JOIN web_upload u ON u.upload_id = ANY(r.evidence_ids)"
            " WHERE r.report_id = :r AND u.upload_id = :u"
        ),
        {"r": report_id, "u": upload_id},
    ).first()
    return (row.filename, row.content_type, bytes(row.content)) if row else None


def report_event(report: Report, approved_by: str) -> dict[str, Any]:
    """The lifecycle event an approved report becomes (wire format), its id derived from the report."""
    payload = {
        **report.payload,
        "recorded_by": report.reported_by,
        "approved_by": approved_by,
        "evidence_sha256": [e.sha256 for e in report.evidence],
        "progress_report_id": report.report_id,
    }
    if report.note:
        payload["note"] = report.note
    occurred = datetime(report.occurred_on.year, report.occurred_on.month, report.occurred_on.day, 12, tzinfo=SHANGHAI)
    return {
        "event_id": f"progress-report-{report.report_id}",
        "project_id": report.project_id,
        "type": report.kind,
        "occurred_at": occurred.isoformat(),
        "payload": payload,
    }


def approve(conn: Connection, report_id: int, *, approved_by: str) -> Report:
    """Append the report's event and mark it approved (the caller's transaction holds both)."""
    report = get_report(conn, report_id, lock=True)
    if report is None:
        raise ReportError(f"report {report_id} does not exist")
    if report.status != "pending":
        raise ReportError(f"report {report_id} is already {report.status}")
    if report.reported_by == approved_by:
        raise ReportError(f"report {report_id}: the one who reported it may not approve it (four eyes)")
    wire = report_event(report, approved_by)
    result = append_raw(conn, [Incoming(orjson.dumps(wire), approved_by, f"progress_report:{report_id}")])
    if result.accepted + result.duplicates != 1:
        reasons = "; ".join(result.reasons[:3])
        raise ReportError(f"report {report_id}: its event was refused ({reasons or 'see the dead letters'})")
    conn.execute(
        text("UPDATE progress_report SET status = 'approved', decided_by = :by, decided_at = now(), event_id = :e WHERE report_id = :id"),
        {"by": approved_by, "e": wire["event_id"], "id": report_id},
    )
    decided = get_report(conn, report_id)
    assert decided is not None
    return decided


def reject(conn: Connection, report_id: int, *, rejected_by: str, reason: str) -> Report:
    """Mark the report rejected with the reason shown to the officer; nothing is appended."""
    if not reason.strip():
        raise ReportError(f"report {report_id}: a rejection needs a reason the officer can act on")
    report = get_report(conn, report_id, lock=True)
    if report is None:
        raise ReportError(f"report {report_id} does not exist")
    if report.status != "pending":
        raise ReportError(f"report {report_id} is already {report.status}")
    conn.execute(
        text("UPDATE progress_report SET status = 'rejected', decided_by = :by, decided_at = now(), reason = :r WHERE report_id = :id"),
        {"by": rejected_by, "r": reason.strip(), "id": report_id},
    )
    decided = get_report(conn, report_id)
    assert decided is not None
    return decided
