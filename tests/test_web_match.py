"""智能选址 page and API: the same ranking as land.matching.match and `zhaoshang match`, clear refusals,
hostile text as text, the unit scope in reasons, and the map pick in a real browser."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from events.store import Horizon
from land.matching import match
from reports.matches import load_sites, stamp
from tests.web_district import HOSTILE_NAMES
from tests.webutil import UNIT_A, client_login, login
from warehouse.db import make_engine
from warehouse.land_sites import load_land_view
from zhaoshang.cli import app as cli_app

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
EXIT = {"name": "高速出口", "lon": 106.27, "lat": 26.44, "max_km": 8}  # between the district's first two parks
LAND_REQ: dict[str, Any] = {
    "investor": "某新材料公司",
    "industry": "新材料",
    "land_area_mu": {"min": 20, "max": 150},
    "max_price_wan_per_mu": 30,
    "near": [EXIT],
    "weights": {"area_fit": 0.4, "distance": 0.3, "price": 0.3},
}
FACTORY_REQ: dict[str, Any] = {"investor": "某电子公司", "industry": "电子信息", "factory": {"floor_area_m2": {"min": 1000}, "max_rent_yuan_m2_month": 18}}
LAND_FORM = {
    "investor": "某新材料公司", "industry": "新材料", "want": "land", "area_min": "20", "area_max": "150", "max_price": "30",
    "near": f"{EXIT['name']},{EXIT['lon']},{EXIT['lat']},{EXIT['max_km']}", "w_area_fit": "0.4", "w_distance": "0.3", "w_price": "0.3",
}  # fmt: skip


@pytest.fixture(scope="module")
def reference(web_district_url: tuple[Any, Any]) -> Any:
    """match() over reports.matches.load_sites: what `zhaoshang match` runs."""
    url, district = web_district_url
    engine = make_engine(url, as_app=False)
    try:
        _, index = load_sites(engine, district.today)
    finally:
        engine.dispose()
    return lambda req, top=10: stamp(match(req, index, top=top), district.today, None)


def _ranking(result: dict[str, Any]) -> list[tuple[str, float]]:
    return [(r["site_id"], r["score"]) for r in result["results"]]


@pytest.mark.parametrize("requirement", [LAND_REQ, FACTORY_REQ, {"investor": "只要可供的地"}], ids=["land", "factory", "bare"])
def test_the_api_ranks_as_the_matching_engine(district_client: Any, reference: Any, requirement: dict[str, Any]) -> None:
    client_login(district_client, "planner1")
    got = district_client.post("/api/match", json=requirement)
    assert got.status_code == 200, got.text
    body = got.json()
    expected = reference(requirement)
    assert expected["results"], "the requirement ranks something in the district"
    assert _ranking(body) == _ranking(expected)
    assert [m["site_id"] for m in body["closest_misses"]] == [m["site_id"] for m in expected["closest_misses"]]
    assert body["matched"] == expected["matched"] and body["candidates"] == expected["candidates"]
    assert body["results"][0]["criteria"] == json.loads(json.dumps(expected["results"][0]["criteria"], default=str))
    assert body["as_of"] == expected["as_of"]


def test_the_cli_ranks_the_same(district_client: Any, web_district_url: tuple[Any, Any], tmp_path: Path) -> None:
    url, district = web_district_url
    path = tmp_path / "req.json"
    path.write_text(json.dumps(LAND_REQ, ensure_ascii=False), encoding="utf-8")
    cli = CliRunner().invoke(
        cli_app,
        ["match", str(path), "--json", "--as-of", district.today.isoformat(), "--database-url", url.render_as_string(hide_password=False)],
    )
    assert cli.exit_code == 0, cli.output
    client_login(district_client, "planner1")
    web = district_client.post("/api/match", json=LAND_REQ).json()
    assert _ranking(web) == _ranking(json.loads(cli.stdout))


def _page_ranking(html: str) -> list[str]:
    table = re.search(r'<table class="ranked">(.*?)</table>', html, re.S)
    assert table, html[-2000:]
    return re.findall(r'<tr data-site="([^"]+)">', table.group(1))


def test_the_form_ranks_as_the_engine_with_and_without_htmx(district_client: Any, reference: Any) -> None:
    csrf = client_login(district_client, "planner1")
    expected = [s for s, _ in _ranking(reference(LAND_REQ))]
    full = district_client.post("/match", data={**LAND_FORM, "csrf_token": csrf})
    assert full.status_code == 200 and "<html" in full.text
    assert _page_ranking(full.text) == expected
    partial = district_client.post("/match", data=LAND_FORM, headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert partial.status_code == 200 and "<html" not in partial.text and 'id="match-results"' in partial.text
    assert _page_ranking(partial.text) == expected
    # the requirement it matched is shown, as the CLI takes it
    shown = re.search(r'<pre class="requirement">(.*?)</pre>', partial.text, re.S)
    assert shown and json.loads(html.unescape(shown.group(1))) == LAND_REQ


def test_the_factory_form(district_client: Any, reference: Any) -> None:
    csrf = client_login(district_client, "planner1")
    form = {"investor": "某电子公司", "industry": "电子信息", "want": "factory", "floor_min": "1000", "max_rent": "18", "csrf_token": csrf}
    page = district_client.post("/match", data=form)
    assert _page_ranking(page.text) == [s for s, _ in _ranking(reference(FACTORY_REQ))]


def test_the_form_needs_its_csrf_token(district_client: Any) -> None:
    client_login(district_client, "planner1")
    assert district_client.post("/match", data=LAND_FORM).status_code == 403
    assert district_client.get("/match").status_code == 200


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"area_min": "150", "area_max": "20"}, "land_area_mu", "大于"),
        ({"max_price": "cheap"}, "max_price_wan_per_mu", "应为数字"),
        ({"near": "somewhere"}, "near[0]", "经度"),
        ({"near": "106.2,95.0"}, "near[0].lat", "纬度"),
        ({"w_price": "-1"}, "weights.price", "不小于 0"),
        ({"top": "0"}, "top", "1 至"),
        ({"as_of": "2024-02-30"}, "as_of", "日期"),
        ({"industry": "服装", "land_use": "100103"}, "land_use", "不适用"),
    ],
)
def test_an_invalid_requirement_gets_a_clear_message(district_client: Any, changes: dict[str, str], field: str, words: str) -> None:
    csrf = client_login(district_client, "planner1")
    form = {**LAND_FORM, **changes, "csrf_token": csrf}
    full = district_client.post("/match", data=form)
    assert full.status_code == 422
    assert f'data-field="{field}"' in full.text and words in full.text
    partial = district_client.post("/match", data=form, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and 'role="alert"' in partial.text and words in partial.text


@pytest.mark.parametrize(
    "body",
    [
        {"investor": "x", "land_area_mu": {"min": 10, "max": 1}},
        {"investor": "x", "land_area_mu": {"min": 10**400}},
        {"investor": "x", "near": [{"lon": "a", "lat": 1, "max_km": 1}]},
        {"investor": "x", "weights": {"price": 0, "area_fit": 0, "distance": 0, "readiness": 0}},
        {"no_investor": True},
        {},
    ],
)
def test_the_api_refuses_an_invalid_requirement_with_422(district_client: Any, body: dict[str, Any]) -> None:
    client_login(district_client, "planner1")
    response = district_client.post("/api/match", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"]
    assert district_client.post("/api/match", content=b"[1, 2]", headers={"content-type": "application/json"}).status_code == 422


def test_hostile_text_is_shown_as_text(district_client: Any) -> None:
    csrf = client_login(district_client, "planner1")
    for name in HOSTILE_NAMES:
        page = district_client.post("/match", data={**LAND_FORM, "investor": name, "industry": name, "csrf_token": csrf})
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
    bad_near = district_client.post("/match", data={**LAND_FORM, "near": '<img src=x onerror=alert(1)>', "csrf_token": csrf})
    assert bad_near.status_code == 422 and "<img src=x" not in bad_near.text and "&lt;img src=x" in bad_near.text


def test_a_unit_officer_sees_only_own_projects_named_in_reasons(district_client: Any, web_district_url: tuple[Any, Any]) -> None:
    url, district = web_district_url
    engine = make_engine(url, as_app=False)
    try:
        takes = load_land_view(engine, Horizon(district.today)).takes
    finally:
        engine.dispose()
    other = set(takes.loc[takes["unit"] != UNIT_A, "project_id"])
    bare = {"investor": "只要可供的地"}  # every taken parcel misses on availability alone
    client_login(district_client, "planner1")
    planner = district_client.post("/api/match?top=50", json=bare).json()
    named = " ".join(m["reason_en"] for m in planner["closest_misses"] if m["failed"] == "status")
    assert any(p in named for p in other), "the planner's reasons name other units' projects"
    district_client.cookies.clear()
    client_login(district_client, "unit_a")
    scoped = district_client.post("/api/match?top=50", json=bare).json()
    assert [m["site_id"] for m in scoped["closest_misses"]] == [m["site_id"] for m in planner["closest_misses"]]
    text = " ".join(m["reason_en"] + m["reason_zh"] for m in scoped["closest_misses"])
    assert not any(re.search(rf"\b{re.escape(p)}\b", text) for p in other)


def test_anonymous_users_cannot_match(district_client: Any) -> None:
    assert district_client.get("/match", follow_redirects=False).status_code == 303
    assert district_client.post("/api/match", json=LAND_REQ).status_code == 401


def test_picking_on_the_map_and_matching_in_a_real_browser(browser: Any, district_server: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        login(page, district_server, "planner1")
        page.goto(f"{district_server}/match")
        page.wait_for_selector("#pick-map[data-loaded='1']")
        page.click("#pick-map", position={"x": 150, "y": 120})
        near = page.input_value("#near")
        assert re.fullmatch(r"-?\d+\.\d{6},-?\d+\.\d{6}", near), near
        lon, lat = (float(v) for v in near.split(","))
        assert 105 < lon < 108 and 25 < lat < 28  # inside the district's view
        page.fill("input[name=industry]", "新材料")
        page.fill("input[name=area_min]", "20")
        page.fill("input[name=area_max]", "150")
        page.fill("input[name=near_km]", "60")
        page.evaluate("window.__notReloaded = true")
        page.click("#match-form button[type=submit]")
        page.wait_for_selector("#match-results table.ranked")
        page.wait_for_selector("#match-map[data-ready='1']")
        assert page.evaluate("window.__notReloaded") is True  # swapped in by htmx, no reload
        assert page.locator("#match-results table.ranked tbody tr[data-site]").count() > 0
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / "match-desktop.png"))
        page.set_viewport_size({"width": 375, "height": 812})
        page.locator("#match-results").evaluate("el => el.scrollIntoView()")
        page.screenshot(path=str(SCREENSHOTS / "match-phone.png"))
    finally:
        page.close()


def test_a_date_before_any_land_matches_nothing_without_failing(district_client: Any) -> None:
    client_login(district_client, "planner1")
    body = district_client.post("/api/match?as_of=1990-01-02", json=LAND_REQ)
    assert body.status_code == 200, body.text
    assert body.json()["results"] == [] and body.json()["candidates"] == 0
    assert district_client.get("/api/land/sites?as_of=1990-01-02").json()["total"] == 0
    assert district_client.get("/land?as_of=1990-01-02").status_code == 200


def test_the_match_page_reads_in_english(district_client: Any) -> None:
    csrf = client_login(district_client, "planner1")
    assert "Site matching" in district_client.get("/match?lang=en").text
    page = district_client.post("/match?lang=en", data={**LAND_FORM, "csrf_token": csrf})
    assert page.status_code == 200 and "Ranked sites" in page.text and "within 20–150 mu" in page.text
