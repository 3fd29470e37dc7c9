"""土地 pages: the land table, map and site pages over the test district, filters equal to the land status."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from events.store import Horizon
from tests.webutil import UNIT_A, client_login, login
from warehouse.db import make_engine
from warehouse.land import land_status
from warehouse.land_sites import load_land_view

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


@pytest.fixture(scope="module")
def frame(web_district_url: tuple[Any, Any]) -> pd.DataFrame:
    """The land status of the district today, straight from warehouse.land (the reference)."""
    url, district = web_district_url
    engine = make_engine(url, as_app=False)
    try:
        with engine.connect() as conn:
            return pd.DataFrame(land_status(conn, Horizon(district.today)).drop(columns="geometry"))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def takes(web_district_url: tuple[Any, Any]) -> pd.DataFrame:
    url, district = web_district_url
    engine = make_engine(url, as_app=False)
    try:
        return load_land_view(engine, Horizon(district.today)).takes
    finally:
        engine.dispose()


def _ids(client: Any, query: str) -> tuple[set[tuple[str, str]], int]:
    seen: set[tuple[str, str]] = set()
    page_no, total = 1, 0
    while True:
        body = client.get(f"/api/land/sites?{query}&page_size=200&page={page_no}").json()
        total = body["total"]
        seen |= {(s["kind"], s["site_id"]) for s in body["sites"]}
        if page_no * 200 >= total:
            return seen, total
        page_no += 1


def _expected(frame: pd.DataFrame, **f: Any) -> set[tuple[str, str]]:
    keep = pd.Series(True, index=frame.index)
    for column in ("kind", "park", "land_use", "land_status", "status"):
        if column in f:
            keep &= frame[column] == f[column]
    if "area_min" in f:
        keep &= frame["area_mu"] >= f["area_min"]
    if "area_max" in f:
        keep &= frame["area_mu"] <= f["area_max"]
    if "max_price" in f:
        keep &= frame["price_wan_per_mu"] <= f["max_price"]
    chosen = frame[keep.fillna(False).astype(bool)]
    return set(zip(chosen["kind"], chosen["site_id"], strict=True))


def test_the_land_page_shows_every_site_as_of_today(district_client: Any, frame: pd.DataFrame) -> None:
    client_login(district_client, "planner1")
    page = district_client.get("/land")
    assert page.status_code == 200
    assert f'data-total="{len(frame)}"' in page.text
    assert page.text.count("<tr data-site=") == 50  # the first page
    assert "data-geojson-url=" in page.text


FILTERS: list[dict[str, Any]] = [
    {"kind": "factory"},
    {"kind": "idle", "land_use": "100102"},
    {"status": "available"},
    {"status": "partly_taken"},
    {"land_status": "idle"},
    {"park": "夏云工业园区"},
    {"area_min": 20, "area_max": 80},
    {"max_price": 22},
    {"kind": "idle", "park": "平坝经济开发区", "status": "available", "area_min": 10, "max_price": 40},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: "&".join(f"{k}={v}" for k, v in f.items()))
def test_filters_select_what_the_land_status_says(district_client: Any, frame: pd.DataFrame, filters: dict[str, Any]) -> None:
    client_login(district_client, "planner1")
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    got, total = _ids(district_client, query)
    expected = _expected(frame, **filters)
    assert expected, "each filter of the test selects something in the district"
    assert got == expected
    assert total == len(expected)


def test_the_status_filter_follows_the_as_of_date(district_client: Any, web_district: Any) -> None:
    client_login(district_client, "planner1")
    early = district_client.get("/api/land/sites?as_of=2019-01-02&page_size=1").json()
    now = district_client.get("/api/land/sites?page_size=1").json()
    assert early["as_of"] == "2019-01-02" and now["as_of"] == web_district.today.isoformat()
    # before the first landing nothing is taken; today some is
    assert early["counts"]["available"] == early["total"]
    assert now["counts"]["available"] < now["total"]


def test_pages_do_not_overlap_and_cover_the_table(district_client: Any, frame: pd.DataFrame) -> None:
    client_login(district_client, "planner1")
    first = district_client.get("/api/land/sites?page_size=10&page=1&sort=area_desc").json()["sites"]
    second = district_client.get("/api/land/sites?page_size=10&page=2&sort=area_desc").json()["sites"]
    assert len(first) == len(second) == 10
    assert not {s["site_id"] for s in first} & {s["site_id"] for s in second}
    areas = [s["area_mu"] for s in first + second]
    assert areas == sorted(areas, reverse=True)


def test_html_filters_and_the_htmx_partial(district_client: Any) -> None:
    client_login(district_client, "planner1")
    page = district_client.get("/land?kind=factory&status=available")
    kinds = set(re.findall(r'<tr data-site="[^"]*" data-kind="([a-z]+)" data-status="([a-z_]+)"', page.text))
    assert kinds == {("factory", "available")}
    partial = district_client.get("/land?kind=factory", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "<html" not in partial.text and 'id="land-results"' in partial.text
    nothing = district_client.get("/land?area_min=999999")
    assert 'data-total="0"' in nothing.text and "没有符合条件" in nothing.text


def test_the_map_draws_all_sites_or_only_the_page_beyond_the_cap(district_client: Any, frame: pd.DataFrame) -> None:
    client_login(district_client, "planner1")
    everything = district_client.get("/api/land/sites.geojson").json()
    assert not everything["capped"] and len(everything["features"]) == len(frame) == everything["total"]
    props = everything["features"][0]["properties"]
    assert props["href"].startswith("/land/") and props["color"].startswith("#") and props["lines"]
    capped = district_client.get("/api/land/sites.geojson?max_features=5&page_size=7&page=2").json()
    assert capped["capped"] and len(capped["features"]) == 7 and capped["total"] == len(frame)
    # the page says so when it draws only a page
    assert "地图显示全部" in district_client.get("/land").text


@pytest.mark.parametrize(
    "query",
    ["as_of=2024-13-01", "as_of=0001-01-01", "area_min=abc", "kind=park", "page=0", "page_size=1000", "known_at=yesterday",
     "status=<script>", "max_price=-1", "sort=drop"],
)  # fmt: skip
def test_bad_queries_are_refused_not_failed(district_client: Any, query: str) -> None:
    client_login(district_client, "planner1")
    for path in ("/land", "/api/land/sites", "/api/land/sites.geojson"):
        response = district_client.get(f"{path}?{query}")
        assert response.status_code == 422, (path, query, response.status_code)
        assert "<script>" not in response.text


def test_anonymous_users_are_sent_to_log_in(district_client: Any) -> None:
    assert district_client.get("/land", follow_redirects=False).status_code == 303
    assert district_client.get("/api/land/sites").status_code == 401
    assert district_client.get("/api/land/sites.geojson").status_code == 401
    assert district_client.get("/land/idle/XY-001", follow_redirects=False).status_code == 303


def _site_taken_by_other_unit(takes: pd.DataFrame) -> pd.Series:
    other = takes[(takes["unit"] != UNIT_A) & takes["unit"].notna() & takes["name"].notna()]
    assert len(other), "the district has projects of other units on its land"
    return other.iloc[0]


def test_a_site_page_shows_its_occupancy_and_hides_other_units_from_a_unit_officer(district_client: Any, takes: pd.DataFrame) -> None:
    take = _site_taken_by_other_unit(takes)
    path = f"/land/{take['kind']}/{take['site_id']}"
    client_login(district_client, "planner1")
    page = district_client.get(path)
    assert page.status_code == 200
    assert take["project_id"] in page.text and take["landed_on"].isoformat() in page.text
    district_client.cookies.clear()
    client_login(district_client, "unit_a")
    scoped = district_client.get(path)
    assert scoped.status_code == 200
    assert take["project_id"] not in scoped.text
    assert "其他单位项目" in scoped.text
    assert take["landed_on"].isoformat() in scoped.text  # that the land is taken is shown


def test_a_site_page_lists_its_inventory_versions(district_client: Any, web_district_url: tuple[Any, Any]) -> None:
    from sqlalchemy import text

    engine = make_engine(web_district_url[0], as_app=False)
    try:
        with engine.connect() as conn:
            kind, site_id, n = conn.execute(
                text("SELECT kind, site_id, count(*) FROM land_inventory WHERE kind IN ('idle', 'factory') GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 2 LIMIT 1")
            ).one()
    finally:
        engine.dispose()
    client_login(district_client, "leader1")
    page = district_client.get(f"/land/{kind}/{site_id}")
    assert page.status_code == 200
    versions = re.search(r'<table class="versions">(.*?)</table>', page.text, re.S)
    assert versions and versions.group(1).count("<tr>") == n + 1  # the header and each version
    assert "现行" in versions.group(1)
    assert 'data-geojson=' in page.text
    assert district_client.get(f"/land/{kind}/NO-SUCH-SITE").status_code == 404
    assert district_client.get(f"/land/park/{site_id}").status_code == 422


def test_the_view_cache_reuses_a_horizon_until_the_land_or_the_log_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    import web.landview as lv

    stamp = [(1, 10)]
    built: list[Horizon] = []

    class FakeEngine:
        def connect(self) -> Any:
            class Conn:
                def __enter__(self) -> Conn:
                    return self

                def __exit__(self, *exc: object) -> None:
                    return None

            return Conn()

    def fake_load(engine: Any, horizon: Horizon) -> Any:
        built.append(horizon)
        return lv.LandView(horizon, stamp[0], None, None, None)  # type: ignore[arg-type]

    monkeypatch.setattr(lv, "land_stamp", lambda conn: stamp[0])
    monkeypatch.setattr(lv, "load_land_view", fake_load)
    cache = lv.LandViewCache(FakeEngine(), size=2)  # type: ignore[arg-type]
    day = Horizon(date(2024, 1, 1))
    first = cache.get(day)
    assert cache.get(day) is first and cache.loads == 1
    stamp[0] = (2, 10)  # a land load
    assert cache.get(day) is not first and cache.loads == 2
    stamp[0] = (2, 11)  # an event
    cache.get(day)
    assert cache.loads == 3
    cache.get(Horizon(date(2024, 2, 1)))
    cache.get(Horizon(date(2024, 3, 1)))  # evicts 2024-01-01 (size 2)
    cache.get(day)
    assert cache.loads == 6


def test_filters_work_in_a_real_browser(browser: Any, district_server: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        login(page, district_server, "planner1")
        page.goto(f"{district_server}/land")
        page.wait_for_selector("#land-map[data-loaded='1']")
        assert page.locator("#land-map .leaflet-interactive").count() > 50
        page.select_option("select[name=kind]", "factory")
        page.select_option("select[name=status]", "available")
        page.click("#land-filters button[type=submit]")
        page.wait_for_url(re.compile(r".*kind=factory.*"))
        page.wait_for_selector("#land-map[data-loaded='1']")
        kinds = page.locator("#land-results tbody tr[data-site]").evaluate_all("rows => rows.map(r => r.dataset.kind + '/' + r.dataset.status)")
        assert kinds and set(kinds) == {"factory/available"}
        page.screenshot(path=str(SCREENSHOTS / "land-desktop.png"))
        page.set_viewport_size({"width": 375, "height": 812})
        page.goto(f"{district_server}/land?kind=idle")
        page.wait_for_selector("#land-map[data-loaded='1']")
        page.screenshot(path=str(SCREENSHOTS / "land-phone.png"))
    finally:
        page.close()


def test_the_pages_read_in_english(district_client: Any, takes: pd.DataFrame) -> None:
    client_login(district_client, "planner1")
    land = district_client.get("/land?lang=en&kind=idle")
    assert land.status_code == 200 and "Land: idle parcels and standard factories" in land.text and "Page 1 of" in land.text
    take = takes.iloc[0]
    site = district_client.get(f"/land/{take['kind']}/{take['site_id']}?lang=en")
    assert site.status_code == 200 and "Occupancy over time" in site.text
    sites = district_client.get("/api/land/sites?lang=en&page_size=1").json()["sites"]
    assert sites[0]["kind_label"] in ("Land parcel", "Standard factory")
