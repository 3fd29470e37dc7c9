"""The KPI report as a planner reads it: formatted figures and the Excel workbook (月通报/季排名 tables).

Every cell goes through ``events.escape.xlsx_append``: data is text, never a formula.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from events.escape import xlsx_append
from events.kpis import GROUP_LABEL_ZH, KPI_KEYS, KPI_LABELS_ZH


def format_kpi(key: str, value: Any) -> str:
    """A KPI as printed: rates in %, amounts in 万元 with separators, "—" for none."""
    if value is None:
        return "—"
    if key.endswith("_rate"):
        return f"{value:.1%}"
    if key.endswith("_wan"):
        return f"{value:,.0f}"
    return str(value)


def write_kpi_xlsx(report: dict[str, Any], path: Path) -> None:
    """The KPI report (with ``--by``: the ranking) as an xlsx workbook: title, Chinese and English headers, total."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "KPI"
    xlsx_append(ws, [f"招商引资项目推进情况 {report['from']} ~ {report['to']}，截至 {report['as_of']}" + (f"，认知时点 {report['known_at']}" if report.get("known_at") else "")])
    ws["A1"].font = Font(bold=True, size=14)
    rows = report.get("groups", [])
    head = (["排名", GROUP_LABEL_ZH[report["by"]]] if rows else []) + [KPI_LABELS_ZH[k] for k in KPI_KEYS]
    xlsx_append(ws, head)
    xlsx_append(ws, (["rank", report["by"]] if rows else []) + list(KPI_KEYS))
    for g in rows:
        xlsx_append(ws, [g["rank"], g["key"], *(g[k] for k in KPI_KEYS)])
    total = report.get("total", report)
    xlsx_append(ws, (["", "合计"] if rows else []) + [total[k] for k in KPI_KEYS])
    wb.save(path)
