"""The land inventory (idle parcels, standard factories) and the monthly land status.

Geometries are EPSG:4490 (CGCS2000); areas in 亩 (mu), floor space in m².
"""

from typing import Any

import dagster as dg
import pandas as pd

from assets.partitions import month_end, partition_keys_of
from assets.pipeline import PROJECT_STATES
from assets.resources import WarehouseResource
from events.store import Horizon
from land.status import land_totals
from warehouse.land import inventory, land_status
from warehouse.marts import invalid_geometries, overlapping_parcels, replace_land_status

IDLE_PARCELS = dg.AssetKey("idle_parcels")
FACTORIES = dg.AssetKey("standard_factories")
LAND_STATUS = dg.AssetKey("land_status")


def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)"
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for rec in df.itertuples(index=False):
        lines.append("| " + " | ".join("" if v is None or v != v else (f"{v:,.1f}" if isinstance(v, float) else str(v)) for v in rec) + " |")
    return "\n".join(lines)


@dg.asset(key=IDLE_PARCELS, group_name="land", description="闲置土地 · current idle parcels (批而未供, 供而未用, 闲置, 低效), EPSG:4490, 亩.")
def idle_parcels(warehouse: WarehouseResource) -> dg.MaterializeResult[Any]:
    with warehouse.engine().connect() as conn:
        parcels = inventory(conn, ["idle"])
    by_park = (
        pd.DataFrame(parcels.drop(columns="geometry")).groupby(["park", "land_status"], dropna=False)
        .agg(parcels=("site_id", "size"), area_mu=("area_mu", "sum")).reset_index()
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(len(parcels)),
            "total_area_mu": dg.MetadataValue.float(round(float(parcels["area_mu"].sum()), 1)),
            "by_park_and_status": dg.MetadataValue.md(_md_table(by_park)),
        }
    )


@dg.asset_check(asset=IDLE_PARCELS, description="几何有效 · every current parcel and factory geometry is valid (OGC).")
def geometries_valid(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.engine().connect() as conn:
        bad = invalid_geometries(conn)
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={"invalid": dg.MetadataValue.int(len(bad)), "sites": dg.MetadataValue.md("\n".join(f"- {b['kind']} {b['site_id']}: {b['reason']}" for b in bad[:50]) or "none")},
    )


@dg.asset_check(asset=IDLE_PARCELS, description="地块不重叠 · no two current idle parcels overlap (by more than 1 m²).")
def no_overlapping_parcels(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.engine().connect() as conn:
        pairs = overlapping_parcels(conn)
    return dg.AssetCheckResult(
        passed=not pairs,
        metadata={
            "overlapping_pairs": dg.MetadataValue.int(len(pairs)),
            "pairs": dg.MetadataValue.md("\n".join(f"- {p['a']} × {p['b']}: {p['overlap_m2']:,.0f} m²" for p in pairs[:50]) or "none"),
        },
    )


@dg.asset(key=FACTORIES, group_name="land", description="标准厂房 · current standard factory buildings: floor space and vacancy in m².")
def standard_factories(warehouse: WarehouseResource) -> dg.MaterializeResult[Any]:
    with warehouse.engine().connect() as conn:
        factories = inventory(conn, ["factory"])
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(len(factories)),
            "floor_area_m2": dg.MetadataValue.float(round(float(factories["floor_area_m2"].sum()), 0)),
            "vacant_area_m2": dg.MetadataValue.float(round(float(factories["vacant_area_m2"].sum()), 0)),
            "parks": dg.MetadataValue.json(sorted(map(str, factories["park"].dropna().unique()))),
        }
    )


def build_land_assets(partitions: dg.PartitionsDefinition) -> list[Any]:
    @dg.asset(
        key=LAND_STATUS,
        deps=[IDLE_PARCELS, FACTORIES, PROJECT_STATES],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="land",
        description="土地状态(月末) · per parcel and factory at each month end: available, partly taken, taken, in production.",
    )
    def land_status_monthly(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult[Any]:
        engine = warehouse.engine()
        totals = pd.DataFrame()
        anomalies: list[Any] = []
        written = 0
        for key in partition_keys_of(context):
            m_end = month_end(key)
            with engine.begin() as conn:
                frame = land_status(conn, Horizon(m_end))
                written += replace_land_status(conn, m_end, frame)
            totals = land_totals(frame)
            anomalies = frame.attrs.get("anomalies", [])
        return dg.MaterializeResult(
            metadata={
                "rows_written": dg.MetadataValue.int(written),
                "totals_by_park": dg.MetadataValue.md(_md_table(totals)),
                "anomalies": dg.MetadataValue.json(anomalies[:50]),
            }
        )

    return [land_status_monthly]


LAND_ASSETS: list[Any] = [idle_parcels, standard_factories]
LAND_CHECKS: list[Any] = [geometries_valid, no_overlapping_parcels]
