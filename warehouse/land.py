"""The land inventory in PostGIS: versioned storage, and the land status joined with the projects.

Everything here is in CGCS2000 geographic coordinates (EPSG:4490); areas are in 亩 (mu,
1 mu = 10000/15 m²), floor space in m². One table, ``land_inventory``, holds the four kinds of
feature (``idle`` parcels, standard ``factory`` buildings, ``park`` outlines, ``poi`` points); each
row is one version of one feature, valid over ``[valid_from, valid_to)``.

The join with the projects: a ``landed`` event's ``parcel_id`` / ``factory_id`` (or, failing both,
the signed ``location`` point inside a parcel) ties a project to its site. The land it takes
(``land_area_mu``, or the whole parcel when absent) and the floor space (``floor_area_m2``, or all
the vacant space when absent) are no longer available; a cancelled project releases them. Landings
that name a site absent from the inventory valid at the date are anomalies, reported.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from events.disclosure import is_public_project
from events.model import Stage
from events.projection import ProjectState
from events.store import Horizon
from land.status import (
    CRS,
    land_totals,
    resolve_takes,
    status_frame,
    takes_of,
)
from land.vocabulary import SITE_KINDS
from warehouse.copy_text import NULL, SPECIAL_PATTERN, copy_escape, copy_in
from warehouse.replay import project_states

log = logging.getLogger(__name__)

M2_PER_MU = 10000.0 / 15.0
KINDS = SITE_KINDS

# Attribute columns stored per row, in table order (the geometry and versioning columns apart).
ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "name",
    "park",
    "category",
    "land_use",
    "land_status",
    "area_mu",
    "geom_area_mu",
    "declared_area_mu",
    "price_wan_per_mu",
    "plot_ratio_max",
    "readiness",
    "floor_area_m2",
    "vacant_area_m2",
    "floors",
    "floor_load_kn_m2",
    "clear_height_m",
    "power_kva",
    "rent_yuan_m2_month",
    "extra",
)
TEXT_COLUMNS = frozenset({"name", "park", "category", "land_use", "land_status", "readiness", "extra"})
INT_COLUMNS = frozenset({"floors"})



class InventoryError(ValueError):
    """An inventory load that cannot be applied (e.g. a version older than the current one)."""


@dataclass(frozen=True, slots=True)
class VersionCounts:
    """What a load did to the versioned table: rows inserted, closed, kept, same-day replaced."""

    inserted: int
    closed: int
    unchanged: int
    replaced: int




# --------------------------------------------------------------------------------------------
# Storage


# What 'changed' means on reload: the attributes and the geometry. The areas derived from the
# geometry are left out (they wobble in the last bits with the projection).
HASHED_COLUMNS: tuple[str, ...] = tuple(c for c in ("site_id", *ATTRIBUTE_COLUMNS) if c not in ("area_mu", "geom_area_mu"))
_COPY_COLUMNS: tuple[str, ...] = ("site_id", *ATTRIBUTE_COLUMNS, "geom")


def _copy_column(values: pd.Series, kind: str) -> list[str]:
    """One column as COPY text: NULL as ``\\N``, backslash/tab/newline escaped (values are data, never SQL)."""
    if kind in ("int", "float"):
        num = pd.to_numeric(values, errors="coerce").astype(float)
        # repr is the shortest text that reads back as the same double.
        if kind == "int":
            return [NULL if v != v else str(int(v)) for v in num.tolist()]
        return [NULL if v != v else repr(v) for v in num.tolist()]
    s = values.astype("string")
    if s.str.contains(SPECIAL_PATTERN, regex=True).fillna(False).any():
        s = s.map(copy_escape, na_action="ignore")
    return s.astype(object).where(s.notna(), NULL).tolist()


def _copy_rows(frame: gpd.GeoDataFrame) -> tuple[list[str], list[str], list[int]]:
    """Each row as a COPY text line (:data:`_COPY_COLUMNS`), its escaped id, and its content hash.

    The hash is the first 64 bits of the MD5 of the line's :data:`HASHED_COLUMNS` fields: the same
    content always gives the same text (floats by repr, geometry as hex EWKB), so the same hash.
    """
    parts: list[list[str]] = [_copy_column(frame["site_id"], "text")]
    for c in ATTRIBUTE_COLUMNS:
        kind = "text" if c in TEXT_COLUMNS else "int" if c in INT_COLUMNS else "float"
        parts.append(_copy_column(frame[c], kind))
    # Hex EWKB is PostGIS's own text input for geometry: no per-row function call on the server.
    parts.append(shapely.to_wkb(np.asarray(frame.geometry.values), hex=True, include_srid=True).tolist())
    hashed = [parts[i] for i, c in enumerate(_COPY_COLUMNS) if c in HASHED_COLUMNS or c == "geom"]
    lines = ["\t".join(row) for row in zip(*parts, strict=True)]
    md5 = hashlib.md5
    hashes = [
        int.from_bytes(md5("\t".join(row).encode()).digest()[:8], "big", signed=True) for row in zip(*hashed, strict=True)
    ]
    return lines, parts[0], hashes


def store_inventory(
    conn: Connection,
    frame: gpd.GeoDataFrame,
    *,
    kind: str,
    valid_from: date,
    source: str = "",
    partial: bool = False,
    allow_empty: bool = False,
) -> VersionCounts:
    """Make ``frame`` the ``kind`` inventory from ``valid_from`` on, in the caller's transaction.

    ``frame`` is in EPSG:4490 with ``site_id`` and the :data:`ATTRIBUTE_COLUMNS` (missing ones are
    null). Rows whose content is unchanged stay as they are; changed rows and rows absent from the
    file (unless ``partial``: the file then only updates what it names) get ``valid_to =
    valid_from`` and the new versions are inserted. Reloading on the same day as the current
    version corrects it in place. A ``valid_from`` before the current version is refused, and so,
    unless ``allow_empty``, is a full version that names none of the open sites (it would close the
    whole inventory of its kind: an empty or wrong file, most likely).

    Set-based: only the ids and content hashes are staged and compared in SQL; the rows to
    write are then COPYed straight into ``land_inventory``.
    """
    if kind not in KINDS:
        raise InventoryError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if frame.crs is None or frame.crs.to_epsg() != 4490:
        raise InventoryError("the inventory frame must be in EPSG:4490")
    if frame["site_id"].duplicated().any():
        dup = frame.loc[frame["site_id"].duplicated(), "site_id"].iloc[0]
        raise InventoryError(f"site id {dup!r} appears twice in one inventory version")
    latest = conn.execute(
        text("SELECT max(valid_from) FROM land_inventory WHERE kind = :k AND valid_to IS NULL"), {"k": kind}
    ).scalar()
    if latest is not None and valid_from < latest:
        raise InventoryError(
            f"当前{kind}台账版本自 {latest} 起生效，新版本不能更早 · the current {kind} inventory is valid from {latest};"
            f" a new version must start on or after it (got {valid_from})"
        )
    work = frame.reset_index(drop=True)
    for c in ATTRIBUTE_COLUMNS:
        if c not in work.columns:
            work[c] = None
    lines, ids, hashes = _copy_rows(work)
    conn.exec_driver_sql("DROP TABLE IF EXISTS _land_hash")
    conn.exec_driver_sql("CREATE TEMP TABLE _land_hash (ord integer, site_id text, content_hash bigint) ON COMMIT DROP")
    copy_in(conn, "COPY _land_hash (ord, site_id, content_hash) FROM STDIN", (f"{i}\t{sid}\t{h}" for i, (sid, h) in enumerate(zip(ids, hashes, strict=True))))
    conn.exec_driver_sql("CREATE INDEX ON _land_hash (site_id)")
    conn.exec_driver_sql("ANALYZE _land_hash")
    params = {"k": kind, "vf": valid_from}
    if not partial and not allow_empty:
        open_sites, kept = conn.execute(
            text(
                "SELECT count(*), count(h.site_id) FROM land_inventory c LEFT JOIN _land_hash h ON h.site_id = c.site_id"
                " WHERE c.kind = :k AND c.valid_to IS NULL"
            ),
            params,
        ).one()
        if open_sites and not kept:
            where = f"{Path(source).name}: " if source else ""
            raise InventoryError(
                f"{where}文件中没有任何现有{kind}台账地块，载入将关闭全部 {open_sites} 个 · names none of the {open_sites} open {kind}"
                f" sites ({len(work)} in the file): loading it would close them all. Check the file and --kind;"
                " pass --partial to add sites, or --allow-empty to really replace the whole inventory"
            )
    # The current rows this version changes (or drops, unless partial), found in one hash join.
    vanished = "" if partial else "h.site_id IS NULL OR "
    conn.execute(
        text(
            "CREATE TEMP TABLE _land_changed ON COMMIT DROP AS"
            " SELECT c.row_id, c.valid_from FROM land_inventory c LEFT JOIN _land_hash h ON h.site_id = c.site_id"
            f" WHERE c.kind = :k AND c.valid_to IS NULL AND ({vanished}h.content_hash <> c.content_hash)"
        ),
        params,
    )
    unchanged = conn.execute(
        text(
            "SELECT count(*) FROM land_inventory c JOIN _land_hash h ON h.site_id = c.site_id"
            " AND h.content_hash = c.content_hash WHERE c.kind = :k AND c.valid_to IS NULL"
        ),
        params,
    ).scalar_one()
    # Same-day reload: the version being replaced never held on any day, so it goes.
    replaced = conn.execute(
        text("DELETE FROM land_inventory c USING _land_changed x WHERE c.row_id = x.row_id AND x.valid_from = :vf"),
        params,
    ).rowcount
    closed = conn.execute(
        text("UPDATE land_inventory c SET valid_to = :vf FROM _land_changed x WHERE c.row_id = x.row_id AND x.valid_from < :vf"),
        params,
    ).rowcount
    # What is left without a current row is new or changed: those lines go in, nothing else.
    to_write = conn.execute(
        text(
            "SELECT h.ord FROM _land_hash h WHERE NOT EXISTS (SELECT 1 FROM land_inventory c"
            " WHERE c.kind = :k AND c.valid_to IS NULL AND c.site_id = h.site_id) ORDER BY h.ord"
        ),
        params,
    ).scalars().all()
    tail = "\t".join((kind, valid_from.isoformat(), copy_escape(source)))
    cols = ", ".join((*_COPY_COLUMNS, "content_hash", "kind", "valid_from", "source"))
    copy_in(conn, f"COPY land_inventory ({cols}) FROM STDIN", (f"{lines[i]}\t{hashes[i]}\t{tail}" for i in to_write))
    for temp in ("_land_changed", "_land_hash"):
        conn.exec_driver_sql(f"DROP TABLE {temp}")
    counts = VersionCounts(inserted=len(to_write), closed=closed, unchanged=unchanged, replaced=replaced)
    log.info("land inventory %s stored from %s", kind, valid_from, extra={"kind": kind, "valid_from": str(valid_from), **asdict(counts)})
    return counts


def record_load(conn: Connection, *, kind: str, source: str, valid_from: date, report: Mapping[str, Any]) -> None:
    conn.execute(
        text("INSERT INTO land_load (kind, source, valid_from, report) VALUES (:k, :s, :vf, CAST(:r AS jsonb))"),
        {"k": kind, "s": source, "vf": valid_from, "r": json.dumps(report, ensure_ascii=False, default=str)},
    )


# --------------------------------------------------------------------------------------------
# Reading


def inventory(conn: Connection, kinds: Iterable[str], as_of: date | None = None) -> gpd.GeoDataFrame:
    """Every feature of ``kinds`` valid on ``as_of`` (default: the current versions), EPSG:4490."""
    cols = ("kind", "site_id", *ATTRIBUTE_COLUMNS, "valid_from", "valid_to")
    select = ", ".join(f"{c}::text" if c == "extra" else c for c in cols)
    when = "valid_to IS NULL" if as_of is None else "valid_from <= %(d)s AND (valid_to IS NULL OR valid_to > %(d)s)"
    sql = f"SELECT {select}, ST_AsBinary(geom) AS wkb FROM land_inventory WHERE kind = ANY(%(kinds)s) AND {when} ORDER BY kind, site_id"
    # The driver's cursor gives plain tuples: building the frame from them is several times faster
    # than from SQLAlchemy rows (this is the bulk of land_status on a large inventory).
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    with dbapi.cursor() as cur:
        cur.execute(sql, {"kinds": list(kinds), "d": as_of})
        rows = cur.fetchall()
    df = pd.DataFrame.from_records(rows, columns=[*cols, "wkb"])
    geoms = shapely.from_wkb(df.pop("wkb").map(bytes).to_numpy()) if len(df) else np.array([], dtype=object)
    for c in ATTRIBUTE_COLUMNS:
        if c not in TEXT_COLUMNS and c not in INT_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    df["floors"] = pd.to_numeric(df["floors"], errors="coerce").astype("Int64")
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, index=df.index, crs=CRS), crs=CRS)


def site_history(conn: Connection, site_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Every version of one site, oldest first: its attributes, ``valid_from``/``valid_to``, the file
    it came from, and ``changed`` (the attributes that differ from the version before, ``geometry``
    when the outline moved)."""
    rows = conn.execute(
        text(
            "SELECT kind, site_id, " + ", ".join(f"{c}::text" if c == "extra" else c for c in ATTRIBUTE_COLUMNS)
            + ", valid_from, valid_to, source, loaded_at, ST_AsEWKB(geom) AS wkb FROM land_inventory"
            " WHERE site_id = :s AND (CAST(:k AS text) IS NULL OR kind = :k) ORDER BY kind, valid_from"
        ),
        {"s": site_id, "k": kind},
    ).mappings().all()
    out: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for row in rows:
        version = dict(row)
        wkb = bytes(version.pop("wkb"))
        if previous is not None and previous["kind"] == version["kind"]:
            changed = [c for c in ATTRIBUTE_COLUMNS if c not in ("area_mu", "geom_area_mu") and version[c] != previous[c]]
            if wkb != previous["_wkb"]:
                changed.append("geometry")
        else:
            changed = []
        version["changed"] = changed
        out.append(version)
        previous = {**version, "_wkb": wkb}
    return out


