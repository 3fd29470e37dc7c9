"""Workspace load test: 20 users browsing ``zhaoshang serve --workers 2`` over 1,000,000 events and 100,000 parcels.

    ./run bench web_load [--events 1000000] [--parcels 100000] [--factories 2000] [--users 20] [--workers 2]
                         [--duration 60s] [--think 1-3] [--max-requests N] [--endpoints FILE]
                         [--database-url URL] [--work-dir DIR] [--cache-dir DIR] [--no-doc]

1. **The warehouse** (database ``<database>_bench_web`` on the server of ``ZHAOSHANG_DATABASE_URL``,
   i.e. ``zhaoshang_bench_web``, unless ``--database-url``; kept between runs and rebuilt only when
   the sizes change): the benchmark event file (``bench/_common.py``, ~220,000 projects for
   1,000,000 events) with the landings of its projects placed on the synthetic parcels and
   factories (same number of events), appended through the event store, the read models refreshed;
   ``--parcels`` parcels, ``--factories`` standard factories, four park outlines and a few POIs
   written as GeoPackages (EPSG:4544, Chinese field names) and loaded through
   ``ingestion.land_files.load_land_file``; users of each role (Argon2 hashes of one password).
2. **The server**: ``zhaoshang serve --workers N --port P`` as a subprocess over that database, started
   cold: the answers a previous run kept in the warehouse (``web_answer``) are deleted first.
3. **The probe**: every endpoint of the mix (``ENDPOINTS``, or ``--endpoints FILE``, a JSON list of
   the same shape) fetched once as a planner; one that answers 404/405 is not built (yet) and left
   out of the run, and said so.
4. **The load**: ``locust -f bench/_web_locustfile.py --headless -u USERS -r RATE -t DURATION --csv``
   as a subprocess (locust patches the standard library with gevent: only its own process imports
   it). Each user logs in (planners, unit officers and leaders in turn), then picks endpoints by
   weight, waiting ``--think`` seconds between them (a person reading the page; ``--think 0``: none,
   a closed loop). Bounded by ``--duration`` and ``--max-requests``.
5. **The figures**, from locust's CSV: requests, failures, p50/p95/p99/max per endpoint and overall,
   with two floors for context in the same run: a static file (``/static/app.css``, no database) and
   ``/api/me`` (a session lookup). Written to ``docs/benchmarks.md`` only at the published sizes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import http.cookiejar
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import shapely
from _common import FULL_EVENTS, ROOT, Bench, bench_run, events_key, parser
from sqlalchemy import Engine, text

from ingestion.land_files import load_land_file
from warehouse import read_models
from warehouse.db import resolve_url
from warehouse.event_store import load_records, read_jsonl
from warehouse.users import add_user
from web.passwords import hash_password
from zhaoshang.settings import load_settings

LOCUSTFILE = Path(__file__).resolve().parent / "_web_locustfile.py"
ZHAOSHANG = str(Path(sys.executable).with_name("zhaoshang"))
PUBLISHED = {"events": FULL_EVENTS, "parcels": 100_000, "users": 20, "workers": 2, "duration": "60s"}
BUILD_VERSION = 2  # bump when the warehouse built here changes for the same sizes
SEED = 20261202
PASSWORD = "bench-pass-123"
VALID_FROM = date(2011, 12, 31)  # the inventory before the first event (2012-01-01)
GK_CRS = "EPSG:4544"  # CGCS2000 / 3-degree Gauss-Kruger CM 105E: x 600 km ≈ 106.0E, y 2,920 km ≈ 26.4N
PARKS = ("夏云工业园区", "平坝经济开发区", "白云新型建材产业园", "高峰现代物流园")
LAND_STATUS_ZH = ("闲置", "批而未供", "供而未用", "低效用地")
STAGES = ("signed", "landed", "started", "produced", "cancelled")

ALL = ["admin", "planner", "unit", "leader"]
# The mix: (path template, weight, roles, expected statuses, JSON body). Placeholders: {project_id}
# (a project the account may see), {page}, and the keys of the plan's "values".
ENDPOINTS: list[dict[str, Any]] = [
    # floors, for context
    {"path": "/static/app.css", "weight": 1},
    {"path": "/api/me", "weight": 1},
    # 驾驶舱 dashboard
    {"path": "/dashboard", "weight": 4},
    {"path": "/dashboard?as_of={as_of}", "weight": 1},
    {"path": "/api/kpis?by=unit", "weight": 1},
    {"path": "/api/kpis/trend", "weight": 1},
    # 项目库 projects
    {"path": "/projects", "weight": 2},
    {"path": "/projects?stage={stage}&industry={industry}&page={page}", "weight": 2},
    {"path": "/projects?q={q}", "weight": 1},
    {"path": "/api/projects?stage={stage}&page={page}", "weight": 1},
    {"path": "/projects/{project_id}", "weight": 3},
    {"path": "/api/projects/{project_id}", "weight": 1},
    # 土地 land
    {"path": "/land", "weight": 2},
    {"path": "/land?park={park}&page={page}", "weight": 1},
    {"path": "/api/land/sites.geojson", "weight": 2},
    {"path": "/api/land/sites.geojson?park={park}", "weight": 1},
    {"path": "/api/land/sites?park={park}&page={page}", "weight": 1},
    {"path": "/land/idle/{parcel_id}", "weight": 1},
    # 智能选址 matching
    {"path": "/match", "weight": 1},
    {"path": "/api/match", "method": "POST", "json": "{requirement}", "weight": 2},
    # 推介 public site (no login needed; signed-in users see it too)
    {"path": "/public", "weight": 1},
    {"path": "/api/public/sites.geojson", "weight": 1},
]


def _endpoint(spec: dict[str, Any]) -> dict[str, Any]:
    method = spec.get("method", "GET")
    return {
        "name": f"{method} {spec['path']}",
        "method": method,
        "path": spec["path"],
        "weight": float(spec.get("weight", 1)),
        "roles": list(spec.get("roles", ALL)),
        "expect": list(spec.get("expect", [200])),
        "json": spec.get("json"),
    }


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def seconds(duration: str) -> int:
    """``60s``, ``2m``, ``1h`` or a bare number of seconds."""
    found = re.fullmatch(r"\s*(\d+)\s*([smh]?)\s*", duration)
    if not found:
        raise argparse.ArgumentTypeError(f"duration {duration!r}: a number of seconds, or like 60s, 2m")
    return int(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[found.group(2)]


def think(value: str) -> tuple[float, float]:
    """``1-3`` (seconds between a user's requests, drawn uniformly) or ``0`` (none)."""
    low, _, high = value.partition("-")
    try:
        pair = (float(low), float(high or low))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"think time {value!r}: like 1-3 or 0") from exc
    if pair[0] < 0 or pair[1] < pair[0]:
        raise argparse.ArgumentTypeError(f"think time {value!r}: 0 <= low <= high")
    return pair


