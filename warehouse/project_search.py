"""项目库: the project list (search, filters, paging), one project's detail, and what a posted event may touch.

The list answers at a horizon (as of a day, as known at an instant) from the read models in two
statements, a count and a page, whatever the size of the warehouse: the versions valid on the day
(``rm_project_version``, which carries what the list shows and searches; the open versions, the
state today of nearly every project, are counted and paged from their covering index). The projects
the read models do not answer for at that horizon (touched after their position, or known later
than ``known_at``: ``warehouse.read_models``) are re-folded there and enter the same statements as a
JSON row set, so filters, counts and order treat them alike.

Park (园区): the park of the project's site in the land inventory: the parcel or factory of its
last landing, else the parcel named when it was signed (current inventory versions). Stalled (停滞):
the KPIs' definition (``warehouse.read_models._STALLED``), so the list and the dashboard agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

import orjson
from sqlalchemy import Connection, text

from events.calendar import months_before
from events.model import Event, EventType
from events.projection import STALLED_AFTER_MONTHS, ProjectState, fold
from events.store import Horizon
from events.timeline import Sourced, TimelineEntry, timeline
from warehouse.read_models import _STALLED, _VALID_ON_PARTS, _read

STAGES = ("signed", "landed", "started", "produced", "cancelled")
SORTS = {
    "signed_desc": "v.signed_on DESC NULLS LAST, v.project_id",
    "signed_asc": "v.signed_on ASC NULLS LAST, v.project_id",
    "investment_desc": "v.investment_wan DESC, v.project_id",
    "funds_desc": "v.funds_wan DESC, v.project_id",
    "id": "v.project_id",
}

# The columns every row carries (the version's): its state's figures, then what the list shows and searches.
_NARROW = (
    "project_id", "valid_from", "unit", "industry", "channel", "reached", "signed_on", "landed_on", "started_on",
    "produced_on", "cancelled_on", "last_change_on", "investment_wan", "funds_wan", "confidential",
)  # fmt: skip
_WIDE = ("name", "investor", "parcel_id", "factory_id", "anomalies")
# What the filters read (``_where``): a count selects only these, which the open versions' index holds.
_FILTERED = (
    "project_id", "valid_from", "unit", "industry", "reached", "signed_on", "cancelled_on", "last_change_on",
    "name", "investor", "parcel_id", "factory_id",
)  # fmt: skip
_CHOSEN = (*_FILTERED, "investment_wan", "funds_wan")  # and the sort keys: all in that index
_TYPES = {
    "project_id": "text", "valid_from": "date", "unit": "text", "industry": "text", "channel": "text", "reached": "smallint",
    "signed_on": "date", "landed_on": "date", "started_on": "date", "produced_on": "date", "cancelled_on": "date",
    "last_change_on": "date", "investment_wan": "double precision", "funds_wan": "double precision", "confidential": "boolean",
    "name": "text", "investor": "text", "parcel_id": "text", "factory_id": "text", "anomalies": "integer",
}  # fmt: skip
_STAGE_SQL = (
    "CASE WHEN v.cancelled_on IS NOT NULL THEN 'cancelled'"
    " ELSE (ARRAY['none','signed','landed','started','produced'])[v.reached + 1] END"
)
_STAGE_FILTER = {
    "cancelled": "v.cancelled_on IS NOT NULL",
    **{s: f"(v.cancelled_on IS NULL AND v.reached = {i + 1})" for i, s in enumerate(STAGES[:4])},
}
_PARK_OF = (
    "(SELECT li.park FROM land_inventory li WHERE (li.kind = 'idle' AND li.site_id = {parcel})"
    " OR (li.kind = 'factory' AND li.site_id = {factory}) ORDER BY li.valid_to IS NULL DESC, li.valid_from DESC,"
    " li.kind = 'factory' DESC LIMIT 1)"
)
_IN_PARK = (
    "(v.parcel_id IN (SELECT site_id FROM land_inventory WHERE kind = 'idle' AND park = :park AND valid_to IS NULL)"
    " OR v.factory_id IN (SELECT site_id FROM land_inventory WHERE kind = 'factory' AND park = :park AND valid_to IS NULL))"
)


@dataclass(frozen=True, slots=True)
class ProjectFilter:
    """What the list asks for; ``None`` is "any". ``q`` searches the id, the name and the investor."""

    q: str | None = None
    unit: str | None = None
    industry: str | None = None
    stage: str | None = None  # one of STAGES
    stalled: bool | None = None
    park: str | None = None
    signed_from: date | None = None
    signed_to: date | None = None
    sort: str = "signed_desc"


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(flt: ProjectFilter, unit_scope: str | None, params: dict[str, Any]) -> list[str]:
    """The filter's conditions on the combined rows (alias v), binding their parameters."""
    conds: list[str] = []
    if unit_scope is not None:  # a unit officer: only that unit, whatever the form says
        conds.append("v.unit = :scope")
        params["scope"] = unit_scope
    elif flt.unit:
        conds.append("v.unit = :unit")
        params["unit"] = flt.unit
    if flt.industry:
        conds.append("v.industry = :industry")
        params["industry"] = flt.industry
    if flt.stage:
        conds.append(_STAGE_FILTER[flt.stage])
    if flt.stalled is not None:
        conds.append(_STALLED if flt.stalled else f"NOT coalesce({_STALLED}, false)")
    if flt.signed_from:
        conds.append("v.signed_on >= :signed_from")
        params["signed_from"] = flt.signed_from
    if flt.signed_to:
        conds.append("v.signed_on <= :signed_to")
        params["signed_to"] = flt.signed_to
    if flt.q:
        q = flt.q.strip()
        # ILIKE folds case for every row (4x the cost of LIKE over 200,000 names); a query with no
        # cased letter (Chinese, digits) finds the same rows with LIKE.
        like = "ILIKE" if q.lower() != q.upper() else "LIKE"
        conds.append(f"(v.project_id {like} :q OR v.name {like} :q OR v.investor {like} :q)")
        params["q"] = _like(q)
    if flt.park:
        conds.append(_IN_PARK)
        params["park"] = flt.park
    return conds


