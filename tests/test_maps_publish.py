"""``publish_maps`` and ``zhaoshang maps publish`` on the demo district in the test PostGIS:
what the pages draw is compared with what the warehouse says, in headless Chromium, offline."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from demo.district import DEMO_VALID_FROM, generate_district, write_district
from demo.history import generate_history
from ingestion.land_files import load_land_file
from maps.browser import inspect_page
from maps.promotion import on_offer, public_projects
from maps.publish import pipeline_frames, publish_maps
from warehouse.event_store import load_records, read_jsonl
from warehouse.land import land_status, parks, pois, project_locations
from warehouse.replay import Horizon
from zhaoshang.cli import app

AS_OF = date(2026, 10, 31)
SECRET_INVESTOR = "绝密资本控股有限公司"
EVIL = "<script>alert(1)</script>"


@pytest.fixture
def district_db(db: Engine, tmp_path: Path) -> Engine:
    district = generate_district(2018)
    # A parcel whose name carries markup, as a careless spreadsheet might.
    district.parcels.loc[district.parcels.index[0], "name"] = EVIL
    for kind, path in write_district(district, tmp_path / "district").items():
        load_land_file(db, path, kind=kind, valid_from=DEMO_VALID_FROM)
    history = generate_history(seed=7, n_projects=90, start=date(2024, 1, 1), end=AS_OF, sites=district.sites())
    # One confidential project with an evil name and a secret investor.
    site = district.sites()[1]
    history.append(
        {
            "event_id": "secret-1",
            "project_id": "SECRET-1",
            "type": "signed",
            "occurred_at": "2026-09-01",
            "payload": {
                "name": f"保密项目{EVIL}",
                "investment_wan": 50000,
                "investor": SECRET_INVESTOR,
                "confidential": True,
                "location": {"lon": site.lon, "lat": site.lat},
            },
        }
    )
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in history), encoding="utf-8")
    result = load_records(db, read_jsonl(path, "test"))
    assert result.rejected == 0
    return db


def test_pipeline_frames_equal_a_replay_at_each_month_end(district_db: Engine) -> None:
    with district_db.connect() as conn:
        frames = pipeline_frames(conn, AS_OF)
        # Months from the first with a located project (history starts 2024-01) to the as-of month.
        months = sorted(set(frames["month"]))
        assert "2024-01" <= months[0] < "2025-01" and months[-1] == "2026-10"
        for day in (date(2024, 6, 30), date(2025, 12, 31), AS_OF):
            replay = project_locations(conn, Horizon(day))
            frame = frames[frames["month"] == day.strftime("%Y-%m")]
            cols = ["project_id", "stage", "stalled", "site_id"]
            want = replay[cols].sort_values("project_id").reset_index(drop=True)
            got = frame[cols].sort_values("project_id").reset_index(drop=True)
            assert len(want) > 0
            assert got.astype(str).equals(want.astype(str)), day
            assert (frame.geometry.values == replay.set_index("project_id").loc[frame["project_id"]].geometry.values).all()


def test_publish_public_and_internal_pages_draw_what_the_warehouse_holds(district_db: Engine, tmp_path: Path) -> None:
    horizon = Horizon(AS_OF)
    with district_db.connect() as conn:
        sites = land_status(conn, horizon)
        n_parks, n_pois = len(parks(conn, AS_OF)), len(pois(conn, AS_OF))
        projects = project_locations(conn, horizon)
        frames = pipeline_frames(conn, AS_OF)
    assert SECRET_INVESTOR in set(projects["investor"])
    n_on_offer = int(on_offer(sites).sum())
    shown_public_projects = len(public_projects(projects))
    expected = {
        ("public", "promotion"): n_on_offer + n_parks + n_pois + shown_public_projects,
        ("internal", "promotion"): len(sites) + n_parks + n_pois + len(projects),
        ("internal", "pipeline"): n_parks + len(sites) + int((frames["month"] == "2026-10").sum()),
    }
    for profile in ("public", "internal"):
        out = tmp_path / profile
        written = publish_maps(district_db, out, profile=profile, as_of=AS_OF, lang="both")
        assert set(written) == ({"promotion", "index"} if profile == "public" else {"promotion", "pipeline", "index"})
        for name in ("promotion", "pipeline"):
            if (profile, name) not in expected:
                continue
            page = Path(written[name]).read_text(encoding="utf-8")
            assert EVIL not in page
            if profile == "public":
                assert SECRET_INVESTOR not in page and "保密项目" not in page
            report = inspect_page(written[name])
            assert report.errors == [], report.errors
            assert report.remote_requests == []
            assert report.features == expected[(profile, name)], (profile, name, report.layers)
        index = Path(written["index"]).read_text(encoding="utf-8")
        assert "promotion.html" in index


def test_cli_publish_with_png_and_a_requirement(district_db: Engine, db_url_str: str, tmp_path: Path) -> None:
    req = tmp_path / "req.json"
    req.write_text(json.dumps({"investor": "某新材料公司", "land_use": ["100102"], "land_area_mu": {"min": 10, "max": 200}}, ensure_ascii=False))
    out = tmp_path / "maps"
    res = CliRunner().invoke(
        app,
        ["maps", "publish", "--out", str(out), "--as-of", "2026-10-31", "--png", "--requirement", str(req), "--database-url", db_url_str, "--json"],
    )
    assert res.exit_code == 0, res.output
    written = json.loads(res.stdout)
    parks_pngs = {k for k in written if k.startswith("promotion-park-")}
    with district_db.connect() as conn:
        assert len(parks_pngs) == len(parks(conn, AS_OF)) > 0
    assert set(written) - parks_pngs == {"promotion", "promotion.png", "match-1", "match-1.png", "index"}
    for key in ("promotion.png", "match-1.png", *sorted(parks_pngs)):
        png = Path(written[key]).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    report = inspect_page(written["match-1"])
    assert report.errors == [] and (report.features or 0) > 0
    bad = CliRunner().invoke(app, ["maps", "publish", "--out", str(out), "--basemap", "bing", "--database-url", db_url_str])
    assert bad.exit_code == 2 and "--basemap" in bad.output
