"""智能选址 Site matching: an investor's requirement → ranked sites with reasons, and the closest misses.

The engine is the one of ``zhaoshang match``: ``land.matching.match`` over the land status of the
date (``warehouse.land_sites.load_land_view`` computes what ``reports.matches.load_sites`` does; the
prepared site arrays are kept per horizon in the process, ``web.landview``). The form builds the
requirement of ``shared/DOMAIN.md`` and shows it, so the same JSON given to the CLI ranks the same.

The form changes nothing, yet it is CSRF-checked like every form. With HTMX the results replace
``#match-results``; without JavaScript the POST answers a whole page.

A closest miss that is taken names the projects on the site; for a ``unit`` officer only the
projects of the officer's unit are named (others are left out of the reason, as on the public site).
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from events.store import Horizon
from land.industry_land import INDUSTRY_LEVEL
from land.matching import DEFAULT_WEIGHTS, RequirementError, match, status_reason
from land.vocabulary import CRITERION_LABELS, LAND_USE_LABELS, SITE_KIND_LABELS
from warehouse.land_sites import LandView
from web.i18n import lang_of
from web.landview import land_views, site_href
from web.query import DATE, parse_as_of, parse_known
from web.security import CsrfChecked, Principal, Reader
from web.templating import page

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["matching"])

DEFAULT_TOP = 10
MAX_TOP = 100
DEFAULT_NEAR_KM = 10.0
MAX_FIELD = 4000  # characters of one form field (the near list is the longest)
FORM_WEIGHTS = ("area_fit", "distance", "price", "readiness")
INDUSTRIES = sorted(k for k in INDUSTRY_LEVEL if not k.isascii())
RESULT_COLOR, MISS_COLOR, NEAR_COLOR = "#2e7d32", "#f9a825", "#1f5fa8"


class FormError(ValueError):
    """A form field the requirement cannot be built from (said in both languages)."""

    def __init__(self, field: str, reason_zh: str, reason_en: str) -> None:
        super().__init__(f"{field}: {reason_en}")
        self.field, self.reason_zh, self.reason_en = field, reason_zh, reason_en


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > MAX_FIELD:
        raise FormError(name, f"过长（超过 {MAX_FIELD} 字）", f"too long (over {MAX_FIELD} characters)")
    return text


def _number_text(value: str) -> float | str:
    """A number when the text is one (full-width digits too); else the text, for the engine to refuse by name."""
    try:
        return float(value.replace("，", ",").replace("．", "."))
    except ValueError:
        return value


_SPLIT = re.compile(r"[,，\s]+")


def parse_near(text: str, default_km: float) -> list[dict[str, Any]]:
    """The near list of the form: a line per point, ``lon,lat`` (what a click on the map writes),
    ``lon,lat,max_km`` or ``name,lon,lat[,max_km]``; lon/lat in CGCS2000 degrees."""
    points = []
    for i, line in enumerate(ln for ln in text.splitlines() if ln.strip()):
        parts = [p for p in _SPLIT.split(line.strip()) if p]
        name = None
        if parts and isinstance(_number_text(parts[0]), str):
            name, parts = parts[0], parts[1:]
        numbers = [_number_text(p) for p in parts]
        if len(numbers) not in (2, 3) or any(isinstance(n, str) for n in numbers):
            raise FormError(
                f"near[{i}]",
                f"第 {i + 1} 行应为「经度,纬度」或「名称,经度,纬度,距离公里」，得到 {line.strip()!r}",
                f"line {i + 1} must be 'lon,lat' or 'name,lon,lat,max_km', got {line.strip()!r}",
            )
        point: dict[str, Any] = {"lon": numbers[0], "lat": numbers[1], "max_km": numbers[2] if len(numbers) == 3 else default_km}
        if name:
            point = {"name": name, **point}
        points.append(point)
    return points


def requirement_from_form(form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the requirement of shared/DOMAIN.md, the form's values to show again)."""
    values: dict[str, Any] = {k: _field(form, k) for k in (
        "investor", "industry", "want", "area_min", "area_max", "max_price", "floor_min", "floor_max", "max_rent",
        "floor_load_min", "clear_height_min", "near", "near_km", "top", "as_of",
        *(f"w_{w}" for w in FORM_WEIGHTS),
    )}  # fmt: skip
    values["land_use"] = [v for v in form.getlist("land_use") if isinstance(v, str) and v in LAND_USE_LABELS]
    req: dict[str, Any] = {"investor": values["investor"] or "意向投资方"}
    if values["industry"]:
        req["industry"] = values["industry"]

    def rng(lo: str, hi: str) -> dict[str, Any] | None:
        out = {k: _number_text(v) for k, v in (("min", lo), ("max", hi)) if v}
        return out or None

    if values["want"] == "factory":
        factory: dict[str, Any] = {}
        if (floor := rng(values["floor_min"], values["floor_max"])) is not None:
            factory["floor_area_m2"] = floor
        if values["max_rent"]:
            factory["max_rent_yuan_m2_month"] = _number_text(values["max_rent"])
        if values["floor_load_min"]:
            factory["floor_load_kn_m2"] = {"min": _number_text(values["floor_load_min"])}
        if values["clear_height_min"]:
            factory["clear_height_m"] = {"min": _number_text(values["clear_height_min"])}
        req["factory"] = factory
    else:
        if (area := rng(values["area_min"], values["area_max"])) is not None:
            req["land_area_mu"] = area
        if values["max_price"]:
            req["max_price_wan_per_mu"] = _number_text(values["max_price"])
        if values["land_use"]:
            req["land_use"] = values["land_use"]
    if values["near"]:
        km = _number_text(values["near_km"]) if values["near_km"] else DEFAULT_NEAR_KM
        if isinstance(km, str) or not math.isfinite(km) or km <= 0:
            raise FormError("near_km", "默认距离应为大于 0 的公里数", "the default distance must be a number of km > 0")
        req["near"] = parse_near(values["near"], km)
    weights = {w: _number_text(values[f"w_{w}"]) for w in FORM_WEIGHTS if values[f"w_{w}"]}
    if weights:
        req["weights"] = weights
    return req, values