def _touched_row(state: ProjectState) -> dict[str, Any]:
    site = state.sites[-1] if state.sites else None
    return {
        "project_id": state.project_id,
        "valid_from": None,
        "unit": state.unit,
        "industry": state.industry,
        "channel": state.channel,
        "reached": state.reached,
        **{k: (v.isoformat() if v else None) for k, v in state.stage_dates().items()},
        "last_change_on": state.last_change_on.isoformat() if state.last_change_on else None,
        "investment_wan": state.investment_wan,
        "funds_wan": state.funds_wan,
        "confidential": state.confidential,
        "name": state.name,
        "investor": state.investor,
        "parcel_id": (site.parcel_id if site else None) or state.intended_parcel_id,
        "factory_id": site.factory_id if site else None,
        "anomalies": len(state.anomalies),
    }


def _combined(columns: tuple[str, ...]) -> str:
    """The rows of every project at the horizon (``columns`` of them): stored versions of untouched
    projects, plus the re-folded ones (``:touched_rows``)."""
    cols = ", ".join(f"v.{c}" for c in columns)
    stored = [
        f"SELECT {cols} FROM rm_project_version v"
        " LEFT JOIN unnest(CAST(:touched AS text[])) AS t(pid) ON t.pid = v.project_id"
        f" WHERE t.pid IS NULL AND {part}"
        for part in _VALID_ON_PARTS
    ]
    names = [*_NARROW, *_WIDE]
    spec = ", ".join(f"{c} {_TYPES[c]}" for c in names)
    refolded = f"SELECT {', '.join(columns)} FROM jsonb_to_recordset(CAST(:touched_rows AS jsonb)) AS x({spec})"
    return f"({' UNION ALL '.join([*stored, refolded])}) v"


def _base(conn: Connection, horizon: Horizon, flt: ProjectFilter, unit_scope: str | None) -> tuple[str, dict[str, Any]]:
    """`` WHERE …`` of the matching rows at the horizon (over :func:`_combined`), and its parameters."""
    reading = _read(conn, horizon)
    touched = [_touched_row(s) for s in reading.states.values()]
    params: dict[str, Any] = {
        "d": horizon.as_of,
        "touched": reading.touched,
        "touched_rows": orjson.dumps(touched).decode(),
        "stalled_by": months_before(horizon.as_of, STALLED_AFTER_MONTHS),
    }
    conds = _where(flt, unit_scope, params)
    where = " WHERE " + " AND ".join(conds) if conds else ""
    return where, params


def _page_sql(where: str, sort: str, paged: bool, chosen_from: str | None = None) -> str:
    """The matching rows in the list's order (``paged``: one page; a top-N sort), with the park looked
    up for those rows only.

    The rows are chosen over the columns the open versions' index holds (filters and sort keys), then
    the chosen ones read whole: a top-N over 200,000 versions then never reads the table itself."""
    order = SORTS.get(sort, SORTS["signed_desc"])
    limit = " LIMIT :limit OFFSET :offset" if paged else ""
    park = _PARK_OF.format(parcel="v.parcel_id", factory="v.factory_id")
    names = (*_NARROW, *_WIDE)
    spec = ", ".join(f"{c} {_TYPES[c]}" for c in names)
    # A stored row is read back by its key; a re-folded one (valid_from NULL) from the JSON rows.
    whole = ", ".join(f"coalesce(f.{c}, x.{c}) AS {c}" for c in names if c not in ("project_id", "valid_from"))
    return (
        f"SELECT {', '.join('v.' + c for c in names if c != 'valid_from')}, {_STAGE_SQL} AS stage,"
        f" coalesce({_STALLED}, false) AS stalled, {park} AS park"
        f" FROM (SELECT i.project_id, i.valid_from, {whole}"
        f"  FROM (SELECT v.project_id, v.valid_from FROM {chosen_from or _combined(_CHOSEN)}{where} ORDER BY {order}{limit}) i"
        "  LEFT JOIN rm_project_version f ON f.project_id = i.project_id AND f.valid_from = i.valid_from"
        f"  LEFT JOIN jsonb_to_recordset(CAST(:touched_rows AS jsonb)) AS x({spec}) ON i.valid_from IS NULL AND x.project_id = i.project_id"
        ") v"
        f" ORDER BY {order}"
    )


