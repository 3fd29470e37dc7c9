"""The monthly bulletin (月通报): the ranking by responsible unit as published and as corrected since."""

from __future__ import annotations

from datetime import date
from typing import Any

from events.escape import markdown_cell
from events.kpis import GROUP_LABEL_ZH, KPI_KEYS, KPI_LABELS_ZH
from reports.kpi import format_kpi


def bulletin_markdown(published: dict[str, Any], corrected: dict[str, Any], month: date, *, version: str = "published") -> str:
    """The bulletin as Markdown: the ranking as published (or, ``version="corrected"``, as corrected),
    with each unit's funds corrected since; as corrected it also lists the corrections."""
    keys = ("signed", "landed", "started", "produced", "landing_rate", "investment_wan", "funds_wan", "stalled")
    as_corrected = version == "corrected"
    ranking = corrected if as_corrected else published

    head = ["排名", GROUP_LABEL_ZH["unit"], *(KPI_LABELS_ZH[k] for k in keys), "更正(到位资金)"]
    lines = [
        f"### {month.year}年{month.month}月 招商引资月通报 (截至 {month.isoformat()}, {'按更正后口径' if as_corrected else '按发布时口径'})",
        f"期间 period {published['from']} ~ {published['to']}; 更正后 as corrected since: known now",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    published_by_key = {g["key"]: g for g in published["groups"]}
    corrected_by_key = {g["key"]: g for g in corrected["groups"]}
    for g in ranking["groups"]:
        c = corrected_by_key.get(g["key"], {})
        p = published_by_key.get(g["key"], {})
        delta = (c.get("funds_wan") or 0) - (p.get("funds_wan") or 0)
        # The unit is data: escaped for a Markdown cell (a "|" would shift the table, HTML would run).
        lines.append(
            "| " + " | ".join([str(g["rank"]), markdown_cell(g["key"]), *(format_kpi(k, g[k]) for k in keys), f"{delta:+,.0f}"]) + " |"
        )
    t = ranking["total"]
    lines.append("| | 合计 | " + " | ".join(format_kpi(k, t[k]) for k in keys) + " | |")
    if as_corrected:
        lines += ["", "#### 更正说明 corrections since publication", ""]
        for diff in bulletin_difference(published, corrected) or [{"unit": None, "changes": {}}]:
            if diff["unit"] is None:
                lines.append("- 发布以来无更正 none")
                continue
            changes = "; ".join(
                f"{'排名' if k == 'rank' else KPI_LABELS_ZH[k]} {format_kpi(k, v['published'])} → {format_kpi(k, v['corrected'])}"
                for k, v in diff["changes"].items()
            )
            lines.append(f"- {markdown_cell(diff['unit'])}: {changes}")
    return "\n".join(lines)


def bulletin_difference(published: dict[str, Any], corrected: dict[str, Any]) -> list[dict[str, Any]]:
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
