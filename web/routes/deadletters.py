"""死信 dead letters, for admins: why each record was refused, its raw text, and re-driving it.

A retry goes through ``warehouse.event_store.retry_dead_letters``, the same as ``zhaoshang
deadletters retry``: the stored raw (or a corrected replacement, kept beside the original, which is
never overwritten) is validated and appended; accepted or duplicate letters are resolved, the
others keep their row with the new reason and one more attempt. The read models are brought up to
the log afterwards (``read_models.refresh``), as the command does.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from events.model import SHANGHAI
from warehouse import read_models
from warehouse.dead_letter_pages import dead_letter, page_dead_letters
from warehouse.event_store import retry_dead_letters
from web.security import Admin, CsrfChecked, engine_of
from web.templating import page

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["dead letters"])

PAGE_SIZE = 20
MAX_RAW_CHARS = 1_000_000  # a replacement longer than this is no event record
LETTER_ID_MAX = 2**63 - 1

StatusQuery = Annotated[Literal["open", "resolved", "all"], Query(description="open (default), resolved, or all")]
LetterId = Annotated[int, Path(ge=1, le=LETTER_ID_MAX, description="Dead-letter id")]


class RetryRefused(Exception):
    """A retry that was not attempted: ``status`` and a message for the admin."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _local(letter: dict[str, Any]) -> dict[str, Any]:
    """The letter's instants in the bureau's time zone (Asia/Shanghai), as the page prints them."""
    return {k: v.astimezone(SHANGHAI) if isinstance(v, datetime) else v for k, v in letter.items()}


def _status(status: str) -> str | None:
    return None if status == "all" else status


def _check_replacement(replacement: str | None) -> str | None:
    """The replacement to send, or None (re-drive the stored text); refuse one that is not JSON, as the CLI does."""
    if replacement is None or not replacement.strip():
        return None
    text = replacement.strip().lstrip("\ufeff")  # a BOM is no part of the JSON
    try:
        json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RetryRefused(422, f"替换文本不是 JSON · the replacement is not JSON: {exc}") from exc
    return text


def _same_text(a: str, b: str) -> bool:
    """Equal as a form sends them back (browsers send a textarea's line ends as CRLF)."""
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


def retry_one(engine: Engine, letter_id: int, replacement: str | None) -> dict[str, Any]:
    """Re-drive one open letter (with a replacement text, if it differs from the stored one); then the read models."""
    with engine.connect() as conn:
        letter = dead_letter(conn, letter_id)
    if letter is None:
        raise RetryRefused(404, f"没有编号为 {letter_id} 的死信 · no dead letter {letter_id}")
    if letter["status"] != "open":
        raise RetryRefused(409, f"死信 {letter_id} 已处理 · dead letter {letter_id} is already resolved")
    stored = letter["fixed_raw"] if letter["fixed_raw"] is not None else letter["raw"]
    if replacement is not None and _same_text(replacement, stored):
        replacement = None  # the text as shown: re-drive what is stored (the original stays the original)
    fixed = _check_replacement(replacement)
    try:
        with engine.begin() as conn:
            outcome = retry_dead_letters(conn, [letter_id], replacement=fixed)
    except ValueError as exc:  # resolved meanwhile by another admin
        raise RetryRefused(409, str(exc)) from exc
    read_models.refresh(engine)
    return outcome


# --- pages --------------------------------------------------------------------------------------


@router.get("/deadletters")
def deadletters_page(
    request: Request,
    principal: Admin,
    status: StatusQuery = "open",
    page_no: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> Response:
    with engine_of(request).connect() as conn:
        total, rows = page_dead_letters(conn, status=_status(status), offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return page(request, "deadletters/index.html", letters=[_local(r) for r in rows], total=total, status=status, page_no=page_no, pages=pages)


@router.get("/deadletters/{letter_id}")
def deadletter_page(request: Request, principal: Admin, letter_id: LetterId) -> Response:
    with engine_of(request).connect() as conn:
        letter = dead_letter(conn, letter_id)
    if letter is None:
        raise HTTPException(404, f"没有编号为 {letter_id} 的死信 · no dead letter {letter_id}")
    return page(request, "deadletters/detail.html", letter=_local(letter), outcome=None, error=None, submitted=None)


@router.post("/deadletters/{letter_id}/retry", dependencies=[CsrfChecked])
def deadletter_retry(
    request: Request,
    principal: Admin,
    letter_id: LetterId,
    replacement: Annotated[str | None, Form(max_length=MAX_RAW_CHARS)] = None,
) -> Response:
    engine = engine_of(request)
    outcome: dict[str, Any] | None = None
    error: str | None = None
    status_code = 200
    try:
        outcome = retry_one(engine, letter_id, replacement)
    except RetryRefused as refused:
        if refused.status == 404:
            raise HTTPException(404, refused.message) from refused
        error, status_code = refused.message, refused.status
    with engine.connect() as conn:
        letter = dead_letter(conn, letter_id)
    return page(
        request, "deadletters/detail.html", status_code=status_code, letter=_local(letter) if letter else None, outcome=outcome, error=error,
        submitted=replacement if error else None,
    )


# --- API ----------------------------------------------------------------------------------------


class DeadLetterOut(BaseModel):
    id: int
    status: str
    reason: str
    raw: str
    fixed_raw: str | None
    attempts: int
    source: str
    source_position: str | None
    event_id: str | None
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class DeadLetterPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[DeadLetterOut]


class RetryRequest(BaseModel):
    replacement: str | None = Field(
        default=None, max_length=MAX_RAW_CHARS, description="A corrected JSON record to append instead of the stored raw text"
    )


class RetryFailure(BaseModel):
    id: int
    reason: str


class RetryOutcome(BaseModel):
    retried: int
    accepted: int
    duplicates: int
    still_failing: int
    failures: list[RetryFailure]
    letter: DeadLetterOut


@api.get("/deadletters", response_model=DeadLetterPage, summary="Dead letters · 死信 (admin)")
def api_deadletters(
    request: Request,
    principal: Admin,
    status: StatusQuery = "open",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeadLetterPage:
    with engine_of(request).connect() as conn:
        total, rows = page_dead_letters(conn, status=_status(status), offset=offset, limit=limit)
    return DeadLetterPage(total=total, offset=offset, limit=limit, items=[DeadLetterOut.model_validate(r) for r in rows])


@api.post(
    "/deadletters/{letter_id}/retry",
    response_model=RetryOutcome,
    dependencies=[CsrfChecked],
    summary="Re-drive one dead letter · 重新投递 (admin)",
    responses={404: {"description": "No such dead letter"}, 409: {"description": "Already resolved"}, 422: {"description": "Replacement is not JSON"}},
)
def api_deadletter_retry(
    request: Request,
    principal: Admin,
    letter_id: LetterId,
    body: RetryRequest | None = None,
) -> RetryOutcome:
    engine = engine_of(request)
    try:
        outcome = retry_one(engine, letter_id, body.replacement if body else None)
    except RetryRefused as refused:
        raise HTTPException(refused.status, refused.message) from refused
    with engine.connect() as conn:
        letter = dead_letter(conn, letter_id)
    assert letter is not None  # noqa: S101 - it was there a moment ago; letters are never deleted
    return RetryOutcome.model_validate({**outcome, "letter": letter})
