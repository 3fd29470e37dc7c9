"""项目库 Projects: the searchable list, one project's page with its whole timeline, the CSV export,
and the project/event API (read states and timelines, post one lifecycle event).

The list reads the read models at the as-of day in a count and a page query
(``warehouse.project_search``). A ``unit`` officer's unit is a condition of those queries, never a
filter applied afterwards, and another unit's project answers 403 (page and API). Posting an event
takes the path every input takes (``warehouse.event_store.append_raw``: validation, the dead
letters, duplicates and conflicts), with ``web:<username>`` as its source, then brings the read
models up to date so the next read sees it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from events.escape import csv_cell
from events.model import SHANGHAI, STAGE_LABELS, Event, EventType
from events.projection import ProjectState
from events.store import Horizon, Incoming
from events.timeline import TimelineEntry
from events.validation import EventValidationError, parse_event
from warehouse import read_models
from warehouse.event_store import append_raw
from warehouse.project_search import (
    SORTS,
    STAGES,
    ProjectDetail,
    ProjectFilter,
    ProjectListing,
    filter_choices,
    iter_projects,
    project_detail,
    project_unit,
)
from web.answers import answer
from web.i18n import lang_of, translator
from web.query import DATE, choice, horizon_of, parse_day
from web.security import CsrfChecked, Principal, Reader, Writer, engine_of, require_unit
from web.templating import page

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["projects"])

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_EVENT_BYTES = 64 * 1024
PROJECT_ID = r"^[^\x00-\x1f]{1,200}$"


@dataclass(frozen=True)
class ListQuery:
    horizon: Horizon
    filters: ProjectFilter
    page: int
    page_size: int
    params: dict[str, str] = field(default_factory=dict)  # the query as given (non-empty): for links

    def url(self, path: str, **changes: object) -> str:
        params = {**self.params, **{k: str(v) for k, v in changes.items()}}
        params = {k: v for k, v in params.items() if v}
        return f"{path}?{urlencode(params)}" if params else path


AsOf = Annotated[str, Query(pattern=DATE, description="State as of this day (YYYY-MM-DD; default today)")]
KnownAt = Annotated[str, Query(max_length=40, description="Only facts recorded by this instant (ISO date or date-time)")]


def list_query(
    request: Request,
    q: Annotated[str, Query(max_length=200, description="Text in the project id, name or investor")] = "",
    unit: Annotated[str, Query(max_length=200, description="Responsible unit 责任单位")] = "",
    industry: Annotated[str, Query(max_length=200)] = "",
    stage: Annotated[str, Query(pattern=choice(STAGES))] = "",
    stalled: Annotated[str, Query(pattern="^(|1|0)$", description="1: stalled only (停滞), 0: not stalled")] = "",
    park: Annotated[str, Query(max_length=200, description="Park 园区 of the project's site")] = "",
    signed_from: Annotated[str, Query(pattern=DATE)] = "",
    signed_to: Annotated[str, Query(pattern=DATE)] = "",
    sort: Annotated[str, Query(pattern=choice(SORTS))] = "",
    as_of: AsOf = "",
    known_at: KnownAt = "",
    page_no: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
) -> ListQuery:
    flt = ProjectFilter(
        q=q.strip() or None,
        unit=unit or None,
        industry=industry or None,
        stage=stage or None,
        stalled=None if not stalled else stalled == "1",
        park=park or None,
        signed_from=parse_day("signed_from", signed_from),
        signed_to=parse_day("signed_to", signed_to),
        sort=sort or "signed_desc",
    )
    given = {
        "q": q, "unit": unit, "industry": industry, "stage": stage, "stalled": stalled, "park": park,
        "signed_from": signed_from, "signed_to": signed_to, "sort": sort, "as_of": as_of, "known_at": known_at,
    }  # fmt: skip
    if page_size != PAGE_SIZE:
        given["page_size"] = str(page_size)
    return ListQuery(horizon_of(request, as_of, known_at), flt, page_no, page_size, {k: v for k, v in given.items() if v})


Listing = Annotated[ListQuery, Depends(list_query)]


def _search(request: Request, principal: Principal, query: ListQuery) -> tuple[int, list[dict[str, Any]]]:
    with engine_of(request).connect() as conn:
        return _listed(conn, query.horizon, query.filters, principal.unit_scope, query.page, query.page_size)


def _listed(conn: Connection, horizon: Horizon, flt: ProjectFilter, scope: str | None, page_no: int, page_size: int) -> tuple[int, list[dict[str, Any]]]:
    """The count and the page, each reused while the read models stand still (``web.answers``): the
    count is shared by every page and order of the same filter."""
    offset = (page_no - 1) * page_size
    listing = ProjectListing(conn, horizon, flt, unit_scope=scope)
    if flt.q:  # a text search reads every version whatever is asked: count and page in one pass
        total, rows = answer(conn, ("projects.search", horizon, flt, scope, page_size, offset), lambda: listing.counted_page(page_size, offset))
        return total, [dict(r) for r in rows]
    total = answer(conn, ("projects.count", horizon, replace(flt, sort=""), scope), listing.count)
    if offset >= total:
        return total, []
    rows = answer(conn, ("projects.page", horizon, flt, scope, page_size, offset), lambda: listing.page(page_size, offset))
    return total, [dict(r) for r in rows]  # the callers' own copies: the cached rows stay as they were


def warm(conn: Connection, day: date, units: list[str]) -> None:
    """Compute the list's first page as of ``day`` (no filter), for everyone and for each unit
    officer's unit, and the filter form's choices (``web.app``'s warming)."""
    for scope in [None, *units]:
        _listed(conn, Horizon(day), ProjectFilter(sort="signed_desc"), scope, 1, PAGE_SIZE)
    answer(conn, ("projects.choices",), lambda: filter_choices(conn))


# --- pages ------------------------------------------------------------------------------------


def stage_label(code: str | None, lang: str) -> str:
    pair = STAGE_LABELS.get(code or "")
    return (pair[1] if lang == "en" else pair[0]) if pair else (code or "")


@router.get("/projects", response_class=HTMLResponse)
def projects_page(request: Request, principal: Reader, query: Listing) -> Response:
    total, rows = _search(request, principal, query)
    pages = max(1, -(-total // query.page_size))
    context: dict[str, Any] = {"query": query, "total": total, "rows": rows, "pages": pages, "stage_label": stage_label, "stages": STAGES}
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "results":
        return page(request, "projects/_results.html", **context)
    with engine_of(request).connect() as conn:
        choices = answer(conn, ("projects.choices",), lambda: filter_choices(conn))
    return page(request, "projects/list.html", choices=choices, sorts=list(SORTS), **context)


CSV_COLUMNS = (
    ("project_id", "项目编号"), ("name", "项目名称"), ("investor", "投资方"), ("unit", "责任单位"), ("industry", "行业"),
    ("channel", "签约渠道"), ("stage", "阶段"), ("signed_on", "签约日期"), ("landed_on", "落地日期"), ("started_on", "开工日期"),
    ("produced_on", "投产日期"), ("cancelled_on", "取消日期"), ("investment_wan", "总投资(万元)"), ("funds_wan", "到位资金(万元)"),
    ("stalled", "停滞"), ("park", "园区"), ("confidential", "保密"), ("anomalies", "异常数"),
)  # fmt: skip


def _csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([f"{zh} {code}" for code, zh in CSV_COLUMNS])
    for i, row in enumerate(rows):
        writer.writerow([csv_cell(row.get(code)) for code, _ in CSV_COLUMNS])
        if i % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get("/projects.csv")
def projects_csv(request: Request, principal: Reader, query: Listing) -> Response:
    """The list with the same filters, every matching project (a unit officer: that unit's), as CSV (UTF-8 with BOM for Excel)."""
    engine = engine_of(request)

    def body() -> Iterator[str]:
        yield "\ufeff"
        with engine.connect() as conn:
            yield from _csv_lines(iter_projects(conn, query.horizon, query.filters, unit_scope=principal.unit_scope))

    name = f"projects-{query.horizon.as_of.isoformat()}.csv"
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _detail(request: Request, principal: Principal, project_id: str, horizon: Horizon) -> ProjectDetail:
    with engine_of(request).connect() as conn:
        detail = project_detail(conn, project_id, horizon)
    if detail is None:
        raise HTTPException(404, f"没有这个项目 no such project: {project_id}")
    require_unit(principal, detail.unit)
    return detail


def summary(ev: Event, lang: str) -> str:
    """What an event says, in a line (the payload's main fields)."""
    t = translator(lang)
    p = ev.payload
    parts: list[str] = []
    if ev.type is EventType.SIGNED:
        parts = [str(p.get("name", "")), f"{t('总投资', 'investment')} {p.get('investment_wan', '')} {t('万元', '10k CNY')}"]
        parts += [str(p[k]) for k in ("investor", "unit", "industry", "channel") if p.get(k)]
        if p.get("confidential"):
            parts.append(t("保密", "confidential"))
    elif ev.type is EventType.LANDED:
        parts = [f"{t('地块', 'parcel')} {p['parcel_id']}" if p.get("parcel_id") else "", f"{t('厂房', 'factory')} {p['factory_id']}" if p.get("factory_id") else ""]
        parts += [f"{p['land_area_mu']} {t('亩', 'mu')}" if p.get("land_area_mu") is not None else "", f"{p['floor_area_m2']} m²" if p.get("floor_area_m2") is not None else ""]
    elif ev.type is EventType.FUNDS_ARRIVED:
        currency = p.get("currency", "CNY")
        parts = [f"{p.get('amount_wan')} {t('万美元', '10k USD') if currency == 'USD' else t('万元', '10k CNY')}"]
    elif ev.type is EventType.CANCELLED:
        parts = [str(p.get("reason") or "")]
    elif ev.type is EventType.RETRACTED:
        parts = [f"{t('撤回', 'withdraws')} {p.get('event_id')}", str(p.get("reason") or "")]
    return " · ".join(x for x in parts if x)


def local_time(instant: datetime | None) -> str:
    """An instant as a planner reads it: Asia/Shanghai, to the minute."""
    return instant.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if instant else ""


EVENT_LABELS: dict[str, tuple[str, str]] = {
    **{k: v for k, v in STAGE_LABELS.items() if k != "none"},
    "funds_arrived": ("到位资金", "Funds arrived"),
    "retracted": ("撤回更正", "Retraction"),
}


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(
    request: Request,
    principal: Reader,
    project_id: Annotated[str, Path(pattern=PROJECT_ID)],
    as_of: AsOf = "",
    known_at: KnownAt = "",
) -> Response:
    horizon = horizon_of(request, as_of, known_at)
    detail = _detail(request, principal, project_id, horizon)
    lang = lang_of(request)
    return page(
        request, "projects/detail.html", d=detail, s=detail.state, horizon=horizon, as_of=as_of, known_at=known_at,
        stage_label=stage_label, event_labels=EVENT_LABELS, summary=lambda ev: summary(ev, lang),
        may_write=principal.role in ("admin", "planner"), may_report=principal.role in ("admin", "planner", "unit"), fmt=local_time,
    )  # fmt: skip


# --- API --------------------------------------------------------------------------------------


class ProjectRow(BaseModel):
    project_id: str
    name: str | None
    investor: str | None
    unit: str | None
    industry: str | None
    channel: str | None
    stage: str = Field(description="signed 签约, landed 落地, started 开工, produced 投产, cancelled 取消")
    signed_on: date | None
    landed_on: date | None
    started_on: date | None
    produced_on: date | None
    cancelled_on: date | None
    investment_wan: float = Field(description="Total investment, 万元")
    funds_wan: float = Field(description="CNY funds in place, 万元")
    confidential: bool
    stalled: bool = Field(description="停滞: no stage change for 6 months (the KPIs' definition)")
    park: str | None
    anomalies: int


class ProjectList(BaseModel):
    total: int
    page: int
    page_size: int
    as_of: date
    known_at: datetime | None
    items: list[ProjectRow]


def _row(r: dict[str, Any]) -> ProjectRow:
    return ProjectRow(**{k: r.get(k) for k in ProjectRow.model_fields})


@api.get("/projects", response_model=ProjectList, summary="Projects at a horizon, filtered and paged · 项目库")
def api_projects(request: Request, principal: Reader, query: Listing) -> ProjectList:
    total, rows = _search(request, principal, query)
    return ProjectList(
        total=total, page=query.page, page_size=query.page_size, as_of=query.horizon.as_of,
        known_at=query.horizon.known_at, items=[_row(r) for r in rows],
    )  # fmt: skip


class AnomalyOut(BaseModel):
    code: str
    event_id: str
    detail: str


class FundsOut(BaseModel):
    arrived_on: date
    amount_wan: float
    currency: str


class StateOut(BaseModel):
    name: str | None
    investor: str | None
    unit: str | None
    industry: str | None
    channel: str | None
    stage: str
    signed_on: date | None
    landed_on: date | None
    started_on: date | None
    produced_on: date | None
    cancelled_on: date | None
    cancel_reason: str | None
    investment_wan: float
    funds_wan: float
    funds_usd_wan: float
    foreign: bool
    confidential: bool
    stalled: bool
    location: list[float] | None
    intended_parcel_id: str | None
    funds: list[FundsOut]
    anomalies: list[AnomalyOut]


class TimelineOut(BaseModel):
    event_id: str
    project_id: str
    type: str
    occurred_at: datetime
    recorded_at: datetime | None
    source: str = Field(description="Where the record came from: a file, a topic, or web:<username>")
    source_position: str | None
    payload: dict[str, Any]
    summary: str
    late: bool = Field(description="补录: recorded after the end of the month it occurred in")
    withdrawn: bool
    withdrawn_by: str | None
    withdrawn_reason: str | None
    withdrawn_recorded_at: datetime | None
    target: str | None = Field(description="For a retraction: the event it withdraws")


class ProjectOut(BaseModel):
    project_id: str
    as_of: date
    known_at: datetime | None
    unit: str | None
    park: str | None
    state: StateOut | None
    timeline: list[TimelineOut]


def _state_out(s: ProjectState, as_of: date) -> StateOut:
    return StateOut(
        name=s.name, investor=s.investor, unit=s.unit, industry=s.industry, channel=s.channel, stage=s.stage.value,
        **s.stage_dates(), cancel_reason=s.cancel_reason, investment_wan=s.investment_wan, funds_wan=s.funds_wan,
        funds_usd_wan=s.funds_usd_wan, foreign=s.foreign, confidential=s.confidential, stalled=s.is_stalled(as_of),
        location=list(s.location) if s.location else None, intended_parcel_id=s.intended_parcel_id,
        funds=[FundsOut(arrived_on=f.arrived_on, amount_wan=f.amount_wan, currency=f.currency) for f in s.funds],
        anomalies=[AnomalyOut(code=a.code, event_id=a.event_id, detail=a.detail) for a in s.anomalies],
    )  # fmt: skip


def _timeline_out(e: TimelineEntry, lang: str) -> TimelineOut:
    ev, by = e.event, e.withdrawn_by
    return TimelineOut(
        event_id=ev.event_id, project_id=ev.project_id, type=ev.type.value, occurred_at=ev.occurred_at,
        recorded_at=ev.recorded_at, source=e.item.source, source_position=e.item.source_position, payload=ev.payload,
        summary=summary(ev, lang), late=e.late, withdrawn=by is not None, withdrawn_by=by.event_id if by else None,
        withdrawn_reason=str(by.payload.get("reason") or "") if by else None,
        withdrawn_recorded_at=by.recorded_at if by else None, target=e.target,
    )  # fmt: skip


@api.get("/projects/{project_id}", response_model=ProjectOut, summary="One project's state and whole timeline · 项目详情")
def api_project(
    request: Request,
    principal: Reader,
    project_id: Annotated[str, Path(pattern=PROJECT_ID)],
    as_of: AsOf = "",
    known_at: KnownAt = "",
) -> ProjectOut:
    horizon = horizon_of(request, as_of, known_at)
    d = _detail(request, principal, project_id, horizon)
    lang = lang_of(request)
    return ProjectOut(
        project_id=d.project_id, as_of=horizon.as_of, known_at=horizon.known_at, unit=d.unit, park=d.park,
        state=_state_out(d.state, horizon.as_of) if d.state else None,
        timeline=[_timeline_out(e, lang) for e in d.timeline],
    )  # fmt: skip


class WireEvent(BaseModel):
    """One lifecycle event in the wire format, version 1 (shared/DOMAIN.md); validated as every input is."""

    event_id: str
    project_id: str
    type: Literal["signed", "landed", "started", "produced", "cancelled", "funds_arrived", "retracted"]
    occurred_at: str = Field(description="ISO 8601 date or date-time; without a zone, Asia/Shanghai")
    recorded_at: str | None = Field(None, description="When the fact became known; set on arrival when absent")
    schema_version: int = 1
    payload: dict[str, Any] = Field(default_factory=dict)


class PostResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    reasons: list[str]
    event_id: str | None
    project_id: str | None
    source: str


def _authorize(conn: Any, principal: Principal, ev: Event) -> None:
    """A unit officer acts on its unit's projects only, and signs for its own unit only (403 otherwise)."""
    scope = principal.unit_scope
    if scope is None:
        return
    exists, unit = project_unit(conn, ev.project_id)
    if exists and unit != scope:
        raise HTTPException(403, "this project belongs to another responsible unit")
    if ev.type is EventType.SIGNED and ev.payload.get("unit") != scope:
        raise HTTPException(403, f"a unit officer signs projects for its own unit only ({scope})")
    if ev.type is not EventType.SIGNED:
        # Progress needs evidence and a planner's sign-off (进度上报): web.routes.progress.
        raise HTTPException(403, f"a unit officer reports progress for sign-off: POST /api/projects/{ev.project_id}/reports (进度上报)")


def _post(request: Request, principal: Principal, raw: bytes) -> Response:
    engine = engine_of(request)
    try:
        ev: Event | None = parse_event(raw)
    except EventValidationError:
        ev = None  # the append below dead-letters it with the validator's reason
    if ev is not None:
        with engine.connect() as conn:
            _authorize(conn, principal, ev)
    with engine.begin() as conn:
        result = append_raw(conn, [Incoming(raw, principal.name, None)])
    if result.accepted:
        read_models.refresh(engine)
    status = 201 if result.accepted else 200 if result.duplicates else 409 if ev is not None else 422
    body = PostResult(
        accepted=result.accepted, duplicates=result.duplicates, rejected=result.rejected, reasons=result.reasons,
        event_id=ev.event_id if ev else None, project_id=ev.project_id if ev else None, source=principal.name,
    )  # fmt: skip
    if status >= 400:
        reason = result.reasons[0] if result.reasons else "refused"
        # A 422 in the shape the schema declares for it (loc/msg/type), like every other 422 of the API.
        detail: Any = [{"loc": ["body"], "msg": reason, "type": "value_error"}] if status == 422 else reason
        return JSONResponse({**body.model_dump(), "detail": detail}, status_code=status)
    return JSONResponse(body.model_dump(), status_code=status)


@api.post(
    "/events",
    response_model=PostResult,
    status_code=201,
    dependencies=[CsrfChecked],
    summary="Post one lifecycle event · 录入事件",
    description="Appended through the same path as files and topics (validation, dead letters, duplicates, conflicts) with "
    "source `web:<username>`. 201 accepted, 200 duplicate, 409 conflict (dead-lettered), 422 invalid (dead-lettered, "
    "with the reason), 403 another unit's project or a leader. Sessions need `X-CSRF-Token`; bearer tokens do not.",
    responses={200: {"description": "A duplicate: already in the log"}, 409: {"description": "Conflict"}, 422: {"description": "Invalid"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": WireEvent.model_json_schema()}}}},
)
async def api_post_event(request: Request, principal: Writer) -> Response:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", ""):
        raise HTTPException(415, "send the event as application/json")
    raw = await request.body()
    if len(raw) > MAX_EVENT_BYTES:
        raise HTTPException(413, f"one event, at most {MAX_EVENT_BYTES} bytes")
    return await run_in_threadpool(_post, request, principal, raw)