def _top(text: str) -> int:
    if not text:
        return DEFAULT_TOP
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOP:
        raise FormError("top", f"应为 1 至 {MAX_TOP} 的整数", f"must be a whole number from 1 to {MAX_TOP}")
    return int(text)


def run_match(view: LandView, requirement: dict[str, Any], top: int, principal: Principal) -> dict[str, Any]:
    """``land.matching.match`` on the view's prepared sites, stamped with its horizon, as the principal may read it."""
    result = match(requirement, view.index, top=top)
    result["as_of"] = view.horizon.as_of.isoformat()
    result["known_at"] = view.horizon.known_at.isoformat() if view.horizon.known_at else None
    scope = principal.unit_scope
    if scope is not None:
        _scrub_for_unit(result, view, scope)
    return result


def _scrub_for_unit(result: dict[str, Any], view: LandView, unit: str) -> None:
    """Name in a taken site's reason only the projects of ``unit`` (the others are not the officer's to see)."""
    takes = view.takes
    own = set(takes.loc[takes["unit"] == unit, "project_id"])
    frame = view.frame
    for miss in result["closest_misses"]:
        if miss.get("failed") != "status":
            continue
        here = frame.loc[(frame["kind"] == miss["kind"]) & (frame["site_id"] == miss["site_id"]), "project_ids"]
        pids = list(here.iloc[0]) if len(here) else []
        miss["reason_zh"], miss["reason_en"] = status_reason(miss.get("value"), [p for p in pids if p in own])


def _map(result: dict[str, Any], requirement: dict[str, Any], lang: str) -> dict[str, Any]:
    """The result map: ranked sites, closest misses, the points to be near (text properties only)."""
    feats: list[dict[str, Any]] = []

    def point(lon: Any, lat: Any, props: dict[str, Any]) -> None:
        if isinstance(lon, int | float) and isinstance(lat, int | float):
            feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props})

    for r in result["results"]:
        point(r["lon"], r["lat"], {"label": f"{r['rank']}. {r['site_id']} {r['name'] or ''}".strip(), "href": site_href(r["kind"], r["site_id"]),
                                   "lines": [f"{r['score']:.2f}"], "color": RESULT_COLOR, "kind": "result"})  # fmt: skip
    for m in result["closest_misses"]:
        point(m["lon"], m["lat"], {"label": f"{m['site_id']} {m['name'] or ''}".strip(), "href": site_href(m["kind"], m["site_id"]),
                                   "lines": [m["reason_en"] if lang == "en" else m["reason_zh"]], "color": MISS_COLOR, "kind": "miss"})  # fmt: skip
    for p in requirement.get("near") or []:
        point(p.get("lon"), p.get("lat"), {"label": str(p.get("name") or ""), "lines": [f"≤ {p.get('max_km')} km"], "color": NEAR_COLOR, "kind": "near"})
    return {"type": "FeatureCollection", "features": feats}


def _context(request: Request, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "values": values,
        "industries": INDUSTRIES,
        "land_use_labels": LAND_USE_LABELS,
        "kind_labels": SITE_KIND_LABELS,
        "criterion_labels": CRITERION_LABELS,
        "default_weights": DEFAULT_WEIGHTS,
        "form_weights": FORM_WEIGHTS,
        "default_near_km": DEFAULT_NEAR_KM,
        "default_top": DEFAULT_TOP,
        **extra,
    }


@router.get("/match", response_class=HTMLResponse)
def match_page(request: Request, principal: Reader) -> HTMLResponse:
    return page(request, "match/index.html", **_context(request, {"want": "land"}, result=None, error=None))


