"""The root: the dashboard for a signed-in user, the public promotion site for everyone else."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from web.security import CurrentPrincipal, Reader

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(principal: CurrentPrincipal) -> Response:
    return RedirectResponse("/dashboard" if principal.user else "/public", status_code=303)


api = APIRouter(tags=["account"])


class Me(BaseModel):
    username: str
    display_name: str
    role: str
    unit: str | None


@api.get("/me", response_model=Me, summary="The user behind this request · 当前用户")
def me(principal: Reader) -> Me:
    user = principal.user
    assert user is not None  # Reader guarantees a user
    return Me(username=user.username, display_name=user.display_name, role=user.role, unit=user.unit)
