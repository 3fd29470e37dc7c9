"""驾驶舱 the dashboard: its figures are those of ``zhaoshang report kpis`` at the same horizon, in the
HTML and in a real browser; the published/corrected switch; the trend agrees with the KPI report;
the ranking's xlsx; a unit officer's view; hostile unit names stay text."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine
from typer.testing import CliRunner

from events.escape import xlsx_unescape
from events.kpis import KPI_KEYS
from events.model import SHANGHAI
from events.store import Horizon
from reports.kpi import format_kpi
from tests.web_district import HOSTILE_NAMES, WebDistrict, dashboard_event, hostile_unit_events
from tests.webutil import UNIT_A, UNIT_B, client_login, login
from warehouse import read_models
from warehouse.dashboard import months_without_progress, series_at, trend_months
from warehouse.db import make_engine
from warehouse.event_store import load_records
from warehouse.replay import kpi_report
from zhaoshang.cli import app as cli_app

runner = CliRunner()
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


# --- helpers -----------------------------------------------------------------------------------


class DashboardHTML(HTMLParser):
    """The cards (data-kpi → data-value), the ranking rows and the trend rows of a dashboard page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.cards: dict[str, str] = {}
        self.card_text: dict[str, str] = {}
        self.rows: list[dict[str, str]] = []
        self.trend: list[dict[str, str]] = []
        self._row: dict[str, str] | None = None
        self._value_of: str | None = None
        self._in_card: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "data-kpi" in a:
            self.cards[a["data-kpi"]] = a["data-value"]
            self._in_card = a["data-kpi"]
        elif self._in_card and a.get("class") == "value":
            self._value_of = self._in_card
        elif tag == "tr" and "data-unit" in a:
            self._row = {"unit": a["data-unit"], "rank": a["data-rank"], "light": a["data-light"]}
            self.rows.append(self._row)
        elif tag == "tr" and "data-month" in a:
            self._row = {"month": a["data-month"]}
            self.trend.append(self._row)
        elif tag == "td" and "data-key" in a and self._row is not None:
            self._row[a["data-key"]] = a["data-value"]

    def handle_data(self, data: str) -> None:
        if self._value_of is not None:
            self.card_text[self._value_of] = data.strip()
            self._value_of = None
            self._in_card = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None


def as_value(text: str) -> Any:
    if text == "":
        return None
    number = float(text)
    return int(number) if number.is_integer() and "." not in text else number


def same_figures(shown: dict[str, str], report: dict[str, Any]) -> None:
    assert {k: as_value(shown[k]) for k in KPI_KEYS} == {k: report[k] for k in KPI_KEYS}


def cli_kpis(url: Any, *args: str) -> Any:
    text_url = url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else str(url)
    result = runner.invoke(cli_app, ["report", "kpis", *args, "--json", "--database-url", text_url])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def period(district: WebDistrict) -> dict[str, str]:
    """A period that holds the district's late correction (T-A's start, T-B's retracted landing)."""
    end = district.history_end
    return {"as_of": end.isoformat(), "date_from": (end - timedelta(days=365)).isoformat(), "date_to": end.isoformat()}


def cli_args(p: dict[str, str], known_at: str | None = None) -> list[str]:
    args = ["--from", p["date_from"], "--to", p["date_to"], "--as-of", p["as_of"]]
    return args + (["--known-at", known_at] if known_at else [])


def published_query(district: WebDistrict) -> dict[str, str]:
    return {"version": "published", "published_at": district.published_at.isoformat()}


# --- figures equal the CLI's --------------------------------------------------------------------


@pytest.mark.parametrize("version", ["corrected", "published"])
def test_cards_equal_report_kpis(district_client: Any, web_district_url: Any, version: str) -> None:
    url, district = web_district_url
    client_login(district_client, "planner1")
    p = period(district)
    query = {**p, **(published_query(district) if version == "published" else {})}
    page = district_client.get("/dashboard", params=query)
    assert page.status_code == 200, page.text
    shown = DashboardHTML(page.text)
    report = cli_kpis(url, *cli_args(p, district.published_at.isoformat() if version == "published" else None))
    same_figures(shown.cards, report)
    assert shown.card_text == {k: format_kpi(k, report[k]) for k in KPI_KEYS}


