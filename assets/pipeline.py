"""The project pipeline: the event log (observed), monthly project states, the monthly bulletin.

Month partitions replay the log as of each month end; a backfill rebuilds history month by month.
The bulletin (月通报) ranks responsible units as the KPIs were known at the month end *and* as
corrected since, with the difference, so a published bulletin can be reproduced and audited.
"""


import json
from collections import Counter
from datetime import date
from typing import Any

import dagster as dg
from sqlalchemy import text

from assets.partitions import month_end, partition_keys_of
from assets.resources import OutputResource, WarehouseResource
from events.escape import markdown_cell
from events.kpis import GROUP_LABEL_ZH, KPI_KEYS, KPI_LABELS_ZH
from events.model import STAGE_LABEL_ZH, end_of_day
from warehouse.marts import open_dead_letters, replace_bulletin, replace_project_states, snapshot_dead_letters
from warehouse.replay import Horizon, kpi_report, log_high_water, replay_rows

EVENT_LOG = dg.AssetKey("project_event_log")
PROJECT_STATES = dg.AssetKey("project_states")
BULLETIN = dg.AssetKey("monthly_bulletin")


@dg.observable_source_asset(
    key=EVENT_LOG,
    group_name="pipeline",
    description="项目事件日志 · the append-only event log in the warehouse; its version is the high-water mark (seq).",
)
def project_event_log(warehouse: WarehouseResource) -> dg.ObserveResult:
    with warehouse.engine().connect() as conn:
        hw = log_high_water(conn)
        by_type: dict[str, int] = dict(conn.execute(text("SELECT type, count(*) FROM event_log GROUP BY type ORDER BY type")).all())
        dead = open_dead_letters(conn)
    return dg.ObserveResult(
        data_version=dg.DataVersion(str(hw["max_seq"])),
        metadata={
            "events": dg.MetadataValue.int(int(hw["events"])),
            "projects": dg.MetadataValue.int(int(hw["projects"])),
            "high_water_seq": dg.MetadataValue.int(int(hw["max_seq"])),
            "last_recorded_at": dg.MetadataValue.text(str(hw["last_recorded_at"])),
            "open_dead_letters": dg.MetadataValue.int(dead),
            "events_by_type": dg.MetadataValue.json(by_type),
        },
    )


