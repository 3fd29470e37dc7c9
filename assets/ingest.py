"""The stream: drain the Kafka topic into the warehouse's event log (exactly once, offsets in the warehouse)."""

from typing import Any

import dagster as dg

from assets.resources import KafkaResource, WarehouseResource

KAFKA_INGEST = dg.AssetKey("kafka_ingest")


@dg.asset(
    key=KAFKA_INGEST,
    group_name="ingestion",
    description="Kafka → 事件日志 · stream the project events topic into the warehouse until idle; offsets commit with the rows.",
)
def kafka_ingest(context: dg.AssetExecutionContext, warehouse: WarehouseResource, kafka: KafkaResource) -> dg.MaterializeResult[Any]:
    from ingestion.kafka_stream import run_sink

    if not kafka.bootstrap:
        raise dg.Failure(
            description="没有配置 Kafka · no Kafka bootstrap configured: set ZHAOSHANG_KAFKA_BOOTSTRAP (host:port) or the kafka resource",
        )
    counts = run_sink(
        warehouse.engine(),
        kafka.bootstrap,
        kafka.topic,
        name=kafka.sink_name,
        stop_when_idle=kafka.idle_seconds,
        wait_for_lock=True,
        handle_signals=False,
        on_progress=lambda p: context.log.info(str({k: v for k, v in p.items() if k != "partitions"})),
    )
    return dg.MaterializeResult(
        metadata={
            "read": dg.MetadataValue.int(int(counts["read"])),
            "accepted": dg.MetadataValue.int(int(counts["accepted"])),
            "duplicates": dg.MetadataValue.int(int(counts["duplicates"])),
            "rejected": dg.MetadataValue.int(int(counts["rejected"])),
            "partitions": dg.MetadataValue.json({str(k): v for k, v in (counts.get("partitions") or {}).items()}),
        }
    )
