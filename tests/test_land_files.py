"""Land inventory files: formats, encodings, CRSs, repairs, rejections, areas, versions (real files, real PostGIS)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import Point, Polygon, box
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from ingestion.land_files import LandFileError, load_land_file, read_land_file
from warehouse.land import M2_PER_MU, InventoryError, inventory, site_history
from zhaoshang.cli import app

runner = CliRunner()

# Pingba, central Guizhou: CGCS2000 Gauss-Kruger 3-degree zone CM 105E is EPSG:4544 (x ≈ 630 km).
GK = "EPSG:4544"
X0, Y0 = 630_000.0, 2_922_000.0
NASTY_SQL = "'); drop table parcels; --"
NASTY_HTML = "<img src=x onerror=alert(1)>"


def cli(*args: str, url: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--database-url", url])
    return result.exit_code, result.stdout, result.stderr


def gk_parcels() -> gpd.GeoDataFrame:
    """Three parcels as a 自然资源局 export: Chinese field names, GK metres, a status in Chinese."""
    return gpd.GeoDataFrame(
        {
            "地块编号": ["PB-001", "PB-002", "PB-003"],
            "地块名称": ["夏云工业园区A区1号地块", NASTY_SQL, NASTY_HTML],
            "用地类型": [100102, 100101, 100103],
            "面积(亩)": [60.0, 30.0, 15.0],
            "状态": ["批而未供", "闲置", "低效用地"],
            "园区": ["夏云工业园区", "夏云工业园区", "平坝经济开发区"],
            "地价": [25.5, 28.0, 16.0],
            "容积率上限": [1.5, 2.0, 1.2],
            "七通一平": ["七通一平", "五通一平", "三通一平"],
        },
        geometry=[
            box(X0, Y0, X0 + 200, Y0 + 200),  # 40000 m² = 60 mu
            box(X0 + 300, Y0, X0 + 400, Y0 + 200),  # 20000 m² = 30 mu
            box(X0 + 500, Y0, X0 + 600, Y0 + 100),  # 10000 m² = 15 mu
        ],
        crs=GK,
    )


def test_gbk_shapefile_with_chinese_fields_in_gauss_kruger(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    path = tmp_path / "闲置土地.shp"
    gk_parcels().to_file(path, encoding="GBK")
    assert path.with_suffix(".cpg").read_text().strip().upper() == "GBK"
    assert "地块".encode("gbk") in path.with_suffix(".dbf").read_bytes()  # really GBK on disk, not UTF-8

    code, stdout, stderr = cli("land", "load", str(path), "--kind", "idle", "--valid-from", "2024-01-01", "--json", url=db_url_str)
    assert code == 0, stderr
    report = json.loads(stdout)
    assert (report["read"], report["loaded"], report["repaired"], report["rejected"]) == (3, 3, 0, 0)
    assert report["source_crs"] == GK
    assert report["warnings"] == []

    with db.connect() as conn:
        inv = inventory(conn, ["idle"], date(2024, 6, 1)).set_index("site_id")
        srid = conn.execute(text("SELECT DISTINCT ST_SRID(geom) FROM land_inventory")).scalars().all()
        gist = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE tablename = 'land_inventory' AND indexdef ILIKE '%gist%'")
        ).scalars().all()
    assert srid == [4490] and gist
    p1 = inv.loc["PB-001"]
    assert p1["name"] == "夏云工业园区A区1号地块"
    assert p1["park"] == "夏云工业园区"
    assert p1["land_use"] == "100102"
    assert p1["land_status"] == "approved_unsupplied"
    assert p1["price_wan_per_mu"] == 25.5 and p1["plot_ratio_max"] == 1.5 and p1["readiness"] == "七通一平"
    assert inv.loc["PB-003", "land_status"] == "inefficient"
    # The geometry came from GK metres to CGCS2000 degrees, near 106.3E 26.4N.
    x, y = p1.geometry.centroid.x, p1.geometry.centroid.y
    assert 106.2 < x < 106.5 and 26.3 < y < 26.5
    assert p1["geom_area_mu"] == pytest.approx(60.0, rel=2e-3)  # GK scale error near the CM is tiny
    # Names are data: they come back byte for byte, and the tables are all still there.
    assert inv.loc["PB-002", "name"] == NASTY_SQL
    assert inv.loc["PB-003", "name"] == NASTY_HTML


def test_shapefile_without_cpg_falls_back_to_gbk(db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "parcels.shp"
    gk_parcels().to_file(path, encoding="GBK")
    path.with_suffix(".cpg").unlink()
    got = read_land_file(path, kind="idle")
    assert got.encoding == "gb18030"
    assert got.frame.set_index("site_id").loc["PB-001", "park"] == "夏云工业园区"

    utf8 = tmp_path / "utf8.shp"
    gk_parcels().to_file(utf8, encoding="UTF-8")
    utf8.with_suffix(".cpg").unlink()
    got = read_land_file(utf8, kind="idle")
    assert got.encoding == "utf-8"
    assert got.frame.set_index("site_id").loc["PB-001", "name"] == "夏云工业园区A区1号地块"


def test_utf8_shapefile_whose_cpg_says_utf8_with_chinese_names_cut_at_10_bytes(db: Engine, tmp_path: Path) -> None:
    """GDAL writes UTF-8 field names cut at 10 bytes, 地块编号 (12 bytes) mid-character; the .cpg says UTF-8."""
    path = tmp_path / "utf8.shp"
    with pytest.warns(RuntimeWarning):  # GDAL says it laundered the names
        gk_parcels().to_file(path, encoding="UTF-8")
    assert path.with_suffix(".cpg").read_text().strip().upper() == "UTF-8"
    assert "地块编".encode() + "号".encode()[:1] in path.with_suffix(".dbf").read_bytes()  # cut inside 号
    got = read_land_file(path, kind="idle")
    frame = got.frame.set_index("site_id")
    assert sorted(frame.index) == ["PB-001", "PB-002", "PB-003"]
    p1 = frame.loc["PB-001"]
    assert (p1["name"], p1["land_use"], p1["land_status"], p1["area_mu"], p1["plot_ratio_max"], p1["readiness"]) == (
        "夏云工业园区A区1号地块", "100102", "approved_unsupplied", 60.0, 1.5, "七通一平"
    )
    assert json.loads(p1["extra"]) == {}  # every cut name mapped back to its attribute
    report = load_land_file(db, path, kind="idle", valid_from=date(2024, 1, 1))
    assert (report["read"], report["loaded"], report["rejected"]) == (3, 3, 0)


def test_file_without_crs_is_refused_and_crs_option_works(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    path = tmp_path / "nocrs.shp"
    gk_parcels().to_file(path, encoding="GBK")
    path.with_suffix(".prj").unlink()
    code, stdout, stderr = cli("land", "load", str(path), "--kind", "idle", "--json", url=db_url_str)
    assert code == 2
    assert "--crs" in stderr and "未声明坐标系" in stderr
    assert stdout == ""
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM land_inventory")).scalar() == 0

    code, stdout, stderr = cli("land", "load", str(path), "--kind", "idle", "--crs", GK, "--json", url=db_url_str)
    assert code == 0, stderr
    assert json.loads(stdout)["loaded"] == 3


def test_geojson_repairs_rejects_and_accounts_for_every_record(db: Engine, tmp_path: Path) -> None:
    bowtie = Polygon([(106.30, 26.40), (106.31, 26.41), (106.31, 26.40), (106.30, 26.41), (106.30, 26.40)])
    assert not bowtie.is_valid
    frame = gpd.GeoDataFrame(
        {
            "parcel_id": ["G-1", "G-2", "G-3", None, "G-1", "G-6"],
            "name": ["good", "bowtie", "empty", "no id", "duplicate", "a line"],
            "status": ["idle", "supplied_unused", "idle", "idle", "idle", "idle"],
        },
        geometry=[
            box(106.32, 26.40, 106.33, 26.41),
            bowtie,
            Polygon(),
            box(106.34, 26.40, 106.35, 26.41),
            box(106.36, 26.40, 106.37, 26.41),
            shapely.LineString([(106.38, 26.40), (106.39, 26.41)]),
        ],
        crs="EPSG:4490",
    )
    path = tmp_path / "parcels.geojson"
    frame.to_file(path, driver="GeoJSON")
    report = load_land_file(db, path, kind="idle", valid_from=date(2024, 1, 1))
    assert report["read"] == 6
    assert report["read"] == report["loaded"] + report["rejected"]
    assert report["loaded"] == 2
    assert report["repaired"] == 1 and report["repaired_ids"] == ["G-2"]
    reasons = {r["id"]: r["reason"] for r in report["rejections"]}
    assert "empty" in reasons["G-3"]
    assert "no parcel_id" in reasons["row 4"]
    assert "appears again" in reasons["G-1"]
    assert "LineString" in reasons["G-6"]
    with db.connect() as conn:
        inv = inventory(conn, ["idle"], date(2024, 1, 1)).set_index("site_id")
        valid = conn.execute(text("SELECT bool_and(ST_IsValid(geom)) FROM land_inventory")).scalar()
    assert valid
    # The repaired bow-tie keeps both triangles: half of its bounding square.
    assert inv.loc["G-2", "geom_area_mu"] == pytest.approx(inv.loc["G-1", "geom_area_mu"] / 2, rel=1e-3)


def test_area_in_mu_matches_geodesic_area(db: Engine, tmp_path: Path) -> None:
    """Area through the equal-area projection against pyproj's geodesic area on the CGCS2000 ellipsoid."""
    shapes = [
        Polygon([(106.30, 26.40), (106.3031, 26.4007), (106.3042, 26.4036), (106.3011, 26.4041), (106.2995, 26.4022)]),
        box(106.40, 26.50, 106.41, 26.508),
        Polygon([(106.21, 26.33), (106.2125, 26.331), (106.2104, 26.3342)]),
    ]
    frame = gpd.GeoDataFrame({"地块编号": ["A", "B", "C"]}, geometry=shapes, crs="EPSG:4490")
    path = tmp_path / "areas.gpkg"
    frame.to_file(path, driver="GPKG")
    got = read_land_file(path, kind="idle")
    geod = Geod(ellps="GRS80")  # CGCS2000's ellipsoid: GRS80 axes
    for site_id, shape in zip("ABC", shapes, strict=True):
        area_m2, _ = geod.geometry_area_perimeter(shape)
        expected_mu = abs(area_m2) / M2_PER_MU
        computed = got.frame.set_index("site_id").loc[site_id, "geom_area_mu"]
        assert computed == pytest.approx(expected_mu, rel=1e-4)
        # With no declared area, the area is the geometry's.
        assert got.frame.set_index("site_id").loc[site_id, "area_mu"] == computed


