"""A site's status from what the projects on it took: pure functions over frames (no I/O).

Sites are the inventory valid on a date (EPSG:4490, areas in 亩, floor space in m²); takes are what
landed projects name (a parcel, a factory, or only a signed location inside a parcel). The result
is one row per site with its status (``land.vocabulary.SITE_STATUS_LABELS``), the land or floor
space left, the projects on it, and the anomalies of landings that fit no site.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from events.model import Stage
from events.projection import ProjectState

CRS = "EPSG:4490"

# A remainder below this share of the site counts as nothing left (rounding in the ledgers).
REMAINDER_TOLERANCE = 0.005


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


class SharedList(list[dict[str, Any]]):
    """A list that ``copy.deepcopy`` hands back as itself: what a frame's ``attrs`` may hold cheaply.

    pandas deep-copies ``attrs`` into every frame derived from another (each filter, sort or column
    pick): a list of 80,000 anomaly dicts made each of them cost seconds. The list is the frame's
    report, read and never changed after :func:`status_frame`, so sharing it is safe."""

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedList:
        return self


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


_STAGE_BY_RANK = ("none", "signed", "landed", "started", "produced")


def takes_of(states: Iterable[ProjectState]) -> pd.DataFrame:
    """One row per site a project took: what it names, how much, and where it was signed (lon/lat)."""
    rows: list[tuple[Any, ...]] = []
    for s in states:
        if not s.sites or s.merged_into is not None:  # a merged duplicate's take is its kept project's
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


def resolve_takes(
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


def project_lists(sites: pd.DataFrame, ids: pd.DataFrame) -> list[list[str]]:
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


def status_frame(sites: gpd.GeoDataFrame, takes: pd.DataFrame, anomalies: list[LandAnomaly]) -> gpd.GeoDataFrame:
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
    out["project_ids"] = project_lists(out[keys], takes[[*keys, "project_id"]])
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
    frame.attrs["anomalies"] = SharedList(asdict(a) for a in anomalies)
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

