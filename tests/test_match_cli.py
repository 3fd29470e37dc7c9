"""``zhaoshang match`` end to end: land files and events loaded through the CLI into PostGIS, then matched."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from pyproj import Geod
from typer.testing import CliRunner

from zhaoshang.cli import app

GEOD = Geod(ellps="GRS80")
EXIT = (106.26, 26.41)
runner = CliRunner()


def square_at(km: float, area_mu: float, azimuth: float = 90.0) -> list[list[list[float]]]:
    """A square of ``area_mu`` 亩 whose centre is ``km`` ground kilometres from the exit."""
    lon, lat, _ = GEOD.fwd(EXIT[0], EXIT[1], azimuth, km * 1000.0)
    half_m = math.sqrt(area_mu * 10000 / 15) / 2
    dlat = half_m / 110_800.0
    dlon = half_m / (111_320.0 * math.cos(math.radians(lat)))
    return [[[lon - dlon, lat - dlat], [lon + dlon, lat - dlat], [lon + dlon, lat + dlat], [lon - dlon, lat + dlat], [lon - dlon, lat - dlat]]]


def geojson(path: Path, features: list[tuple[dict[str, Any], Any]]) -> Path:
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}},
                "features": [{"type": "Feature", "properties": p, "geometry": {"type": "Polygon", "coordinates": c}} for p, c in features],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    return path


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    return result


@pytest.fixture
def district(tmp_path: Path, db_url_str: str, db) -> str:
    def parcel(pid: str, km: float, area: float, **kw: Any) -> tuple[dict[str, Any], Any]:
        props = {"地块编号": pid, "地块名称": f"地块{pid}", "用地类型": "100102", "面积(亩)": area, "status": "idle",
                 "园区": "夏云工业园", "地价(万元/亩)": 22, "readiness": "七通一平", **kw}
        return props, square_at(km, area)

    idle = geojson(tmp_path / "idle.geojson", [
        parcel("P1", 3, 80),
        parcel("P2", 2, 90),                 # taken by project X from 2024-02-10
        parcel("P3", 18, 80),                # beyond 10 km
        parcel("P4", 1, 80, 用地类型="100103"),  # 三类 land
    ])
    factories = geojson(tmp_path / "factories.geojson", [
        ({"factory_id": "F1", "name": "1号标准厂房", "park": "夏云工业园", "floor_area_m2": 8000, "vacant_area_m2": 8000,
          "floor_load_kn_m2": 12, "clear_height_m": 9}, square_at(2, 3)),
    ])
    for file, kind in ((idle, "idle"), (factories, "factory")):
        r = invoke("land", "load", str(file), "--kind", kind, "--valid-from", "2024-01-01", "--database-url", db_url_str)
        assert r.exit_code == 0, r.output
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in [
        {"event_id": "s1", "project_id": "X", "type": "signed", "occurred_at": "2024-01-10", "payload": {"name": "X项目", "investment_wan": 9000}},
        {"event_id": "l1", "project_id": "X", "type": "landed", "occurred_at": "2024-02-10", "payload": {"parcel_id": "P2"}},
    ]) + "\n", encoding="utf-8")
    r = invoke("events", "load", str(events), "--database-url", db_url_str)
    assert r.exit_code == 0, r.output
    return db_url_str


REQ = {
    "investor": "某新材料公司", "industry": "新材料", "land_area_mu": {"min": 50, "max": 120},
    "max_price_wan_per_mu": 30, "near": [{"name": "高速出口", "lon": EXIT[0], "lat": EXIT[1], "max_km": 10}],
}


def write_req(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_match_as_of_a_date_sees_the_land_as_it_was(district: str, tmp_path: Path) -> None:
    req = write_req(tmp_path / "xcl.json", REQ)
    before = invoke("match", str(req), "--as-of", "2024-01-31", "--json", "--database-url", district)
    assert before.exit_code == 0, before.output
    data = json.loads(before.stdout)
    assert data["as_of"] == "2024-01-31" and data["kind"] == "idle"
    # P2 is nearer (2 km) and free in January: it ranks first
    assert [r["site_id"] for r in data["results"]] == ["P2", "P1"]
    after = json.loads(invoke("match", str(req), "--as-of", "2024-03-01", "--json", "--database-url", district).stdout)
    assert [r["site_id"] for r in after["results"]] == ["P1"]
    misses = {m["site_id"]: m for m in after["closest_misses"]}
    assert misses["P2"]["failed"] == "status" and "X" in misses["P2"]["reason_zh"]
    assert misses["P3"]["failed"] == "near" and misses["P3"]["value"] == pytest.approx(18.0, abs=0.01)
    assert misses["P4"]["failed"] == "land_use"
    assert "F1" not in misses  # a land requirement never lists factories


def test_match_table_map_and_factory_requirement(district: str, tmp_path: Path) -> None:
    req = write_req(tmp_path / "dz.json", {"investor": "某电子公司", "factory": {"floor_area_m2": {"min": 5000}, "clear_height_m": {"min": 8}}})
    html = tmp_path / "dz.html"
    r = invoke("match", str(req), "--as-of", "2024-03-01", "--map", str(html), "--database-url", district)
    assert r.exit_code == 0, r.output
    assert "F1" in r.stdout and "空置面积 8,000 平方米，满足 ≥ 5,000 平方米" in r.stdout
    assert "P1" not in r.stdout
    assert html.is_file() and "F1" in html.read_text(encoding="utf-8")


def test_batch_writes_one_result_per_requirement_and_reports_bad_files(district: str, tmp_path: Path) -> None:
    folder = tmp_path / "reqs"
    folder.mkdir()
    write_req(folder / "a.json", REQ)
    write_req(folder / "b.json", {"investor": "某电子公司", "factory": {"floor_area_m2": {"min": 5000}}})
    write_req(folder / "c.json", {"investor": "坏需求", "land_area_mu": {"min": 120, "max": 50}})
    out = tmp_path / "results"
    r = invoke("match", "--batch", str(folder), "--out", str(out), "--as-of", "2024-03-01", "--json", "--database-url", district)
    assert r.exit_code == 1  # one bad file: reported, the others still written
    summary = json.loads(r.stdout)
    by_file = {Path(s["file"]).name: s for s in summary["files"]}
    assert by_file["a.json"]["top_site"] == "P1" and by_file["b.json"]["top_site"] == "F1"
    assert "land_area_mu" in by_file["c.json"]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["a.match.json", "b.match.json"]
    a = json.loads((out / "a.match.json").read_text(encoding="utf-8"))
    assert a["as_of"] == "2024-03-01" and a["results"][0]["site_id"] == "P1"
    # default output is beside the requirements, and result files are not read back as requirements
    write_req(folder / "c.json", {"investor": "好需求"})
    assert invoke("match", "--batch", str(folder), "--as-of", "2024-03-01", "--database-url", district).exit_code == 0
    assert invoke("match", "--batch", str(folder), "--as-of", "2024-03-01", "--database-url", district).exit_code == 0
    assert sorted(p.name for p in folder.glob("*.match.json")) == ["a.match.json", "b.match.json", "c.match.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "不是有效的 JSON"),
        (json.dumps({"investor": "x", "near": [{"lon": 106.2, "lat": 26.4}]}), "near[0].max_km"),
        (json.dumps({"investor": "x", "max_price": 30}), "max_price: "),
    ],
)
def test_bad_requirement_files_fail_with_the_field(tmp_path: Path, db_url_str: str, content: str, message: str) -> None:
    req = tmp_path / "bad.json"
    req.write_text(content, encoding="utf-8")
    r = invoke("match", str(req), "--database-url", db_url_str)
    assert r.exit_code == 2
    assert message in r.output


def test_match_needs_exactly_one_of_file_or_batch(db_url_str: str, tmp_path: Path) -> None:
    assert invoke("match", "--database-url", db_url_str).exit_code == 2
    req = write_req(tmp_path / "a.json", REQ)
    assert invoke("match", str(req), "--batch", str(tmp_path), "--database-url", db_url_str).exit_code == 2


def test_demo_requirements_find_sites_in_the_demo_county(db, tmp_path: Path) -> None:
    from datetime import date

    from demo.district import load_demo_district
    from demo.requirements import write_demo_requirements
    from reports.matches import match_files

    load_demo_district(db, tmp_path / "land")
    files = write_demo_requirements(tmp_path / "requirements")
    summaries = match_files(db, files, out_dir=tmp_path / "matches", as_of=date(2019, 1, 1), maps=True)
    assert [s["error"] for s in summaries] == [None] * 4
    assert all(s["results"] > 0 for s in summaries), summaries
    by_stem = {Path(s["file"]).stem: s for s in summaries}
    assert by_stem["电子信息厂房"]["kind"] == "factory" and by_stem["电子信息厂房"]["top_site"].split("-")[1].startswith("F")
    chem = json.loads((tmp_path / "matches" / "精细化工.match.json").read_text(encoding="utf-8"))
    assert chem["allowed_land_use"] == ["100103"]
    assert all(Path(s["map"]).is_file() for s in summaries)


def test_empty_inventory_says_how_to_load_it(db, db_url_str: str, tmp_path: Path) -> None:
    req = write_req(tmp_path / "a.json", REQ)
    r = invoke("match", str(req), "--json", "--database-url", db_url_str)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["results"] == []
    assert "zhaoshang land load" in r.output