def test_declared_area_mismatch_and_overlaps_are_reported(db: Engine, tmp_path: Path) -> None:
    frame = gkparcels_with_overlap()
    path = tmp_path / "overlap.gpkg"
    frame.to_file(path, driver="GPKG")
    got = read_land_file(path, kind="idle")
    assert any(re.search(r"P-2: 面积不符 declared area 36.00 mu, geometry 29.9\d mu \(\+20\.\d%\)", w) for w in got.warnings)
    assert not any("P-1" in w and "面积不符" in w for w in got.warnings)  # 3% off: within tolerance
    assert [(o["a"], o["b"]) for o in got.overlaps] == [("P-1", "P-3")]
    assert got.overlaps[0]["overlap_mu"] == pytest.approx(10_000 / M2_PER_MU, rel=5e-3)


def gkparcels_with_overlap() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"parcel_id": ["P-1", "P-2", "P-3", "P-4"], "area_mu": [61.8, 36.0, None, None]},
        geometry=[
            box(X0, Y0, X0 + 200, Y0 + 200),  # 60 mu, declared 61.8 (3%)
            box(X0 + 300, Y0, X0 + 400, Y0 + 200),  # 30 mu, declared 36 (20%)
            box(X0 + 100, Y0 + 100, X0 + 250, Y0 + 300),  # overlaps P-1 by 100 × 100 m
            box(X0 + 400, Y0, X0 + 500, Y0 + 200),  # touches P-2 along an edge: no overlap
        ],
        crs=GK,
    )


