"""进度上报 progress reports: an officer reports a stage, funds or a cancellation with evidence; a planner
approves (the event is appended) or rejects (with a reason the officer sees).

Who may do what: a ``unit`` officer reports on the projects of their unit and sees their unit's
queue; ``planner``/``admin`` report on any project and decide, but never on their own report; a
``leader`` reads the queue. Evidence is checked by content and size before anything is stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy import Connection

from events.model import STAGE_LABELS
from events.store import Horizon
from warehouse import progress, read_models
from warehouse.progress import Report, ReportError
from warehouse.uploads import UploadError, check_upload, store_upload
from web.security import Bureau, CsrfChecked, Principal, Reader, Writer, engine_of, require_unit
from web.templating import page

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["progress reports"])

KIND_LABELS: dict[str, tuple[str, str]] = {
    "landed": STAGE_LABELS["landed"],
    "started": STAGE_LABELS["started"],
    "produced": STAGE_LABELS["produced"],
    "funds_arrived": ("到位资金", "Funds arrived"),
    "cancelled": STAGE_LABELS["cancelled"],
}
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "pending": ("待审核", "Pending"),
    "approved": ("已通过", "Approved"),
    "rejected": ("已退回", "Rejected"),
}
MAX_FILES = 10
EVIDENCE_KINDS = ("pdf", "png", "jpeg")  # 营业执照, 投资协议, 用地合同 and bank vouchers arrive as scans or PDFs


def _project_unit(conn: Connection, project_id: str, today: date) -> tuple[str | None, str]:
    """(unit, name) of a project known today; 404 when the log knows no such project."""
    found = read_models.project_at(conn, project_id, Horizon(today))
    if found.state is None:
        raise HTTPException(404, f"project {project_id!r} is not in the log")
    return found.state.unit, found.state.name or project_id


def _payload(kind: str, amount_wan: float | None, currency: str, reason: str, land_area_mu: float | None) -> dict[str, Any]:
    if kind == "funds_arrived":
        if amount_wan is None or amount_wan <= 0:
            raise ReportError("到位资金需填写金额 · funds arrived needs an amount (万元 or 万美元) above 0")
        return {"amount_wan": amount_wan, "currency": currency}
    if kind == "cancelled":
        return {"reason": reason} if reason else {}
    if kind == "landed" and land_area_mu is not None:
        return {"land_area_mu": land_area_mu}
    return {}


async def _read_evidence(request: Request, files: list[UploadFile]) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each evidence file, each checked by content and size (:class:`UploadError` names the file)."""
    limit = request.app.state.config.upload_max_bytes
    chosen = [f for f in files if f.filename]
    if not chosen:
        raise UploadError("请附上证明材料(营业执照、投资协议、用地合同或银行凭证) · attach evidence (PDF, JPEG or PNG)", 422)
    if len(chosen) > MAX_FILES:
        raise UploadError(f"最多 {MAX_FILES} 个文件 · at most {MAX_FILES} files", 422)
    read: list[tuple[str, bytes]] = []
    for upload in chosen:
        content = await upload.read(limit + 1)  # one byte over tells "too large" without reading it all
        name = upload.filename or "file"
        try:
            check_upload(content, max_bytes=limit, allowed=EVIDENCE_KINDS)
        except UploadError as exc:
            raise UploadError(f"{name}: {exc}", exc.status) from None
        read.append((name, content))
    return read


def _file_report(
    request: Request, principal: Principal, project_id: str, kind: str, occurred_on: date, payload: dict[str, Any], note: str,
    files: list[tuple[str, bytes]],
) -> int:
    today = request.app.state.config.today()
    if occurred_on > today:
        raise ReportError(f"日期 {occurred_on} 晚于今天 · the date lies after today ({today})")
    with engine_of(request).begin() as conn:
        unit, _name = _project_unit(conn, project_id, today)
        require_unit(principal, unit)
        limit = request.app.state.config.upload_max_bytes
        evidence = [
            progress.evidence_of(
                store_upload(conn, content, filename=name, purpose="evidence", uploaded_by=principal.name, max_bytes=limit, allowed=EVIDENCE_KINDS)
            )
            for name, content in files
        ]
        return progress.create_report(
            conn, project_id=project_id, unit=unit, kind=kind, occurred_on=occurred_on, payload=payload, note=note,
            evidence=evidence, reported_by=principal.name,
        )


