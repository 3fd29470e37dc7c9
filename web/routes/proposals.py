"""招商方案 proposals: a match saved for an investor; a permalink inside the workspace, a share link for
the investor (random token, expiry, revocable) that shows only public fields, a printable page and a PDF
with the map, the reasons and a QR code of the share link."""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from events.store import Horizon
from land.matching import RequirementError, match, public_match
from reports.matches import stamp
from reports.proposal_document import proposal_html
from warehouse import proposals
from warehouse.proposals import Proposal
from web.i18n import lang_of
from web.landview import land_views
from web.security import CsrfChecked, Reader, Writer, engine_of, new_token
from web.templating import page

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["proposals"])


def _share_url(request: Request, token: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/share/{token}"


def _get(request: Request, proposal_id: int) -> Proposal:
    with engine_of(request).connect() as conn:
        found = proposals.get(conn, proposal_id)
    if found is None:
        raise HTTPException(404, f"proposal {proposal_id} does not exist")
    return found


def _create(request: Request, by: str, title: str, requirement: dict[str, Any]) -> int:
    today = request.app.state.config.today()
    try:
        # The match page's engine and land view (cached per process), so a saved proposal equals what was shown.
        view = land_views(request).get(Horizon(today))
        result = stamp(match(requirement, view.index), today, None)
    except (RequirementError, ValueError) as exc:
        raise HTTPException(422, f"requirement: {exc}") from None
    with engine_of(request).begin() as conn:
        return proposals.save(
            conn, title=title.strip() or f"{result.get('investor') or ''} 招商方案", investor=str(requirement.get("investor") or ""),
            requirement=requirement, result=result, as_of=today, created_by=by,
        )


def _document(request: Request, p: Proposal) -> str:
    """The investor's copy: public fields only, the share link's QR code while it works."""
    share = _share_url(request, p.share_token) if p.share_live and p.share_token else None
    return proposal_html(
        title=p.title, result=public_match(p.result), requirement=p.requirement, as_of=p.as_of, made_on=request.app.state.config.today(),
        share_url=share, lang=lang_of(request),
    )


@router.post("/proposals", dependencies=[CsrfChecked])
def create_page(
    request: Request, principal: Writer, requirement: Annotated[str, Form(max_length=20000)], title: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    try:
        parsed = json.loads(requirement)
    except json.JSONDecodeError as exc:
        raise HTTPException(422, f"requirement is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise HTTPException(422, "requirement must be a JSON object")
    proposal_id = _create(request, principal.name, title, parsed)
    return RedirectResponse(f"/proposals/{proposal_id}", status_code=303)


@router.get("/proposals")
def list_page(request: Request, principal: Reader) -> Response:
    with engine_of(request).connect() as conn:
        found = proposals.recent(conn)
    return page(request, "proposals/list.html", proposals=found)


@router.get("/proposals/{proposal_id}")
def proposal_page(request: Request, proposal_id: int, principal: Reader) -> Response:
    p = _get(request, proposal_id)
    share = _share_url(request, p.share_token) if p.share_token else None
    return page(request, "proposals/detail.html", p=p, share_url=share, may_share=principal.role in ("admin", "planner", "unit"))


@router.post("/proposals/{proposal_id}/share", dependencies=[CsrfChecked])
def share_page(request: Request, proposal_id: int, principal: Writer, days: Annotated[int, Form(ge=1, le=365)] = 30) -> Response:
    _get(request, proposal_id)
    with engine_of(request).begin() as conn:
        proposals.share(conn, proposal_id, token=new_token(), valid_for=timedelta(days=days))
    return RedirectResponse(f"/proposals/{proposal_id}", status_code=303)


@router.post("/proposals/{proposal_id}/revoke", dependencies=[CsrfChecked])
def revoke_page(request: Request, proposal_id: int, principal: Writer) -> Response:
    _get(request, proposal_id)
    with engine_of(request).begin() as conn:
        proposals.revoke(conn, proposal_id)
    return RedirectResponse(f"/proposals/{proposal_id}", status_code=303)


@router.get("/proposals/{proposal_id}/print", response_class=HTMLResponse)
def print_page_view(request: Request, proposal_id: int, principal: Reader) -> HTMLResponse:
    return HTMLResponse(_document(request, _get(request, proposal_id)))


@router.get("/proposals/{proposal_id}/pdf")
def pdf_view(request: Request, proposal_id: int, principal: Reader) -> Response:
    from reports.bulletin_render import print_page

    html = _document(request, _get(request, proposal_id))
    with tempfile.TemporaryDirectory(prefix="zs-proposal-") as tmp:
        path = Path(tmp) / "proposal.html"
        path.write_text(html, encoding="utf-8")
        printed, _ = print_page(path, chromium=request.app.state.config.chromium)
    if printed is None:
        raise HTTPException(500, "the PDF could not be printed")
    return Response(printed, media_type="application/pdf", headers={"Content-Disposition": f'attachment; filename="proposal-{proposal_id}.pdf"'})


@router.get("/share/{token}", response_class=HTMLResponse)
def shared(request: Request, token: str) -> HTMLResponse:
    """The investor's page: no login; only while the link is neither revoked nor expired."""
    with engine_of(request).connect() as conn:
        p = proposals.by_token(conn, token) if 20 <= len(token) <= 100 else None
    if p is None:
        raise HTTPException(404, "this link does not exist")
    if not p.share_live:
        raise HTTPException(410, "此链接已失效 · this link has expired or was revoked")
    response = HTMLResponse(_document(request, p))
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


class ProposalIn(BaseModel):
    title: str = Field("", max_length=200)
    requirement: dict[str, Any]


class ProposalOut(BaseModel):
    proposal_id: int
    title: str
    investor: str
    as_of: str
    created_by: str
    share_url: str | None
    share_live: bool
    result: dict[str, Any]


def _out(request: Request, p: Proposal) -> ProposalOut:
    return ProposalOut(
        proposal_id=p.proposal_id, title=p.title, investor=p.investor, as_of=p.as_of.isoformat(), created_by=p.created_by,
        share_url=_share_url(request, p.share_token) if p.share_token else None, share_live=p.share_live, result=p.result,
    )


@api.post("/proposals", response_model=ProposalOut, status_code=201, dependencies=[CsrfChecked], summary="Save a match as a proposal · 保存招商方案")
def api_create(request: Request, body: ProposalIn, principal: Writer) -> ProposalOut:
    return _out(request, _get(request, _create(request, principal.name, body.title, body.requirement)))


@api.get("/proposals/{proposal_id}", response_model=ProposalOut, summary="A proposal · 招商方案")
def api_get(request: Request, proposal_id: int, principal: Reader) -> ProposalOut:
    return _out(request, _get(request, proposal_id))


class ShareIn(BaseModel):
    days: int = Field(30, ge=1, le=365)


@api.post("/proposals/{proposal_id}/share", response_model=ProposalOut, dependencies=[CsrfChecked], summary="Issue a share link · 分享链接")
def api_share(request: Request, proposal_id: int, body: ShareIn, principal: Writer) -> ProposalOut:
    _get(request, proposal_id)
    with engine_of(request).begin() as conn:
        proposals.share(conn, proposal_id, token=new_token(), valid_for=timedelta(days=body.days))
    return _out(request, _get(request, proposal_id))


@api.post("/proposals/{proposal_id}/revoke", response_model=ProposalOut, dependencies=[CsrfChecked], summary="Revoke the share link · 撤销分享")
def api_revoke(request: Request, proposal_id: int, principal: Writer) -> ProposalOut:
    _get(request, proposal_id)
    with engine_of(request).begin() as conn:
        proposals.revoke(conn, proposal_id)
    return _out(request, _get(request, proposal_id))
