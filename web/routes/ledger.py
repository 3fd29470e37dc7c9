"""台账导入 ledger upload: an .xlsx/.csv ledger → a preview of exactly what it would change → confirm → the events.

The same code path as ``zhaoshang ledger import``: :func:`ingestion.ledger_import.import_ledger`,
first with ``dry_run=True`` (the preview), then for real on the stored bytes (the confirmation).
The file is kept in the warehouse (``web_upload``) so any web process can confirm what another
previewed; the confirmation carries the upload's SHA-256 and the digest of the previewed events,
and writes nothing when the log changed in between (preview again). Bureau roles only: a unit
officer's ledger would write events for other units' projects, which the ledger path does not limit.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path as FsPath
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, File, Form, HTTPException, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel

from events.model import STAGE_LABELS, EventType, local_date
from ingestion.ledger import FIELD_LABELS_ZH, LedgerError
from ingestion.ledger_events import LedgerOrderError
from ingestion.ledger_import import LedgerImport, LedgerPlanChanged, import_ledger, plan_digest
from warehouse import read_models
from warehouse.uploads import (
    LEDGER_KINDS,
    Upload,
    UploadError,
    check_upload,
    get_upload,
    safe_filename,
    store_upload,
)
from web.security import Bureau, CsrfChecked, Principal, engine_of
from web.templating import page

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["ledger"])

PURPOSE = "ledger"
MAX_ID = 2**63 - 1
SHA256_PATTERN = r"^[0-9a-f]{64}$"
DATE_PATTERN = r"^(\d{4}-\d{2}-\d{2})?$"

EVENT_TYPE_LABELS: dict[str, tuple[str, str]] = {
    **{t: STAGE_LABELS[t] for t in ("signed", "landed", "started", "produced", "cancelled")},
    "funds_arrived": ("资金到位", "Funds arrived"),
    "retracted": ("撤回", "Retracted"),
}
CHANGE_LABELS: dict[str, tuple[str, str]] = {
    "new": ("新增", "new"),
    "corrected": ("更正", "corrected"),
    "cleared": ("清空", "cleared"),
    "reinstated": ("恢复", "reinstated"),
    "funds": ("资金增加", "funds added"),
    "funds_decrease": ("资金减少", "funds decreased"),
    "kept": ("保留", "kept"),
    "missing": ("本期缺失", "missing"),
    "future": ("晚于台账日期", "after the ledger date"),
}
SKIP_LABELS: dict[str, tuple[str, str]] = {
    "blank": ("空行", "blank"),
    "total": ("合计行", "totals"),
    "section": ("分组行", "sections"),
    "note": ("注释行", "notes"),
    "header": ("重复表头", "repeated headers"),
    "repeat": ("重复项目行", "repeated project lines"),
}
TOTAL_LABELS: dict[str, tuple[str, str]] = {
    **{k: (STAGE_LABELS[k][0], STAGE_LABELS[k][1]) for k in ("signed", "landed", "started", "produced", "cancelled")},
    "investment_wan": ("总投资(万元)", "Investment (10k yuan)"),
    "funds_wan": ("到位资金(万元)", "Funds arrived (10k yuan)"),
}


# --- the report, as the CLI's --json prints it ----------------------------------------------------------


class RowCounts(BaseModel):
    read: int
    projects: int
    skipped: int
    rejected: int


class RowReason(BaseModel):
    row: int
    reason: str


class RowMessage(BaseModel):
    row: int
    message: str


class EventCounts(BaseModel):
    planned: int
    by_type: dict[str, int]


class ChangeOut(BaseModel):
    project_id: str
    row: int | None
    kind: str
    detail: str


class AppendOut(BaseModel):
    read: int
    accepted: int
    duplicates: int
    rejected: int
    reasons: list[str]


class ReconcileOut(BaseModel):
    ledger: dict[str, int | float]
    warehouse: dict[str, int | float]
    mismatches: list[str]


class TotalsMismatch(BaseModel):
    row: int
    field: str
    stated: int | float
    rows_sum: int | float


class LedgerReport(BaseModel):
    """What ``zhaoshang ledger import --json`` prints for the same file and options (with ``--dry-run`` for a preview)."""

    source: str
    series: str
    title: str
    header_row: int
    as_of: str
    as_of_from: str
    columns: dict[str, str]
    unmapped_headers: list[str]
    rows: RowCounts
    skipped: dict[str, list[int]]
    rejected: list[RowReason]
    warnings: list[RowMessage]
    events: EventCounts
    changes: dict[str, int]
    unchanged_projects: int
    details: list[ChangeOut]
    append: AppendOut | None
    published: dict[str, Any] | None
    reconcile: ReconcileOut | None
    stated_totals: dict[str, int | float]
    totals_row_mismatches: list[TotalsMismatch]
    notes: list[str]


def report_json(result: LedgerImport) -> dict[str, Any]:
    """``result.as_dict()`` through the CLI's JSON encoding (orjson, ``default=str``): the same values the CLI prints."""
    parsed: dict[str, Any] = orjson.loads(orjson.dumps(result.as_dict(), default=str, option=orjson.OPT_NON_STR_KEYS))
    return parsed