def _visible(principal: Principal, report: Report) -> None:
    require_unit(principal, report.unit)


# --- pages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportForm:
    """What an officer reports (the page's form and the API's multipart body)."""

    kind: str
    occurred_on: date
    evidence: list[UploadFile]
    amount_wan: float | None
    currency: str
    land_area_mu: float | None
    reason: str
    note: str


def report_fields(
    kind: Annotated[str, Form(pattern="^(landed|started|produced|funds_arrived|cancelled)$")],
    occurred_on: Annotated[date, Form()],
    evidence: Annotated[list[UploadFile], File()],
    amount_wan: Annotated[float | None, Form(ge=0, le=1e8)] = None,
    currency: Annotated[str, Form(pattern="^(CNY|USD)$")] = "CNY",
    land_area_mu: Annotated[float | None, Form(ge=0, le=1e6)] = None,
    reason: Annotated[str, Form(max_length=500)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> ReportForm:
    return ReportForm(kind, occurred_on, evidence, amount_wan, currency, land_area_mu, reason, note)


ReportFields = Annotated[ReportForm, Depends(report_fields)]


async def _submit(request: Request, principal: Principal, project_id: str, form: ReportForm) -> int:
    """Check the evidence, build the payload, file the report; :class:`UploadError` / :class:`ReportError` say why not."""
    files = await _read_evidence(request, form.evidence)
    payload = _payload(form.kind, form.amount_wan, form.currency, form.reason.strip(), form.land_area_mu)
    return _file_report(request, principal, project_id, form.kind, form.occurred_on, payload, form.note.strip(), files)


def _form_page(
    request: Request, principal: Principal, project_id: str, *, status_code: int = 200, error: str = "", form: dict[str, Any] | None = None
) -> Response:
    """The report form of a project the principal may act on, with the project's earlier reports."""
    with engine_of(request).connect() as conn:
        unit, name = _project_unit(conn, project_id, request.app.state.config.today())
        require_unit(principal, unit)
        history = progress.list_reports(conn, project_id=project_id, limit=50)
    return page(
        request, "progress/form.html", status_code=status_code, project_id=project_id, project_name=name, unit=unit,
        kinds=KIND_LABELS, statuses=STATUS_LABELS, reports=history, error=error, form=form or {},
    )  # fmt: skip


@router.get("/projects/{project_id}/report")
def report_form(request: Request, project_id: str, principal: Writer) -> Response:
    return _form_page(request, principal, project_id)


@router.post("/projects/{project_id}/report", dependencies=[CsrfChecked])
async def report_submit(request: Request, project_id: str, principal: Writer, form: ReportFields) -> Response:
    try:
        report_id = await _submit(request, principal, project_id, form)
    except (UploadError, ReportError) as exc:
        shown = {"kind": form.kind, "occurred_on": form.occurred_on.isoformat(), "amount_wan": form.amount_wan, "reason": form.reason, "note": form.note}
        status = exc.status if isinstance(exc, UploadError) else 422
        return _form_page(request, principal, project_id, status_code=status, error=str(exc), form=shown)
    return RedirectResponse(f"/reports?done={report_id}", status_code=303)


@router.get("/reports")
def report_queue(request: Request, principal: Reader, status: str | None = None, done: int | None = None) -> Response:
    status = status if status in progress.STATUSES else None
    with engine_of(request).connect() as conn:
        reports = progress.list_reports(conn, unit=principal.unit_scope, status=status)
        pending = progress.pending_count(conn, principal.unit_scope)
    return page(
        request, "progress/queue.html", reports=reports, pending=pending, status=status, kinds=KIND_LABELS,
        statuses=STATUS_LABELS, done=done, may_decide=principal.role in ("admin", "planner"),
    )


def _decide(request: Request, principal: Principal, report_id: int, approve: bool, reason: str) -> Report:
    with engine_of(request).begin() as conn:
        if approve:
            decided = progress.approve(conn, report_id, approved_by=principal.name)
        else:
            decided = progress.reject(conn, report_id, rejected_by=principal.name, reason=reason)
    if approve:
        read_models.refresh(engine_of(request))
    return decided


@router.post("/reports/{report_id}/approve", dependencies=[CsrfChecked])
def approve_page(request: Request, report_id: int, principal: Bureau) -> Response:
    try:
        _decide(request, principal, report_id, True, "")
    except ReportError as exc:
        raise HTTPException(409, str(exc)) from None
    return RedirectResponse(f"/reports?done={report_id}", status_code=303)


@router.post("/reports/{report_id}/reject", dependencies=[CsrfChecked])
def reject_page(request: Request, report_id: int, principal: Bureau, reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    try:
        _decide(request, principal, report_id, False, reason)
    except ReportError as exc:
        raise HTTPException(422, str(exc)) from None
    return RedirectResponse(f"/reports?done={report_id}", status_code=303)


@router.get("/reports/{report_id}/evidence/{upload_id}")
def evidence_download(request: Request, report_id: int, upload_id: int, principal: Reader) -> Response:
    with engine_of(request).connect() as conn:
        report = progress.get_report(conn, report_id)
        if report is None:
            raise HTTPException(404, f"report {report_id} does not exist")
        _visible(principal, report)
        found = progress.evidence_file(conn, report_id, upload_id)
    if found is None:
        raise HTTPException(404, f"report {report_id} has no file {upload_id}")
    filename, content_type, content = found
    return Response(
        content, media_type=content_type,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}", "Cache-Control": "private, no-store"},
    )


# --- API ----------------------------------------------------------------------------------------


class EvidenceOut(BaseModel):
    upload_id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str


class ReportOut(BaseModel):
    report_id: int
    project_id: str
    unit: str | None
    kind: str
    occurred_on: date
    payload: dict[str, Any]
    note: str
    evidence: list[EvidenceOut]
    reported_by: str
    status: str
    decided_by: str | None
    reason: str | None
    event_id: str | None


def _out(report: Report) -> ReportOut:
    return ReportOut(
        report_id=report.report_id, project_id=report.project_id, unit=report.unit, kind=report.kind, occurred_on=report.occurred_on,
        payload=report.payload, note=report.note, evidence=[EvidenceOut(**asdict(e)) for e in report.evidence],
        reported_by=report.reported_by, status=report.status, decided_by=report.decided_by, reason=report.reason, event_id=report.event_id,
    )


@api.get("/reports", response_model=list[ReportOut], summary="Progress reports · 进度上报 (a unit officer: their unit's)")
def api_reports(
    request: Request, principal: Reader, status: Annotated[str | None, Query(pattern="^(pending|approved|rejected)$")] = None
) -> list[ReportOut]:
    with engine_of(request).connect() as conn:
        return [_out(r) for r in progress.list_reports(conn, unit=principal.unit_scope, status=status)]


@api.post("/projects/{project_id}/reports", response_model=ReportOut, status_code=201, dependencies=[CsrfChecked],
          summary="Report progress with evidence (multipart) · 上报进度")
async def api_report(request: Request, project_id: str, principal: Writer, form: ReportFields) -> ReportOut:
    try:
        report_id = await _submit(request, principal, project_id, form)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except ReportError as exc:
        raise HTTPException(422, str(exc)) from None
    with engine_of(request).connect() as conn:
        report = progress.get_report(conn, report_id)
    assert report is not None
    return _out(report)


class Decision(BaseModel):
    approve: bool
    reason: str = ""


@api.post("/reports/{report_id}/decision", response_model=ReportOut, dependencies=[CsrfChecked],
          summary="Approve (appends the event) or reject with a reason · 审核")
def api_decide(request: Request, report_id: int, decision: Decision, principal: Bureau) -> ReportOut:
    try:
        return _out(_decide(request, principal, report_id, decision.approve, decision.reason))
    except ReportError as exc:
        raise HTTPException(404 if "does not exist" in str(exc) else 409, str(exc)) from None
