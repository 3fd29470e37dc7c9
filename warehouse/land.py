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

from events.model import Stage
from events.projection import ProjectState
from warehouse.replay import Horizon, project_states

CRS = "EPSG:4490"
M2_PER_MU = 10000.0 / 15.0
KINDS = ("idle", "factory", "park", "poi")
SITE_STATUSES = ("available", "partly_taken", "taken", "in_production")
STATUS_LABEL_ZH = {"available": "可用", "partly_taken": "部分占用", "taken": "已占用", "in_production": "已投产"}
LAND_STATUS_LABEL_ZH = {
    "idle": "闲置",
    "approved_unsupplied": "批而未供",
    "supplied_unused": "供而未用",
    "inefficient": "低效用地",
}
# A remainder below this share of the site counts as nothing left (rounding in the ledgers).
REMAINDER_TOLERANCE = 0.005

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

STATUS_COLUMNS: tuple[str, ...] = (
    "site_id",
    "kind",
    "name",
    "park",
    "land_use",
    "land_status",
    "status",
    "area_mu",
    "remaining_area_mu",
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
    "project_ids",
)


class InventoryError(ValueError):
    """An inventory load that cannot be applied (e.g. a version older than the current one)."""


@dataclass(frozen=True, slots=True)
class VersionCounts:
    """What a load did to the versioned table: rows inserted, closed, kept, same-day replaced."""

    inserted: int
    closed: int
    unchanged: int
    replaced: int


@dataclass(frozen=True, slots=True)
class LandAnomaly:
    """A landing that does not fit the inventory. ``code`` is stable for scripts."""

    code: str
    project_id: str
    event_id: str
    site_id: str | None
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail} (project {self.project_id}, event {self.event_id})"


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
            return ["\\N" if v != v else str(int(v)) for v in num.tolist()]
        return ["\\N" if v != v else repr(v) for v in num.tolist()]
    s = values.astype("string")
    if s.str.contains(r"[\\\t\n\r]", regex=True).fillna(False).any():
        s = s.str.replace("\\", "\\\\", regex=False).str.replace("\t", "\\t", regex=False)
        s = s.str.replace("\n", "\\n", regex=False).str.replace("\r", "\\r", regex=False)
    return s.astype(object).where(s.notna(), "\\N").tolist()


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


def _copy(conn: Connection, sql: str, lines: Iterable[str]) -> None:
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    with dbapi.cursor() as cur, cur.copy(sql) as copy:
        buf: list[str] = []
        size = 0
        for line in lines:
            buf.append(line)
            size += len(line)
            if size > 4 << 20:  # chunks bound the memory held for a large inventory
                copy.write(("\n".join(buf) + "\n").encode())
                buf, size = [], 0
        if buf:
            copy.write(("\n".join(buf) + "\n").encode())


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
    _copy(conn, "COPY _land_hash (ord, site_id, content_hash) FROM STDIN", (f"{i}\t{sid}\t{h}" for i, (sid, h) in enumerate(zip(ids, hashes, strict=True))))
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
    tail = "\t".join((kind, valid_from.isoformat(), _copy_column(pd.Series([source]), "text")[0]))
    cols = ", ".join((*_COPY_COLUMNS, "content_hash", "kind", "valid_from", "source"))
    _copy(conn, f"COPY land_inventory ({cols}) FROM STDIN", (f"{lines[i]}\t{hashes[i]}\t{tail}" for i in to_write))
    for temp in ("_land_changed", "_land_hash"):
        conn.exec_driver_sql(f"DROP TABLE {temp}")
    return VersionCounts(inserted=len(to_write), closed=closed, unchanged=unchanged, replaced=replaced)


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


_STAGE_BY_RANK = ("none", "signed", "landed", "started", "produced")