# --- running the import on uploaded bytes ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    as_of: date | None
    sheet: str | None

    @property
    def as_of_text(self) -> str:
        return self.as_of.isoformat() if self.as_of else ""


def parse_options(as_of: str, sheet: str) -> Options:
    day: date | None = None
    if as_of:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            raise HTTPException(422, f"截至日期无效 · as-of date {as_of!r} is not a date (YYYY-MM-DD)") from None
    return Options(day, sheet.strip() or None)


def ledger_file_name(filename: str | None, kind: str) -> str:
    """The name the import sees: the uploader's (its date and title name the ledger's month and series),
    with the suffix of what the bytes are."""
    name = safe_filename(filename, "ledger")
    stem, dot, suffix = name.rpartition(".")
    suffix = suffix.lower() if dot else ""
    if kind == "xlsx" and suffix not in ("xlsx", "xlsm"):
        return f"{stem if dot else name}.xlsx"
    if kind == "csv" and suffix not in ("csv", "txt", "tsv"):
        return f"{stem if dot else name}.csv"
    return name


def run_import(
    request: Request, data: bytes, filename: str | None, kind: str, options: Options, *, dry_run: bool,
    recorded_by: str | None = None, expect_plan: str | None = None,
) -> LedgerImport:  # fmt: skip
    """``import_ledger`` on ``data``, written to a private temporary folder under the uploader's file name."""
    with tempfile.TemporaryDirectory(prefix="zs-ledger-") as folder:
        path = FsPath(folder) / ledger_file_name(filename, kind)
        path.write_bytes(data)
        return import_ledger(
            engine_of(request), path, sheet=options.sheet, as_of=options.as_of, today=request.app.state.config.today(),
            dry_run=dry_run, recorded_by=recorded_by, expect_plan=expect_plan,
        )  # fmt: skip