def _bulletin_markdown(published: dict[str, Any], corrected: dict[str, Any], month: date) -> str:
    keys = ("signed", "landed", "started", "produced", "landing_rate", "investment_wan", "funds_wan", "stalled")

    def cell(k: str, v: Any) -> str:
        if v is None:
            return "—"
        return f"{v:.1%}" if k.endswith("_rate") else (f"{v:,.0f}" if k.endswith("_wan") else str(v))

    head = ["排名", GROUP_LABEL_ZH["unit"], *(KPI_LABELS_ZH[k] for k in keys), "更正(到位资金)"]
    lines = [
        f"### {month.year}年{month.month}月 招商引资月通报 (截至 {month.isoformat()}, 按发布时口径)",
        f"期间 period {published['from']} ~ {published['to']}; 更正后 as corrected since: known now",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    corrected_by_key = {g["key"]: g for g in corrected["groups"]}
    for g in published["groups"]:
        c = corrected_by_key.get(g["key"], {})
        delta = (c.get("funds_wan") or 0) - (g["funds_wan"] or 0)
        # The unit is data: escaped for a Markdown cell (a "|" would shift the table, HTML would run).
        lines.append(
            "| " + " | ".join([str(g["rank"]), markdown_cell(g["key"]), *(cell(k, g[k]) for k in keys), f"{delta:+,.0f}"]) + " |"
        )
    t = published["total"]
    lines.append("| | 合计 | " + " | ".join(cell(k, t[k]) for k in keys) + " | |")
    return "\n".join(lines)


def _difference(published: dict[str, Any], corrected: dict[str, Any]) -> list[dict[str, Any]]:
    """Per unit, the KPIs whose value changed between the published and the corrected bulletin."""
    pub = {g["key"]: g for g in published["groups"]}
    cor = {g["key"]: g for g in corrected["groups"]}
    out = []
    for key in sorted(set(pub) | set(cor)):
        p, c = pub.get(key, {}), cor.get(key, {})
        changed = {
            k: {"published": p.get(k), "corrected": c.get(k)}
            for k in KPI_KEYS
            if p.get(k) != c.get(k) and not k.endswith("_rate")
        }
        if p.get("rank") != c.get("rank"):
            changed["rank"] = {"published": p.get("rank"), "corrected": c.get("rank")}
        if changed:
            out.append({"unit": key, "changes": changed})
    return out


def build_pipeline_assets(partitions: dg.PartitionsDefinition) -> list[Any]:
    @dg.asset(
        key=PROJECT_STATES,
        deps=[EVENT_LOG],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="pipeline",
        description="项目状态(月末) · every project as it stood at each month end (replay of the log, known now).",
    )
    def project_states(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        engine = warehouse.engine()
        summary: dict[str, Any] = {}
        total_rows = 0
        keys = partition_keys_of(context)
        for i, key in enumerate(keys, start=1):
            m_end = month_end(key)
            with engine.begin() as conn:
                rows = replay_rows(conn, Horizon(m_end))
                total_rows += replace_project_states(conn, m_end, rows)
            context.log.info(f"[{i}/{len(keys)}] {m_end}: {len(rows)} projects")
            summary = {
                "month_end": m_end.isoformat(),
                "projects": len(rows),
                "by_stage": dict(Counter(STAGE_LABEL_ZH[r["stage"]] for r in rows)),
                "investment_wan": round(sum(r["investment_wan"] for r in rows), 1),
                "funds_wan": round(sum(r["funds_wan"] for r in rows), 1),
                "stalled": sum(1 for r in rows if r["stalled"]),
                "with_anomalies": sum(1 for r in rows if r["anomalies"]),
            }
        return dg.MaterializeResult(
            metadata={
                "months": dg.MetadataValue.int(len(keys)),
                "rows_written": dg.MetadataValue.int(total_rows),
                "last_month": dg.MetadataValue.json(summary),
                "dagster/row_count": dg.MetadataValue.int(summary.get("projects", 0)),
            }
        )

    @dg.asset_check(asset=PROJECT_STATES, description="异常项目 · projects whose events contradict their history (warn, listing them).")
    def no_project_anomalies(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        months = [month_end(k) for k in partition_keys_of(context)]
        with warehouse.engine().connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT month_end, project_id, name, anomalies FROM mart_project_state"
                    " WHERE jsonb_array_length(anomalies) > 0 AND (CAST(:months AS date[]) IS NULL OR month_end = ANY(:months))"
                    " ORDER BY month_end DESC, project_id"
                ),
                {"months": months or None},
            ).all()
        latest: dict[str, Any] = {}
        for r in rows:
            latest.setdefault(r.project_id, r)
        listing = [markdown_cell(f"{r.project_id} {r.name or ''}: {'; '.join(r.anomalies)}") for r in list(latest.values())[:50]]
        return dg.AssetCheckResult(
            passed=not latest,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"projects_with_anomalies": dg.MetadataValue.int(len(latest)), "anomalies": dg.MetadataValue.md("\n".join(f"- {x}" for x in listing) or "none")},
        )

    @dg.asset_check(asset=PROJECT_STATES, description="漏斗单调 · per signing-year cohort: signed ≥ landed ≥ started ≥ produced (by recorded stage dates).")
    def funnel_monotone(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        months = [month_end(k) for k in partition_keys_of(context)]
        with warehouse.engine().connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT month_end, extract(year FROM signed_on)::int AS cohort,"
                    " count(*) FILTER (WHERE signed_on IS NOT NULL) AS signed,"
                    " count(landed_on) AS landed, count(started_on) AS started, count(produced_on) AS produced"
                    " FROM mart_project_state WHERE signed_on IS NOT NULL"
                    " AND (CAST(:months AS date[]) IS NULL OR month_end = ANY(:months))"
                    " GROUP BY 1, 2 ORDER BY 1, 2"
                ),
                {"months": months or None},
            ).all()
        broken = [
            f"{r.month_end} cohort {r.cohort}: signed {r.signed}, landed {r.landed}, started {r.started}, produced {r.produced}"
            for r in rows
            if not (r.signed >= r.landed >= r.started >= r.produced)
        ]
        return dg.AssetCheckResult(
            passed=not broken,
            metadata={"cohorts_checked": dg.MetadataValue.int(len(rows)), "violations": dg.MetadataValue.md("\n".join(f"- {b}" for b in broken) or "none")},
        )

    @dg.asset_check(asset=PROJECT_STATES, description="死信不增长 · open dead letters did not grow since the previous check.")
    def dead_letters_not_growing(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.engine().begin() as conn:
            previous, current = snapshot_dead_letters(conn)
        grew = previous is not None and current > previous
        return dg.AssetCheckResult(
            passed=not grew,
            metadata={"open_dead_letters": dg.MetadataValue.int(current), "previous": dg.MetadataValue.int(previous if previous is not None else -1)},
        )

    @dg.asset(
        key=BULLETIN,
        deps=[PROJECT_STATES],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="pipeline",
        description="月通报 · year-to-date KPIs by responsible unit, ranked, as known at month end and as corrected since.",
    )
    def monthly_bulletin(context: dg.AssetExecutionContext, warehouse: WarehouseResource, output: OutputResource) -> dg.MaterializeResult:
        engine = warehouse.engine()
        md = ""
        paths = []
        diff: list[dict[str, Any]] = []
        for key in partition_keys_of(context):
            m_end = month_end(key)
            published_at = end_of_day(m_end)
            year_start = date(m_end.year, 1, 1)
            with engine.begin() as conn:
                published = kpi_report(conn, date_from=year_start, date_to=m_end, known_at=published_at, by="unit")
                corrected = kpi_report(conn, date_from=year_start, date_to=m_end, by="unit")
                replace_bulletin(conn, m_end, "published", published_at, published)
                replace_bulletin(conn, m_end, "corrected", published_at, corrected)
            diff = _difference(published, corrected)
            md = _bulletin_markdown(published, corrected, m_end)
            stem = f"bulletins/{m_end:%Y-%m}"
            output.path(f"{stem}.md").write_text(md + "\n", encoding="utf-8")
            output.path(f"{stem}.json").write_text(
                json.dumps({"published": published, "corrected": corrected, "difference": diff}, ensure_ascii=False, indent=2),
                encoding="utf-8",
            )
            paths.append(str(output.path(f"{stem}.md").resolve()))
        return dg.MaterializeResult(
            metadata={
                "bulletin": dg.MetadataValue.md(md),
                "corrections": dg.MetadataValue.json(diff),
                "paths": dg.MetadataValue.json(paths[-3:]),
                "path": dg.MetadataValue.path(paths[-1] if paths else ""),
            }
        )

    return [project_states, no_project_anomalies, funnel_monotone, dead_letters_not_growing, monthly_bulletin]
