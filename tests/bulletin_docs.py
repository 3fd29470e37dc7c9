"""Reading a bulletin's Word file and the KPI report it must equal (shared by the bulletin tests)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import docx
from sqlalchemy import Engine

from events.escape import docx_text
from events.model import end_of_day
from reports.bulletin_document import TABLE_KEYS, LightRules, unit_lights
from reports.kpi import format_kpi
from warehouse.replay import kpi_report

LABEL = {"green": "绿", "yellow": "黄", "red": "红"}


def ytd(engine: Engine, month_end_day: date, *, published: bool) -> dict[str, Any]:
    """The KPI report the bulletin ranks on: year to date by unit, known at the month end or now."""
    with engine.connect() as conn:
        return kpi_report(
            conn, date_from=date(month_end_day.year, 1, 1), date_to=month_end_day, known_at=end_of_day(month_end_day) if published else None, by="unit"
        )


def table_rows(path: Path) -> list[list[str]]:
    document = docx.Document(str(path))
    assert len(document.tables) == 1
    return [[c.text for c in row.cells] for row in document.tables[0].rows]


def expected_rows(report: dict[str, Any]) -> list[list[str]]:
    lights = unit_lights(report, LightRules())
    body = [[str(g["rank"]), docx_text(g["key"]), *(format_kpi(k, g[k]) for k in TABLE_KEYS), LABEL[lights[g["key"]]]] for g in report["groups"]]
    return [*body, ["", "合计", *(format_kpi(k, report["total"][k]) for k in TABLE_KEYS), ""]]
