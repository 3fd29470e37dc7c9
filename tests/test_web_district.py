"""The workspace's test district loads as described (what the page tests rely on)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.webutil import client_login
from warehouse.db import make_engine


def test_district_has_the_special_projects(web_district_url: Any) -> None:
    url, district = web_district_url
    engine = make_engine(url, as_app=False)
    with engine.connect() as conn:
        ids = set(conn.execute(text("SELECT DISTINCT project_id FROM event_log")).scalars())
        parcels = conn.execute(text("SELECT count(*) FROM land_inventory")).scalar_one()
    engine.dispose()
    assert district.confidential_project in ids and district.unit_a_project in ids
    assert set(district.hostile_projects) <= ids
    assert len(ids) > 100 and parcels > 10


def test_district_client_logs_in(district_client: Any) -> None:
    assert client_login(district_client, "unit_a")
    assert district_client.get("/api/me").json()["unit"] == "夏云工业园区管委会"
