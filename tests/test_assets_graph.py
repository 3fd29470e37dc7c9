"""The whole graph, as the demo builds it, on the small fixture district."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
from sqlalchemy import Engine, text

from assets.run import materialize_all
from tests.land_district import load_district


def test_materialize_all(db: Engine, tmp_path: Path) -> None:
    load_district(db, tmp_path)
    req_dir = tmp_path / "requirements"
    req_dir.mkdir()
    (req_dir / "a.json").write_text(json.dumps({"investor": "甲公司", "land_use": ["100102"], "land_area_mu": {"min": 10, "max": 100}}), encoding="utf-8")
    out = tmp_path / "out"
    with dg.DagsterInstance.ephemeral() as instance:
        summary = materialize_all(db.url.render_as_string(hide_password=False), out, requirements_dir=req_dir, instance=instance, say=lambda m: None)
    assert all(r["success"] for r in summary["runs"]), summary["runs"]
    assert summary["months"][0] == "2024-01-01"
    assert {c["check"] for c in summary["checks"]} >= {"geometries_valid", "no_overlapping_parcels", "funnel_monotone"}
    assert Path(summary["paths"]["promotion_map.path"]).is_file()
    assert Path(summary["paths"]["pipeline_map.path"]).is_file()
    match = json.loads(Path(summary["paths"]["investor_matches[a.json].path"]).read_text(encoding="utf-8"))
    assert [r["site_id"] for r in match["results"]] == ["P1", "P3"]  # P2 is taken by project X
    with db.connect() as conn:
        months = conn.execute(text("SELECT count(DISTINCT month_end) FROM mart_project_state")).scalar_one()
        land_months = conn.execute(text("SELECT count(DISTINCT month_end) FROM mart_land_status")).scalar_one()
    assert months == land_months == len(list((out / "bulletins").glob("*.json")))
