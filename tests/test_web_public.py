"""推介 the public site: the promotion map's public profile, for anyone, with JavaScript on or off."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy import Engine

from ingestion.land_files import load_land_file
from maps.promotion import PUBLIC_SITE_FIELDS
from tests.web_district import CONFIDENTIAL_NAME, HOSTILE_NAMES
from tests.webutil import client_login, external_requests, login
from warehouse import read_models
from warehouse.event_store import load_records, read_jsonl

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}


def _secrets(district: Any) -> list[bytes]:
    return [CONFIDENTIAL_NAME.encode(), district.confidential_project.encode()]


def _public_urls(client: Any) -> list[str]:
    """Every public page and API answer worth grepping: the index (each park, each kind, a few pages), cards, the API."""
    urls = ["/public", "/public?kind=idle", "/public?kind=factory", "/public?page=2", "/api/public/sites?limit=1000",
            "/api/public/sites.geojson?limit=2000&projects=true", "/api/public/sites.geojson?lang=en&projects=1", "/public?projects=1"]
    sites = client.get("/api/public/sites?limit=1000").json()["sites"]
    for park in sorted({s["park"] for s in sites if s["park"]}):
        urls.append(f"/public?park={park}")
    urls += [f"/public/sites/{s['kind']}/{s['site_id']}" for s in sites[:: max(1, len(sites) // 15)]]
    return urls


def test_the_public_site_needs_no_login_and_lists_sites_on_offer(district_client: Any) -> None:
    page = district_client.get("/public")
    assert page.status_code == 200
    assert "招商推介地图" in page.text
    api = district_client.get("/api/public/sites?limit=1000").json()
    assert api["total"] > 0 and len(api["sites"]) == api["total"]
    rows = re.findall(r'<a href="/public/sites/(idle|factory)/[^"]+">', page.text)
    assert len(rows) == min(50, api["total"])
    first = api["sites"][0]
    card = district_client.get(f"/public/sites/{first['kind']}/{first['site_id']}")
    assert card.status_code == 200 and first["site_id"] in card.text


def test_the_public_api_carries_the_allow_list_only(district_client: Any) -> None:
    sites = district_client.get("/api/public/sites?limit=1000").json()["sites"]
    for site in sites:
        assert set(site) <= PUBLIC_SITE_FIELDS | {"lon", "lat"}
    geo = district_client.get("/api/public/sites.geojson?limit=2000").json()
    layers = {f["properties"]["layer"] for f in geo["features"]}
    assert "site" in layers and "park" in layers
    internal = ("status", "land_status", "project_ids", "unit", "confidential", "project_id", "stalled")
    for feature in geo["features"]:
        assert not set(feature["properties"]) & set(internal)
    # Only sites still on offer: the land status says available or partly taken for each.
    from events.store import Horizon
    from warehouse.land import land_status

    with district_client.app.state.engine.connect() as conn:
        status = land_status(conn, Horizon(district_client.app.state.config.today())).set_index(["kind", "site_id"])["status"]
    assert {status[(s["kind"], s["site_id"])] for s in sites} <= {"available", "partly_taken"}
    assert set(status) - {"available", "partly_taken"}, "the district has taken sites, which must not be listed"
    taken = [k for k, v in status.items() if v not in ("available", "partly_taken")]
    kind, site_id = taken[0]
    assert district_client.get(f"/public/sites/{kind}/{site_id}").status_code == 404


@pytest.mark.parametrize("who", [None, "admin1", "unit_b"])
def test_no_public_page_or_answer_names_the_confidential_project(district_client: Any, web_district: Any, who: str | None) -> None:
    if who:
        client_login(district_client, who)
    for url in _public_urls(district_client):
        response = district_client.get(url)
        assert response.status_code == 200, url
        found = [s for s in _secrets(web_district) if s in response.content]
        assert not found, (url, found)


def test_filters_and_bad_input(district_client: Any) -> None:
    sites = district_client.get("/api/public/sites?limit=1000").json()["sites"]
    park = next(s["park"] for s in sites if s["park"])
    in_park = district_client.get("/api/public/sites", params={"park": park, "limit": 1000}).json()
    assert in_park["total"] == sum(1 for s in sites if s["park"] == park)
    page = district_client.get("/public", params={"park": park})
    assert page.text.count('href="/public/sites/') == min(50, in_park["total"])
    factories = district_client.get("/api/public/sites?kind=factory&limit=1000").json()["sites"]
    assert all(s["kind"] == "factory" for s in factories)
    assert district_client.get("/public?kind=parcel").status_code == 422
    assert district_client.get("/api/public/sites?limit=0").status_code == 422
    assert district_client.get("/public/sites/park/x").status_code == 422
    assert district_client.get("/public/sites/idle/no-such-site").status_code == 404
    assert district_client.get("/public?page=999999").status_code == 200  # past the end: the last page


def _hostile_district(db: Engine, tmp_path: Path) -> None:
    """Parcels named with hostile text, and a public project (with a location) named so too."""
    names = list(HOSTILE_NAMES)
    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": [f"H-{i}" for i in range(3)],
            "name": names,
            "park": [HOSTILE_NAMES[0]] * 3,
            "land_use": ["100102"] * 3,
            "status": ["闲置"] * 3,
            "area_mu": [60.0] * 3,
        },
        geometry=[box(106.300 + 0.003 * i, 26.400, 106.302 + 0.003 * i, 26.402) for i in range(3)],
        crs="EPSG:4490",
    )
    parcels.to_file(tmp_path / "parcels.geojson", driver="GeoJSON")
    assert load_land_file(db, tmp_path / "parcels.geojson", kind="idle", valid_from=date(2020, 1, 1))["loaded"] == 3
    record = {
        "event_id": "h-s", "project_id": "H-PUB", "type": "signed", "occurred_at": "2024-03-01", "recorded_at": "2024-03-01T20:00:00+08:00",
        "payload": {"name": HOSTILE_NAMES[1], "investor": HOSTILE_NAMES[2], "investment_wan": 100, "location": {"lon": 106.3095, "lat": 26.401}},
    }
    secret = {**record, "event_id": "h-c", "project_id": "H-CONF", "payload": {**record["payload"], "name": CONFIDENTIAL_NAME, "confidential": True}}
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in (record, secret)), encoding="utf-8")
    assert load_records(db, read_jsonl(path, "test")).accepted == 2
    read_models.refresh(db)


def test_hostile_names_are_text_on_the_public_pages(client: Any, web_db: Engine, tmp_path: Path) -> None:
    _hostile_district(web_db, tmp_path)
    page = client.get("/public")
    assert page.status_code == 200
    for name in HOSTILE_NAMES:
        assert name not in page.text  # every one holds a character that must be escaped
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;项目" in page.text or "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;项目" in page.text
    geo = client.get("/api/public/sites.geojson?projects=true").json()
    assert "project" in {f["properties"]["layer"] for f in geo["features"]}
    labels = {f["properties"]["label"] for f in geo["features"]}
    assert set(HOSTILE_NAMES) <= labels  # JSON carries them as data; map.js puts them in as text
    assert CONFIDENTIAL_NAME not in json.dumps(geo, ensure_ascii=False)
    card = client.get("/public/sites/idle/H-1")
    assert card.status_code == 200 and HOSTILE_NAMES[1] not in card.text


def _shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def test_public_site_in_a_browser_with_javascript(browser: Any, district_server: str, web_district: Any) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        outside = external_requests(page)
        page.goto(f"{district_server}/public")
        page.wait_for_selector("#public-map[data-loaded='1']")
        assert page.locator("#public-map .leaflet-interactive").count() > 0  # the map drew features
        assert page.locator("#public-sites tbody tr").count() > 0
        content = page.content()
        assert CONFIDENTIAL_NAME not in content and web_district.confidential_project not in content
        _shoot(page, "public-desktop.png")
        page.set_viewport_size(PHONE)
        page.goto(f"{district_server}/public")
        page.wait_for_selector("#public-map[data-loaded='1']")
        _shoot(page, "public-phone.png")
        # The site card's own map, and the popup of a site on the index map holds its name as text.
        page.set_viewport_size(DESKTOP)
        page.click("#public-sites tbody tr >> nth=0 >> a")
        page.wait_for_selector("#site-facts")
        page.wait_for_selector(".map[data-ready='1'] .leaflet-interactive")
        assert outside == []
    finally:
        context.close()


def test_public_site_in_a_browser_without_javascript(browser: Any, district_server: str, web_district: Any) -> None:
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    page = context.new_page()
    try:
        outside = external_requests(page)
        page.goto(f"{district_server}/public")
        rows = page.locator("#public-sites tbody tr")
        assert rows.count() > 0
        assert rows.first.locator("a").inner_text().strip()
        assert page.locator("noscript").count() >= 1
        # The park filter is a plain form: it works without JavaScript.
        park = page.locator("#public-sites tbody tr >> nth=0 >> td:nth-child(2)").inner_text().strip()
        page.select_option("select[name=park]", park)
        page.click("form.filters button[type=submit]")
        page.wait_for_load_state()
        assert "park=" in page.url
        cells = page.locator("#public-sites tbody tr td:nth-child(2)").all_inner_texts()
        assert cells and all(c.strip() == park for c in cells)
        page.locator("#public-sites tbody tr >> nth=0 >> a").click()
        page.wait_for_selector("#site-facts")
        assert CONFIDENTIAL_NAME not in page.content()
        assert outside == []
    finally:
        context.close()


def test_a_signed_in_user_sees_the_same_public_site(browser: Any, district_server: str, web_district: Any) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        login(page, district_server, "planner1")
        page.goto(f"{district_server}/public")
        page.wait_for_selector("#public-map[data-loaded='1']")
        assert page.locator(".menu a.active").inner_text() == "推介"
        assert CONFIDENTIAL_NAME not in page.content()
    finally:
        context.close()


def test_a_new_land_file_shows_at_once(client: Any, web_db: Engine, tmp_path: Path) -> None:
    """The app keeps the view per change mark: a load after a page view is seen by the next view."""
    assert client.get("/api/public/sites").json()["total"] == 0
    _hostile_district(web_db, tmp_path)
    assert client.get("/api/public/sites").json()["total"] == 3
    with TestClient(client.app) as again:
        assert again.get("/api/public/sites").json()["total"] == 3


def test_hostile_names_stay_text_in_the_map_popups(browser: Any, web_server: str, web_db: Engine, tmp_path: Path) -> None:
    _hostile_district(web_db, tmp_path)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(f"{web_server}/public?projects=1")
        page.wait_for_selector("#public-map[data-loaded='1']")
        # Open every feature's popup: each title must read as the name, with no element made from it.
        titles = page.evaluate(
            """() => {
                const out = [];
                const m = document.querySelector('#public-map')._zsMap;
                m.layer.eachLayer(g => g.eachLayer(l => {
                    if (!l.getPopup()) { return; }
                    l.openPopup();
                    const box = l.getPopup().getContent();  // the element map.js built from the properties
                    out.push({text: box.firstChild.textContent, html: box.innerHTML});
                    l.closePopup();
                }));
                return out;
            }"""
        )
        texts = {t["text"] for t in titles}
        assert set(HOSTILE_NAMES) <= texts
        assert not any("<img" in t["html"] or "<script" in t["html"] for t in titles)
        assert dialogs == []
    finally:
        context.close()
