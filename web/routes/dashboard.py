"""驾驶舱 the dashboard: KPI cards, the funnel, the monthly trend, the ranking of the responsible
units (季排名) with 红黄绿灯, its xlsx export, and the KPIs as JSON (``/api/kpis``).

Figures are those of ``zhaoshang report kpis`` (``warehouse.replay.kpi_report``) at the same horizon:
the as-of date and, "as published", the instant a bulletin was published (``known_at``); "as
corrected" is everything known now. A unit officer sees its own unit's figures only: the cards,
funnel and trend of its projects and, of the ranking, its own row with its rank.

Lights (``WebConfig.lights``): a unit's *months without progress* are the whole calendar months from
the latest lifecycle change (signing, landing, start, cancellation) of any of its open projects
(signed, neither produced nor cancelled, on the as-of day) to the as-of day
(``warehouse.dashboard.months_without_progress``). Yellow from ``yellow_months``, red from
``red_months``; a unit with no open project is green (nothing is waiting on it).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from events.calendar import month_end, previous_month_end
from events.kpis import KPI_KEYS, KpiGroup, KpiMode, finish_kpis, zero_sums
from events.model import STAGE_LABELS, end_of_day
from events.store import Horizon
from reports.kpi import format_kpi
from reports.ranking import write_ranking_xlsx
from warehouse.dashboard import Series, UnitActivity, series_at
from warehouse.progress import pending_count
from warehouse.replay import kpi_report, parse_known_at
from web.answers import answer
from web.config import Lights
from web.i18n import lang_of
from web.security import Principal, Reader, engine_of
from web.templating import page

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["kpis"])

FIRST_DAY = date(1900, 1, 1)  # bounds of the dates a query may ask (month arithmetic stays in range)
LAST_DAY = date(2999, 12, 31)

KPI_LABELS: dict[str, tuple[str, str]] = {
    "signed": ("签约项目", "Signed"),
    "landed": ("落地项目", "Landed"),
    "started": ("开工项目", "Started"),
    "produced": ("投产项目", "Produced"),
    "cancelled": ("取消项目", "Cancelled"),
    "landing_rate": ("落地率", "Landing rate"),
    "start_rate": ("开工率", "Start rate"),
    "production_rate": ("投产率", "Production rate"),
    "investment_wan": ("总投资(万元)", "Investment (10k CNY)"),
    "funds_wan": ("到位资金(万元)", "Funds arrived (10k CNY)"),
    "stalled": ("停滞项目", "Stalled"),
}
LIGHT_TEXT: dict[str, tuple[str, str]] = {"green": ("绿灯", "green"), "yellow": ("黄灯", "yellow"), "red": ("红灯", "red")}

DayQuery = Annotated[date | None, Query(ge=FIRST_DAY, le=LAST_DAY)]
INSTANT_PATTERN = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$"
InstantQuery = Annotated[
    str | None,
    Query(
        max_length=40, pattern=INSTANT_PATTERN,
        description="ISO date or date-time; a date means the end of that day, no zone Asia/Shanghai",
    ),
]


def _instant(value: str, name: str) -> datetime:
    try:
        instant = parse_known_at(value)
        end_of_day(instant.date())  # refuses the last representable day (the horizon needs the next)
    except (ValueError, OverflowError) as exc:
        raise HTTPException(422, f"{name}: {exc}") from None
    return instant


def published_instant(as_of: date) -> datetime:
    """The default "as published" instant: when the latest monthly bulletin on ``as_of`` was
    published (the end of its month end, as ``assets.pipeline`` publishes them)."""
    last_month_end = as_of if as_of == month_end(as_of) else previous_month_end(as_of)
    return end_of_day(last_month_end)


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


@dataclass(frozen=True, slots=True)
class View:
    """What the dashboard shows: the horizon, the period, the ranking's period and the switch."""

    as_of: date
    date_from: date
    date_to: date
    mode: KpiMode
    ranking: str  # 'quarter' or 'period'
    rank_from: date
    rank_to: date
    version: str  # 'corrected' or 'published'
    published_at: datetime

    @property
    def known_at(self) -> datetime | None:
        return self.published_at if self.version == "published" else None


