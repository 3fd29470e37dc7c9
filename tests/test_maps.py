"""Map renderers: GCJ-02, encoding, simplification, the public allow-list, escaping, self-containment,
and what headless Chromium sees when it opens the pages from disk with networking disabled."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod

from maps.browser import inspect_page
from maps.gcj02 import gcj02_to_wgs84, to_gcj02, wgs84_to_gcj02
from maps.match_map import render_match_map
from maps.pipeline import encode_frames, render_pipeline_map
from maps.promotion import (
    ON_OFFER,
    PUBLIC_SITE_FIELDS,
    on_offer,
    public_projects,
    public_sites,
    render_promotion_map,
)
from maps.render import encode_polygons, origin_of, simplify_m
from tests.maps_data import LAT0, LON0, parks_frame, pois_frame, projects_frame, sites_frame

GEOD = Geod(ellps="WGS84")
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'

# Published reference pairs (WGS84 -> GCJ-02) from the eviltransform test suites: lat, lon, lat, lon.
REFERENCE = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


def metres(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def page_spec(page: str) -> dict[str, Any]:
    """The layer spec a page embeds (the JSON literal the runtime draws)."""
    m = re.search(r"var spec = (\{.*?\});\n\s*var map = ", page, re.S)
    assert m, "no spec in page"
    return json.loads(m.group(1))


def decode_points(layer: dict[str, Any], precision: int) -> np.ndarray:
    ox, oy = layer["origin"]
    k = 10.0**precision
    return np.array([[(ox + g[0]) / k, (oy + g[1]) / k] for g in layer["geoms"]])


def decode_polygons(layer: dict[str, Any], precision: int) -> list[shapely.Geometry]:
    ox, oy = layer["origin"]
    k = 10.0**precision
    out = []
    for g in layer["geoms"]:
        polys = []
        for rings in g:
            decoded = [(np.cumsum(np.array(r).reshape(-1, 2), axis=0) + [ox, oy]) / k for r in rings]
            polys.append(shapely.Polygon(decoded[0], decoded[1:]))
        out.append(shapely.MultiPolygon(polys) if len(polys) > 1 else polys[0])
    return out


# ---------------------------------------------------------------- GCJ-02


@pytest.mark.parametrize(("lat", "lon", "glat", "glon"), REFERENCE)
def test_gcj02_matches_published_reference_within_a_metre(lat: float, lon: float, glat: float, glon: float) -> None:
    got_lon, got_lat = wgs84_to_gcj02([lon], [lat])
    assert metres(got_lon, got_lat, [glon], [glat])[0] < 1.0
    # The shift itself: hundreds of metres, equal to the reference shift within a metre.
    expected = metres([lon], [lat], [glon], [glat])[0]
    assert expected > 100
    assert abs(metres([lon], [lat], got_lon, got_lat)[0] - expected) < 1.0


def test_gcj02_inverse_and_outside_china() -> None:
    lon = np.array([106.26, 121.5272106, 2.35])
    lat = np.array([26.41, 31.1774276, 48.85])  # the last one is Paris: unchanged
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    assert g_lon[2] == lon[2] and g_lat[2] == lat[2]
    back_lon, back_lat = gcj02_to_wgs84(g_lon, g_lat)
    assert metres(back_lon, back_lat, lon, lat).max() < 0.01


def test_to_gcj02_moves_every_vertex() -> None:
    sites = sites_frame()
    moved = to_gcj02(sites.geometry)
    before = shapely.get_coordinates(sites.geometry.values)
    after = shapely.get_coordinates(moved.values)
    exp_lon, exp_lat = wgs84_to_gcj02(before[:, 0], before[:, 1])
    assert metres(after[:, 0], after[:, 1], exp_lon, exp_lat).max() < 1e-6
    assert metres(before[:, 0], before[:, 1], after[:, 0], after[:, 1]).min() > 100


def test_gaode_page_shifts_a_known_point_by_the_known_offset() -> None:
    lat, lon, glat, glon = REFERENCE[0]
    pois = gpd.GeoDataFrame({"name": ["参考点"], "kind": ["port"]}, geometry=shapely.points([[lon, lat]]), crs="EPSG:4490")
    sites = gpd.GeoDataFrame(sites_frame().iloc[:1].drop(columns="geometry"), geometry=[shapely.box(lon - 0.002, lat - 0.002, lon, lat)], crs="EPSG:4490")
    for basemap, (want_lon, want_lat) in (("gaode", (glon, glat)), ("none", (lon, lat))):
        spec = page_spec(render_promotion_map(sites, None, pois, basemap=basemap))
        layer = next(la for la in spec["layers"] if la["id"] == "pois")
        (x, y), = decode_points(layer, spec["precision"])
        assert metres([x], [y], [want_lon], [want_lat])[0] < 1.0, basemap


# ---------------------------------------------------------------- geometry encoding and simplification


def test_encoding_round_trips_at_the_stated_precision() -> None:
    sites = sites_frame(n_idle=5, n_factory=2)
    holed = shapely.Polygon(
        shapely.get_exterior_ring(sites.geometry.iloc[0]).coords,
        [shapely.box(LON0 + 0.001, LAT0 + 0.001, LON0 + 0.0015, LAT0 + 0.0015).exterior.coords],
    )
    multi = shapely.MultiPolygon([sites.geometry.iloc[1], sites.geometry.iloc[2]])
    geoms = gpd.GeoSeries([holed, multi, sites.geometry.iloc[3]], crs="EPSG:4490")
    origin = origin_of(geoms.total_bounds, 5)
    layer = {"origin": list(origin), "geoms": encode_polygons(geoms, origin, 5)}
    decoded = decode_polygons(layer, 5)
    assert [g.geom_type for g in decoded] == ["Polygon", "MultiPolygon", "Polygon"]
    assert len(decoded[0].interiors) == 1
    for a, b in zip(geoms, decoded, strict=True):
        # Quantisation to 1e-5 degree moves a vertex at most half a unit on each axis (< 1 m).
        assert shapely.hausdorff_distance(a, b) <= 0.5e-5 * np.sqrt(2) + 1e-12
        assert abs(a.area - b.area) / a.area < 0.005


def test_simplification_keeps_parcels_recognisable() -> None:
    sites = sites_frame(n_idle=8, n_factory=0)
    dense = sites.geometry.segmentize(1e-5)  # a vertex every metre or so, as survey exports have
    simple = simplify_m(dense, 1.0)
    n_before = shapely.get_num_coordinates(dense.values).sum()
    n_after = shapely.get_num_coordinates(simple.values).sum()
    assert n_after < n_before / 10
    assert simple.is_valid.all()
    utm = dense.estimate_utm_crs()
    a, b = dense.to_crs(utm), simple.to_crs(utm)
    assert max(shapely.hausdorff_distance(x, y) for x, y in zip(a, b, strict=True)) <= 1.0 + 1e-6
    assert (abs(a.area - b.area) / a.area).max() < 0.01


# ---------------------------------------------------------------- public profile and escaping


def _promo(profile: str, **kw: Any) -> str:
    return render_promotion_map(
        sites_frame(evil_name=EVIL), parks_frame(), pois_frame(), projects=projects_frame(), profile=profile, **kw
    )


def test_public_page_has_no_confidential_project_no_unsigned_investor_no_internal_field() -> None:
    internal = _promo("internal")
    public = _promo("public")
    # The internal page does carry them, so these checks can fail.
    for secret in ("秘密投资人有限公司", "保密洽谈项目", "未签约投资人公司", "工业园区管委会", "approved_unsupplied", "P-2"):
        assert secret in internal, secret
        assert secret not in public, secret
    spec = page_spec(public)
    sites = next(la for la in spec["layers"] if la["id"] == "sites")
    assert set(sites["props"]) - {"style_key"} <= PUBLIC_SITE_FIELDS
    assert {f["col"] for f in sites["fields"]} <= PUBLIC_SITE_FIELDS
    projects = next(la for la in spec["layers"] if la["id"] == "projects")
    assert set(projects["props"]) <= {"name", "stage", "industry", "investor", "investment_wan"}
    assert projects["props"]["name"] == ["新材料产业园项目", "停滞项目"]
    # Only sites still on offer.
    frame = sites_frame()
    assert len(sites["geoms"]) == int(on_offer(frame).sum()) == int(frame["status"].isin(ON_OFFER).sum())


def test_public_sites_need_space_left() -> None:
    sites = sites_frame(n_idle=2, n_factory=2)
    # A factory the file lists as fully let (no project on it, so 'available'), and a parcel with nothing left.
    sites.loc[sites["site_id"] == "CF-001", "vacant_area_m2"] = 0.0
    sites.loc[sites["site_id"] == "DK-001", "remaining_area_mu"] = 0.0
    sites.loc[sites["site_id"] == "DK-002", "remaining_area_mu"] = None  # unknown: kept
    shown = public_sites(sites)
    assert list(shown["site_id"]) == ["DK-002", "CF-002"]


def test_public_projects_is_an_allow_list() -> None:
    projects = projects_frame()
    projects["secret_note"] = "内部备注"
    out = public_projects(projects)
    assert "secret_note" not in out.columns and "unit" not in out.columns and "confidential" not in out.columns
    assert not out["investor"].isin(["秘密投资人有限公司", "未签约投资人公司"]).any()


@pytest.mark.parametrize("profile", ["public", "internal"])
def test_text_from_data_never_reaches_the_page_unescaped(profile: str) -> None:
    page = _promo(profile)
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "<b>污水处理厂</b>" not in page
    # Inside the embedded JSON the name survives, \u-escaped, to be escaped again at display.
    assert "\\u003cscript\\u003ealert" in page


def test_match_map_escapes_reasons_and_names() -> None:
    result = _match_result(evil=True)
    page = render_match_map(result, sites_frame())
    assert "<script>alert" not in page and "<b>面积" not in page


def test_match_map_names_criteria_and_failures_in_the_page_language() -> None:
    spec = page_spec(render_match_map(_match_result(), sites_frame(), lang="both"))
    misses = next(la for la in spec["layers"] if la["id"] == "misses")
    assert misses["props"]["failed"] == ["价格 Price"]
    results = next(la for la in spec["layers"] if la["id"] == "results")
    assert results["extra"][0]["rows"][0][0] == "面积匹配 Area fit"
    assert results["props"]["rank"] == [1, 2, 3]


# ---------------------------------------------------------------- self-contained


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            if a.get("src"):
                self.external.append(f"script {a['src']}")
            else:
                self.inline_scripts += 1
        if tag == "link" and a.get("href"):
            self.external.append(f"link {a['href']}")


def _pages() -> dict[str, str]:
    return {
        "promotion": _promo("public"),
        "pipeline": render_pipeline_map(_frames(), parks=parks_frame(), sites=sites_frame()),
        "match": render_match_map(_match_result(), sites_frame(), parks=parks_frame()),
    }


def test_basemap_none_pages_request_no_script_or_style() -> None:
    for name, page in _pages().items():
        parser = _Assets()
        parser.feed(page)
        assert parser.external == [], name
        assert parser.inline_scripts >= 3, name  # Leaflet, runtime, map
        assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page), name
        # Leaflet's icons are data: URIs, not files beside the page.
        assert "url(images/" not in page and "data:image/png;base64," in page, name
        assert "sourceMappingURL" not in page, name
        assert "L.tileLayer(tl.url" in page and '"tiles":[]' in page, name


def test_tianditu_takes_the_key_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIANDITU_KEY", "0123abcd")  # the renderer does not read the environment: the CLI passes the settings' key
    with pytest.raises(ValueError, match="TIANDITU_KEY"):
        _promo("public", basemap="tianditu")
    spec = page_spec(_promo("public", basemap="tianditu", tianditu_key="0123abcd"))
    assert all("tk=0123abcd" in tl["url"] for tl in spec["tiles"])
    assert spec["tiles"][0]["url"].startswith("https://t{s}.tianditu.gov.cn/")


def test_language_switch() -> None:
    en = page_spec(_promo("public", lang="en"))
    both = page_spec(_promo("public", lang="both"))
    zh = page_spec(_promo("public", lang="zh"))
    assert en["title"] == "Investment promotion map" and zh["title"] == "招商推介地图"
    assert both["title"] == "招商推介地图 Investment promotion map"
    assert en["legend"][0]["items"][0]["label"] == "Class-1 industrial"


# ---------------------------------------------------------------- pipeline frames


def _frames() -> gpd.GeoDataFrame:
    pr = projects_frame()
    pr = pr[pr["stage"] != "none"]
    out = []
    for k, month in enumerate(["2026-08", "2026-09", "2026-10"]):
        f = pr.iloc[: k + 2].copy()
        f.insert(0, "month", month)
        if month == "2026-08":
            f["stage"] = "signed"
            f["stalled"] = False
        out.append(f)
    return gpd.GeoDataFrame(pd.concat(out, ignore_index=True), geometry="geometry", crs="EPSG:4490")


def test_encode_frames_one_code_per_project_and_month() -> None:
    latest, months, codes = encode_frames(_frames())
    assert months == ["2026-08", "2026-09", "2026-10"]
    assert list(latest["project_id"]) == ["P-1", "P-2", "P-3", "P-4"]
    assert codes == ["ss..", "lsx.", "lsxT"]  # P-4 stalled in October: upper case


def _match_result(evil: bool = False) -> dict[str, Any]:
    results = []
    for i in range(3):
        results.append(
            {
                "rank": i + 1, "site_id": f"DK-00{i + 1}", "kind": "idle", "name": EVIL if evil and i == 0 else f"产业园{i + 1}号地块",
                "park": "高新区", "score": 0.9 - 0.1 * i, "lon": LON0 + (i % 4) * 0.006 + 0.002, "lat": LAT0 + 0.0015,
                "criteria": [{"criterion": "area_fit", "value": 50, "score": 0.8, "weight": 0.4,
                              "reason_zh": "<b>面积</b>合适" if evil else "面积合适", "reason_en": "area fits"}],
            }
        )
    misses = [{"site_id": "DK-005", "kind": "idle", "name": "产业园5号地块", "park": "经开区", "failed": "price",
               "reason_zh": "地价超出", "reason_en": "too expensive", "lon": LON0 + 0.002, "lat": LAT0 + 0.0065}]
    return {"investor": "某新材料公司", "as_of": "2026-10-31", "results": results, "closest_misses": misses}


# ---------------------------------------------------------------- in the browser


def test_browser_draws_every_feature_offline_without_errors(tmp_path: Path) -> None:
    frames = _frames()
    expected = {
        # public promotion: sites on offer + parks + POIs + signed non-confidential projects
        "promotion": int(on_offer(sites_frame()).sum()) + len(parks_frame()) + len(pois_frame()) + len(public_projects(projects_frame()).query("stage != 'cancelled'")),
        # pipeline: context (parks + sites) + projects of the last month
        "pipeline": len(parks_frame()) + len(sites_frame()) + int((frames["month"] == "2026-10").sum()),
        # match: parks + outlines of the ranked sites + ranked markers + misses
        "match": len(parks_frame()) + 3 + 3 + 1,
    }
    for name, page in _pages().items():
        path = tmp_path / f"{name}.html"
        path.write_text(page, encoding="utf-8")
        report = inspect_page(path, evaluate=["[document.querySelectorAll('.leaflet-overlay-pane path').length, document.querySelectorAll('.leaflet-overlay-pane canvas').length]"])
        assert report.errors == [], (name, report.errors)
        assert report.remote_requests == [], (name, report.remote_requests)
        assert report.features == expected[name], (name, report.dataset)
        svg_paths, canvases = report.values[0]
        assert svg_paths == 0 and canvases >= 1, name  # drawn on canvas, not as SVG elements


def test_browser_popup_and_search_show_evil_names_as_text(tmp_path: Path) -> None:
    path = tmp_path / "evil.html"
    path.write_text(_promo("public"), encoding="utf-8")
    probe = """(() => {
        const input = document.querySelector('.zs-search input');
        input.value = 'DK-001';
        input.dispatchEvent(new Event('input'));
        const li = document.querySelector('.zs-search li');
        li.click();
        const pop = document.querySelector('.leaflet-popup-content');
        let evil = null;
        ZS.groups.sites.eachLayer(l => { if (l._zsIndex === 0) evil = l; });
        evil.fire('mouseover', {latlng: evil.getBounds().getCenter()}, true);
        const tip = document.querySelector('.zs-tip');
        const legend = document.querySelector('.zs-legend');
        return {li: li.textContent, popText: pop.textContent, popHtml: pop.innerHTML, tip: tip.textContent,
                legend: legend.textContent,
                scripts: document.querySelectorAll('.leaflet-popup-content script, .zs-search script, .leaflet-popup-content img,'
                    + ' .zs-tip script, .zs-tip img, .zs-legend u, .zs-legend b').length,
                alerted: !!window.__alerted};
    })()"""
    report = inspect_page(path, evaluate=["window.alert = () => { window.__alerted = true; }", probe])
    got = report.values[1]
    assert report.errors == []
    assert EVIL in got["li"] and EVIL in got["popText"]
    assert "&lt;script&gt;" in got["popHtml"]
    assert EVIL in got["tip"]
    assert "<u>市政</u>" in got["legend"]
    assert got["scripts"] == 0 and got["alerted"] is False


def test_browser_timeline_replays_months(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.html"
    path.write_text(render_pipeline_map(_frames()), encoding="utf-8")
    step = """(() => {{ const r = document.querySelector('.zs-timeline input'); r.value = '{m}';
        r.dispatchEvent(new Event('input')); return [document.body.dataset.month, +document.body.dataset.features]; }})()"""
    report = inspect_page(path, evaluate=[step.format(m=0), step.format(m=1), step.format(m=2)])
    assert report.errors == []
    assert report.values == [["2026-08", 2], ["2026-09", 3], ["2026-10", 4]]
