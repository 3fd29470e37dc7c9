"""重复签约 duplicates: candidate pairs for a planner, who merges them (an event) or withdraws a merge."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from warehouse import duplicates, read_models
from warehouse.duplicates import Candidate, MergeError, Signed
from web.security import Bureau, CsrfChecked, engine_of
from web.templating import page

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["duplicates"])


def _merge(request: Request, by: str, duplicate: str, into: str, reason: str) -> str:
    today = request.app.state.config.today()
    try:
        with engine_of(request).begin() as conn:
            event_id = duplicates.merge(conn, duplicate=duplicate, into=into, on=today, reason=reason, by=by)
    except MergeError as exc:
        raise HTTPException(422, str(exc)) from None
    read_models.refresh(engine_of(request))
    return event_id


def _unmerge(request: Request, by: str, merge_event_id: str, reason: str) -> str:
    today = request.app.state.config.today()
    try:
        with engine_of(request).begin() as conn:
            event_id = duplicates.unmerge(conn, merge_event_id=merge_event_id, on=today, reason=reason, by=by)
    except MergeError as exc:
        raise HTTPException(422, str(exc)) from None
    read_models.refresh(engine_of(request))
    return event_id


@router.get("/duplicates")
def duplicates_page(request: Request, principal: Bureau, done: str | None = None) -> Response:
    today: date = request.app.state.config.today()
    with engine_of(request).connect() as conn:
        found = duplicates.candidates(conn, today)
        merges = sorted(duplicates.active_merges(conn).values(), key=lambda m: m.recorded_at or today, reverse=True)
    return page(request, "duplicates.html", candidates=found, merges=merges, done=done)


@router.post("/duplicates/merge", dependencies=[CsrfChecked])
def merge_page(
    request: Request,
    principal: Bureau,
    duplicate: Annotated[str, Form(max_length=512)],
    into: Annotated[str, Form(max_length=512)],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    _merge(request, principal.name, duplicate, into, reason)
    return RedirectResponse("/duplicates?done=merged", status_code=303)


@router.post("/duplicates/unmerge", dependencies=[CsrfChecked])
def unmerge_page(
    request: Request, principal: Bureau, merge_event_id: Annotated[str, Form(max_length=512)], reason: Annotated[str, Form(max_length=500)] = ""
) -> Response:
    _unmerge(request, principal.name, merge_event_id, reason)
    return RedirectResponse("/duplicates?done=unmerged", status_code=303)


class SignedOut(BaseModel):
    project_id: str
    name: str
    investor: str
    industry: str | None
    unit: str | None
    channel: str | None
    investment_wan: float
    signed_on: date | None


class CandidateOut(BaseModel):
    keep: SignedOut
    duplicate: SignedOut
    score: float
    reasons_zh: list[str]
    reasons_en: list[str]


def _signed(s: Signed) -> SignedOut:
    return SignedOut(
        project_id=s.project_id, name=s.name, investor=s.investor, industry=s.industry, unit=s.unit, channel=s.channel,
        investment_wan=s.investment_wan, signed_on=s.signed_on,
    )


def _candidate(c: Candidate) -> CandidateOut:
    return CandidateOut(
        keep=_signed(c.keep), duplicate=_signed(c.duplicate), score=c.score,
        reasons_zh=[zh for zh, _ in c.reasons], reasons_en=[en for _, en in c.reasons],
    )


@api.get("/duplicates", response_model=list[CandidateOut], summary="Candidate duplicate projects · 疑似重复签约")
def api_candidates(request: Request, principal: Bureau) -> list[CandidateOut]:
    with engine_of(request).connect() as conn:
        return [_candidate(c) for c in duplicates.candidates(conn, request.app.state.config.today())]


class MergeIn(BaseModel):
    duplicate: str = Field(min_length=1, max_length=512)
    into: str = Field(min_length=1, max_length=512)
    reason: str = Field("", max_length=500)


class UnmergeIn(BaseModel):
    merge_event_id: str = Field(min_length=1, max_length=512)
    reason: str = Field("", max_length=500)


class EventRef(BaseModel):
    event_id: str


@api.post("/duplicates/merge", response_model=EventRef, status_code=201, dependencies=[CsrfChecked], summary="Merge a duplicate into the kept project · 合并")
def api_merge(request: Request, body: MergeIn, principal: Bureau) -> EventRef:
    return EventRef(event_id=_merge(request, principal.name, body.duplicate, body.into, body.reason))


@api.post("/duplicates/unmerge", response_model=EventRef, status_code=201, dependencies=[CsrfChecked], summary="Withdraw a merge · 撤销合并")
def api_unmerge(request: Request, body: UnmergeIn, principal: Bureau) -> EventRef:
    return EventRef(event_id=_unmerge(request, principal.name, body.merge_event_id, body.reason))