def dashboard_view(
    request: Request,
    as_of: DayQuery = None,
    date_from: DayQuery = None,
    date_to: DayQuery = None,
    mode: KpiMode = KpiMode.COHORT,
    ranking: Literal["quarter", "period"] = "quarter",
    version: Literal["corrected", "published"] = "corrected",
    published_at: InstantQuery = None,
) -> View:
    """The page's and the export's query: defaults are today, this year to the as-of day, the quarter."""
    published = _instant(published_at, "published_at") if published_at else None
    return view_for(as_of or request.app.state.config.today(), date_from, date_to, mode, ranking, version, published)


def view_for(
    day: date,
    date_from: date | None = None,
    date_to: date | None = None,
    mode: KpiMode = KpiMode.COHORT,
    ranking: str = "quarter",
    version: str = "corrected",
    published_at: datetime | None = None,
) -> View:
    """The view as of ``day`` (the others as :func:`dashboard_view` defaults them)."""
    hi = date_to or day
    lo = date_from or date(hi.year, 1, 1)
    if lo > hi:
        raise HTTPException(422, f"date_from {lo} is after date_to {hi}")
    published = published_at or published_instant(day)
    rank_from, rank_to = (quarter_start(day), day) if ranking == "quarter" else (lo, hi)
    return View(day, lo, hi, mode, ranking, rank_from, rank_to, version, published)


DashboardView = Annotated[View, Depends(dashboard_view)]


def light_of(months: int | None, lights: Lights) -> str:
    if months is None or months < lights.yellow_months:
        return "green"
    return "red" if months >= lights.red_months else "yellow"


def ranking_rows(
    report: dict[str, Any], activity: dict[str, UnitActivity], lights: Lights, principal: Principal
) -> tuple[list[dict[str, Any]], int]:
    """The ranking's rows with their lights (a unit officer: its own row only), and how many units are ranked.

    After the ranked units come, unranked (rank None, zero figures), the units with open projects
    but nothing counted in the ranking's period: a unit that has gone quiet is the one a light is for.
    """
    zero = finish_kpis(zero_sums(), {}, None)
    groups = [*report["groups"], *({"key": k, "rank": None, **zero} for k in activity if k not in {g["key"] for g in report["groups"]})]
    rows = []
    for group in groups:
        if not principal.may_see_unit(group["key"]):
            continue
        act = activity.get(group["key"])
        months = act.months_without_progress if act else None
        rows.append(
            {
                **group,
                "light": light_of(months, lights),
                "months_without_progress": months,
                "open_projects": act.open_projects if act else 0,
                "latest_change_on": act.latest_change_on.isoformat() if act and act.latest_change_on else None,
            }
        )
    return rows, len(report["groups"])


@dataclass(frozen=True, slots=True)
class Figures:
    cards: dict[str, Any]  # the flat KPI report of the period (the unit's for a unit officer)
    ranking: dict[str, Any]  # kpi_report(by=unit) of the ranking's period, every unit
    series: Series


def figures(conn: Connection, view: View, unit: str | None) -> Figures:
    """Everything the dashboard shows, in one transaction (the read models' position held FOR SHARE).
    Each part is the answer the API gives to the same question (``/api/kpis``, ``/api/kpis/trend``)."""
    period = _period(view)
    cards = kpis_answer(conn, period, unit, None)
    ranking_period = {**period, "date_from": view.rank_from, "date_to": view.rank_to}
    ranking = kpis_answer(conn, ranking_period, None, KpiGroup.UNIT)
    series = series_answer(conn, Horizon(view.as_of, view.known_at), unit, 12)
    return Figures(cards, ranking, series)


def _period(view: View) -> dict[str, Any]:
    """The KPI arguments of the view's period (the cards; ``/api/kpis`` asks the same)."""
    return {"date_from": view.date_from, "date_to": view.date_to, "as_of": view.as_of, "known_at": view.known_at, "mode": view.mode}


def kpis_answer(conn: Connection, args: dict[str, Any], unit: str | None, by: KpiGroup | None) -> dict[str, Any]:
    """``kpi_report`` of ``args`` (date_from, date_to, as_of, known_at, mode) as a unit (or everyone) sees it, reused."""
    key = tuple(args[k] for k in ("date_from", "date_to", "as_of", "known_at", "mode"))
    return answer(conn, ("kpis", unit, by, *key), lambda: _kpis(conn, args, unit, by))