def parks(conn: Connection, as_of: date | None = None) -> gpd.GeoDataFrame:
    """Industrial park outlines valid on ``as_of`` (default: now): ``park``, ``area_mu``, ``geometry`` (EPSG:4490)."""
    inv = inventory(conn, ["park"], as_of)
    out = inv[["site_id", "area_mu", "geometry"]].rename(columns={"site_id": "park"})
    return gpd.GeoDataFrame(out.reset_index(drop=True), geometry="geometry", crs=CRS)


def pois(conn: Connection, as_of: date | None = None) -> gpd.GeoDataFrame:
    """Points of interest valid on ``as_of``: ``name``, ``kind`` (highway_exit, rail_freight, port, …), point (EPSG:4490)."""
    inv = inventory(conn, ["poi"], as_of)
    out = pd.DataFrame({"name": inv["name"].fillna(inv["site_id"]), "kind": inv["category"], "poi_id": inv["site_id"]})
    return gpd.GeoDataFrame(out.reset_index(drop=True), geometry=inv.geometry.reset_index(drop=True), crs=CRS)








def land_status(
    conn: Connection, horizon: Horizon, *, states: Mapping[str, ProjectState] | None = None
) -> gpd.GeoDataFrame:
    """Every idle parcel and standard factory valid on ``horizon.as_of``, with what the projects took.

    EPSG:4490, one row per site, columns ``land.status.STATUS_COLUMNS`` plus ``geometry``. Areas in 亩,
    floor space in m²; ``remaining_area_mu`` is the land still free (parcels; null for
    factories), ``vacant_area_m2`` the floor space still vacant (factories). ``status``:
    ``available`` (no project on it), ``partly_taken`` (something left), ``taken`` (nothing left),
    ``in_production`` (nothing left and a project on it produces). Cancelled projects take nothing.
    The inventory version is chosen by ``horizon.as_of`` (its valid_from/valid_to); ``known_at``
    limits the events. The anomalies (see ``land.status.resolve_takes``, plus ``overbooked`` sites) are in
    ``frame.attrs["anomalies"]`` as dicts with ``code, project_id, event_id, site_id, detail``.
    ``states`` may be passed when the caller already folded the projects at ``horizon``.
    """
    sites = inventory(conn, ["idle", "factory"], horizon.as_of)
    if states is None:
        states = project_states(conn, horizon)
    active = [s for s in states.values() if s.stage is not Stage.CANCELLED]
    takes, anomalies = resolve_takes(takes_of(active), sites, _former_ids(conn, horizon.as_of))
    return status_frame(sites, takes, anomalies)


