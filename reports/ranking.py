"""The dashboard's ranking (季排名 with 红黄绿灯) as an xlsx workbook.

``reports.kpi.write_kpi_xlsx`` writes the KPI columns only; the dashboard's table also has each
unit's light and months without progress, so it has its own sheet here. Every cell goes through
``events.escape.xlsx_append``: a unit's name is text, never a formula.
"""

from __future__ import annotations

from typing import IO, Any

from events.escape import xlsx_append
from events.kpis import KPI_KEYS, KPI_LABELS_ZH

LIGHT_LABELS: dict[str, tuple[str, str]] = {"green": ("绿", "green"), "yellow": ("黄", "yellow"), "red": ("红", "red")}

RANKING_HEAD_ZH = ["排名", "责任单位", "灯", "无进展月数", "在推项目", *(KPI_LABELS_ZH[k] for k in KPI_KEYS)]
RANKING_HEAD_EN = ["rank", "unit", "light", "months_without_progress", "open_projects", *KPI_KEYS]


def ranking_cells(row: dict[str, Any]) -> list[Any]:
    """One ranking row as the workbook's cells (:data:`RANKING_HEAD_EN` order)."""
    return [
        row["rank"],
        row["key"],
        LIGHT_LABELS[row["light"]][0],
        row["months_without_progress"],
        row["open_projects"],
        *(row[k] for k in KPI_KEYS),
    ]


def write_ranking_xlsx(title: str, rows: list[dict[str, Any]], total: dict[str, Any] | None, out: IO[bytes]) -> None:
    """The ranking rows (``ranking_cells`` each) under a title and Chinese and English headers; ``total``: a 合计 line."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "季排名"
    xlsx_append(ws, [title])
    ws["A1"].font = Font(bold=True, size=14)
    xlsx_append(ws, RANKING_HEAD_ZH)
    xlsx_append(ws, RANKING_HEAD_EN)
    for row in rows:
        xlsx_append(ws, ranking_cells(row))
    if total is not None:
        xlsx_append(ws, ["", "合计", "", None, None, *(total[k] for k in KPI_KEYS)])
    wb.save(out)
