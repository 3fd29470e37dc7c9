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
from sqlalchemy import Engine, text

from assets.partitions import month_end, partition_keys_of
from assets.resources import OutputResource, WarehouseResource
from events.escape import markdown_cell
from events.model import STAGE_LABEL_ZH, end_of_day
from events.store import Horizon
from reports.bulletin import bulletin_difference, bulletin_markdown
from reports.bulletin_document import Version
from warehouse.bulletin import bulletin_reports
from warehouse.marts import open_dead_letters, replace_bulletin, replace_project_states, snapshot_dead_letters
from warehouse.replay import kpi_report, log_high_water, replay_rows

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


def _write_documents(
    context: dg.AssetExecutionContext, engine: Engine, output: OutputResource, m_end: date, stem: str, published: dict[str, Any], corrected: dict[str, Any]
) -> list[str]:
    """The bulletin of ``m_end`` as .docx and .pdf beside its .md (as published; as corrected too when
    something was corrected since). Only the run's newest month: a backfill of years would print one
    PDF per month, and older months' documents are reproduced on demand (``zhaoshang report bulletin``).
    A machine without Chromium keeps the Markdown and says why the documents are missing."""
    from maps.browser import BrowserError
    from reports.bulletin_document import BulletinReports, build_bulletin
    from reports.bulletin_render import write_bulletin_files

    versions: list[Version] = ["published", "corrected"] if bulletin_difference(published, corrected) else ["published"]
    written: list[str] = []
    for version in versions:
        with engine.connect() as conn:
            reports = bulletin_reports(conn, m_end, version)
        content = build_bulletin(BulletinReports(**reports), m_end, version=version)
        name = stem if version == "published" else f"{stem}-corrected"
        try:
            files = write_bulletin_files(content, docx=output.path(f"{name}.docx"), pdf=output.path(f"{name}.pdf"))
        except BrowserError as exc:
            context.log.warning(f"bulletin {m_end:%Y-%m}: no .docx/.pdf ({exc})")
            return written
        written += [str(f.resolve()) for f in files]
    return written


def build_pipeline_assets(partitions: dg.PartitionsDefinition) -> list[Any]:
    @dg.asset(
        key=PROJECT_STATES,
        deps=[EVENT_LOG],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="pipeline",
        description="项目状态(月末) · every project as it stood at each month end (replay of the log, known now).",
    )
    def project_states(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult[Any]:
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
        description="月通报 · year-to-date KPIs by responsible unit, ranked, as known at month end and as corrected since"
        " (Markdown and JSON each month; Word and PDF for the run's newest month, as corrected too when corrected).",
    )
    def monthly_bulletin(context: dg.AssetExecutionContext, warehouse: WarehouseResource, output: OutputResource) -> dg.MaterializeResult[Any]:
        engine = warehouse.engine()
        md = ""
        paths = []
        diff: list[dict[str, Any]] = []
        last: tuple[date, str, dict[str, Any], dict[str, Any]] | None = None
        for key in partition_keys_of(context):
            m_end = month_end(key)
            published_at = end_of_day(m_end)
            year_start = date(m_end.year, 1, 1)
            with engine.begin() as conn:
                published = kpi_report(conn, date_from=year_start, date_to=m_end, known_at=published_at, by="unit")
                corrected = kpi_report(conn, date_from=year_start, date_to=m_end, by="unit")
                replace_bulletin(conn, m_end, "published", published_at, published)
                replace_bulletin(conn, m_end, "corrected", published_at, corrected)
            diff = bulletin_difference(published, corrected)
            md = bulletin_markdown(published, corrected, m_end)
            stem = f"bulletins/{m_end:%Y-%m}"
            output.path(f"{stem}.md").write_text(md + "\n", encoding="utf-8")
            output.path(f"{stem}.json").write_text(
                json.dumps({"published": published, "corrected": corrected, "difference": diff}, ensure_ascii=False, indent=2),
                encoding="utf-8",
            )
            paths.append(str(output.path(f"{stem}.md").resolve()))
            last = (m_end, stem, published, corrected)
        documents = _write_documents(context, engine, output, *last) if last is not None else []
        return dg.MaterializeResult(
            metadata={
                "bulletin": dg.MetadataValue.md(md),
                "corrections": dg.MetadataValue.json(diff),
                "paths": dg.MetadataValue.json(paths[-3:]),
                "path": dg.MetadataValue.path(paths[-1] if paths else ""),
                "documents": dg.MetadataValue.json(documents),
            }
        )

    return [project_states, no_project_anomalies, funnel_monotone, dead_letters_not_growing, monthly_bulletin]