def _takes(states: Iterable[ProjectState]) -> pd.DataFrame:
    """One row per site a project took: what it names, how much, and where it was signed (lon/lat)."""
    rows: list[tuple[Any, ...]] = []
    for s in states:
        if not s.sites:
            continue
        # The stage by its fields (the enum property is slow in a loop over 100,000 projects).
        stage = "cancelled" if s.cancelled_on is not None else _STAGE_BY_RANK[s.reached]
        for t in s.sites:
            lon, lat = t.location if t.location else (np.nan, np.nan)
            rows.append((s.project_id, stage, t.event_id, t.parcel_id, t.factory_id, t.land_area_mu, t.floor_area_m2, lon, lat))
    cols = ["project_id", "stage", "event_id", "parcel_id", "factory_id", "land_area_mu", "floor_area_m2", "lon", "lat"]
    df = pd.DataFrame.from_records(rows, columns=cols)
    for c in ("land_area_mu", "floor_area_m2", "lon", "lat"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    for c in ("parcel_id", "factory_id"):
        ids = df[c].astype(object)
        named = ids.notna().to_numpy()
        # Ids given as numbers in a payload name the same site as their text.
        ids[named] = ids[named].astype(str)
        df[c] = ids.where(named, None)
    return df


def _resolve_takes(
    takes: pd.DataFrame, sites: gpd.GeoDataFrame, former: Mapping[str, set[str]] | None = None
) -> tuple[pd.DataFrame, list[LandAnomaly]]:
    """Tie takes to inventory sites: by id, else by the signed location inside a parcel (one spatial join).

    Returns rows ``(project_id, stage, event_id, kind, site_id, land_area_mu, floor_area_m2)``
    and the anomalies: ids in no inventory version up to the date (``unknown_parcel``,
    ``unknown_factory``), ids only in earlier versions (``parcel_left_inventory``,
    ``factory_left_inventory``: e.g. a parcel the bureau struck off its idle list once granted),
    landings naming no site at all (``landed_without_site``). ``former`` maps kind to the ids of
    earlier versions.
    """
    anomalies: list[LandAnomaly] = []
    former = former or {}
    idle_ids = set(sites.loc[sites["kind"] == "idle", "site_id"])
    factory_ids = set(sites.loc[sites["kind"] == "factory", "site_id"])
    base = ["project_id", "stage", "event_id"]
    parcel = takes[takes["parcel_id"].notna()]
    factory = takes[takes["factory_id"].notna()]
    for frame, col, known, kind, label in (
        (parcel, "parcel_id", idle_ids, "idle", "parcel"),
        (factory, "factory_id", factory_ids, "factory", "factory"),
    ):
        unknown = frame[~frame[col].isin(known)]
        earlier = former.get(kind, set())
        for pid, eid, site in zip(unknown["project_id"], unknown["event_id"], unknown[col], strict=True):
            if site in earlier:
                anomalies.append(
                    LandAnomaly(f"{label}_left_inventory", pid, eid, site, f"landed on {label} {site!r}, which an earlier inventory version had but the one valid at the date has not")
                )
            else:
                anomalies.append(LandAnomaly(f"unknown_{label}", pid, eid, site, f"landed on {label} {site!r}, in no inventory version up to the date"))
    parts = [
        parcel[parcel["parcel_id"].isin(idle_ids)].assign(kind="idle", site_id=parcel["parcel_id"], floor_area_m2=np.nan),
        factory[factory["factory_id"].isin(factory_ids)].assign(kind="factory", site_id=factory["factory_id"], land_area_mu=np.nan),
    ]
    bare = takes[takes["parcel_id"].isna() & takes["factory_id"].isna()]
    located = bare[bare["lon"].notna()]
    found = pd.DataFrame(columns=[*base, "site_id"])
    if len(located):
        points = gpd.GeoDataFrame(located[base], geometry=gpd.points_from_xy(located["lon"], located["lat"]), crs=CRS)
        idle = sites[sites["kind"] == "idle"][["site_id", "geometry"]]
        joined = gpd.sjoin(points, idle, how="inner", predicate="within")
        # A point on the shared edge of two parcels lands on one of them, not both.
        found = pd.DataFrame(joined[[*base, "site_id"]]).drop_duplicates("event_id")
        parts.append(found.merge(located[["event_id", "land_area_mu"]], on="event_id").assign(kind="idle", floor_area_m2=np.nan))
    nowhere = bare[~bare["event_id"].isin(set(found["event_id"]))]
    anomalies.extend(
        LandAnomaly(
            "landed_without_site",
            pid,
            eid,
            None,
            "landed naming no parcel or factory" + (", and its signed location lies in no parcel" if lon == lon else ""),
        )
        for pid, eid, lon in zip(nowhere["project_id"], nowhere["event_id"], nowhere["lon"], strict=True)
    )
    cols = [*base, "kind", "site_id", "land_area_mu", "floor_area_m2"]
    resolved = pd.concat([p[cols] for p in parts], ignore_index=True) if parts else pd.DataFrame(columns=cols)
    return resolved, anomalies


def land_status(
    conn: Connection, horizon: Horizon, *, states: Mapping[str, ProjectState] | None = None
) -> gpd.GeoDataFrame:
    """Every idle parcel and standard factory valid on ``horizon.as_of``, with what the projects took.

    EPSG:4490, one row per site, columns :data:`STATUS_COLUMNS` plus ``geometry``. Areas in 亩,
    floor space in m²; ``remaining_area_mu`` is the land still free (parcels; null for
    factories), ``vacant_area_m2`` the floor space still vacant (factories). ``status``:
    ``available`` (no project on it), ``partly_taken`` (something left), ``taken`` (nothing left),
    ``in_production`` (nothing left and a project on it produces). Cancelled projects take nothing.
    The inventory version is chosen by ``horizon.as_of`` (its valid_from/valid_to); ``known_at``
    limits the events. The anomalies (see :func:`_resolve_takes`, plus ``overbooked`` sites) are in
    ``frame.attrs["anomalies"]`` as dicts with ``code, project_id, event_id, site_id, detail``.
    ``states`` may be passed when the caller already folded the projects at ``horizon``.
    """
    sites = inventory(conn, ["idle", "factory"], horizon.as_of)
    if states is None:
        states = project_states(conn, horizon)
    active = [s for s in states.values() if s.stage is not Stage.CANCELLED]
    takes, anomalies = _resolve_takes(_takes(active), sites, _former_ids(conn, horizon.as_of))
    return _status_frame(sites, takes, anomalies)


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


def _project_lists(sites: pd.DataFrame, ids: pd.DataFrame) -> list[list[str]]:
    """The sorted distinct project ids per site row: one hash join, one sort, one split (no per-group pandas)."""
    pos = pd.DataFrame({"kind": sites["kind"].to_numpy(), "site_id": sites["site_id"].to_numpy(), "pos": np.arange(len(sites))})
    placed = ids.drop_duplicates().merge(pos, on=["kind", "site_id"], how="inner")
    lists: list[list[str]] = [[] for _ in range(len(sites))]
    if placed.empty:
        return lists
    where = placed["pos"].to_numpy()
    projects = placed["project_id"].to_numpy(dtype=object)
    order = np.lexsort((projects.astype(str), where))
    where, projects = where[order], projects[order]
    starts = np.r_[0, np.flatnonzero(np.diff(where)) + 1]
    for at, group in zip(where[starts], np.split(projects, starts[1:]), strict=True):
        lists[int(at)] = group.tolist()
    return lists


def _status_frame(sites: gpd.GeoDataFrame, takes: pd.DataFrame, anomalies: list[LandAnomaly]) -> gpd.GeoDataFrame:
    takes = takes.assign(
        whole_land=takes["land_area_mu"].isna() & (takes["kind"] == "idle"),
        whole_floor=takes["floor_area_m2"].isna() & (takes["kind"] == "factory"),
        produced=takes["stage"] == Stage.PRODUCED.value,
    )
    keys = ["kind", "site_id"]
    agg = takes.groupby(keys, sort=False).agg(
        taken_mu=("land_area_mu", "sum"),
        taken_m2=("floor_area_m2", "sum"),
        whole_land=("whole_land", "any"),
        whole_floor=("whole_floor", "any"),
        produced=("produced", "any"),
    )
    out = sites.reset_index(drop=True).merge(agg, how="left", left_on=keys, right_index=True)
    out["project_ids"] = _project_lists(out[keys], takes[[*keys, "project_id"]])
    has = out["taken_mu"].notna().to_numpy()
    is_idle = (out["kind"] == "idle").to_numpy()
    area = out["area_mu"].to_numpy(dtype=float)
    taken_mu = out["taken_mu"].fillna(0.0).to_numpy(dtype=float)
    whole_land = out["whole_land"].fillna(False).to_numpy(dtype=bool)
    remaining_mu = np.where(whole_land, 0.0, np.clip(area - taken_mu, 0.0, None))
    # A factory's vacant space as the file gave it (other tenants already deducted), else all of it.
    vacant0 = out["vacant_area_m2"].fillna(out["floor_area_m2"]).to_numpy(dtype=float)
    taken_m2 = out["taken_m2"].fillna(0.0).to_numpy(dtype=float)
    whole_floor = out["whole_floor"].fillna(False).to_numpy(dtype=bool)
    vacant = np.where(whole_floor, 0.0, np.clip(vacant0 - taken_m2, 0.0, None))
    left_share = np.where(is_idle, remaining_mu / np.where(area > 0, area, np.nan), vacant / np.where(vacant0 > 0, vacant0, np.nan))
    nothing_left = np.nan_to_num(left_share, nan=0.0) <= REMAINDER_TOLERANCE
    produced = out["produced"].fillna(False).to_numpy(dtype=bool)
    status = np.select(
        [~has, ~nothing_left, produced],
        ["available", "partly_taken", "in_production"],
        default="taken",
    )
    over_land = is_idle & has & ~whole_land & (taken_mu > area * (1 + REMAINDER_TOLERANCE))
    over_floor = ~is_idle & has & ~whole_floor & (taken_m2 > vacant0 * (1 + REMAINDER_TOLERANCE))
    for i in np.flatnonzero(over_land | over_floor):
        r = out.iloc[i]
        what = f"{taken_mu[i]:.1f} mu of {area[i]:.1f} mu" if is_idle[i] else f"{taken_m2[i]:.0f} m² of {vacant0[i]:.0f} m² vacant"
        anomalies.append(LandAnomaly("overbooked", ",".join(r["project_ids"]), "", r["site_id"], f"site {r['site_id']!r}: projects take {what}"))
    out["status"] = status
    out["remaining_area_mu"] = np.where(is_idle, remaining_mu, np.nan)
    out["vacant_area_m2"] = np.where(is_idle, out["vacant_area_m2"].to_numpy(dtype=float), vacant)
    frame = gpd.GeoDataFrame(out[[*STATUS_COLUMNS, "geometry"]].reset_index(drop=True), geometry="geometry", crs=CRS)
    frame.attrs["anomalies"] = [asdict(a) for a in anomalies]
    return frame


def land_totals(frame: pd.DataFrame) -> pd.DataFrame:
    """Totals by park, kind and status: sites, area and remaining area (亩), floor and vacant space (m²)."""
    df = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
    df["park"] = df["park"].fillna("(无园区 no park)")
    return (
        df.groupby(["park", "kind", "status"], sort=True)
        .agg(
            sites=("site_id", "size"),
            area_mu=("area_mu", "sum"),
            remaining_area_mu=("remaining_area_mu", "sum"),
            floor_area_m2=("floor_area_m2", "sum"),
            vacant_area_m2=("vacant_area_m2", "sum"),
            projects=("project_ids", lambda s: int(sum(len(v) for v in s))),
        )
        .reset_index()
    )


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

    Columns ``project_id, name, stage, stalled, confidential, investor, industry, unit,
    investment_wan (万元), site_id`` and a point geometry in EPSG:4490. Confidential projects are
    included and flagged: hiding them is the public map's job.
    """
    if states is None:
        states = project_states(conn, horizon)
    sites = inventory(conn, ["idle", "factory"], horizon.as_of)
    resolved, _ = _resolve_takes(_takes(states.values()), sites)
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
        columns=["project_id", "name", "stage", "stalled", "confidential", "investor", "industry", "unit", "investment_wan", "lon", "lat"],
    )
    df = meta.merge(placed[["project_id", "site_id", "cx", "cy"]], on="project_id", how="left")
    x = df["cx"].fillna(df["lon"]).astype(float)
    y = df["cy"].fillna(df["lat"]).astype(float)
    keep = (x.notna() & y.notna()).to_numpy()
    df = df.loc[keep].drop(columns=["cx", "cy", "lon", "lat"]).reset_index(drop=True)
    df["site_id"] = df["site_id"].astype(object).where(df["site_id"].notna(), None)
    geometry = gpd.points_from_xy(x[keep], y[keep], crs=CRS)
    return gpd.GeoDataFrame(df, geometry=geometry, crs=CRS)
