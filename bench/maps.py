"""Promotion map of 20,000 parcels: HTML size and Chromium load time against a naive folium page.

    ./run bench maps [--parcels 20000] [--runs 3] [--work-dir DIR] [--keep] [--no-doc]

Data: a seeded synthetic county of ``--parcels`` industrial parcels (about 150 × 110 m each,
jittered corners and a surveyed vertex every ~12 m along the edges, as land-bureau exports come)
with every public attribute filled, EPSG:4490.

Ours: ``maps.promotion.render_promotion_map`` (public profile, basemap none: Leaflet inlined,
canvas, 1 m topology-preserving simplification, 5 decimals ≈ 1 m, columnar attributes, popups
built on click). Baseline, same run and same parcels: ``folium.Map`` + ``folium.GeoJson(gdf)``
as a page would be written without thought (SVG paths, full-precision coordinates, every
attribute in every feature). For a fair load time the baseline's CDN Leaflet is swapped for the
same inlined copy and its other CDN links (jQuery, Bootstrap, Font Awesome, unused by a GeoJson
layer) are dropped, and it gets no tiles (ours has none either), so neither page touches the
network; its size is reported both ways.

Load time: headless Chromium via DevTools, networking disabled, page opened from disk;
``loadEventEnd`` of the navigation (both pages draw synchronously before the load event), the
median of ``--runs`` fresh browser starts.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

# This file is bench/maps.py: keep bench/ off the path while importing the ``maps`` package,
# then add it back for the benchmarks' shared ``_common``.
BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))
sys.modules.pop("maps", None)

import folium  # noqa: E402
import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402

from maps.browser import inspect_page  # noqa: E402
from maps.promotion import render_promotion_map  # noqa: E402
from maps.vendor import assets  # noqa: E402

sys.path.append(str(BENCH))
from _common import Bench, bench_run, parser  # noqa: E402

LON0, LAT0 = 106.20, 26.30
M_PER_DEG = 111_320.0


def synthetic_sites(n: int, seed: int = 20261122) -> gpd.GeoDataFrame:
    """``n`` parcels on a jittered grid, every land-status column filled (EPSG:4490)."""
    rng = np.random.default_rng(seed)
    cols = int(np.ceil(np.sqrt(n * 1.6)))
    i = np.arange(n)
    cx = (i % cols) * 170.0
    cy = (i // cols) * 130.0
    # Corners of a 150 × 110 m quadrilateral, jittered by ±4 m, edges densified at ~12 m.
    base = np.array([[0, 0], [150, 0], [150, 110], [0, 110]], dtype=float)
    corners = base[None, :, :] + rng.normal(0, 4, (n, 4, 2))
    steps = np.linspace(0, 1, 12, endpoint=False)
    edges = []
    for k in range(4):
        a, b = corners[:, k, :], corners[:, (k + 1) % 4, :]
        edges.append(a[:, None, :] + (b - a)[:, None, :] * steps[None, :, None])
    ring = np.concatenate(edges, axis=1) + rng.normal(0, 0.15, (n, 48, 2))  # survey noise, 15 cm
    ring[:, :, 0] += cx[:, None]
    ring[:, :, 1] += cy[:, None]
    lon = LON0 + ring[:, :, 0] / (M_PER_DEG * np.cos(np.radians(LAT0)))
    lat = LAT0 + ring[:, :, 1] / M_PER_DEG
    coords = np.stack([lon, lat], axis=-1)
    closed = np.concatenate([coords, coords[:, :1, :]], axis=1)
    geoms = shapely.polygons(closed)
    land_use = rng.choice(["100101", "100102", "100103"], n)
    parks = np.array(["经济开发区", "高新技术产业园", "现代物流园", "新型建材产业园"])
    return gpd.GeoDataFrame(
        {
            "site_id": [f"DK-{k:06d}" for k in range(n)],
            "kind": "idle",
            "name": [f"{parks[k % 4]}{k % 97 + 1}号地块" for k in range(n)],
            "park": parks[i % 4],
            "land_use": land_use,
            "land_status": rng.choice(["idle", "approved_unsupplied", "supplied_unused", "inefficient"], n),
            "status": "available",
            "area_mu": np.round(rng.uniform(20, 30, n), 2),
            "remaining_area_mu": np.round(rng.uniform(10, 30, n), 2),
            "price_wan_per_mu": np.round(rng.uniform(12, 40, n), 1),
            "plot_ratio_max": rng.choice([1.0, 1.2, 1.5, 2.0], n),
            "readiness": rng.choice(["七通一平", "五通一平", "三通一平"], n),
            "floor_area_m2": None,
            "vacant_area_m2": None,
            "floors": None,
            "floor_load_kn_m2": None,
            "clear_height_m": None,
            "power_kva": None,
            "rent_yuan_m2_month": None,
            "project_ids": [[] for _ in range(n)],
        },
        geometry=geoms,
        crs="EPSG:4490",
    )


def naive_page(sites: gpd.GeoDataFrame) -> tuple[str, str]:
    """(the page as folium writes it, the same page with Leaflet inlined and no CDN links)."""
    frame = sites.drop(columns=["project_ids"])
    b = frame.total_bounds
    m = folium.Map(location=[(b[1] + b[3]) / 2, (b[0] + b[2]) / 2], zoom_start=12, tiles=None)
    folium.GeoJson(frame).add_to(m)
    raw = m.get_root().render()
    a = assets()
    offline = re.sub(r'<script src="https://cdn\.jsdelivr\.net/npm/leaflet@[^"]+/leaflet\.js"></script>', lambda _m: f"<script>{a.js[0]}</script>", raw)
    offline = re.sub(r'<link rel="stylesheet" href="https://cdn\.jsdelivr\.net/npm/leaflet@[^"]+/leaflet\.css"/>', lambda _m: f"<style>{a.css[0]}</style>", offline)
    offline = re.sub(r'<script src="https?://[^"]+"></script>|<link rel="stylesheet" href="https?://[^"]+"/>', "", offline)
    return raw, offline


def load_ms(path: Path, runs: int) -> tuple[float, int | None, list[str]]:
    times = []
    features = None
    errors: list[str] = []
    for _ in range(runs):
        report = inspect_page(path, timeout=300)
        if report.load_ms is None:
            raise RuntimeError(f"{path}: no navigation timing")
        times.append(report.load_ms)
        features = report.features
        errors = report.errors
    return statistics.median(times), features, errors


PUBLISHED = {"parcels": 20_000}


def main() -> None:
    ap = parser(__doc__, database=False)
    ap.add_argument("--parcels", type=int, default=PUBLISHED["parcels"])
    ap.add_argument("--runs", type=int, default=3, help="fresh Chromium starts per page (the median is reported)")
    args = ap.parse_args()
    with bench_run("maps", args, published=PUBLISHED, database=False) as bench:
        run(bench, args)


def run(bench: Bench, args: argparse.Namespace) -> None:
    sites = synthetic_sites(args.parcels)
    vertices = int(shapely.get_num_coordinates(sites.geometry.values).sum())
    print(f"{len(sites):,} parcels, {vertices:,} vertices", flush=True)
    out = bench.work
    t0 = time.perf_counter()
    ours = render_promotion_map(sites, None, None, profile="public", basemap="none")
    render_ours = time.perf_counter() - t0
    # The encoding alone (no simplification): how much of the saving is not from dropping vertices.
    size_unsimplified = len(render_promotion_map(sites, None, None, simplify_tolerance_m=0).encode())
    t0 = time.perf_counter()
    naive_raw, naive = naive_page(sites)
    render_naive = time.perf_counter() - t0
    (out / "ours.html").write_text(ours, encoding="utf-8")
    (out / "naive.html").write_text(naive, encoding="utf-8")
    size_ours = len(ours.encode())
    size_naive = len(naive.encode())
    size_naive_raw = len(naive_raw.encode())
    print(f"  HTML size: ours {size_ours / 1e6:.2f} MB, naive {size_naive / 1e6:.2f} MB inlined ({size_naive_raw / 1e6:.2f} MB with CDN links)", flush=True)
    ms_ours, feat_ours, err_ours = load_ms(out / "ours.html", args.runs)
    ms_naive, _, err_naive = load_ms(out / "naive.html", args.runs)
    if feat_ours != len(sites):
        raise SystemExit(f"our page drew {feat_ours} features, expected {len(sites)}")
    if err_ours:
        raise SystemExit(f"our page had errors: {err_ours[:3]}")
    size_ratio = size_ours / size_naive_raw
    speed = ms_naive / ms_ours
    print(f"  render (Python): ours {render_ours:.2f} s, naive {render_naive:.2f} s")
    print(f"  Chromium load (median of {args.runs}): ours {ms_ours:,.0f} ms, naive {ms_naive:,.0f} ms → {speed:.1f}× faster")
    print(f"  size ratio ours/naive: {size_ratio:.3f} (goal ≤ 0.333) {'✓' if size_ratio <= 1 / 3 else '✗'}")
    if err_naive:
        print(f"  (naive page errors: {err_naive[:2]})")
    body = f"""## Maps: a {len(sites):,}-parcel promotion map (`./run bench maps`)