class Refusal(Exception):
    """A request the page answers with an explanation rather than a result (its HTTP status and message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _refusal(exc: Exception) -> Refusal:
    if isinstance(exc, UploadError):
        return Refusal(exc.status, str(exc))
    if isinstance(exc, LedgerError | csv.Error):
        return Refusal(422, f"台账无法读取 · the ledger cannot be read: {exc}")
    if isinstance(exc, LedgerOrderError | LedgerPlanChanged):
        return Refusal(409, str(exc))
    raise exc


def preview_upload(request: Request, principal: Principal, data: bytes, filename: str | None, options: Options) -> tuple[Upload, LedgerImport]:
    """Check the file, plan its import (nothing written to the log), then keep the file for the confirmation."""
    max_bytes = request.app.state.config.upload_max_bytes
    try:
        kind = check_upload(data, max_bytes=max_bytes, allowed=LEDGER_KINDS)
        result = run_import(request, data, filename, kind, options, dry_run=True)
    except (UploadError, LedgerError, LedgerOrderError, csv.Error) as exc:  # csv.Error: a field over the csv module's limit
        raise _refusal(exc) from None
    with engine_of(request).begin() as conn:
        upload = store_upload(conn, data, filename=filename, purpose=PURPOSE, uploaded_by=principal.name, max_bytes=max_bytes, allowed=LEDGER_KINDS)
    return upload, result


def confirm_upload(
    request: Request, principal: Principal, upload_id: int, options: Options, *, sha256: str | None, plan: str | None
) -> tuple[Upload, LedgerImport]:
    """The real import of a stored upload (``source_position`` names who confirmed); the read models follow."""
    with engine_of(request).connect() as conn:
        upload = get_upload(conn, upload_id, purpose=PURPOSE)
    if upload is None:
        raise Refusal(404, f"没有编号为 {upload_id} 的台账上传 · no ledger upload {upload_id}")
    if sha256 is not None and sha256 != upload.sha256:
        raise Refusal(409, "文件校验值不符 · the upload's SHA-256 is not the one previewed")
    try:
        result = run_import(
            request, upload.content, upload.filename, upload.kind, options, dry_run=False,
            recorded_by=f"{principal.name} upload {upload.upload_id}", expect_plan=plan,
        )  # fmt: skip
    except (LedgerError, LedgerOrderError, LedgerPlanChanged, csv.Error) as exc:
        raise _refusal(exc) from None
    if result.append is not None:
        read_models.refresh(engine_of(request))
    return upload, result


# --- what the page shows ----------------------------------------------------------------------------------


def event_rows(result: LedgerImport) -> list[dict[str, Any]]:
    """The planned events with the ledger's project name and unit (retractions name what they withdraw)."""
    projects = {p.project_id: p for p in result.table.projects}
    rows = []
    for e in result.plan.events:
        p = projects.get(e.project_id)
        if e.type is EventType.FUNDS_ARRIVED:
            detail = f"{e.payload.get('amount_wan')} 万{'美元' if e.payload.get('currency') == 'USD' else '元'}"
        elif e.type is EventType.RETRACTED:
            detail = f"{e.payload.get('event_id', '')} · {e.payload.get('reason', '')}"
        elif e.type is EventType.SIGNED and e.payload.get("investment_wan") is not None:
            detail = f"总投资 {e.payload['investment_wan']} 万元"
        else:
            detail = ""
        rows.append(
            {
                "type": e.type.value,
                "label": EVENT_TYPE_LABELS.get(e.type.value, (e.type.value, e.type.value)),
                "project_id": e.project_id,
                "name": p.name if p else str(e.payload.get("name", "")),
                "unit": (p.unit if p else None) or str(e.payload.get("unit", "")),
                "row": p.row if p else None,
                "day": local_date(e.occurred_at).isoformat(),
                "detail": detail,
            }
        )
    return rows


def view(upload: Upload, result: LedgerImport, options: Options) -> dict[str, Any]:
    report = report_json(result)
    events = event_rows(result)
    return {
        "upload": upload,
        "options": options,
        "report": report,
        "plan_digest": plan_digest(result.plan),
        "new_events": [e for e in events if e["type"] != "retracted"],
        "retractions": [e for e in events if e["type"] == "retracted"],
        "funds_changes": [c for c in report["details"] if c["kind"] in ("funds", "funds_decrease")],
        "other_changes": [c for c in report["details"] if c["kind"] not in ("new", "funds", "funds_decrease")],
        "event_labels": EVENT_TYPE_LABELS,
        "change_labels": CHANGE_LABELS,
        "skip_labels": SKIP_LABELS,
        "total_labels": TOTAL_LABELS,
        "field_labels": FIELD_LABELS_ZH,
    }


def _render(request: Request, status_code: int = 200, **context: Any) -> Response:
    """The result panel alone for HTMX, else the whole page around it."""
    template = "ledger/_result.html" if request.headers.get("hx-request") else "ledger/upload.html"
    return page(request, template, status_code=status_code, **context)


# --- pages ------------------------------------------------------------------------------------------------

AsOfForm = Annotated[str, Form(max_length=10, pattern=DATE_PATTERN)]
SheetForm = Annotated[str, Form(max_length=100)]


@router.get("/ledger")
def ledger_page(request: Request, principal: Bureau) -> Response:
    return page(request, "ledger/upload.html", max_bytes=request.app.state.config.upload_max_bytes)


@router.post("/ledger/preview", dependencies=[CsrfChecked])
def ledger_preview(
    request: Request, principal: Bureau, file: Annotated[UploadFile, File()], as_of: AsOfForm = "", sheet: SheetForm = ""
) -> Response:
    max_bytes = request.app.state.config.upload_max_bytes
    options = parse_options(as_of, sheet)
    try:
        upload, result = preview_upload(request, principal, _read(file, max_bytes), file.filename, options)
    except Refusal as r:
        return _render(request, r.status, error=r.message, max_bytes=max_bytes, options=options)
    return _render(request, max_bytes=max_bytes, mode="preview", **view(upload, result, options))