def max_requests(args: argparse.Namespace) -> int:
    return int(args.max_requests or max(100, 50 * args.users * seconds(args.duration)))


def default_database_url() -> str:
    base = resolve_url(load_settings().database_url)
    return base.set(database=f"{base.database}_bench_web").render_as_string(hide_password=False)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--events", type=int, default=PUBLISHED["events"], help="events in the log (default %(default)s)")
    ap.add_argument("--parcels", type=int, default=PUBLISHED["parcels"], help="idle parcels (default %(default)s)")
    ap.add_argument("--factories", type=int, default=2000, help="standard factories (default %(default)s)")
    ap.add_argument("--users", type=int, default=PUBLISHED["users"], help="concurrent locust users (default %(default)s)")
    ap.add_argument("--spawn-rate", type=float, default=5, help="users started per second (default %(default)s)")
    ap.add_argument("--workers", type=int, default=PUBLISHED["workers"], help="zhaoshang serve worker processes (default %(default)s)")
    ap.add_argument("--duration", default=PUBLISHED["duration"], help="how long the load runs (default %(default)s)")
    ap.add_argument("--think", type=think, default=(1.0, 3.0), help="seconds between a user's requests, low-high (default 1-3; 0: none)")
    ap.add_argument("--max-requests", type=int, default=None, help="a cap: stop after this many requests (default 50 per user-second of --duration, more than a closed loop makes here)")
    ap.add_argument("--login-timeout", type=seconds, default=300, help="seconds allowed for every user to log in before the measured window (default %(default)s)")
    ap.add_argument("--port", type=int, default=None, help="the server's port (default: a free one)")
    ap.add_argument("--endpoints", type=Path, default=None, help="a JSON list of endpoints replacing the built-in mix (see ENDPOINTS)")
    args = ap.parse_args()
    seconds(args.duration)  # refuse a bad duration before building anything
    if args.database_url is None:
        args.database_url = default_database_url()  # kept between runs: the build is reused
    with bench_run("web_load", args, published=PUBLISHED) as bench:
        run(bench, args)