def _former_ids(conn: Connection, as_of: date) -> dict[str, set[str]]:
    """Per kind, the site ids of versions that began by ``as_of`` but no longer hold on it."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT kind, site_id FROM land_inventory WHERE kind IN ('idle', 'factory')"
            " AND valid_from <= :d AND valid_to IS NOT NULL AND valid_to <= :d"
        ),
        {"d": as_of},
    ).all()
    out: dict[str, set[str]] = {"idle": set(), "factory": set()}
    for kind, site_id in rows:
        out[kind].add(site_id)
    return out


def status_report(frame: gpd.GeoDataFrame, horizon: Horizon) -> dict[str, Any]:
    """The JSON of ``land status``: per site (with a representative point, no polygon), totals, anomalies."""
    df = pd.DataFrame(frame.drop(columns="geometry"))
    pts = frame.geometry.representative_point()
    df["lon"] = pts.x.round(6)
    df["lat"] = pts.y.round(6)
    df = df.astype(object).where(df.notna(), None)
    totals = land_totals(frame)
    by_status = (
        pd.DataFrame(frame.drop(columns="geometry")).groupby(["kind", "status"]).agg(sites=("site_id", "size"), area_mu=("area_mu", "sum"),
        remaining_area_mu=("remaining_area_mu", "sum"), vacant_area_m2=("vacant_area_m2", "sum")).reset_index()
    )
    return {
        "as_of": horizon.as_of.isoformat(),
        "known_at": horizon.known_at.isoformat() if horizon.known_at else None,
        "sites": df.to_dict(orient="records"),
        "totals_by_park": totals.astype(object).where(totals.notna(), None).to_dict(orient="records"),
        "totals_by_status": by_status.astype(object).where(by_status.notna(), None).to_dict(orient="records"),
        "anomalies": frame.attrs.get("anomalies", []),
    }


def project_locations(
    conn: Connection, horizon: Horizon, *, states: Mapping[str, ProjectState] | None = None
) -> gpd.GeoDataFrame:
    """One row per project with a known place on ``horizon``: its landed site's centroid, else its signed location.

    Columns ``project_id, name, stage, stalled, confidential, public, investor, industry, unit,
    investment_wan (万元), site_id`` and a point geometry in EPSG:4490. Confidential projects are
    included and flagged; ``public`` is ``events.disclosure.is_public_project``, the one test a
    public map applies.
    """
    if states is None:
        states = project_states(conn, horizon)
    sites = inventory(conn, ["idle", "factory"], horizon.as_of)
    resolved, _ = resolve_takes(takes_of(states.values()), sites)
    # The last landing wins (a project lands once; a corrected landing replaces the first).
    resolved = resolved.drop_duplicates("project_id", keep="last")
    # Planar centroids in degrees: for sites a few hundred metres across the error is centimetres.
    centres = shapely.centroid(np.asarray(sites.geometry.values))
    centroids = pd.DataFrame({"kind": sites["kind"], "site_id": sites["site_id"], "cx": shapely.get_x(centres), "cy": shapely.get_y(centres)})
    placed = resolved[["project_id", "kind", "site_id"]].merge(centroids, on=["kind", "site_id"], how="left")
    meta = pd.DataFrame.from_records(
        [
            (
                s.project_id,
                s.name,
                s.stage.value,
                s.is_stalled(horizon.as_of),
                s.confidential,
                is_public_project(s),
                s.investor,
                s.industry,
                s.unit,
                s.investment_wan,
                s.location[0] if s.location else np.nan,
                s.location[1] if s.location else np.nan,
            )
            for s in states.values()
            if s.stage is not Stage.NONE
        ],
        columns=["project_id", "name", "stage", "stalled", "confidential", "public", "investor", "industry", "unit", "investment_wan", "lon", "lat"],
    )
    df = meta.merge(placed[["project_id", "site_id", "cx", "cy"]], on="project_id", how="left")
    x = df["cx"].fillna(df["lon"]).astype(float)
    y = df["cy"].fillna(df["lat"]).astype(float)
    keep = (x.notna() & y.notna()).to_numpy()
    df = df.loc[keep].drop(columns=["cx", "cy", "lon", "lat"]).reset_index(drop=True)
    df["site_id"] = df["site_id"].astype(object).where(df["site_id"].notna(), None)
    geometry = gpd.points_from_xy(x[keep], y[keep], crs=CRS)
    return gpd.GeoDataFrame(df, geometry=geometry, crs=CRS)