class ProjectListing:
    """The projects matching one filter at one horizon: its count and its pages from one reading of the
    read models (the re-folding of touched projects is done once, lazily, whatever is asked)."""

    def __init__(self, conn: Connection, horizon: Horizon, flt: ProjectFilter, *, unit_scope: str | None) -> None:
        self.conn, self.horizon, self.filter, self.unit_scope = conn, horizon, flt, unit_scope

    @cached_property
    def _query(self) -> tuple[str, dict[str, Any]]:
        return _base(self.conn, self.horizon, self.filter, self.unit_scope)

    def count(self) -> int:
        """How many projects match (the sort plays no part)."""
        where, params = self._query
        return int(self.conn.execute(text(f"SELECT count(*) FROM {_combined(_FILTERED)}{where}"), params).scalar_one())

    def page(self, limit: int, offset: int) -> list[dict[str, Any]]:
        """One page of the matching projects, in the filter's order."""
        where, params = self._query
        rows = self.conn.execute(text(_page_sql(where, self.filter.sort, True)), {**params, "limit": limit, "offset": offset}).mappings()
        return [dict(r) for r in rows]

    def counted_page(self, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        """How many match and one page, from one pass over the versions: for a text search, which no
        index narrows (a count and a page would each read every open version). The matches are kept
        once and counted, then the top N taken (a count as a window over the page query would sort
        every matching row instead, spilling beyond ``work_mem`` at 200,000 projects)."""
        where, params = self._query
        chosen = ", ".join(f"v.{c}" for c in _CHOSEN)
        page_sql = _page_sql("", self.filter.sort, True, chosen_from="m v")
        sql = (
            f"WITH m AS MATERIALIZED (SELECT {chosen} FROM {_combined(_CHOSEN)}{where})"
            f" SELECT t.total, p.* FROM (SELECT count(*) AS total FROM m) t LEFT JOIN ({page_sql}) p ON true"
        )
        rows = self.conn.execute(text(sql), {**params, "limit": limit, "offset": offset}).mappings().all()
        total = int(rows[0]["total"])
        return total, [{k: v for k, v in r.items() if k != "total"} for r in rows if r["project_id"] is not None]


def iter_projects(conn: Connection, horizon: Horizon, flt: ProjectFilter, *, unit_scope: str | None) -> Iterator[dict[str, Any]]:
    """Every matching project at the horizon, in the list's order, streamed (the CSV export)."""
    where, params = _base(conn, horizon, flt, unit_scope)
    result = conn.execute(text(_page_sql(where, flt.sort, False)).execution_options(stream_results=True, yield_per=5000), params)
    for row in result.mappings():
        yield dict(row)


def filter_choices(conn: Connection) -> dict[str, list[str]]:
    """The values the filter form offers: units and industries of the current versions, parks of the inventory."""
    rows = conn.execute(
        text(
            "SELECT unit, industry FROM rm_project_version WHERE valid_to = DATE '9999-12-31'"
            " GROUP BY GROUPING SETS ((unit), (industry))"
        )
    ).all()
    parks = conn.execute(
        text("SELECT DISTINCT park FROM land_inventory WHERE kind IN ('idle', 'factory') AND valid_to IS NULL AND park IS NOT NULL ORDER BY 1")
    ).scalars()
    return {
        "units": sorted({r.unit for r in rows if r.unit}),
        "industries": sorted({r.industry for r in rows if r.industry}),
        "parks": list(parks),
    }


# --- one project ------------------------------------------------------------------------------

_COLUMNS = "seq, event_id, project_id, type, occurred_at, recorded_at, schema_version, payload::text, source, source_position"
_DETAIL_SQL = f"""
WITH RECURSIVE base AS (
    SELECT {_COLUMNS} FROM event_log WHERE project_id = :pid
), withdrawing AS (
    SELECT {_COLUMNS} FROM event_log WHERE type = 'retracted' AND payload->>'event_id' IN (SELECT event_id FROM base)
    UNION
    SELECT {", ".join("e." + c.strip() for c in _COLUMNS.split(","))} FROM event_log e
    JOIN withdrawing w ON e.type = 'retracted' AND e.payload->>'event_id' = w.event_id
)
SELECT * FROM base UNION SELECT * FROM withdrawing ORDER BY seq
"""
_EVENT_TYPES = {t.value: t for t in EventType}


@dataclass(frozen=True, slots=True)
class ProjectDetail:
    """A project at a horizon: its state there (None when nothing of it is seen yet), its unit as the
    whole log knows it (for authorization), the timeline the horizon sees, its park and map."""

    project_id: str
    state: ProjectState | None
    unit: str | None
    timeline: list[TimelineEntry]
    park: str | None
    geojson: dict[str, Any]


def _sourced(conn: Connection, project_id: str) -> list[Sourced]:
    rows = conn.execute(text(_DETAIL_SQL), {"pid": project_id}).all()
    payloads = orjson.loads("[" + ",".join(r[7] for r in rows) + "]") if rows else []
    return [
        Sourced(Event(r[1], r[2], _EVENT_TYPES[r[3]], r[4], r[5], r[6], p), r[8], r[9])
        for r, p in zip(rows, payloads, strict=True)
    ]


def project_unit(conn: Connection, project_id: str) -> tuple[bool, str | None]:
    """(whether the log holds any event of the project, its responsible unit as all events known give it)."""
    items = _sourced(conn, project_id)
    own = [i.event for i in items if i.event.project_id == project_id]
    return (True, _unit_of(items, project_id)) if own else (False, None)


def _unit_of(items: list[Sourced], project_id: str) -> str | None:
    own = [i.event for i in items if i.event.project_id == project_id]
    state = fold([i.event for i in items]).get(project_id)
    if state is not None and state.unit is not None:
        return state.unit
    # Every event withdrawn, or no unit known: the last signing that named one.
    signed = sorted((e for e in own if e.type is EventType.SIGNED and e.payload.get("unit")), key=Event.sort_key)
    return str(signed[-1].payload["unit"]) if signed else None


def event_project(conn: Connection, event_id: str) -> str | None:
    """The project of a stored event (what a retraction names)."""
    found = conn.execute(text("SELECT project_id FROM event_log WHERE event_id = :e"), {"e": event_id}).scalar()
    return None if found is None else str(found)


def _site_features(conn: Connection, state: ProjectState, as_of: date) -> tuple[str | None, list[dict[str, Any]]]:
    """The project's sites on a map (the inventory version valid on ``as_of``, else the latest) and its park."""
    wanted: list[tuple[str, str, str]] = []  # (kind, site_id, role)
    for s in state.sites:
        if s.parcel_id:
            wanted.append(("idle", s.parcel_id, "landed"))
        if s.factory_id:
            wanted.append(("factory", s.factory_id, "landed"))
    if state.intended_parcel_id and not wanted:
        wanted.append(("idle", state.intended_parcel_id, "intended"))
    features: list[dict[str, Any]] = []
    park: str | None = None
    for kind, site_id, role in wanted:
        row = conn.execute(
            text(
                "SELECT name, park, area_mu, floor_area_m2, ST_AsGeoJSON(geom, 7) AS geometry FROM land_inventory"
                " WHERE kind = :k AND site_id = :s"
                " ORDER BY (valid_from <= :d AND (valid_to IS NULL OR valid_to > :d)) DESC, valid_from DESC LIMIT 1"
            ),
            {"k": kind, "s": site_id, "d": as_of},
        ).first()
        if row is None:
            continue
        park = park or row.park
        features.append(
            {
                "type": "Feature",
                "geometry": orjson.loads(row.geometry),
                "properties": {
                    "label": f"{site_id} {row.name or ''}".strip(),
                    "lines": [x for x in (row.park, f"{row.area_mu:.1f} 亩" if row.area_mu else None) if x],
                    "kind": kind,
                    "role": role,
                    "color": "#b3261e" if role == "landed" else "#f9a825",
                },
            }
        )
    return park, features


def project_detail(conn: Connection, project_id: str, horizon: Horizon) -> ProjectDetail | None:
    """The project's page at the horizon; None when the log holds no event of it."""
    items = _sourced(conn, project_id)
    if not any(i.event.project_id == project_id for i in items):
        return None
    seen = [i for i in items if horizon.sees(i.event)]
    state = fold([i.event for i in seen]).get(project_id)
    unit = _unit_of(items, project_id)
    park: str | None = None
    features: list[dict[str, Any]] = []
    if state is not None:
        park, features = _site_features(conn, state, horizon.as_of)
        if state.location is not None:
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": list(state.location)},
                    "properties": {"label": state.name or project_id, "lines": [], "color": "#1f5fa8"},
                }
            )
    return ProjectDetail(project_id, state, unit, timeline(seen), park, {"type": "FeatureCollection", "features": features})