def test_geopackage_factories_in_wgs84_with_points(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {
            "厂房编号": ["F-1", "F-2"],
            "名称": ["标准厂房1号楼", "标准厂房2号楼"],
            "园区": ["平坝经济开发区", "平坝经济开发区"],
            "建筑面积": [12000.0, 8000.0],
            "空置面积": [6000.0, 8000.0],
            "层数": [3, 1],
            "承重": [10.0, 30.0],
            "层高": [5.5, 9.0],
            "供电容量": [800.0, 1250.0],
            "租金": [12.5, 15.0],
            "物业电话": ["0851-1234567", None],
        },
        geometry=[box(106.29, 26.41, 106.2906, 26.4104), Point(106.292, 26.412)],
        crs="EPSG:4326",
    )
    path = tmp_path / "factories.gpkg"
    frame.to_file(path, driver="GPKG", layer="厂房")
    code, stdout, stderr = cli("land", "load", str(path), "--kind", "factory", "--valid-from", "2024-01-01", "--json", url=db_url_str)
    assert code == 0, stderr
    report = json.loads(stdout)
    assert (report["read"], report["loaded"], report["rejected"]) == (2, 2, 0)
    with db.connect() as conn:
        inv = inventory(conn, ["factory"]).set_index("site_id")
    f1 = inv.loc["F-1"]
    assert (f1["floor_area_m2"], f1["vacant_area_m2"], f1["floors"], f1["floor_load_kn_m2"]) == (12000.0, 6000.0, 3, 10.0)
    assert (f1["clear_height_m"], f1["power_kva"], f1["rent_yuan_m2_month"]) == (5.5, 800.0, 12.5)
    assert json.loads(f1["extra"]) == {"物业电话": "0851-1234567"}  # unknown columns are kept, not lost
    assert inv.loc["F-2"].geometry.geom_type == "Point"