@router.post("/ledger/confirm/{upload_id}", dependencies=[CsrfChecked])
def ledger_confirm(
    request: Request,
    principal: Bureau,
    upload_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    sha256: Annotated[str, Form(pattern=SHA256_PATTERN)],
    plan: Annotated[str, Form(pattern=SHA256_PATTERN)],
    as_of: AsOfForm = "",
    sheet: SheetForm = "",
) -> Response:
    max_bytes = request.app.state.config.upload_max_bytes
    options = parse_options(as_of, sheet)
    try:
        upload, result = confirm_upload(request, principal, upload_id, options, sha256=sha256, plan=plan)
    except Refusal as r:
        return _render(request, r.status, error=r.message, max_bytes=max_bytes, options=options)
    return _render(request, max_bytes=max_bytes, mode="imported", **view(upload, result, options))


def _read(file: UploadFile, max_bytes: int) -> bytes:
    """The upload's bytes, reading at most one byte past the limit (enough to refuse it)."""
    file.file.seek(0)
    return file.file.read(max_bytes + 1)


# --- API --------------------------------------------------------------------------------------------------

UPLOAD_HEADERS = {
    "X-Upload-Id": {"description": "The stored upload: confirm it at /api/ledger/confirm/{id}", "schema": {"type": "integer"}},
    "X-Upload-SHA256": {"description": "SHA-256 of the file", "schema": {"type": "string"}},
    "X-Ledger-Plan": {"description": "SHA-256 of the planned events: pass it as ?plan= to confirm exactly these", "schema": {"type": "string"}},
}
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such ledger upload"},
    409: {"description": "The log changed since the preview, the ledger is older than one imported, or the SHA-256 differs"},
    413: {"description": "The file is over the upload limit"},
    415: {"description": "By its content the file is not an .xlsx workbook or a UTF-8/GBK CSV"},
    422: {"description": "The ledger cannot be read (no header row, unknown sheet) or a parameter is invalid"},
}


def _api_refusal(r: Refusal) -> HTTPException:
    return HTTPException(r.status, r.message)


@api.post(
    "/ledger/preview",
    response_model=LedgerReport,
    dependencies=[CsrfChecked],
    summary="Preview a ledger import · 台账导入预览 (nothing written to the log)",
    responses={200: {"headers": UPLOAD_HEADERS}, **ERRORS},
)
def api_ledger_preview(
    request: Request, response: Response, principal: Bureau, file: Annotated[UploadFile, File()], as_of: AsOfForm = "", sheet: SheetForm = ""
) -> LedgerReport:
    options = parse_options(as_of, sheet)
    try:
        upload, result = preview_upload(request, principal, _read(file, request.app.state.config.upload_max_bytes), file.filename, options)
    except Refusal as r:
        raise _api_refusal(r) from None
    response.headers["X-Upload-Id"] = str(upload.upload_id)
    response.headers["X-Upload-SHA256"] = upload.sha256
    response.headers["X-Ledger-Plan"] = plan_digest(result.plan)
    return LedgerReport.model_validate(report_json(result))


@api.post(
    "/ledger/confirm/{upload_id}",
    response_model=LedgerReport,
    dependencies=[CsrfChecked],
    summary="Import a previewed ledger upload · 确认导入台账",
    responses=ERRORS,
)
def api_ledger_confirm(
    request: Request,
    principal: Bureau,
    upload_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    as_of: Annotated[str, Query(max_length=10, pattern=DATE_PATTERN)] = "",
    sheet: Annotated[str, Query(max_length=100)] = "",
    sha256: Annotated[str | None, Query(pattern=SHA256_PATTERN)] = None,
    plan: Annotated[str | None, Query(pattern=SHA256_PATTERN)] = None,
) -> LedgerReport:
    options = parse_options(as_of, sheet)
    try:
        _, result = confirm_upload(request, principal, upload_id, options, sha256=sha256, plan=plan)
    except Refusal as r:
        raise _api_refusal(r) from None
    return LedgerReport.model_validate(report_json(result))
