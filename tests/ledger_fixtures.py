"""Ledgers as bureaus write them, built with openpyxl for the ledger tests.

Month 1 (as of 2018-03-31) has a title row merged over the table, a 责任单位 merged down two
projects, dates as a datetime cell, an Excel serial number and three text forms, 总投资 in 亿元,
a project without 项目编号, a cancelled project, a blank row and a 合计 row.
Month 2 (2018-04-30) corrects one 开工时间 and reports more 到位资金 for the same project.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook

HEADERS = [
    "序号", "项目编号", "项目名称", "投资方", "行业", "总投资（亿元）", "签约时间", "落地时间", "开工时间",
    "投产时间", "状态", "取消原因", "到位资金(万元)", "责任单位",
]  # fmt: skip

# Excel serial of 2018-03-05 (days since 1899-12-30).
SERIAL_2018_03_05 = (date(2018, 3, 5) - date(1899, 12, 30)).days


def month1_rows() -> list[list[Any]]:
    return [
        [1, "PB-001", "新材料产业园项目", "某新材料公司", "新材料", 1.5, datetime(2018, 1, 10), "2018.2.5", SERIAL_2018_03_05, None, "在建", None, 3000, "白云镇"],
        [2, "PB-002", "食品加工项目", "乙食品公司", "食品加工", 0.8, "2018年2月1日", "2018/3/1", None, None, "", None, 500, None],
        [3, None, "现代物流园项目", "丙物流公司", "现代物流", "2", "2018-03-10", "—", "未开工", None, None, None, None, "夏云镇"],
        [4, "PB-004", "精细化工项目", "丁化工公司", "精细化工", 1, "2018.1.20", None, None, None, "取消", "环评未通过", 0, "乐平镇"],
    ]


MONTH1_TOTALS = {
    "signed": 4,
    "landed": 2,
    "started": 1,
    "produced": 0,
    "cancelled": 1,
    "investment_wan": 53000.0,
    "funds_wan": 3500.0,
}


def month2_rows() -> list[list[Any]]:
    rows = month1_rows()
    rows[0][8] = "2018.3.7"  # 开工时间 corrected: 3-05 → 3-07
    rows[0][12] = 4200  # 到位资金 3000 → 4200
    return rows


def write_ledger(path: Path, title: str, rows: list[list[Any]], *, totals: list[Any] | None = None) -> Path:
    """A ledger sheet: title row (merged across), header row, project rows, a blank row, a 合计 row."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "项目台账"
    ws.append([title])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADERS))
    ws.append(HEADERS)
    for r in rows:
        ws.append(r)
    # 责任单位 merged down the first two projects: only the top cell holds 白云镇.
    ws.merge_cells(start_row=3, start_column=14, end_row=4, end_column=14)
    ws.append([])
    ws.append(totals if totals is not None else [None, None, "合计", None, None, 5.3, None, None, None, None, None, None, 3500, None])
    ws["G3"].number_format = "yyyy-mm-dd"
    wb.save(path)
    return path


def write_month1(tmp: Path) -> Path:
    return write_ledger(tmp / "台账_2018-03.xlsx", "平坝区2018年3月招商引资项目台账", month1_rows())


def write_month2(tmp: Path) -> Path:
    return write_ledger(
        tmp / "台账_2018-04.xlsx",
        "平坝区2018年4月招商引资项目台账",
        month2_rows(),
        totals=[None, None, "合计", None, None, 5.3, None, None, None, None, None, None, 4700, None],
    )


GBK_CSV = (
    "某县2019年6月招商引资项目台账,,,,,,\n"
    "项目名称,投资方,总投资（万元）,签约时间,落地时间,到位资金（万元）,责任单位,项目负责人\n"
    "电子元件项目,甲电子有限公司,\"12,000\",2019.5.6,2019年6月1日,800,高峰镇,张三\n"
    ",,,,,,,\n"
    "农产品深加工项目,乙农业公司,5000,2019/4/3,,0,天龙镇,李四\n"
    "小计,,17000,,,800,,\n"
)