{bench.machine_line()} Headless Chromium {chromium_version()}.

{len(sites):,} synthetic parcels ({vertices:,} vertices, a surveyed vertex every ~12 m), all public
attributes filled. Ours: `render_promotion_map` (public, `--basemap none`, Leaflet inlined, canvas,
1 m topology-preserving simplification, 5 decimals ≈ 1 m, columnar attributes, popups built on
click). Baseline in the same run: `folium.Map()` + `folium.GeoJson(gdf)` (SVG, full-precision
coordinates, every attribute in every feature); for its load time its CDN Leaflet is swapped for
the same inlined copy, the unused CDN links are dropped and no tiles are set, so neither page
uses the network.
Load time: `loadEventEnd` in headless Chromium (DevTools, networking off, opened from disk),
median of {args.runs} fresh starts; both pages draw before the load event.

| | ours | naive `folium.GeoJson` | ratio |
|---|---:|---:|---:|
| HTML size | {size_ours / 1e6:.2f} MB | {size_naive_raw / 1e6:.2f} MB ({size_naive / 1e6:.2f} MB with Leaflet inlined) | **{size_ratio:.3f}** (goal ≤ 0.333) |
| Chromium load | {ms_ours:,.0f} ms | {ms_naive:,.0f} ms | **{speed:.1f}× faster** |
| HTML size without simplification (encoding only) | {size_unsimplified / 1e6:.2f} MB | | {size_unsimplified / size_naive_raw:.3f} |
| Python render | {render_ours:.2f} s | {render_naive:.2f} s | |
| features drawn (page report) | {feat_ours:,} | — | |
"""
    bench.write_section(body)


def chromium_version() -> str:
    import subprocess

    from maps.browser import chromium_path

    try:
        out = subprocess.run([chromium_path(), "--version"], capture_output=True, text=True, timeout=30).stdout
    except Exception:
        return ""
    m = re.search(r"(\d+\.\d+\.\d+\.\d+)", out)
    return m.group(1) if m else ""


if __name__ == "__main__":
    main()
