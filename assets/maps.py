"""The published maps: the public promotion map (推介会) and the internal pipeline map."""

from pathlib import Path
from typing import Any

import dagster as dg

from assets.land import FACTORIES, IDLE_PARCELS, LAND_STATUS
from assets.pipeline import PROJECT_STATES
from assets.resources import OutputResource, WarehouseResource
from zhaoshang import clock

PROMOTION_MAP = dg.AssetKey("promotion_map")
PIPELINE_MAP = dg.AssetKey("pipeline_map")


def _publish(warehouse: WarehouseResource, out_dir: Path, profile: str) -> dict[str, str]:
    from maps.publish import publish_maps

    return publish_maps(warehouse.engine(), out_dir, profile=profile, as_of=clock.today(), basemap="none", lang="zh")


@dg.asset(
    key=PROMOTION_MAP,
    deps=[IDLE_PARCELS, FACTORIES, LAND_STATUS],
    group_name="maps",
    description="招商推介地图(公开版) · self-contained, offline, allow-listed fields only: the land and factories on offer today.",
)
def promotion_map(warehouse: WarehouseResource, output: OutputResource) -> dg.MaterializeResult[Any]:
    out_dir = output.path("maps", "public", "index.html").parent
    written = _publish(warehouse, out_dir, "public")
    page = Path(written["promotion"])
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(page.resolve())),
            "index": dg.MetadataValue.path(str((out_dir / "index.html").resolve())),
            "size_kb": dg.MetadataValue.float(round(page.stat().st_size / 1024, 1)),
        }
    )


@dg.asset(
    key=PIPELINE_MAP,
    deps=[PROJECT_STATES, LAND_STATUS],
    group_name="maps",
    description="项目推进地图(内部) · projects by stage with a month-by-month replay slider; internal only.",
)
def pipeline_map(warehouse: WarehouseResource, output: OutputResource) -> dg.MaterializeResult[Any]:
    out_dir = output.path("maps", "internal", "index.html").parent
    written = _publish(warehouse, out_dir, "internal")
    page = Path(written["pipeline"])
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(page.resolve())),
            "promotion_internal": dg.MetadataValue.path(str(Path(written["promotion"]).resolve())),
            "size_kb": dg.MetadataValue.float(round(page.stat().st_size / 1024, 1)),
        }
    )