@router.post("/match", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def match_post(request: Request, principal: Reader) -> HTMLResponse:
    form = await request.form()
    partial = bool(request.headers.get("hx-request"))
    values: dict[str, Any] = {"want": "land"}
    try:
        requirement, values = requirement_from_form(form)
        horizon = Horizon(parse_as_of(request, values["as_of"]), None)
        top = _top(values["top"])
        # Building a land view and matching are CPU and database work: off the event loop.
        result = await run_in_threadpool(lambda: run_match(land_views(request).get(horizon), requirement, top, principal))
    except (FormError, RequirementError) as exc:
        error = {"field": exc.field, "zh": exc.reason_zh, "en": exc.reason_en}
        ctx = _context(request, values, result=None, error=error, requirement=None)
        # htmx swaps only 2xx answers: the message is the answer there; a plain POST says 422.
        return page(request, "match/_results.html" if partial else "match/index.html", status_code=200 if partial else 422, **ctx)
    except HTTPException as exc:  # the as-of date
        error = {"field": "as_of", "zh": str(exc.detail), "en": str(exc.detail)}
        ctx = _context(request, values, result=None, error=error, requirement=None)
        return page(request, "match/_results.html" if partial else "match/index.html", status_code=200 if partial else 422, **ctx)
    lang = lang_of(request)
    ctx = _context(
        request, values, result=result, error=None,
        requirement=requirement, requirement_json=json.dumps(requirement, ensure_ascii=False, indent=1),
        map=_map(result, requirement, lang),
    )  # fmt: skip
    return page(request, "match/_results.html" if partial else "match/index.html", **ctx)


# --- API --------------------------------------------------------------------------------------


class Criterion(BaseModel):
    criterion: str
    value: Any = Field(description="The site's value for it (number, code or text; null: not recorded)")
    score: float = Field(description="0–1")
    weight: float
    reason_zh: str
    reason_en: str
    target: str | None = None
    max_km: float | None = None


class RankedSite(BaseModel):
    rank: int
    site_id: str
    kind: str
    name: str | None
    park: str | None
    score: float = Field(description="0–100")
    status: str | None
    lon: float | None
    lat: float | None
    criteria: list[Criterion]


class Miss(BaseModel):
    site_id: str
    kind: str
    name: str | None
    park: str | None
    failed: str = Field(description="The one hard constraint the site fails")
    value: Any
    reason_zh: str
    reason_en: str
    target: str | None = None
    score: float
    lon: float | None
    lat: float | None


class Note(BaseModel):
    zh: str
    en: str


class MatchResult(BaseModel):
    investor: str | None
    industry: str | None
    kind: str = Field(description="idle (land) or factory")
    as_of: date
    known_at: datetime | None
    candidates: int
    matched: int
    weights: dict[str, float]
    allowed_land_use: list[str] | None
    distance: str
    notes: list[Note]
    results: list[RankedSite]
    closest_misses: list[Miss]


REQUIREMENT_EXAMPLE = {
    "investor": "某新材料公司", "industry": "新材料", "land_use": ["100102"], "land_area_mu": {"min": 50, "max": 120},
    "max_price_wan_per_mu": 30, "near": [{"name": "高速出口", "lon": 106.26, "lat": 26.41, "max_km": 10}],
    "weights": {"area_fit": 0.4, "distance": 0.3, "price": 0.3},
}  # fmt: skip


@api.post("/match", response_model=MatchResult, response_model_exclude_unset=True, summary="Rank sites for an investor's requirement · 智能选址")
def api_match(
    request: Request,
    principal: Reader,
    requirement: Annotated[dict[str, Any], Body(description="The investor requirement (shared/DOMAIN.md)", examples=[REQUIREMENT_EXAMPLE])],
    as_of: Annotated[str, Query(pattern=DATE, description="Land and projects as of this day (default today)")] = "",
    known_at: Annotated[str, Query(max_length=40)] = "",
    top: Annotated[int, Query(ge=1, le=MAX_TOP)] = DEFAULT_TOP,
) -> dict[str, Any]:
    """The same answer as ``zhaoshang match --json`` for the same requirement, date and knowledge instant.
    An unusable requirement answers 422 naming the field, in Chinese and English."""
    horizon = Horizon(parse_as_of(request, as_of), parse_known(known_at))
    view = land_views(request).get(horizon)
    try:
        return run_match(view, requirement, top, principal)
    except RequirementError as exc:
        raise HTTPException(422, [{"loc": ["body", *exc.field.split(".")], "msg": exc.reason_en, "type": "value_error", "msg_zh": exc.reason_zh}]) from None
    except (ValueError, TypeError, OverflowError) as exc:  # numbers beyond a float, and the like
        raise HTTPException(422, [{"loc": ["body"], "msg": f"unusable requirement: {exc}", "type": "value_error", "msg_zh": "需求无法使用"}]) from None