def series_answer(conn: Connection, horizon: Horizon, unit: str | None, months: int) -> Series:
    """The trend and the units' activity at the horizon (``series_at``), reused."""
    return answer(conn, ("series", horizon, unit, months), lambda: series_at(conn, horizon, unit=unit, months=months))


def warm(conn: Connection, day: date, units: list[str]) -> None:
    """Compute today's default dashboard and KPI answers, for everyone and for each unit officer's
    unit, so no user waits for them (``web.app``'s warming)."""
    view = view_for(day)
    for unit in [None, *units]:
        cached_figures(conn, view, unit)
        kpis_answer(conn, _period(view), unit, KpiGroup.UNIT)


def cached_figures(conn: Connection, view: View, unit: str | None) -> Figures:
    """The figures, reused while the read models stand still (``web.answers``): the same dashboard is
    not summed again for each user."""
    return answer(conn, ("dashboard", view, unit), lambda: figures(conn, view, unit))


def _cards(report: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    return [
        {"key": k, "label": KPI_LABELS[k][1 if lang == "en" else 0], "value": report[k], "text": format_kpi(k, report[k])}
        for k in KPI_KEYS
    ]


def _funnel(report: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    i = 1 if lang == "en" else 0
    return [{"name": STAGE_LABELS[k][i], "value": report[k]} for k in ("signed", "landed", "started", "produced")]


def _trend_chart(trend: list[dict[str, Any]], lang: str) -> dict[str, Any]:
    i = 1 if lang == "en" else 0
    return {
        "months": [m["month"] for m in trend],
        "series": [{"name": STAGE_LABELS[k][i], "key": k, "data": [m[k] for m in trend]} for k in ("signed", "landed", "started", "produced")],
        "funds": {"name": KPI_LABELS["funds_wan"][i], "data": [m["funds_wan"] for m in trend]},
    }


@router.get("/dashboard")
def dashboard(request: Request, principal: Reader, view: DashboardView) -> Response:
    unit = principal.unit_scope
    with engine_of(request).connect() as conn:
        found = cached_figures(conn, view, unit)
        pending = pending_count(conn, unit)  # 进度上报 awaiting sign-off (a unit officer: their unit's)
    lights: Lights = request.app.state.config.lights
    rows, ranked = ranking_rows(found.ranking, found.series.activity, lights, principal)
    lang = lang_of(request)
    return page(
        request,
        "dashboard/index.html",
        view=view,
        unit=unit,
        cards=_cards(found.cards, lang),
        funnel=_funnel(found.cards, lang),
        trend=found.series.trend,
        trend_chart=_trend_chart(found.series.trend, lang),
        rows=rows,
        ranked=ranked,
        total=found.ranking["total"] if unit is None else None,
        lights=lights,
        light_text=LIGHT_TEXT,
        labels=KPI_LABELS,
        kpi_keys=KPI_KEYS,
        format_kpi=format_kpi,
        export_query=request.url.query,
        pending_reports=pending,
    )


@router.get("/dashboard/ranking.xlsx")
def ranking_xlsx(request: Request, principal: Reader, view: DashboardView) -> Response:
    unit = principal.unit_scope
    with engine_of(request).connect() as conn:
        ranking = kpi_report(
            conn, date_from=view.rank_from, date_to=view.rank_to, as_of=view.as_of, known_at=view.known_at, mode=view.mode, by=KpiGroup.UNIT
        )
        series = series_at(conn, Horizon(view.as_of, view.known_at), unit=unit, months=1)
    rows, _ = ranking_rows(ranking, series.activity, request.app.state.config.lights, principal)
    title = f"季排名 {view.rank_from} ~ {view.rank_to}，截至 {view.as_of}" + (f"，认知时点 {view.known_at.isoformat()}" if view.known_at else "，更正后")
    buffer = io.BytesIO()
    write_ranking_xlsx(title, rows, ranking["total"] if unit is None else None, buffer)
    name = f"ranking-{view.rank_from}-{view.rank_to}-{view.version}.xlsx"
    return Response(
        buffer.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- the JSON API ------------------------------------------------------------------------------


class KpiFigures(BaseModel):
    signed: int
    landed: int
    started: int
    produced: int
    cancelled: int
    landing_rate: float | None
    start_rate: float | None
    production_rate: float | None
    investment_wan: float
    funds_wan: float
    stalled: int


class KpiMeta(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    date_from: str = Field(alias="from", description="First day of the period")
    to: str
    as_of: str
    known_at: str | None
    mode: KpiMode


class KpiReport(KpiFigures, KpiMeta):
    """``zhaoshang report kpis --json`` without ``--by``."""


class KpiGroupRow(KpiFigures):
    key: str
    rank: int


class KpiRanking(KpiMeta):
    """``zhaoshang report kpis --by … --json``: the groups ranked (季排名) and the total."""

    by: KpiGroup
    groups: list[KpiGroupRow]
    total: KpiFigures


class TrendMonth(BaseModel):
    month: str = Field(description="YYYY-MM")
    date_from: str
    date_to: str
    signed: int
    landed: int
    started: int
    produced: int
    funds_wan: float


class Trend(BaseModel):
    as_of: str
    known_at: str | None
    unit: str | None = Field(description="The responsible unit the figures are limited to (a unit officer's)")
    months: list[TrendMonth]


@api.get(
    "/kpis",
    response_model=KpiReport | KpiRanking,
    response_model_by_alias=True,
    summary="KPIs · 签约/落地/开工/投产, rates, investment and funds (as `zhaoshang report kpis --json`)",
)
def api_kpis(
    request: Request,
    principal: Reader,
    date_from: DayQuery = None,
    date_to: DayQuery = None,
    as_of: DayQuery = None,
    known_at: InstantQuery = None,
    mode: KpiMode = KpiMode.COHORT,
    by: KpiGroup | None = None,
) -> KpiReport | KpiRanking:
    """Defaults: as of today, the period from the first of January of ``date_to`` (default: as of) to it.
    A unit officer gets its unit's figures; with ``by=unit``, its own row with its rank among all units."""
    day = as_of or request.app.state.config.today()
    hi = date_to or day
    lo = date_from or date(hi.year, 1, 1)
    if lo > hi:
        raise HTTPException(422, f"date_from {lo} is after date_to {hi}")
    instant = _instant(known_at, "known_at") if known_at else None
    unit = principal.unit_scope
    args: dict[str, Any] = {"date_from": lo, "date_to": hi, "as_of": day, "known_at": instant, "mode": mode}
    with engine_of(request).connect() as conn:
        report = kpis_answer(conn, args, unit, by)
    if "groups" in report:
        return KpiRanking.model_validate(report)
    return KpiReport.model_validate(report)


def _kpis(conn: Connection, args: dict[str, Any], unit: str | None, by: KpiGroup | None) -> dict[str, Any]:
    if unit is None:
        return kpi_report(conn, **args, by=by)
    if by is KpiGroup.UNIT:
        # The unit's row of everyone's ranking (that answer shared with every other unit), as a copy.
        report = dict(kpis_answer(conn, args, None, by))
        report["groups"] = [g for g in report["groups"] if g["key"] == unit]
        report["total"] = report["groups"][0] if report["groups"] else kpis_answer(conn, args, unit, None)
        return report
    return kpi_report(conn, unit=unit, **args, by=by)


@api.get("/kpis/trend", response_model=Trend, summary="Monthly trend · 月度趋势 (flow figures per calendar month)")
def api_trend(
    request: Request,
    principal: Reader,
    as_of: DayQuery = None,
    known_at: InstantQuery = None,
    months: Annotated[int, Query(ge=1, le=60)] = 12,
) -> Trend:
    """Month M: ``report kpis --mode flow --from <first of M> --to <last of M, or as_of> --as-of as_of``."""
    day = as_of or request.app.state.config.today()
    instant = _instant(known_at, "known_at") if known_at else None
    unit = principal.unit_scope
    with engine_of(request).connect() as conn:
        horizon = Horizon(day, instant)
        series = series_answer(conn, horizon, unit, months)
    return Trend(
        as_of=day.isoformat(),
        known_at=instant.isoformat() if instant else None,
        unit=unit,
        months=[TrendMonth(**m) for m in series.trend],
    )
