"""What the workspace's land and matching pages read: the land status with its occupancy, once per horizon.

``load_land_view`` computes what ``reports.matches.load_sites`` computes (``warehouse.land.land_status``
over the project states at the horizon, then ``land.matching.prepare_sites``), folding the project
states once and keeping, beside the status frame, every take of a site by a project (cancelled ones
too, with when they landed) for a site's occupancy over time. It is costly on a large warehouse (all
project states, every site): the workspace keeps the result per horizon in the process and asks
:func:`land_stamp`, two index look-ups, whether the land or the log moved since.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, Engine, text

from events.store import Horizon
from land.matching import SiteIndex, prepare_sites
from land.status import resolve_takes, takes_of
from warehouse.land import land_status
from warehouse.replay import project_states

TAKE_COLUMNS: tuple[str, ...] = (
    "kind", "site_id", "project_id", "event_id", "landed_on", "land_area_mu", "floor_area_m2",
    "name", "unit", "confidential", "stage", "cancelled_on",
)  # fmt: skip


@dataclass(frozen=True, eq=False)  # identity: the workspace keys what it derives from a view by the view
class LandView:
    """The land status at one horizon (``frame``: ``land.status.STATUS_COLUMNS`` + geometry, EPSG:4490),
    its prepared matching arrays, and every take of a site (``takes``: :data:`TAKE_COLUMNS`)."""

    horizon: Horizon
    stamp: tuple[int, int]
    frame: gpd.GeoDataFrame
    index: SiteIndex
    takes: pd.DataFrame


def land_stamp(conn: Connection) -> tuple[int, int]:
    """(newest land load, newest log position): when either moves, a land view may be stale."""
    row = conn.execute(
        text("SELECT (SELECT coalesce(max(load_id), 0) FROM land_load), (SELECT coalesce(max(seq), 0) FROM event_log)")
    ).one()
    return int(row[0]), int(row[1])


def load_land_view(engine: Engine, horizon: Horizon) -> LandView:
    """The land view at ``horizon`` (see the module); the stamp is read first, so a change racing the
    load makes the view look stale, never fresh."""
    with engine.connect() as conn:
        stamp = land_stamp(conn)
        states = project_states(conn, horizon)
        frame = land_status(conn, horizon, states=states)
    index = prepare_sites(frame)
    # Every take, cancelled projects' too (land_status leaves them out: they release the land).
    resolved, _ = resolve_takes(takes_of(states.values()), frame[["kind", "site_id", "geometry"]])
    when = pd.DataFrame.from_records(
        [(t.event_id, t.landed_on) for s in states.values() for t in s.sites], columns=["event_id", "landed_on"]
    ).drop_duplicates("event_id")
    meta = pd.DataFrame.from_records(
        [
            (s.project_id, s.name, s.unit, bool(s.confidential), s.stage.value, s.cancelled_on)
            for s in (states[p] for p in resolved["project_id"].unique())
        ],
        columns=["project_id", "name", "unit", "confidential", "stage", "cancelled_on"],
    )
    takes = resolved.drop(columns=["stage"]).merge(when, on="event_id", how="left").merge(meta, on="project_id", how="left")
    takes = takes[list(TAKE_COLUMNS)].sort_values(["kind", "site_id", "landed_on", "project_id"], kind="stable").reset_index(drop=True)
    return LandView(horizon, stamp, frame, index, takes)


def site_outline(conn: Connection, kind: str, site_id: str, as_of: date) -> dict[str, Any] | None:
    """The GeoJSON geometry of a site's version valid on ``as_of``, else of its newest version."""
    value = conn.execute(
        text(
            "SELECT ST_AsGeoJSON(geom, 6) FROM land_inventory WHERE kind = :k AND site_id = :s"
            " ORDER BY (valid_from <= :d AND (valid_to IS NULL OR valid_to > :d)) DESC, valid_from DESC LIMIT 1"
        ),
        {"k": kind, "s": site_id, "d": as_of},
    ).scalar()
    if value is None:
        return None
    geometry: dict[str, Any] = json.loads(value)
    return geometry
