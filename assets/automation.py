"""The sensor that notices new events and the monthly bulletin schedule."""


from typing import Any

import dagster as dg

from assets.land import LAND_STATUS
from assets.partitions import partitions_by_clock
from assets.pipeline import BULLETIN, PROJECT_STATES
from assets.resources import WarehouseResource
from events.calendar import month_start
from warehouse.marts import months_touched_since


def build_automation(partitions: dg.MonthlyPartitionsDefinition) -> tuple[list[Any], list[dg.SensorDefinition], list[Any]]:
    refresh_job = dg.define_asset_job(
        "refresh_months",
        selection=dg.AssetSelection.assets(PROJECT_STATES, BULLETIN, LAND_STATUS),
        description="Rebuild project states, land status and bulletins for a range of months.",
    )
    bulletin_job = dg.define_asset_job(
        "monthly_bulletin_job",
        selection=dg.AssetSelection.assets(PROJECT_STATES, BULLETIN),
    )

    @dg.sensor(job=refresh_job, minimum_interval_seconds=60, description="新事件 · requests the months that new events change (cursor = log seq).")
    def new_events_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult | dg.SkipReason:
        cursor = int(context.cursor) if context.cursor else 0
        with warehouse.engine().connect() as conn:
            high_water, first_day = months_touched_since(conn, cursor)
        if high_water <= cursor or first_day is None:
            return dg.SkipReason(f"no new events after seq {cursor}")
        with partitions_by_clock():
            keys = partitions.get_partition_keys(dynamic_partitions_store=context.instance)
        if not keys:
            return dg.SensorResult(cursor=str(high_water), skip_reason=dg.SkipReason("no complete month yet"))
        first_key = max(keys[0], month_start(first_day).isoformat())
        affected = [k for k in keys if k >= first_key]
        if not affected:
            return dg.SensorResult(cursor=str(high_water), skip_reason=dg.SkipReason("new events lie in the current month only"))
        request = dg.RunRequest(
            run_key=f"events-{cursor}-{high_water}",
            tags={
                "dagster/asset_partition_range_start": affected[0],
                "dagster/asset_partition_range_end": affected[-1],
                "zhaoshang/trigger": f"events seq {cursor}→{high_water}",
            },
        )
        return dg.SensorResult(run_requests=[request], cursor=str(high_water))

    bulletin_schedule = dg.build_schedule_from_partitioned_job(
        bulletin_job, hour_of_day=6, description="每月初生成上月月通报 · the bulletin for the month just ended."
    )
    return [refresh_job, bulletin_job], [new_events_sensor], [bulletin_schedule]