# --------------------------------------------------------------------------------------------
# The warehouse
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Land:
    """The synthetic district: parcels, factories, park outlines, POIs (EPSG:4544)."""

    parcels: gpd.GeoDataFrame
    factories: gpd.GeoDataFrame
    parks: gpd.GeoDataFrame
    pois: gpd.GeoDataFrame


def _grid(n: int, x0: float, y0: float, pitch_m: float) -> tuple[np.ndarray, np.ndarray]:
    cols = max(1, math.ceil(math.sqrt(n * 1.6)))
    i = np.arange(n)
    return x0 + (i % cols) * pitch_m, y0 + (i // cols) * pitch_m


def synthetic_land(n_parcels: int, n_factories: int, seed: int = SEED) -> Land:
    """Four parks side by side, each a grid of parcels (40–100 m sides on a 120 m pitch, roads
    between) with a row of factory estates to its north. Vectorised: 100,000 parcels in a second."""
    rng = np.random.default_rng(seed)
    park_of_parcel = (np.arange(n_parcels) * len(PARKS)) // max(n_parcels, 1)
    park_of_factory = (np.arange(n_factories) * len(PARKS)) // max(n_factories, 1)
    side_m = 120.0 * math.ceil(math.sqrt(max(n_parcels, 1) / len(PARKS) * 1.6)) + 2000.0
    px, py = np.empty(n_parcels), np.empty(n_parcels)
    fx, fy = np.empty(n_factories), np.empty(n_factories)
    outlines = []
    for p in range(len(PARKS)):
        ox, oy = 600_000.0 + (p % 2) * (side_m + 3000), 2_920_000.0 + (p // 2) * (side_m + 3000)
        mine = park_of_parcel == p
        px[mine], py[mine] = _grid(int(mine.sum()), ox, oy, 120.0)
        top = float(py[mine].max()) + 220.0 if mine.any() else oy
        fmine = park_of_factory == p
        fx[fmine], fy[fmine] = _grid(int(fmine.sum()), ox, top, 90.0)
        ends = [a.max() for a in (px[mine], py[mine], fx[fmine], fy[fmine]) if a.size]
        outlines.append(shapely.box(ox - 100, oy - 100, max(ends[0::2], default=ox) + 200, max(ends[1::2], default=oy) + 200))
    w, h = rng.uniform(40, 100, n_parcels), rng.uniform(40, 100, n_parcels)
    parcels = gpd.GeoDataFrame(
        {
            "地块编号": np.char.add("B-", np.char.zfill(np.arange(n_parcels).astype(str), 6)),
            "地块名称": np.char.add(np.char.add("工业园区", np.arange(n_parcels).astype(str)), "号地块"),
            "用地类型": rng.choice(["100101", "100102", "100103"], n_parcels, p=[0.3, 0.5, 0.2]),
            "面积(亩)": np.round(w * h / (10000 / 15), 2),
            "状态": rng.choice(LAND_STATUS_ZH, n_parcels),
            "园区": np.array(PARKS)[park_of_parcel],
            "地价": np.round(rng.uniform(10, 40, n_parcels), 1),
            "容积率上限": rng.choice([1.0, 1.5, 2.0], n_parcels),
            "七通一平": rng.choice(["七通一平", "五通一平", "三通一平"], n_parcels),
        },
        geometry=shapely.box(px, py, px + w, py + h),
        crs=GK_CRS,
    )
    floor_m2 = rng.uniform(2000, 20000, n_factories).round(-1)
    factories = gpd.GeoDataFrame(
        {
            "厂房编号": np.char.add("F-", np.char.zfill(np.arange(n_factories).astype(str), 5)),
            "厂房名称": np.char.add(np.char.add("标准厂房", np.arange(n_factories).astype(str)), "号楼"),
            "园区": np.array(PARKS)[park_of_factory],
            "建筑面积": floor_m2,
            "空置面积": (floor_m2 * rng.uniform(0.3, 1.0, n_factories)).round(-1),
            "层数": rng.integers(1, 6, n_factories),
            "承重": rng.uniform(3, 30, n_factories).round(1),
            "层高": rng.uniform(4, 15, n_factories).round(1),
            "供电容量": rng.uniform(200, 2500, n_factories).round(-1),
            "租金": rng.uniform(8, 30, n_factories).round(1),
        },
        geometry=shapely.box(fx, fy, fx + 60, fy + 60),
        crs=GK_CRS,
    )
    parks = gpd.GeoDataFrame({"园区": list(PARKS), "名称": list(PARKS)}, geometry=outlines, crs=GK_CRS)
    corners = [shapely.get_coordinates(o)[0] for o in outlines]
    pois = gpd.GeoDataFrame(
        {"编号": [f"POI-{i + 1:02d}" for i in range(len(PARKS))], "名称": [f"{p}高速出口" for p in PARKS], "类型": ["高速出口"] * len(PARKS)},
        geometry=shapely.points([(x - 500, y - 500) for x, y in corners]),
        crs=GK_CRS,
    )
    return Land(parcels, factories, parks, pois)


def events_on_land(source: Path, target: Path, land: Land) -> Path:
    """The event file with the landings placed on the district's sites (no event added or removed).

    The benchmark history has no sites: a landing's payload is empty. Here the landings of the first
    projects take a parcel each (60% of the parcels; 60% of them whole, the rest 30–80%), every
    tenth a floor of a factory instead, until the sites run out; later landings of a project (after
    a retraction) repeat its site. Written once per (events, sites) next to the source file.
    """
    if target.is_file():
        print(f"events on land: {target} (cached)", flush=True)
        return target
    t0 = time.perf_counter()
    rng = random.Random(SEED)
    parcel_ids = list(land.parcels["地块编号"])
    areas = dict(zip(parcel_ids, land.parcels["面积(亩)"].astype(float), strict=True))
    rng.shuffle(parcel_ids)
    free_parcels = parcel_ids[: int(len(parcel_ids) * 0.6)]
    # A factory offers one slot per 2,000 m² of vacant floor.
    free_floors = [f for f, vacant in zip(land.factories["厂房编号"], land.factories["空置面积"], strict=True) for _ in range(int(vacant // 2000))]
    rng.shuffle(free_floors)
    placed: dict[str, dict[str, Any]] = {}
    landings = 0
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    with source.open("rb") as src, tmp.open("wb") as out:
        for line in src:
            ev = orjson.loads(line)
            if ev["type"] == "landed" and not ev.get("payload"):
                pid = ev["project_id"]
                if pid not in placed:
                    landings += 1
                    if landings % 10 == 0 and free_floors:
                        placed[pid] = {"factory_id": free_floors.pop(), "floor_area_m2": 2000.0}
                    elif free_parcels:
                        site = free_parcels.pop()
                        take = areas[site] if rng.random() < 0.6 else round(areas[site] * rng.uniform(0.3, 0.8), 1)
                        placed[pid] = {"parcel_id": site, "land_area_mu": take}
                    else:
                        placed[pid] = {}
                ev["payload"] = placed[pid]
            out.write(orjson.dumps(ev) + b"\n")
    os.replace(tmp, target)
    on_sites = sum(1 for p in placed.values() if p)
    print(f"events on land: {on_sites:,} projects placed on sites in {time.perf_counter() - t0:.1f} s → {target}", flush=True)
    return target


def build_key(args: argparse.Namespace) -> str:
    params = {"v": BUILD_VERSION, "events": args.events, "events_key": events_key(args.events), "parcels": args.parcels, "factories": args.factories, "seed": SEED}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def _built_key(engine: Engine) -> str | None:
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('bench_web.build')")).scalar()
        return conn.execute(text("SELECT key FROM bench_web.build")).scalar() if exists else None


def _units(engine: Engine, n: int) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT unit FROM rm_project_version WHERE valid_to = DATE '9999-12-31' AND unit IS NOT NULL GROUP BY unit ORDER BY count(*) DESC, unit LIMIT :n"),
            {"n": n},
        ).scalars()
        return list(rows)


def build(bench: Bench, args: argparse.Namespace) -> None:
    """The warehouse of the run, reused when it was built for the same sizes."""
    engine = bench.engine
    assert engine is not None
    key = build_key(args)
    if _built_key(engine) == key:
        print(f"warehouse: reused (built for these sizes, key {key})", flush=True)
        return
    t0 = time.perf_counter()
    bench.empty_tables()
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS bench_web CASCADE"))
        conn.execute(text("UPDATE rm_position SET seq = 0"))
    land = synthetic_land(args.parcels, args.factories)
    for kind, frame in (("idle", land.parcels), ("factory", land.factories), ("park", land.parks), ("poi", land.pois)):
        path = bench.work / f"bench_web_{kind}.gpkg"
        path.unlink(missing_ok=True)
        frame.to_file(path, driver="GPKG", layer=kind)
        report = load_land_file(engine, path, kind=kind, valid_from=VALID_FROM)
        print(f"  land {kind}: {report['loaded']:,} loaded ({time.perf_counter() - t0:.0f} s)", flush=True)
    base = bench.events_file(args.events)
    placed = events_on_land(base, base.with_name(f"{base.stem}_web_{key}.jsonl"), land)
    result = load_records(engine, read_jsonl(placed, "bench"))
    print(f"  events: {result.accepted:,} accepted of {result.read:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
    read_models.refresh(engine)
    # What autovacuum does soon after a bulk load on its own: the statistics, and the visibility map
    # the index-only scans of the project list rely on. Measured before it, the first minutes differ.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) rm_project_version, rm_project_record, event_log, land_inventory"))
    print(f"  read models refreshed, vacuumed ({time.perf_counter() - t0:.0f} s)", flush=True)
    password_hash = hash_password(PASSWORD)
    with engine.begin() as conn:
        for name, role in (("bench_admin", "admin"), ("bench_planner", "planner"), ("bench_leader", "leader")):
            add_user(conn, username=name, password_hash=password_hash, role=role, display_name=name, created_by="bench")
    units = _units(engine, 3)
    with engine.begin() as conn:
        for i, unit in enumerate(units):
            add_user(conn, username=f"bench_unit{i + 1}", password_hash=password_hash, role="unit", unit=unit, display_name=unit, created_by="bench")
        conn.execute(text("CREATE SCHEMA bench_web"))
        conn.execute(text("CREATE TABLE bench_web.build (key text NOT NULL, built_at timestamptz NOT NULL DEFAULT now())"))
        conn.execute(text("INSERT INTO bench_web.build (key) VALUES (:k)"), {"k": key})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    print(f"warehouse: built in {time.perf_counter() - t0:.0f} s (key {key})", flush=True)


# --------------------------------------------------------------------------------------------
# The plan the locust users follow
# --------------------------------------------------------------------------------------------


def _requirements(rng: random.Random, industries: list[str], parks: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """Investor requirements for POST /api/match (/work/shared/DOMAIN.md's shape), some near a park's corner."""
    out = []
    corners = [(float(x), float(y)) for x, y in zip(parks.geometry.bounds.minx, parks.geometry.bounds.miny, strict=True)]
    for i in range(40):
        low = rng.choice([5, 10, 20, 50])
        req: dict[str, Any] = {
            "investor": f"压测投资公司{i}",
            "industry": rng.choice(industries) if industries else "新材料",
            "land_area_mu": {"min": low, "max": low * rng.choice([2, 3, 5])},
            "max_price_wan_per_mu": rng.choice([20, 30, 40]),
        }
        if rng.random() < 0.5 and corners:
            lon, lat = rng.choice(corners)
            req["near"] = [{"name": "高速出口", "lon": round(lon, 5), "lat": round(lat, 5), "max_km": rng.choice([5, 10, 20])}]
        if rng.random() < 0.2:
            req = {"investor": req["investor"], "industry": req["industry"], "factory": {"floor_area_m2": {"min": rng.choice([1000, 3000, 6000])}}}
        out.append(req)
    return out


def plan(bench: Bench, args: argparse.Namespace, endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """Accounts, endpoints and the values their templates draw from, read from the warehouse."""
    engine = bench.engine
    assert engine is not None
    rng = random.Random(SEED)
    with engine.connect() as conn:
        accounts = {
            r.username: {"username": r.username, "password": PASSWORD, "role": r.role, "unit": r.unit}
            for r in conn.execute(text("SELECT username, role, unit FROM web_user WHERE username LIKE 'bench\\_%' ORDER BY username"))
        }
        sample = conn.execute(
            text(
                "SELECT project_id, unit, name FROM ("
                "  SELECT v.project_id, v.unit, v.name, row_number() OVER (PARTITION BY v.unit ORDER BY md5(v.project_id)) AS k"
                "  FROM rm_project_version v WHERE v.valid_to = DATE '9999-12-31') s"
                " WHERE k <= 200"
            )
        ).all()
        industries = list(conn.execute(text("SELECT DISTINCT industry FROM rm_project_version WHERE industry IS NOT NULL ORDER BY 1")).scalars())
        parcel_ids = list(conn.execute(text("SELECT site_id FROM land_inventory WHERE kind = 'idle' AND valid_to IS NULL ORDER BY md5(site_id) LIMIT 500")).scalars())
        parks = gpd.read_postgis("SELECT geom FROM land_inventory WHERE kind = 'park' AND valid_to IS NULL", conn, geom_col="geom")
    by_unit: dict[str, list[str]] = {}
    for r in sample:
        by_unit.setdefault(r.unit or "", []).append(r.project_id)
    names = sorted({r.name for r in sample if r.name})
    # Who logs in, in turn: planner, unit officer, planner, unit officer, leader (the unit officers in turn).
    units = [a for a in accounts.values() if a["role"] == "unit"]
    cycle = ["bench_planner", "unit", "bench_planner", "unit", "bench_leader"]
    mix, next_unit = [], 0
    for i in range(max(args.users, 1)):
        slot = cycle[i % len(cycle)]
        if slot == "unit":
            mix.append(units[next_unit % len(units)] if units else accounts["bench_planner"])
            next_unit += 1
        else:
            mix.append(accounts[slot])
    today = bench.provenance.day
    return {
        "accounts": mix,
        "users": args.users,
        "duration_s": seconds(args.duration),
        "endpoints": endpoints,
        "think_s": list(args.think),
        "max_requests": max_requests(args),
        "pages": 20,
        "projects_all": [r.project_id for r in sample][:1000],
        "projects_by_unit": by_unit,
        "values": {
            "as_of": [date(today.year - k, 6, 30).isoformat() for k in range(1, 4)] + [today.isoformat()],
            "stage": list(STAGES),
            "industry": industries or ["新材料"],
            "park": list(PARKS),
            "parcel_id": parcel_ids or ["B-000000"],
            "q": sorted({n[:2] for n in names})[:50] or ["项目"],
            "requirement": _requirements(rng, industries, parks.to_crs("EPSG:4490")),
        },
    }


# --------------------------------------------------------------------------------------------
# The server, the probe, locust
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    """This checkout's code first in every child (the venv may hold another checkout, editable)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    return env


def start_server(url: str, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [ZHAOSHANG, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--database-url", url]
    with log.open("wb") as fh:
        # Its own session: stopped as a group (uvicorn's supervisor and its workers), by its id.
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=child_env(), cwd=ROOT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"FAILED: zhaoshang serve exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/login", timeout=2) as r:
                if r.status == 200:
                    return proc
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise SystemExit(f"FAILED: zhaoshang serve did not answer within 120 s:\n{log.read_text(errors='replace')[-3000:]}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_a: Any, **_kw: Any) -> None:
        return None


def probe(base: str, account: dict[str, Any], the_plan: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
    """Each endpoint fetched once as ``account`` (a planner): its status."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect())

    def fetch(method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
        req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
        try:
            with opener.open(req, timeout=60) as r:
                return r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    token = re.search(r'name="csrf_token" value="([^"]+)"', fetch("GET", "/login")[1])
    form = urllib.parse.urlencode({"username": account["username"], "password": account["password"], "csrf_token": token.group(1) if token else ""})
    status, _ = fetch("POST", "/login", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    if status != 303:
        raise SystemExit(f"FAILED: the probe's login as {account['username']} answered {status}")
    found = re.search(r'name="csrf_token" value="([^"]+)"', fetch("GET", "/dashboard")[1])
    csrf = found.group(1) if found else ""
    values = the_plan["values"]
    out = []
    for ep in the_plan["endpoints"]:
        def fill(m: re.Match[str]) -> str:
            key = m.group(1)
            value = (the_plan["projects_all"] or ["none"])[0] if key == "project_id" else 1 if key == "page" else values[key][0]
            return urllib.parse.quote(str(value), safe="")

        path = re.sub(r"\{(\w+)\}", fill, ep["path"])
        body = ep.get("json")
        data = json.dumps(values[body[1:-1]][0] if isinstance(body, str) else body).encode() if body is not None else None
        headers = {"X-CSRF-Token": csrf, **({"Content-Type": "application/json"} if data else {})}
        out.append((ep, fetch(ep["method"], path, data, headers)[0]))
    return out


def run_locust(bench: Bench, args: argparse.Namespace, base: str, plan_path: Path) -> Path:
    prefix = bench.work / "locust"
    secs = seconds(args.duration) + args.login_timeout  # the hard limit: logging in, then the measured window
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{secs}s", "--stop-timeout", "10",
        "--host", base, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    env = {**child_env(), "ZHAOSHANG_LOAD_PLAN": str(plan_path)}
    log = bench.work / "locust.log"
    print(f"locust: {args.users} users ({args.spawn_rate:g}/s) log in, then {seconds(args.duration)} s measured, think {args.think[0]:g}–{args.think[1]:g} s", flush=True)
    with log.open("wb") as fh:
        try:
            done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=secs + 180)
        except subprocess.TimeoutExpired as exc:
            raise SystemExit(f"FAILED: locust ran past {secs + 180} s:\n{log.read_text(errors='replace')[-3000:]}") from exc
    stats = Path(f"{prefix}_final_stats.csv")
    if done.returncode != 0 or not stats.is_file():
        raise SystemExit(f"FAILED: locust exited with {done.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
    return prefix


# --------------------------------------------------------------------------------------------
# The figures
# --------------------------------------------------------------------------------------------


def read_stats(prefix: Path) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, str]]]:
    """Locust's CSV (the final one, see the locustfile): per-endpoint rows, the aggregated row, the failures."""

    def num(v: str) -> float:
        try:
            return float(v)
        except ValueError:  # "N/A" when no request of the row finished
            return float("nan")

    rows: list[dict[str, Any]] = []
    total: dict[str, Any] = {}
    with Path(f"{prefix}_final_stats.csv").open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            row = {
                "name": r["Name"],
                "requests": int(r["Request Count"]),
                "failures": int(r["Failure Count"]),
                "p50": num(r["50%"]),
                "p95": num(r["95%"]),
                "p99": num(r["99%"]),
                "max": num(r["Max Response Time"]),
                "rps": num(r["Requests/s"]),
            }
            if r["Name"] == "Aggregated":
                total = row
            elif row["requests"]:  # the login rows are emptied by the reset before the measured window
                rows.append(row)
    failures_path = Path(f"{prefix}_final_failures.csv")
    failures = list(csv.DictReader(failures_path.open(newline="", encoding="utf-8"))) if failures_path.is_file() else []
    return rows, total, failures


def read_logins(prefix: Path) -> dict[str, Any] | None:
    """The login phase (see the locustfile); None when not every user logged in within the limit."""
    path = Path(f"{prefix}_final_logins.json")
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _ms(v: float) -> str:
    return "–" if math.isnan(v) else f"{v:,.0f}"


def table(rows: list[dict[str, Any]], total: dict[str, Any]) -> str:
    lines = ["| endpoint | requests | failures | p50 ms | p95 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in [*rows, {**total, "name": "**all requests**"}]:
        name = r["name"] if r["name"].startswith("**") else f"`{r['name']}`"
        lines.append(f"| {name} | {r['requests']:,} | {r['failures']:,} | {_ms(r['p50'])} | {_ms(r['p95'])} | {_ms(r['p99'])} | {_ms(r['max'])} |")
    return "\n".join(lines)


def _projects(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        projects = conn.execute(text("SELECT count(*) FROM rm_project_version WHERE valid_to = DATE '9999-12-31'")).scalar_one()
        events = conn.execute(text("SELECT count(*) FROM event_log")).scalar_one()
    return int(projects), int(events)


def run(bench: Bench, args: argparse.Namespace) -> None:
    engine = bench.engine
    assert engine is not None
    build(bench, args)
    projects, n_events = _projects(engine)
    specs = json.loads(args.endpoints.read_text(encoding="utf-8")) if args.endpoints else ENDPOINTS
    the_plan = plan(bench, args, [_endpoint(s) for s in specs])
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    # A cold start: the answers an earlier run left in the warehouse (same code, same read models)
    # would serve this run's questions before anything is computed.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM web_answer"))
    server = start_server(bench.database_url, port, args.workers, bench.work / "serve.log")
    try:
        print(f"server: {base} ({args.workers} workers)", flush=True)
        planner = next(a for a in the_plan["accounts"] if a["role"] == "planner")
        probed = probe(base, planner, the_plan)
        missing = [(ep, status) for ep, status in probed if status in (404, 405)]
        for ep, status in probed:
            print(f"  probe {ep['name']}: {status}{'  (not built: left out)' if (ep, status) in missing else ''}", flush=True)
        the_plan["endpoints"] = [ep for ep, status in probed if status not in (404, 405)]
        plan_path = bench.work / "plan.json"
        plan_path.write_text(json.dumps(the_plan, ensure_ascii=False, indent=1), encoding="utf-8")
        prefix = run_locust(bench, args, base, plan_path)
    finally:
        stop_server(server)
    load1 = os.getloadavg()[0]
    rows, total, failures = read_stats(prefix)
    logins = read_logins(prefix)
    body = report(bench, args, rows, total, failures, missing, logins, projects=projects, events=n_events, load1=load1)
    print(body, flush=True)
    summary = {
        "requests": total.get("requests", 0),
        "failures": total.get("failures", 0),
        "p50_ms": total.get("p50"),
        "p95_ms": total.get("p95"),
        "p99_ms": total.get("p99"),
        "max_ms": total.get("max"),
        "endpoints": {r["name"]: {k: r[k] for k in ("requests", "failures", "p50", "p95", "p99", "max")} for r in rows},
        "missing": [ep["name"] for ep, _ in missing],
        "logged_in": logins is not None,
        "logins": (logins or {}).get("logins", {}),
        "failure_reasons": [{"name": f["Name"], "error": f["Error"], "occurrences": int(f["Occurrences"])} for f in failures],
    }
    print("web_load summary: " + json.dumps(summary, ensure_ascii=False), flush=True)
    bench.write_section(body)


def report(
    bench: Bench,
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    total: dict[str, Any],
    failures: list[dict[str, str]],
    missing: list[tuple[dict[str, Any], int]],
    logins: dict[str, Any] | None,
    *,
    projects: int,
    events: int,
    load1: float,
) -> str:
    p95 = total.get("p95", float("nan"))
    errors = total.get("failures", 0)
    met = logins is not None and not math.isnan(p95) and p95 <= 300 and errors == 0
    # Only the whole mix can meet the goal: floors alone say nothing about the pages.
    verdict = "not met" if not met else f"not judged: {len(missing)} endpoints of the mix not built" if missing else "met"
    if logins is None:
        login_line = f"**Not every user logged in within {args.login_timeout} s**: the figures below include the login phase and the run is void."
    else:
        post = logins["logins"].get("POST /login", {})
        login_line = (
            f"Logging in, before the measured window and apart from it (Argon2id by design; a session lasts hours): "
            f"{args.users} users in {logins['login_phase_s']:.1f} s, `POST /login` p50 {_ms(post.get('p50', float('nan')))} ms, "
            f"max {_ms(post.get('max', float('nan')))} ms, {post.get('failures', 0)} failed."
        )
    reasons = "\n".join(f"- `{f['Method']} {f['Name']}`: {f['Error']} × {f['Occurrences']}" for f in failures) or "- none"
    not_built = ", ".join(f"`{ep['name']}` ({status})" for ep, status in missing) or "none"
    low, high = args.think
    capped = f"The run was stopped by the request cap ({max_requests(args):,}) before its time was up.\n\n" if total.get("requests", 0) >= max_requests(args) else ""
    pace = "no pause between requests (closed loop)" if high <= 0 else f"a pause of {low:g}–{high:g} s between a user's requests"
    return f"""## Workspace load (`./run bench web_load`)

{bench.machine_line()}

{events:,} events ({projects:,} projects), {args.parcels:,} parcels and {args.factories:,} factories;
`zhaoshang serve --workers {args.workers}` on loopback; locust headless, {args.users} users started
{args.spawn_rate:g} per second; once all have logged in, {seconds(args.duration)} s measured, {pace}.
Each user logs in (2 planners, 2 unit officers, 1 leader in every 5) and browses the mix of `bench/web_load.py` (dashboard,
projects list with filters and paging, project pages, land list and map GeoJSON, matching, the
public site) by weight. Floors in the same run: `/static/app.css` (no database) and `/api/me`
(one session lookup). Load average {load1:.1f} on {bench.provenance.cpus} cores at the end (the
server, PostgreSQL and locust share them).

{login_line}

{table(rows, total)}

{capped}Goal p95 ≤ 300 ms with no errors: **{verdict}** (p95 {_ms(p95)} ms, {errors:,} failed of {total.get('requests', 0):,}).

Failures:
{reasons}

Not built when measured (answered 404/405 to the probe, left out of the mix): {not_built}.
"""


if __name__ == "__main__":
    main()
