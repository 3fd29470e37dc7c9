"""月通报 bulletins in the workspace: the month's bulletin as published or as corrected, as Word, PDF or
HTML — the documents of ``zhaoshang report bulletin`` (reports.bulletin_document), for internal roles."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from events.calendar import month_end, previous_month_end
from maps.browser import BrowserError
from reports.bulletin_document import BulletinReports, Version, build_bulletin
from reports.bulletin_render import write_bulletin_files
from warehouse.bulletin import bulletin_reports
from web.security import Reader, engine_of
from web.templating import page

router = APIRouter(include_in_schema=False)

MEDIA = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
}


def _recent_months(today: date, count: int = 12) -> list[date]:
    months, day = [], previous_month_end(today)
    for _ in range(count):
        months.append(day)
        day = previous_month_end(day)
    return months


@router.get("/bulletins")
def bulletins_page(request: Request, principal: Reader) -> Response:
    return page(request, "bulletins.html", months=_recent_months(request.app.state.config.today()))


def _document(request: Request, day: date, version: Version, fmt: str) -> bytes:
    with engine_of(request).connect() as conn:
        reports = bulletin_reports(conn, day, version)
    content = build_bulletin(BulletinReports(**reports), day, version=version)
    with tempfile.TemporaryDirectory(prefix="zs-bulletin-web-") as tmp:
        path = Path(tmp) / f"bulletin.{fmt}"
        try:
            write_bulletin_files(content, **{fmt: path}, chromium=request.app.state.config.chromium)
        except BrowserError as exc:
            raise HTTPException(503, f"the document could not be rendered: {exc}") from None
        return path.read_bytes()


@router.get("/bulletins/{year}-{month}.{fmt}")
async def bulletin_file(
    request: Request,
    principal: Reader,
    year: int,
    month: int,
    fmt: str,
    version: Annotated[str, Query(alias="as", pattern="^(published|corrected)$")] = "published",
) -> Response:
    if fmt not in MEDIA or not 2000 <= year <= 2100 or not 1 <= month <= 12:
        raise HTTPException(404, "a bulletin is /bulletins/YYYY-MM.docx|pdf|html")
    day = month_end(date(year, month, 1))
    if day >= request.app.state.config.today():
        raise HTTPException(404, f"{year}-{month:02d} has not ended: no bulletin yet")
    chosen: Version = "corrected" if version == "corrected" else "published"
    data = await run_in_threadpool(_document, request, day, chosen, fmt)
    name = f"bulletin-{year}-{month:02d}-{chosen}.{fmt}"
    disposition = "inline" if fmt == "html" else f'attachment; filename="{name}"'
    return Response(data, media_type=MEDIA[fmt], headers={"Content-Disposition": disposition})
