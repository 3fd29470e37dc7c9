"""招商方案: a match saved as a proposal; the share link works without login, shows no confidential or
internal field, stops when revoked or expired; the PDF opens and its QR code decodes to the link."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from tests.web_district import CONFIDENTIAL_NAME, HOSTILE_NAMES, WebDistrict
from tests.webutil import client_login
from warehouse.db import make_engine

INVESTOR = "保密投资方·某新材料集团"
REQUIREMENT = {"investor": INVESTOR, "industry": "新材料", "land_area_mu": {"min": 10, "max": 300}}


def _proposal(client: Any) -> dict[str, Any]:
    csrf = client_login(client, "planner1")
    made = client.post("/api/proposals", json={"title": "新材料项目选址方案", "requirement": REQUIREMENT}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201, made.text
    body = made.json()
    shared = client.post(f"/api/proposals/{body['proposal_id']}/share", json={"days": 7}, headers={"X-CSRF-Token": csrf})
    assert shared.status_code == 200 and shared.json()["share_live"]
    return {**shared.json(), "csrf": csrf}


def _read_pgm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    parts = data.split(maxsplit=4)  # P5, width, height, maxval, pixels
    assert parts[0] == b"P5"
    width, height = int(parts[1]), int(parts[2])
    return np.frombuffer(parts[4][: width * height], dtype=np.uint8).reshape(height, width)


def test_share_link_works_without_login_and_shows_public_fields_only(district_client: Any, web_district: WebDistrict) -> None:
    p = _proposal(district_client)
    assert p["result"]["results"], "the district has sites for this requirement"
    link = p["share_url"]
    assert link.startswith("http://testserver/share/")
    district_client.cookies.clear()  # the investor has no account
    shared = district_client.get(link.removeprefix("http://testserver"))
    assert shared.status_code == 200
    assert p["result"]["results"][0]["site_id"] in shared.text
    for secret in (INVESTOR, CONFIDENTIAL_NAME, web_district.confidential_project, "project_ids", "csrf"):
        assert secret not in shared.text
    for hostile in HOSTILE_NAMES:
        assert hostile not in shared.text  # no project is named at all
    assert "<script" not in shared.text.lower()


def test_share_link_stops_when_revoked_or_expired(district_client: Any, web_district_url: Any) -> None:
    p = _proposal(district_client)
    path = p["share_url"].removeprefix("http://testserver")
    assert district_client.post(f"/api/proposals/{p['proposal_id']}/revoke", headers={"X-CSRF-Token": p["csrf"]}).status_code == 200
    assert district_client.get(path).status_code == 410
    renewed = district_client.post(f"/api/proposals/{p['proposal_id']}/share", json={"days": 1}, headers={"X-CSRF-Token": p["csrf"]}).json()
    new_path = renewed["share_url"].removeprefix("http://testserver")
    assert new_path != path and district_client.get(path).status_code == 404  # the old token is gone
    assert district_client.get(new_path).status_code == 200
    engine = make_engine(web_district_url[0], as_app=False)
    with engine.begin() as conn:
        conn.execute(text("UPDATE proposal SET share_expires_at = now() - interval '1 second' WHERE proposal_id = :i"), {"i": p["proposal_id"]})
    engine.dispose()
    assert district_client.get(new_path).status_code == 410
    assert district_client.get("/share/" + "x" * 43).status_code == 404


def test_pdf_opens_and_its_qr_code_decodes_to_the_share_link(district_client: Any, tmp_path: Path) -> None:
    import zxingcpp

    p = _proposal(district_client)
    pdf = district_client.get(f"/proposals/{p['proposal_id']}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    (tmp_path / "p.pdf").write_bytes(pdf.content)
    subprocess.run(["pdftoppm", "-r", "200", "-gray", "-f", "1", "-l", "1", str(tmp_path / "p.pdf"), str(tmp_path / "page")], check=True)
    page = _read_pgm(next(tmp_path.glob("page*.pgm")))
    decoded = [r.text for r in zxingcpp.read_barcodes(page)]
    assert p["share_url"] in decoded
    words = subprocess.run(["pdftotext", str(tmp_path / "p.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    assert "推荐地块" in words and INVESTOR not in words


def test_permalink_and_print_page_inside_the_workspace(district_client: Any) -> None:
    p = _proposal(district_client)
    inside = district_client.get(f"/proposals/{p['proposal_id']}")
    assert inside.status_code == 200 and INVESTOR in inside.text and p["share_url"] in inside.text
    printed = district_client.get(f"/proposals/{p['proposal_id']}/print")
    assert printed.status_code == 200 and "<svg" in printed.text and INVESTOR not in printed.text
    assert p["proposal_id"] in [int(x) for x in __import__("re").findall(r"/proposals/(\d+)\"", district_client.get("/proposals").text)]


def test_leader_cannot_make_or_share_and_anonymous_cannot_open_the_permalink(district_client: Any) -> None:
    p = _proposal(district_client)
    district_client.cookies.clear()
    assert district_client.get(f"/proposals/{p['proposal_id']}", follow_redirects=False).status_code == 303
    csrf = client_login(district_client, "leader1")
    assert district_client.post("/api/proposals", json={"requirement": REQUIREMENT}, headers={"X-CSRF-Token": csrf}).status_code == 403
    assert district_client.post(f"/api/proposals/{p['proposal_id']}/revoke", headers={"X-CSRF-Token": csrf}).status_code == 403


def test_match_page_saves_a_proposal(district_client: Any) -> None:
    import re

    client_login(district_client, "planner1")
    page = district_client.post(
        "/match",
        data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', district_client.get("/match").text).group(1),  # type: ignore[union-attr]
              "investor": "表单投资方", "industry": "新材料", "want": "land", "area_min": "10", "area_max": "300"},
    )
    assert page.status_code == 200, page.text[-2000:]
    form = re.search(r'<form method="post" action="/proposals".*?</form>', page.text, re.S)
    assert form, "the result offers to save a proposal"
    fields = dict(re.findall(r'name="([^"]+)" (?:maxlength="\d+" )?value="([^"]*)"', form.group(0)))
    import html

    saved = district_client.post("/proposals", data={k: html.unescape(v) for k, v in fields.items()}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"].startswith("/proposals/")
    assert "表单投资方" in district_client.get(saved.headers["location"]).text
