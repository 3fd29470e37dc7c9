"""Confidentiality is decided once (``events.disclosure``) and every public output goes through it."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from shapely.geometry import box
from sqlalchemy import Engine

from events.disclosure import is_public_project
from events.projection import fold
from events.validation import validate_record
from ingestion.land_files import load_land_file
from land.matching import public_match
from maps.promotion import public_projects
from maps.publish import publish_maps
from warehouse.event_store import load_records, read_jsonl
from warehouse.land import project_locations
from warehouse.replay import Horizon

AS_OF = date(2024, 6, 30)
SECRET_ID = "SECRET-9"
SECRET_NAME = "绝密项目[/]<b>x</b>"
SECRET_INVESTOR = "绝密资本控股有限公司"
RETRACTED_ID = "RETRACTED-SECRET-7"
RETRACTED_NAME = "撤回的保密项目"
RETRACTED_INVESTOR = "撤回保密投资人有限公司"
PROSPECT = "某洽谈中投资方有限公司"  # the requirement's investor: a prospect, never on a public page


def _ev(eid: str, pid: str, type_: str, on: str, payload: dict[str, Any] | None = None, recorded: str | None = None) -> dict[str, Any]:
    return {
        "event_id": eid,
        "project_id": pid,
        "type": type_,
        "occurred_at": on,
        "recorded_at": recorded or f"{on}T20:00:00+08:00",
        "payload": payload or {},
    }


def _signed(eid: str, pid: str, on: str, recorded: str | None = None, **payload: Any) -> dict[str, Any]:
    return _ev(eid, pid, "signed", on, {"name": f"{pid} 项目", "investment_wan": 100, **payload}, recorded)


def _state(records: list[dict[str, Any]]) -> Any:
    states = fold(validate_record(r) for r in records)
    assert len(states) == 1
    return next(iter(states.values()))


RETRACT = _ev("r1", "X", "retracted", "2024-03-05", {"event_id": "s1"}, "2024-03-05T20:00:00+08:00")
LANDED = _ev("l1", "X", "landed", "2024-04-01", {"parcel_id": "P-1"})

CASES = {
    # A retraction corrects a fact; it does not make a secret public.
    "flagged signed retracted, landed stays": ([_signed("s1", "X", "2024-03-01", confidential=True), RETRACT, LANDED], True),
    "flagged, then an explicit correction recorded later": (
        [_signed("s1", "X", "2024-03-01", confidential=True), RETRACT, _signed("s2", "X", "2024-03-01", "2024-05-01T09:00:00+08:00", confidential=False)],
        False,
    ),
    "the non-confidential payload was recorded first": (
        [_signed("s2", "X", "2024-03-01", "2024-02-01T09:00:00+08:00", confidential=False), _signed("s1", "X", "2024-03-02", confidential=True)],
        True,
    ),
    "a later correction that omits the flag": (
        [_signed("s1", "X", "2024-03-01", confidential=True), RETRACT, _signed("s2", "X", "2024-03-01", "2024-05-01T09:00:00+08:00")],
        True,
    ),
    "the explicit correction is itself retracted": (
        [
            _signed("s1", "X", "2024-03-01", confidential=True),
            RETRACT,
            _signed("s2", "X", "2024-03-01", "2024-05-01T09:00:00+08:00", confidential=False),
            _ev("r2", "X", "retracted", "2024-05-02", {"event_id": "s2"}),
            LANDED,
        ],
        True,
    ),
    "never flagged": ([_signed("s1", "X", "2024-03-01"), LANDED], False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_confidentiality_rule(case: str) -> None:
    records, confidential = CASES[case]
    state = _state(records)
    assert state.confidential is confidential
    if confidential:
        assert not is_public_project(state)


def test_a_project_without_an_active_signing_is_not_public() -> None:
    state = _state([_signed("s1", "X", "2024-03-01"), _ev("r1", "X", "retracted", "2024-03-05", {"event_id": "s1"}), LANDED])
    assert not state.confidential and state.stage.value == "landed"
    assert not is_public_project(state)


def test_public_match_names_no_project_and_no_investor() -> None:
    result = {
        "investor": PROSPECT,
        "results": [{"rank": 1, "site_id": "P-2", "criteria": [{"criterion": "status", "value": "available", "reason_zh": "可供应", "reason_en": "available"}]}],
        "closest_misses": [
            {"site_id": "P-1", "failed": "status", "value": "taken", "reason_zh": f"已被落地项目占用（项目 {SECRET_ID}），不可供应", "reason_en": f"already taken by a landed project (project {SECRET_ID}), not available"}
        ],
    }
    public = public_match(result)
    text = json.dumps(public, ensure_ascii=False)
    assert SECRET_ID not in text and PROSPECT not in text
    assert public["closest_misses"][0]["reason_zh"] == "已被落地项目占用，不可供应"
    assert public["results"] == result["results"]


def _district(db: Engine, tmp_path: Path) -> None:
    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": ["P-0", "P-1", "P-2", "P-3"],
            "name": ["一号地块", "二号地块", "三号地块", "四号地块"],
            "park": ["夏云工业园区"] * 4,
            "land_use": ["100102"] * 4,
            "status": ["闲置"] * 4,
            "area_mu": [60.0] * 4,
        },
        geometry=[box(106.300 + 0.003 * i, 26.400, 106.302 + 0.003 * i, 26.402) for i in range(4)],
        crs="EPSG:4490",
    )
    parcels.to_file(tmp_path / "parcels.geojson", driver="GeoJSON")
    assert load_land_file(db, tmp_path / "parcels.geojson", kind="idle", valid_from=date(2024, 1, 1))["loaded"] == 4
    records = [
        # A confidential project on P-0: a match lists P-0 as a closest miss "taken by project …".
        _signed("sec-s", SECRET_ID, "2024-03-01", name=SECRET_NAME, investor=SECRET_INVESTOR, confidential=True, unit="保密单位"),
        _ev("sec-l", SECRET_ID, "landed", "2024-04-01", {"parcel_id": "P-0"}),
        # A confidential project whose signing was retracted while its landing on P-1 stays.
        _signed("ret-s", RETRACTED_ID, "2024-03-01", name=RETRACTED_NAME, investor=RETRACTED_INVESTOR, confidential=True),
        _ev("ret-r", RETRACTED_ID, "retracted", "2024-03-10", {"event_id": "ret-s"}),
        _ev("ret-l", RETRACTED_ID, "landed", "2024-04-01", {"parcel_id": "P-1"}),
        # A public project, so the public map has a projects layer to leak into.
        _signed("pub-s", "PUB-1", "2024-03-01", name="公开项目", investor="公开投资有限公司", location={"lon": 106.3095, "lat": 26.401}),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8")
    assert load_records(db, read_jsonl(path, "test")).rejected == 0


def test_the_three_leaks_are_closed(db: Engine, tmp_path: Path) -> None:
    _district(db, tmp_path)
    with db.connect() as conn:
        locs = project_locations(conn, Horizon(AS_OF)).set_index("project_id")
    # The retracted-signed project still lands on P-1 and stays confidential.
    assert locs.loc[RETRACTED_ID, "site_id"] == "P-1" and bool(locs.loc[RETRACTED_ID, "confidential"])
    assert not locs.loc[RETRACTED_ID, "public"] and not locs.loc[SECRET_ID, "public"] and locs.loc["PUB-1", "public"]
    shown = public_projects(locs.reset_index())
    assert list(shown["name"]) == ["公开项目"]

    requirement = {"investor": PROSPECT, "land_area_mu": {"min": 10, "max": 100}}
    internal = publish_maps(db, tmp_path / "internal", profile="internal", as_of=AS_OF, requirements=[requirement])
    public = publish_maps(db, tmp_path / "public", profile="public", as_of=AS_OF, requirements=[requirement])
    # Internal pages do name them (so the public test below can fail).
    internal_match = Path(internal["match-1"]).read_text(encoding="utf-8")
    assert SECRET_ID in internal_match and PROSPECT in internal_match
    assert PROSPECT in Path(internal["index"]).read_text(encoding="utf-8")
    match_page = Path(public["match-1"]).read_text(encoding="utf-8")
    assert "已被落地项目占用，不可供应" in match_page  # the near miss is still explained, without the project
    promo = Path(public["promotion"]).read_text(encoding="utf-8")
    assert "公开项目" in promo


def test_no_public_file_holds_a_confidential_project_or_the_prospect(db: Engine, tmp_path: Path) -> None:
    """The public profile of every output, from the one rule: grep every written file."""
    _district(db, tmp_path)
    requirement = {"investor": PROSPECT, "land_area_mu": {"min": 10, "max": 100}}
    out = tmp_path / "public"
    written = publish_maps(db, out, profile="public", as_of=AS_OF, requirements=[requirement], lang="both")
    assert {"promotion", "match-1", "index"} <= set(written)
    secrets = [SECRET_ID, SECRET_NAME, "绝密项目", SECRET_INVESTOR, "保密单位", RETRACTED_ID, RETRACTED_NAME, RETRACTED_INVESTOR, PROSPECT]
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        # JSON in the pages escapes non-ASCII nowhere, but "<" as \u003c: compare both spellings.
        found = [s for s in secrets if s in text or s.replace("<", "\\u003c").replace(">", "\\u003e") in text]
        assert not found, (path.name, found)
    # The retracted project's landing on P-1 draws no project point: the only one is PUB-1.
    promo = Path(written["promotion"]).read_text(encoding="utf-8")
    assert len(re.findall("公开项目", promo)) >= 1