def test_the_switch_changes_the_figures_of_the_late_correction(district_client: Any, web_district_url: Any) -> None:
    """T-A's start was recorded after the publication, T-B's landing retracted after it. In the cohort
    signed on their signing day, as of the history's end: as published, T-A is not started yet and
    T-B is landed; as corrected, T-A is started. (Other projects of the day can only add to the
    corrected starts: their facts recorded after the publication count only there.)"""
    _, district = web_district_url
    signed_on = (district.history_end - timedelta(days=200)).isoformat()
    p = {"as_of": district.history_end.isoformat(), "date_from": signed_on, "date_to": signed_on}
    client_login(district_client, "planner1")
    corrected = DashboardHTML(district_client.get("/dashboard", params=period(district)).text).cards
    published = DashboardHTML(district_client.get("/dashboard", params={**period(district), **published_query(district)}).text).cards
    assert corrected != published
    client_login(district_client, "unit_a")
    assert district_client.get("/api/me").json()["unit"] == UNIT_A
    mine = DashboardHTML(district_client.get("/dashboard", params=p).text).cards
    then = DashboardHTML(district_client.get("/dashboard", params={**p, **published_query(district)}).text).cards
    assert int(then["started"]) <= int(mine["started"]) - 1
    client_login(district_client, "unit_b")
    assert district_client.get("/api/me").json()["unit"] == UNIT_B
    then = DashboardHTML(district_client.get("/dashboard", params={**p, **published_query(district)}).text).cards
    assert int(then["landed"]) >= 1


def test_ranking_and_its_xlsx_equal_report_kpis_by_unit(district_client: Any, web_district_url: Any) -> None:
    url, district = web_district_url
    client_login(district_client, "leader1")  # a leader reads everything
    p = {**period(district), "ranking": "period"}
    page = DashboardHTML(district_client.get("/dashboard", params=p).text)
    report = cli_kpis(url, *cli_args(p), "--by", "unit")
    ranked = [r for r in page.rows if r["rank"]]
    assert [(r["unit"], int(r["rank"])) for r in ranked] == [(g["key"], g["rank"]) for g in report["groups"]]
    for row, group in zip(ranked, report["groups"], strict=True):
        same_figures(row, group)
    assert all(r["signed"] == "0" for r in page.rows[len(ranked) :])  # unranked: nothing counted, open projects
    assert {r["light"] for r in page.rows} <= {"green", "yellow", "red"}

    response = district_client.get("/dashboard/ranking.xlsx", params=p)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(response.content)).active
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    assert values[2][:2] == ["rank", "unit"] and values[2][5:] == list(KPI_KEYS)
    body = values[3:-1]
    assert [xlsx_unescape(r[1]) for r in body] == [r["unit"] for r in page.rows]
    assert [(r[0], xlsx_unescape(r[1])) for r in body if r[0] is not None] == [(g["rank"], g["key"]) for g in report["groups"]]
    for r, g in zip(body, report["groups"], strict=False):
        assert r[5:] == [g[k] for k in KPI_KEYS]
    for r, shown in zip(body, page.rows, strict=True):
        assert {"绿": "green", "黄": "yellow", "红": "red"}[r[2]] == shown["light"]
    assert values[-1][1] == "合计" and values[-1][5:] == [report["total"][k] for k in KPI_KEYS]


