"""项目库: the list (search, filters, paging, export), one project's timeline, and the project/event API,
from the outside (TestClient over the test district) and in a real browser."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from events.store import Horizon
from tests.web_district import HOSTILE_NAMES, WebDistrict
from tests.webutil import UNIT_A, UNIT_B, client_login, login
from warehouse import read_models
from warehouse.db import make_engine

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def _states(district_url: Any, as_of: date) -> dict[str, Any]:
    engine = make_engine(district_url, as_app=False)
    try:
        with engine.connect() as conn:
            return read_models.states_at(conn, Horizon(as_of))
    finally:
        engine.dispose()


def _ids(response: Any) -> list[str]:
    return re.findall(r'<tr data-project-id="([^"]+)"', response.text)


def _all_ids(client: Any, query: str = "") -> list[str]:
    body = client.get(f"/api/projects?page_size=200&{query}").json()
    ids = [r["project_id"] for r in body["items"]]
    for page_no in range(2, -(-body["total"] // 200) + 1):
        ids += [r["project_id"] for r in client.get(f"/api/projects?page_size=200&page={page_no}&{query}").json()["items"]]
    assert len(ids) == body["total"]
    return ids


# --- the list ---------------------------------------------------------------------------------


def test_list_pages_fifty_at_a_time_and_counts_every_project(district_client: Any, web_district_url: Any, web_district: WebDistrict) -> None:
    client_login(district_client, "planner1")
    states = _states(web_district_url[0], web_district.today)
    first = district_client.get("/projects")
    assert first.status_code == 200
    total = int(re.search(r'data-total="(\d+)"', first.text).group(1))  # type: ignore[union-attr]
    assert total == len(states) > 100
    ids1 = _ids(first)
    assert len(ids1) == 50
    ids2 = _ids(district_client.get("/projects?page=2"))
    assert len(ids2) == 50 and not set(ids1) & set(ids2)
    assert sorted(_all_ids(district_client)) == sorted(states)


def test_filters_agree_with_the_states_and_the_kpis(district_client: Any, web_district_url: Any, web_district: WebDistrict) -> None:
    client_login(district_client, "planner1")
    today = web_district.today
    states = _states(web_district_url[0], today)
    for stage in ("signed", "landed", "started", "produced", "cancelled"):
        want = sorted(pid for pid, s in states.items() if s.stage.value == stage)
        assert sorted(_all_ids(district_client, f"stage={stage}")) == want, stage
    stalled = sorted(pid for pid, s in states.items() if s.is_stalled(today))
    assert stalled and sorted(_all_ids(district_client, "stalled=1")) == stalled
    assert len(_all_ids(district_client, "stalled=0")) == len(states) - len(stalled)
    # The dashboard's figure: KPIs of every signing up to today count the same stalled projects.
    engine = make_engine(web_district_url[0], as_app=False)
    with engine.connect() as conn:
        kpis = read_models.kpis_at(conn, date_from=date(1990, 1, 1), date_to=today, as_of=today)
    engine.dispose()
    signed_stalled = [pid for pid in stalled if states[pid].signed_on is not None]
    assert kpis["stalled"] == len(signed_stalled)
    unit_a = sorted(pid for pid, s in states.items() if s.unit == UNIT_A)
    assert sorted(_all_ids(district_client, f"unit={UNIT_A}")) == unit_a
    lo, hi = date(2021, 1, 1), date(2022, 6, 30)
    between = sorted(pid for pid, s in states.items() if s.signed_on and lo <= s.signed_on <= hi)
    assert between and sorted(_all_ids(district_client, f"signed_from={lo}&signed_to={hi}")) == between
    industry = next(s.industry for s in states.values() if s.industry)
    assert sorted(_all_ids(district_client, f"industry={industry}")) == sorted(p for p, s in states.items() if s.industry == industry)


def test_as_of_in_the_past_lists_the_projects_signed_by_then(district_client: Any, web_district_url: Any) -> None:
    client_login(district_client, "planner1")
    day = date(2021, 6, 30)
    states = _states(web_district_url[0], day)
    body = district_client.get(f"/api/projects?as_of={day}").json()
    assert body["total"] == len(states) and body["as_of"] == day.isoformat()


def test_search_finds_by_name_investor_and_id(district_client: Any) -> None:
    client_login(district_client, "planner1")
    assert _ids(district_client.get("/projects", params={"q": "园区测试项目"})) == ["T-A"]
    assert "T-B" in _ids(district_client.get("/projects", params={"q": "t-b"}))
    by_investor = _all_ids(district_client, "q=某测试投资公司")
    assert {"T-A", "T-B", "T-CONF"} <= set(by_investor)
    assert _ids(district_client.get("/projects", params={"q": "100%_none"})) == []


def test_park_comes_from_the_projects_site(district_client: Any, web_district_url: Any) -> None:
    client_login(district_client, "planner1")
    engine = make_engine(web_district_url[0], as_app=False)
    with engine.connect() as conn:
        park = conn.execute(text("SELECT park FROM land_inventory WHERE kind = 'idle' AND valid_to IS NULL AND park IS NOT NULL LIMIT 1")).scalar_one()
    engine.dispose()
    items = district_client.get("/api/projects", params={"park": park, "page_size": 200}).json()["items"]
    assert items and all(r["park"] == park for r in items)
    parked = [r for r in district_client.get("/api/projects?page_size=200&stage=produced").json()["items"] if r["park"]]
    assert parked  # landed projects of the demo sit in its parks
    assert f'<option value="{park}"' in district_client.get("/projects").text


def test_htmx_request_gets_only_the_results(district_client: Any) -> None:
    client_login(district_client, "planner1")
    partial = district_client.get("/projects?stage=landed", headers={"HX-Request": "true", "HX-Target": "results"})
    assert partial.status_code == 200 and "<html" not in partial.text and 'data-total="' in partial.text
    full = district_client.get("/projects?stage=landed")  # the plain GET form: the whole page, filtered
    assert "<html" in full.text and 'value="landed" selected' in full.text


def test_bad_query_values_are_refused_not_errors(district_client: Any) -> None:
    client_login(district_client, "planner1")
    for query in ("as_of=2024-02-30", "as_of=9999-12-31", "stage=bogus", "page=0", "known_at=yesterday", "signed_from=0000-01-01"):
        assert district_client.get(f"/api/projects?{query}").status_code == 422, query
        assert district_client.get(f"/projects?{query}").status_code == 422, query


def test_csv_export_has_the_filters_and_escapes_formulas(district_client: Any, web_district_url: Any) -> None:
    csrf = client_login(district_client, "planner1")
    posted = district_client.post(
        "/api/events",
        json={"event_id": "T-FORMULA-s", "project_id": "T-FORMULA", "type": "signed", "occurred_at": "2023-03-01",
              "payload": {"name": '=HYPERLINK("http://evil.example","x")', "investment_wan": 1, "unit": UNIT_A, "investor": "+cmd"}},
        headers={"X-CSRF-Token": csrf},
    )  # fmt: skip
    assert posted.status_code in (200, 201), posted.text
    response = district_client.get("/projects.csv?stage=signed")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    header, body = rows[0], rows[1:]
    assert header[0].endswith("project_id")
    assert len(body) == district_client.get("/api/projects?stage=signed").json()["total"]
    formula = next(r for r in body if r[0] == "T-FORMULA")
    assert formula[1] == "'=HYPERLINK(\"http://evil.example\",\"x\")" and formula[2] == "'+cmd"
    assert all(not cell.startswith(("=", "+", "@")) for r in body for cell in r)


# --- one project ------------------------------------------------------------------------------


def test_timeline_shows_the_retraction_of_t_b_and_the_late_start_of_t_a(district_client: Any) -> None:
    client_login(district_client, "planner1")
    page_b = district_client.get("/projects/T-B")
    assert page_b.status_code == 200
    withdrawn = re.search(r'<li class="retracted[^"]*" data-event-id="T-B-l">(.*?)</li>', page_b.text, re.S)
    assert withdrawn, "the withdrawn landing is struck through"
    assert "录入错误 entered by mistake" in withdrawn.group(1) and "T-B-r" in withdrawn.group(1)
    assert re.search(r'<li class=" retraction[^"]*" data-event-id="T-B-r">', page_b.text)
    api_b = district_client.get("/api/projects/T-B").json()
    landing = next(e for e in api_b["timeline"] if e["event_id"] == "T-B-l")
    assert landing["withdrawn"] and landing["withdrawn_by"] == "T-B-r" and landing["withdrawn_reason"] == "录入错误 entered by mistake"
    assert landing["withdrawn_recorded_at"] and landing["source"] == "test:web-district"
    assert api_b["state"]["stage"] == "signed"  # the landing no longer counts
    api_a = district_client.get("/api/projects/T-A").json()
    start = next(e for e in api_a["timeline"] if e["event_id"] == "T-A-st")
    assert start["late"] and api_a["state"]["stage"] == "started"
    assert re.search(r'data-event-id="T-A-st">.*?late-mark', district_client.get("/projects/T-A").text, re.S)


def test_project_as_known_before_the_late_record(district_client: Any, web_district: WebDistrict) -> None:
    client_login(district_client, "planner1")
    known = web_district.published_at.isoformat()
    before = district_client.get("/api/projects/T-A", params={"known_at": known}).json()
    assert before["state"]["stage"] == "landed"
    assert "T-A-st" not in [e["event_id"] for e in before["timeline"]]
    listed = district_client.get("/api/projects", params={"known_at": known, "q": "T-A", "stage": "landed"}).json()
    assert [r["project_id"] for r in listed["items"]] == ["T-A"]


def test_project_page_has_state_map_and_confidential_badge(district_client: Any, web_district: WebDistrict) -> None:
    client_login(district_client, "planner1")
    produced = district_client.get("/api/projects?stage=produced&page_size=200").json()["items"]
    pid = next(r["project_id"] for r in produced if r["park"])
    page = district_client.get(f"/projects/{pid}")
    assert page.status_code == 200 and "data-map" in page.text and '"Polygon"' in page.text.replace("&quot;", '"')
    conf = district_client.get(f"/projects/{web_district.confidential_project}")
    assert "保密" in conf.text and 'class="badge bad confidential"' in conf.text
    assert district_client.get("/projects/NO-SUCH-PROJECT").status_code == 404
    assert district_client.get("/api/projects/NO-SUCH-PROJECT").status_code == 404


def test_hostile_names_render_as_text(district_client: Any, web_district: WebDistrict) -> None:
    client_login(district_client, "planner1")
    listing = district_client.get("/projects", params={"q": "T-EVIL", "sort": "id"})
    assert _ids(listing) == list(web_district.hostile_projects)
    for response in (listing, *(district_client.get(f"/projects/{pid}") for pid in web_district.hostile_projects)):
        assert "<script>alert" not in response.text and "<img src=x" not in response.text
    assert "&lt;script&gt;alert" in listing.text
    detail = district_client.get(f"/projects/{web_district.hostile_projects[0]}")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;项目" in detail.text
    api = district_client.get(f"/api/projects/{web_district.hostile_projects[0]}").json()
    assert api["state"]["name"] == HOSTILE_NAMES[0]


# --- the unit officer ---------------------------------------------------------------------------


def test_unit_officer_sees_only_its_unit(district_client: Any, web_district_url: Any, web_district: WebDistrict) -> None:
    client_login(district_client, "unit_a")
    states = _states(web_district_url[0], web_district.today)
    mine = sorted(pid for pid, s in states.items() if s.unit == UNIT_A)
    assert sorted(_all_ids(district_client)) == mine
    assert sorted(_all_ids(district_client, f"unit={UNIT_B}")) == mine  # the unit filter is fixed for them
    assert _ids(district_client.get("/projects", params={"q": "T-B"})) == []
    assert _ids(district_client.get("/projects", params={"q": "街道测试项目B"})) == []
    page = district_client.get("/projects")
    assert "disabled" in page.text and UNIT_A in page.text
    csv_text = district_client.get("/projects.csv").text
    assert "T-B" not in csv_text and web_district.confidential_project not in csv_text and "T-A" in csv_text
    for pid in (web_district.unit_b_project, web_district.confidential_project):
        assert district_client.get(f"/projects/{pid}").status_code == 403
        assert district_client.get(f"/api/projects/{pid}").status_code == 403
    assert district_client.get(f"/projects/{web_district.unit_a_project}").status_code == 200


# --- posting events -----------------------------------------------------------------------------


def _signed(pid: str, unit: str, day: str = "2024-03-01") -> dict[str, Any]:
    return {"event_id": f"{pid}-s", "project_id": pid, "type": "signed", "occurred_at": day,
            "payload": {"name": f"网页录入{pid}", "investment_wan": 500, "unit": unit}}  # fmt: skip


def test_posted_event_appears_in_the_timeline_with_its_source(district_client: Any, web_district_url: Any) -> None:
    csrf = client_login(district_client, "planner1")
    headers = {"X-CSRF-Token": csrf}
    first = district_client.post("/api/events", json=_signed("T-WEB-1", UNIT_A), headers=headers)
    assert first.status_code == 201 and first.json()["source"] == "web:planner1", first.text
    funds = {"event_id": "T-WEB-1-f", "project_id": "T-WEB-1", "type": "funds_arrived", "occurred_at": "2024-04-02", "payload": {"amount_wan": 120}}
    assert district_client.post("/api/events", json=funds, headers=headers).status_code == 201
    assert district_client.post("/api/events", json=funds, headers=headers).status_code == 200  # a duplicate
    detail = district_client.get("/api/projects/T-WEB-1").json()
    assert [(e["event_id"], e["source"]) for e in detail["timeline"]] == [("T-WEB-1-s", "web:planner1"), ("T-WEB-1-f", "web:planner1")]
    assert detail["state"]["funds_wan"] == 120
    assert '<span class="source">web:planner1</span>' in district_client.get("/projects/T-WEB-1").text
    # The read models were brought up: the list answers from them alone (nothing touched after their position).
    engine = make_engine(web_district_url[0], as_app=False)
    with engine.connect() as conn:
        assert read_models.status(conn)["lag_events"] == 0
    engine.dispose()
    assert _ids(district_client.get("/projects", params={"q": "T-WEB-1"})) == ["T-WEB-1"]


def test_invalid_event_is_refused_with_its_reason_and_dead_lettered(district_client: Any, web_district_url: Any) -> None:
    csrf = client_login(district_client, "planner1")
    bad = {"event_id": "T-WEB-BAD", "project_id": "T-A", "type": "funds_arrived", "occurred_at": "2024-04-02", "payload": {}}
    response = district_client.post("/api/events", json=bad, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 422 and "amount_wan" in str(response.json()["detail"])
    engine = make_engine(web_district_url[0], as_app=False)
    with engine.connect() as conn:
        letters = conn.execute(text("SELECT source, reason FROM dead_letter WHERE event_id = 'T-WEB-BAD'")).all()
    engine.dispose()
    assert letters and letters[0].source == "web:planner1"
    assert district_client.post("/api/events", content=b"{not json", headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"}).status_code == 422


def test_post_needs_csrf_and_a_writer(district_client: Any) -> None:
    client_login(district_client, "planner1")
    assert district_client.post("/api/events", json=_signed("T-WEB-NOCSRF", UNIT_A)).status_code == 403
    district_client.cookies.clear()
    csrf = client_login(district_client, "leader1")
    refused = district_client.post("/api/events", json=_signed("T-WEB-LEADER", UNIT_A), headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403
    assert district_client.get("/api/projects/T-WEB-LEADER").status_code == 404
    assert district_client.get("/api/projects/T-WEB-NOCSRF").status_code == 404


def test_unit_officer_posts_only_for_its_unit(district_client: Any, web_district: WebDistrict) -> None:
    csrf = client_login(district_client, "unit_a")
    headers = {"X-CSRF-Token": csrf}
    start_b = {"event_id": "T-WEB-U1", "project_id": web_district.unit_b_project, "type": "started", "occurred_at": "2024-05-01", "payload": {}}
    assert district_client.post("/api/events", json=start_b, headers=headers).status_code == 403
    assert district_client.post("/api/events", json=_signed("T-WEB-U2", UNIT_B), headers=headers).status_code == 403
    retract_b = {"event_id": "T-WEB-U3", "project_id": web_district.unit_a_project, "type": "retracted", "occurred_at": "2024-05-01", "payload": {"event_id": "T-B-s"}}
    assert district_client.post("/api/events", json=retract_b, headers=headers).status_code == 403
    # Progress on its own unit's project goes through a report and a planner's sign-off, not straight into the log.
    start_a = {"event_id": "T-WEB-U5", "project_id": web_district.unit_a_project, "type": "produced", "occurred_at": "2024-05-01", "payload": {}}
    refused = district_client.post("/api/events", json=start_a, headers=headers)
    assert refused.status_code == 403 and "/reports" in refused.json()["detail"]
    own = district_client.post("/api/events", json=_signed("T-WEB-U4", UNIT_A), headers=headers)
    assert own.status_code == 201 and own.json()["source"] == "web:unit_a"
    district_client.cookies.clear()
    client_login(district_client, "planner1")
    assert district_client.get("/api/projects/T-B").json()["state"]["stage"] == "signed"
    assert district_client.get("/api/projects/T-WEB-U2").status_code == 404


def test_bearer_token_posts_without_csrf(district_client: Any, web_district_url: Any) -> None:
    from warehouse.users import add_api_token, get_user
    from web.security import new_token, sha256_hex

    token = new_token()
    engine = make_engine(web_district_url[0], as_app=False)
    with engine.begin() as conn:
        user = get_user(conn, "planner1")
        assert user
        add_api_token(conn, user_id=user.user_id, token_sha256=sha256_hex(token), label="test-projects")
    engine.dispose()
    response = district_client.post("/api/events", json=_signed("T-WEB-TOKEN", UNIT_B), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201 and response.json()["source"] == "web:planner1"
    listed = district_client.get("/api/projects", params={"q": "T-WEB-TOKEN"}, headers={"Authorization": f"Bearer {token}"}).json()
    assert [r["project_id"] for r in listed["items"]] == ["T-WEB-TOKEN"]


# --- in the browser -----------------------------------------------------------------------------


def _shots(page: Any, name: str, url: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height, suffix in ((1280, 800, "desktop"), (375, 812, "phone")):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(url)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{suffix}.png"))


def test_filters_and_paging_in_the_browser(browser: Any, district_server: str, web_district: WebDistrict) -> None:
    from tests.webutil import external_requests

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    outside = external_requests(page)
    try:
        login(page, district_server, "planner1")
        page.goto(f"{district_server}/projects")
        total = int(page.locator("#total").get_attribute("data-total"))
        assert page.locator("table.projects tbody tr").count() == 50
        page.select_option("select[name=stage]", "landed")
        page.wait_for_url(re.compile(r"stage=landed"))
        page.wait_for_function("t => Number(document.querySelector('#total').dataset.total) < t", arg=total)
        landed = int(page.locator("#total").get_attribute("data-total"))
        assert 0 < landed < total
        assert page.locator("link[href='/static/app.css']").count() == 1  # the page itself stayed: HTMX swapped the results
        page.select_option("select[name=stage]", "")
        page.wait_for_function("t => Number(document.querySelector('#total').dataset.total) === t", arg=total)
        page.click("nav.pager a[rel=next]")
        page.wait_for_url(re.compile(r"page=2"))
        page.wait_for_selector("text=/ 2 /")
        page.fill("input[name=q]", "T-EVIL")
        page.wait_for_function("() => document.querySelector('#total').dataset.total === '3'")
        assert "page=2" not in page.url
        names = page.locator("table.projects tbody tr td:nth-child(2)").all_inner_texts()
        assert set(names) == set(HOSTILE_NAMES)
        page.goto(f"{district_server}/projects/{web_district.hostile_projects[0]}")
        assert page.locator("#project-name").inner_text() == HOSTILE_NAMES[0]
        _shots(page, "projects", f"{district_server}/projects")
        assert dialogs == [] and outside == []
    finally:
        page.close()


def test_filter_form_works_without_javascript(browser: Any, district_server: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        login(page, district_server, "planner1")
        page.goto(f"{district_server}/projects")
        page.select_option("select[name=stage]", "produced")
        page.click("#project-filters button[type=submit]")
        page.wait_for_url(re.compile(r"stage=produced"))
        stages = set(page.locator("table.projects tbody tr td:nth-child(6)").all_inner_texts())
        assert stages == {"投产"}
    finally:
        context.close()


def test_project_page_in_the_browser_posts_an_event(browser: Any, district_server: str, web_district: WebDistrict) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        login(page, district_server, "planner1")
        page.goto(f"{district_server}/projects/T-B")
        assert page.locator("li[data-event-id='T-B-l'] .struck").evaluate("e => getComputedStyle(e).textDecorationLine") == "line-through"
        produced = page.request.get(f"{district_server}/api/projects?stage=produced&page_size=200").json()["items"]
        sited = next(r["project_id"] for r in produced if r["park"])
        _shots(page, "project", f"{district_server}/projects/{sited}")
        page.wait_for_selector("#project-map[data-ready='1'] path.leaflet-interactive")
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(f"{district_server}/projects/T-A")
        assert page.locator("li[data-event-id='T-A-st'] .late-mark").count() == 1
        day = (web_district.today - timedelta(days=3)).isoformat()
        page.select_option("#event-form select[name=type]", "funds_arrived")
        page.fill("#event-form input[name=occurred_at]", day)
        page.fill("#event-form input[name=amount_wan]", "88")
        with page.expect_navigation():
            page.click("#event-form button[type=submit]")
        entry = page.locator("#timeline li").filter(has_text="web:planner1")
        assert entry.count() == 1 and "88" in entry.inner_text()
        assert dialogs == []
    finally:
        page.close()


def test_the_list_equals_the_fold_at_every_horizon(web_district_url: Any, web_district: WebDistrict) -> None:
    """Every project the list gives (stored versions and re-folded ones alike, counted and paged from
    the open versions' index or the closed ones) with the stage, name and site the full fold gives."""
    from warehouse.project_search import ProjectFilter, ProjectListing, iter_projects
    from warehouse.replay import fold_states
    from zhaoshang import clock

    engine = make_engine(web_district_url[0], as_app=False)
    today = clock.today()
    horizons = [Horizon(today), Horizon(date(2024, 6, 30)), Horizon(today, web_district.published_at), Horizon(date(2023, 12, 31), web_district.published_at)]
    with engine.connect() as conn:
        for horizon in horizons:
            folded = fold_states(conn, horizon)
            listed = list(iter_projects(conn, horizon, ProjectFilter(sort="id"), unit_scope=None))
            assert [r["project_id"] for r in listed] == sorted(folded), horizon
            for row in listed:
                state = folded[row["project_id"]]
                site = state.sites[-1] if state.sites else None
                assert row["stage"] == state.stage.value and row["name"] == state.name and row["investor"] == state.investor, row
                assert row["parcel_id"] == ((site.parcel_id if site else None) or state.intended_parcel_id), row
                assert row["factory_id"] == (site.factory_id if site else None) and row["anomalies"] == len(state.anomalies), row
            landed = ProjectFilter(stage="landed", sort="investment_desc")
            want = sorted((p for p, s in folded.items() if s.stage.value == "landed"), key=lambda p: (-folded[p].investment_wan, p))
            assert ProjectListing(conn, horizon, landed, unit_scope=None).count() == len(want)
            pages = [r["project_id"] for off in range(0, len(want), 3) for r in ProjectListing(conn, horizon, landed, unit_scope=None).page(3, off)]
            assert pages == want, horizon
            # A text search counts and pages in one pass: the same count, the same pages, and the
            # count still given past the last page.
            named = next(s.name for s in folded.values() if s.name and len(s.name) >= 2)
            search = ProjectFilter(q=named[:2], sort="investment_desc")
            listing = ProjectListing(conn, horizon, search, unit_scope=None)
            total = listing.count()
            assert total >= 1
            for off in (0, 2, total - 1, total, total + 5):
                assert listing.counted_page(2, max(off, 0)) == (total, listing.page(2, max(off, 0))), (horizon, off)
    engine.dispose()


def test_search_folds_case_for_letters_and_matches_chinese_exactly(web_district_url: Any) -> None:
    from warehouse.project_search import ProjectFilter, iter_projects
    from zhaoshang import clock

    engine = make_engine(web_district_url[0], as_app=False)
    with engine.connect() as conn:
        horizon = Horizon(clock.today())
        everything = list(iter_projects(conn, horizon, ProjectFilter(sort="id"), unit_scope=None))
        named = next(r for r in everything if r["name"] and len(r["name"]) >= 3 and r["name"].lower() == r["name"].upper())
        fragment = named["name"][1:3]
        found = [r["project_id"] for r in iter_projects(conn, horizon, ProjectFilter(q=fragment, sort="id"), unit_scope=None)]
        want = [r["project_id"] for r in everything if any(fragment in (r[k] or "") for k in ("project_id", "name", "investor"))]
        assert found == want and named["project_id"] in found
        lower = [r["project_id"] for r in iter_projects(conn, horizon, ProjectFilter(q="t-a", sort="id"), unit_scope=None)]
        assert "T-A" in lower  # letters: case folded (ILIKE)
    engine.dispose()