def test_reload_closes_changed_and_vanished_rows(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    v1 = gk_parcels()
    p1 = tmp_path / "v1.gpkg"
    v1.to_file(p1, driver="GPKG")
    r1 = load_land_file(db, p1, kind="idle", valid_from=date(2024, 1, 1))
    assert (r1["inserted"], r1["closed"], r1["unchanged"]) == (3, 0, 0)

    v2 = v1[v1["地块编号"] != "PB-002"].copy()  # PB-002 was granted: gone from the idle list
    v2.loc[v2["地块编号"] == "PB-001", "地价"] = 30.0  # re-priced
    extra = gpd.GeoDataFrame({"地块编号": ["PB-004"], "地块名称": ["新增地块"]}, geometry=[box(X0 + 700, Y0, X0 + 800, Y0 + 100)], crs=GK)
    v2 = gpd.GeoDataFrame(pd.concat([v2, extra], ignore_index=True), geometry="geometry", crs=GK)
    p2 = tmp_path / "v2.gpkg"
    v2.to_file(p2, driver="GPKG")
    code, stdout, stderr = cli("land", "load", str(p2), "--kind", "idle", "--valid-from", "2025-01-01", "--json", url=db_url_str)
    assert code == 0, stderr
    r2 = json.loads(stdout)
    assert (r2["inserted"], r2["closed"], r2["unchanged"]) == (2, 2, 1)

    with db.connect() as conn:
        before = inventory(conn, ["idle"], date(2024, 12, 31)).set_index("site_id")
        after = inventory(conn, ["idle"], date(2025, 1, 1)).set_index("site_id")
        rows = conn.execute(text("SELECT count(*) FROM land_inventory")).scalar()
    assert sorted(before.index) == ["PB-001", "PB-002", "PB-003"]
    assert before.loc["PB-001", "price_wan_per_mu"] == 25.5
    assert sorted(after.index) == ["PB-001", "PB-003", "PB-004"]
    assert after.loc["PB-001", "price_wan_per_mu"] == 30.0
    assert rows == 5  # 3 first versions + PB-001's second + PB-004
    with db.connect() as conn:
        history = site_history(conn, "PB-001")
    assert [(str(v["valid_from"]), str(v["valid_to"])) for v in history] == [("2024-01-01", "2025-01-01"), ("2025-01-01", "None")]
    assert history[1]["changed"] == ["price_wan_per_mu"] and history[0]["source"].endswith("v1.gpkg")
    code, stdout, stderr = cli("land", "history", "PB-001", url=db_url_str)
    assert code == 0, stderr
    assert "2025-01-01" in stdout and "price_wan_per_mu" in stdout
    code, _, stderr = cli("land", "history", "NOPE", url=db_url_str)
    assert code == 2 and "NOPE" in stderr

    # The same file again changes nothing; an older version is refused, not applied.
    again = load_land_file(db, p2, kind="idle", valid_from=date(2025, 2, 1))
    assert (again["inserted"], again["closed"], again["unchanged"]) == (0, 0, 3)
    with pytest.raises(InventoryError, match="valid from 2025-01-01"):
        load_land_file(db, p1, kind="idle", valid_from=date(2024, 6, 1))
    code, _, stderr = cli("land", "load", str(p1), "--kind", "idle", "--valid-from", "2024-06-01", url=db_url_str)
    assert code == 2 and "2025-01-01" in stderr

    # --partial updates what the file names and leaves the rest open.
    only = v2[v2["地块编号"] == "PB-003"].copy()
    only["地价"] = 17.0
    p3 = tmp_path / "v3.gpkg"
    only.to_file(p3, driver="GPKG")
    r3 = load_land_file(db, p3, kind="idle", valid_from=date(2025, 3, 1), partial=True)
    assert (r3["inserted"], r3["closed"]) == (1, 1)
    with db.connect() as conn:
        now = inventory(conn, ["idle"]).set_index("site_id")
    assert sorted(now.index) == ["PB-001", "PB-003", "PB-004"] and now.loc["PB-003", "price_wan_per_mu"] == 17.0


def test_unreadable_and_wrong_crs_inputs(tmp_path: Path) -> None:
    with pytest.raises(LandFileError, match="no such file"):
        read_land_file(tmp_path / "missing.geojson", kind="idle")
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json")
    with pytest.raises(LandFileError, match="cannot read"):
        read_land_file(bad, kind="idle")
    # GK metres declared as degrees: every parcel lands outside China and is rejected, not loaded.
    wrong = gk_parcels().set_crs("EPSG:4490", allow_override=True)
    path = tmp_path / "wrong.gpkg"
    wrong.to_file(path, driver="GPKG")
    got = read_land_file(path, kind="idle")
    assert len(got.frame) == 0 and got.read == 3
    assert all("outside China" in r["reason"] for r in got.rejections)
    two = tmp_path / "two.gpkg"
    gk_parcels().to_file(two, driver="GPKG", layer="v1")
    gk_parcels().to_file(two, driver="GPKG", layer="v2")
    with pytest.raises(LandFileError, match="several layers"):
        read_land_file(two, kind="idle")
    assert len(read_land_file(two, kind="idle", layer="v2").frame) == 3
    no_id = tmp_path / "noid.geojson"
    gpd.GeoDataFrame({"foo": [1]}, geometry=[box(106.3, 26.4, 106.31, 26.41)], crs="EPSG:4490").to_file(no_id)
    with pytest.raises(LandFileError, match="no parcel_id column"):
        read_land_file(no_id, kind="idle")


def test_values_units_and_codes_are_normalised_or_reported(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {
            "宗地编号": [101, 102, 103],  # numeric ids are the ids' text
            "用地性质": ["二类工业用地", "100103.0", "商住"],
            "面积(平方米)": [40000.0, None, 10000.0],
            "出让价格(元/平方米)": ["450", "abc", "-3"],
            "土地状态": ["供而未用", "Idle", "未知"],
        },
        geometry=[box(X0, Y0, X0 + 200, Y0 + 200), box(X0 + 300, Y0, X0 + 400, Y0 + 100), box(X0 + 500, Y0, X0 + 600, Y0 + 100)],
        crs=GK,
    )
    path = tmp_path / "units.gpkg"
    frame.to_file(path, driver="GPKG")
    got = read_land_file(path, kind="idle")
    rows = got.frame.set_index("site_id")
    assert list(rows.index) == ["101", "102", "103"]
    assert list(rows["land_use"]) == ["100102", "100103", "商住"]
    assert rows.loc["101", "declared_area_mu"] == pytest.approx(60.0)  # 40000 m² = 60 亩
    assert rows.loc["101", "price_wan_per_mu"] == pytest.approx(450 * M2_PER_MU / 10000)  # 元/m² → 万元/亩
    assert pd.isna(rows.loc["102", "price_wan_per_mu"]) and pd.isna(rows.loc["103", "price_wan_per_mu"])
    assert list(rows["land_status"].fillna("")) == ["supplied_unused", "idle", ""]
    text_of = "\n".join(got.warnings)
    assert "102: price_wan_per_mu 'abc' 不是数字 is not a number" in text_of
    assert "103: price_wan_per_mu" in text_of and "negative" in text_of
    assert "103: 状态 status '未知' unknown" in text_of
    assert "103: 用地类型 land_use '商住' is no land-use code" in text_of


def test_land_load_text_output_lists_warnings(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    path = tmp_path / "overlap.gpkg"
    gkparcels_with_overlap().to_file(path, driver="GPKG")
    code, stdout, stderr = cli("land", "load", str(path), "--kind", "idle", "--valid-from", "2024-01-01", url=db_url_str)
    assert code == 0, stderr
    assert "读取 read 4" in stderr and "载入 loaded 4" in stderr
    assert "重叠 overlap: P-1 and P-3" in stderr and "P-2: 面积不符" in stderr
    code, _, stderr = cli("land", "load", str(path), "--kind", "farm", url=db_url_str)
    assert code == 2 and "--kind" in stderr


@pytest.mark.parametrize("crs", ["EPSG:4490", "EPSG:4326", "EPSG:4544", "EPSG:4523", "EPSG:4545"])
def test_any_declared_crs_gives_the_same_parcel(tmp_path: Path, crs: str) -> None:
    """CGCS2000 degrees, WGS84, Gauss-Kruger 3° zones with (4523, zone 35) and without (4544) the
    zone number in the false easting, and a neighbouring zone (4545, CM 108E)."""
    parcel = Polygon([(106.30, 26.40), (106.304, 26.4003), (106.3045, 26.4031), (106.3002, 26.4036)])
    source = gpd.GeoDataFrame({"地块编号": ["X-1"]}, geometry=[parcel], crs="EPSG:4490").to_crs(crs)
    path = tmp_path / "parcel.gpkg"
    source.to_file(path, driver="GPKG")
    got = read_land_file(path, kind="idle")
    assert got.source_crs == crs
    back = got.frame.geometry.iloc[0]
    assert back.equals_exact(parcel, tolerance=1e-7)  # ~1 cm
    area_m2, _ = Geod(ellps="GRS80").geometry_area_perimeter(parcel)
    assert got.frame["geom_area_mu"].iloc[0] == pytest.approx(abs(area_m2) / M2_PER_MU, rel=1e-4)