def test_quarter_ranking_is_the_default(district_client: Any, web_district_url: Any) -> None:
    url, district = web_district_url
    client_login(district_client, "planner1")
    end = district.history_end
    q_start = date(end.year, 3 * ((end.month - 1) // 3) + 1, 1)
    page = DashboardHTML(district_client.get("/dashboard", params={"as_of": end.isoformat()}).text)
    report = cli_kpis(url, "--from", q_start.isoformat(), "--to", end.isoformat(), "--as-of", end.isoformat(), "--by", "unit")
    assert [(r["unit"], int(r["rank"])) for r in page.rows if r["rank"]] == [(g["key"], g["rank"]) for g in report["groups"]]


def test_api_kpis_equals_report_kpis(district_client: Any, web_district_url: Any) -> None:
    url, district = web_district_url
    client_login(district_client, "admin1")
    p = period(district)
    known = district.published_at.isoformat()
    for by in (None, "unit", "industry"):
        for mode in ("cohort", "flow"):
            params = {**p, "known_at": known, "mode": mode, **({"by": by} if by else {})}
            got = district_client.get("/api/kpis", params=params)
            assert got.status_code == 200, got.text
            extra = ["--mode", mode] + (["--by", by] if by else [])
            assert got.json() == cli_kpis(url, *cli_args(p, known), *extra)


def test_unit_officer_sees_own_unit_only(district_client: Any, web_district_url: Any) -> None:
    url, district = web_district_url
    p = {**period(district), "ranking": "period"}
    by_unit = cli_kpis(url, *cli_args(p), "--by", "unit")
    own = next(g for g in by_unit["groups"] if g["key"] == UNIT_A)
    client_login(district_client, "unit_a")
    response = district_client.get("/dashboard", params=p)
    page = DashboardHTML(response.text)
    same_figures(page.cards, own)
    assert [(r["unit"], int(r["rank"])) for r in page.rows] == [(UNIT_A, own["rank"])]
    assert UNIT_B not in response.text
    assert f"<strong>{own['rank']}</strong> / {len(by_unit['groups'])}" in response.text

    ws = load_workbook(io.BytesIO(district_client.get("/dashboard/ranking.xlsx", params=p).content)).active
    rows = [list(r) for r in ws.iter_rows(values_only=True)][3:]
    assert [(r[0], r[1]) for r in rows] == [(own["rank"], UNIT_A)]

    api = district_client.get("/api/kpis", params=p).json()
    assert {k: api[k] for k in KPI_KEYS} == {k: own[k] for k in KPI_KEYS}
    ranked = district_client.get("/api/kpis", params={**p, "by": "unit"}).json()
    assert [(g["key"], g["rank"]) for g in ranked["groups"]] == [(UNIT_A, own["rank"])]
    by_industry = district_client.get("/api/kpis", params={**p, "by": "industry"}).json()
    assert by_industry["total"]["signed"] == own["signed"]
    trend = district_client.get("/api/kpis/trend", params={"as_of": p["as_of"]}).json()
    assert trend["unit"] == UNIT_A


def test_access(district_client: Any, web_district_url: Any) -> None:
    assert district_client.get("/dashboard", follow_redirects=False).status_code == 303
    assert district_client.get("/api/kpis").status_code == 401
    assert district_client.get("/api/kpis/trend").status_code == 401
    assert district_client.get("/dashboard/ranking.xlsx", follow_redirects=False).status_code == 303
    client_login(district_client, "leader1")
    assert district_client.get("/dashboard").status_code == 200  # defaults: today, this year, this quarter
    english = district_client.get("/dashboard", params={"lang": "en"}).text
    assert "Landing rate" in english and "months without progress" in english
    assert district_client.get("/api/kpis").status_code == 200
    for bad in ({"as_of": "0001-01-01"}, {"date_from": "2024-05-01", "date_to": "2024-01-01"}, {"published_at": "not a time"},
                {"published_at": "9999-12-31", "version": "published"}, {"mode": "x"}, {"ranking": "<b>"}):  # fmt: skip
        assert district_client.get("/dashboard", params=bad).status_code == 422, bad
    for bad in ({"known_at": "yesterday"}, {"known_at": "9999-12-31"}, {"by": "name"}, {"months": "0"}, {"as_of": "3000-01-01"}):
        path = "/api/kpis/trend" if "months" in bad else "/api/kpis"
        assert district_client.get(path, params=bad).status_code == 422, bad


# --- the trend in one statement agrees with the KPI report -------------------------------------


def _trend_reference(conn: Any, as_of: date, known_at: datetime | None, unit: str | None) -> list[dict[str, Any]]:
    out = []
    for first, last in trend_months(as_of):
        if unit is None:
            r = kpi_report(conn, date_from=first, date_to=last, as_of=as_of, known_at=known_at, mode="flow")
        else:
            ranked = kpi_report(conn, date_from=first, date_to=last, as_of=as_of, known_at=known_at, mode="flow", by="unit")
            r = next((g for g in ranked["groups"] if g["key"] == unit), dict.fromkeys(KPI_KEYS, 0))
        out.append({k: r[k] for k in ("signed", "landed", "started", "produced", "funds_wan")})
    return out


def _trend_figures(trend: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: m[k] for k in ("signed", "landed", "started", "produced", "funds_wan")} for m in trend]


def test_trend_agrees_with_kpi_report(web_district_url: Any, district_client: Any) -> None:
    url, district = web_district_url
    engine = make_engine(url)
    try:
        for as_of in (district.history_end, district.history_end - timedelta(days=100)):
            for known_at in (None, district.published_at):
                for unit in (None, UNIT_A, UNIT_B):
                    with engine.connect() as conn:
                        got = _trend_figures(series_at(conn, Horizon(as_of, known_at), unit=unit).trend)
                        assert got == _trend_reference(conn, as_of, known_at, unit), (as_of, known_at, unit)
                        if unit is not None:
                            p = {"date_from": as_of - timedelta(days=400), "date_to": as_of, "as_of": as_of, "known_at": known_at}
                            ranked = kpi_report(conn, **p, by="unit")
                            own = next(g for g in ranked["groups"] if g["key"] == unit)
                            mine = kpi_report(conn, unit=unit, **p)
                            assert {k: mine[k] for k in KPI_KEYS} == {k: own[k] for k in KPI_KEYS}
        with engine.connect() as conn:
            total = sum(m["signed"] for m in series_at(conn, Horizon(district.history_end)).trend)
        assert total > 0  # the district has signings in the last twelve months
        client_login(district_client, "planner1")
        api = district_client.get("/api/kpis/trend", params={"as_of": district.history_end.isoformat()}).json()
        with engine.connect() as conn:
            assert _trend_figures(api["months"]) == _trend_reference(conn, district.history_end, None, None)
    finally:
        engine.dispose()
    page = DashboardHTML(district_client.get("/dashboard", params={"as_of": district.history_end.isoformat()}).text)
    assert [(m["month"], int(m["signed"]), float(m["funds_wan"])) for m in page.trend] == [
        (m["month"], m["signed"], m["funds_wan"]) for m in api["months"]
    ]


def test_trend_and_unit_figures_while_the_read_models_lag(db: Engine) -> None:
    """Events appended after the read models' position are re-folded: the same figures before and after refreshing."""
    end = date(2025, 6, 30)
    load_records(db, hostile_unit_events(end))
    unit = HOSTILE_NAMES[1]
    with db.connect() as conn:
        lagging = (_trend_figures(series_at(conn, Horizon(end), unit=unit).trend), series_at(conn, Horizon(end)).activity)
        assert lagging[0] == _trend_reference(conn, end, None, unit)
        assert _trend_figures(series_at(conn, Horizon(end)).trend) == _trend_reference(conn, end, None, None)
    read_models.refresh(db)
    with db.connect() as conn:
        assert (_trend_figures(series_at(conn, Horizon(end), unit=unit).trend), series_at(conn, Horizon(end)).activity) == lagging


def test_months_without_progress() -> None:
    assert months_without_progress(date(2024, 1, 31), date(2024, 2, 29)) == 0
    assert months_without_progress(date(2024, 1, 31), date(2024, 3, 31)) == 2
    assert months_without_progress(date(2024, 1, 15), date(2024, 7, 15)) == 6
    assert months_without_progress(date(2024, 1, 16), date(2024, 7, 15)) == 5
    assert months_without_progress(date(2024, 8, 1), date(2024, 7, 15)) == 0


def test_hostile_unit_names_are_text(client: Any, db: Engine) -> None:
    end = date(2025, 6, 30)
    load_records(db, hostile_unit_events(end))
    read_models.refresh(db)
    client_login(client, "planner1")
    p = {"as_of": end.isoformat(), "date_from": "2024-07-01", "date_to": end.isoformat(), "ranking": "period"}
    response = client.get("/dashboard", params=p)
    assert response.status_code == 200
    assert "<script>alert" not in response.text and "<img src=x" not in response.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;项目" in response.text
    shown = {r["unit"] for r in DashboardHTML(response.text).rows}
    assert set(HOSTILE_NAMES) <= shown
    ws = load_workbook(io.BytesIO(client.get("/dashboard/ranking.xlsx", params=p).content)).active
    cells = {ws.cell(row=r, column=2).value: ws.cell(row=r, column=2) for r in range(4, ws.max_row)}
    formula = cells['=HYPERLINK("http://x","y")']
    assert formula.data_type == "s" and formula.quotePrefix  # text, never a formula


# --- in a real browser --------------------------------------------------------------------------


def _cards_in_browser(page: Any) -> dict[str, str]:
    texts: dict[str, str] = page.eval_on_selector_all(
        "[data-kpi]", "els => Object.fromEntries(els.map(e => [e.dataset.kpi, e.querySelector('.value').textContent.trim()]))"
    )
    return texts


def test_dashboard_in_the_browser(browser: Any, district_server: str, web_district_url: Any) -> None:
    url, district = web_district_url
    p = period(district)
    corrected = cli_kpis(url, *cli_args(p))
    published = cli_kpis(url, *cli_args(p, district.published_at.isoformat()))
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        login(page, district_server, "planner1")
        query = "&".join(f"{k}={v}" for k, v in p.items())
        page.goto(f"{district_server}/dashboard?{query}")
        page.wait_for_selector("#trend-chart[data-rendered] canvas")
        page.wait_for_selector("#funnel-chart[data-rendered] canvas")
        assert _cards_in_browser(page) == {k: format_kpi(k, corrected[k]) for k in KPI_KEYS}
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(600)  # let the charts' entry animation finish for the picture
        page.screenshot(path=str(SCREENSHOTS / "dashboard-desktop.png"))

        # the switch: as published on the district's publication instant
        page.check("input[name=version][value=published]")
        page.fill("input[name=published_at]", district.published_at.isoformat())
        page.click("#dash-filters button[type=submit]")
        page.wait_for_selector("#trend-chart[data-rendered] canvas")
        assert "version=published" in page.url
        assert _cards_in_browser(page) == {k: format_kpi(k, published[k]) for k in KPI_KEYS}
        assert _cards_in_browser(page)["landed"] != format_kpi("landed", corrected["landed"])

        page.set_viewport_size({"width": 375, "height": 812})
        page.goto(f"{district_server}/dashboard?{query}")
        page.wait_for_selector("#funnel-chart[data-rendered] canvas")
        box = page.locator("#funnel-chart canvas").bounding_box()
        assert box is not None and box["width"] <= 375
        page.wait_for_timeout(600)
        page.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"))
    finally:
        page.close()


def test_hostile_unit_names_in_the_browser(browser: Any, web_server: str, web_db: Engine) -> None:
    end = date(2025, 6, 30)
    load_records(web_db, hostile_unit_events(end))
    read_models.refresh(web_db)
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        login(page, web_server, "planner1")
        page.goto(f"{web_server}/dashboard?as_of={end}&date_from=2024-07-01&ranking=period")
        page.wait_for_selector("#trend-chart[data-rendered] canvas")
        units = page.eval_on_selector_all("#ranking td.unit", "els => els.map(e => e.textContent)")
        assert set(HOSTILE_NAMES) <= set(units)
        assert page.locator("#ranking img").count() == 0
        assert dialogs == []
    finally:
        page.close()


def test_figures_follow_the_log_whatever_is_cached(client: Any, db: Engine) -> None:
    """Figures are reused only while the read models are current and unchanged: an event appended
    shows at once (read models lagging), and still after the models catch up."""
    end = date(2025, 6, 30)
    load_records(db, hostile_unit_events(end))
    read_models.refresh(db)
    client_login(client, "planner1")
    p = {"as_of": end.isoformat(), "date_from": "2024-07-01", "date_to": end.isoformat()}
    first = DashboardHTML(client.get("/dashboard", params=p).text).cards
    assert DashboardHTML(client.get("/dashboard", params=p).text).cards == first
    recorded = datetime.combine(end, datetime.min.time(), SHANGHAI)
    load_records(db, [dashboard_event("X-s", "X", "signed", end - timedelta(days=3), {"investment_wan": 1, "investor": "某", "industry": "新材料", "name": "x", "unit": "某单位"}, recorded)])
    lagging = DashboardHTML(client.get("/dashboard", params=p).text).cards
    assert int(lagging["signed"]) == int(first["signed"]) + 1
    read_models.refresh(db)
    assert DashboardHTML(client.get("/dashboard", params=p).text).cards == lagging
