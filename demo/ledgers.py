"""Two successive monthly ledgers (台账) for the demo district, written as a bureau writes them.

The September ledger and the October one share their projects; October moves some projects on
a stage, reports more 到位资金 for others, corrects two 落地时间, cancels one project, drops a
finished one from the list and adds a newly signed one. Both sheets carry a merged title row, 责任
单位 merged down runs of rows, dates in five forms, 总投资 in 亿元, a blank row and a 合计 row.
Project ids (TZ…) do not collide with the demo history's (PB…).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

if TYPE_CHECKING:
    from ingestion.ledger_import import LedgerImport

from demo.history import CHANNELS, INDUSTRIES, PRODUCTS, UNIT_WEIGHTS, UNITS, _company

DEMO_LEDGER_MONTHS = (date(2026, 9, 30), date(2026, 10, 31))
HEADERS = [
    "序号", "项目编号", "项目名称", "投资方", "行业", "总投资（亿元）", "签约时间", "落地时间", "开工时间",
    "投产时间", "状态", "取消原因", "到位资金（万元）", "责任单位", "签约渠道",
]  # fmt: skip
CANCEL_REASONS = ("企业资金链断裂", "环评未通过", "投资方战略调整", "用地指标未落实")


@dataclass(frozen=True, slots=True)
class DemoRow:
    project_id: str
    name: str
    investor: str
    industry: str
    investment_wan: int
    unit: str
    channel: str
    signed_on: date
    landed_on: date | None = None
    started_on: date | None = None
    produced_on: date | None = None
    funds_wan: int = 0
    cancel_reason: str | None = None


def _next_stage(rng: random.Random, after: date, lo: int, hi: int, until: date) -> date | None:
    day = after + timedelta(days=rng.randint(lo, hi))
    return day if day <= until else None


def _month1(rng: random.Random, n_projects: int, as_of: date) -> list[DemoRow]:
    rows = []
    start = date(as_of.year - 1, 1, 1)
    span = (as_of - start).days - 5
    for i in range(1, n_projects + 1):
        industry, _, (lo, hi) = rng.choice(INDUSTRIES)
        signed = start + timedelta(days=rng.randint(0, span))
        investment = rng.randint(lo, hi)
        landed = _next_stage(rng, signed, 20, 150, as_of) if rng.random() < 0.75 else None
        started = _next_stage(rng, landed, 15, 120, as_of) if landed and rng.random() < 0.75 else None
        produced = _next_stage(rng, started, 60, 240, as_of) if started and rng.random() < 0.6 else None
        stage = sum(d is not None for d in (landed, started, produced))
        funds = int(investment * rng.uniform(0.1, 0.35) * stage) if stage else 0
        rows.append(
            DemoRow(
                project_id=f"TZ{signed.year}-{i:03d}",
                name=f"{rng.choice(PRODUCTS[industry])}项目",
                investor=_company(rng, industry),
                industry=industry,
                investment_wan=investment,
                unit=rng.choices(UNITS, weights=UNIT_WEIGHTS)[0],
                channel=rng.choice(CHANNELS),
                signed_on=signed,
                landed_on=landed,
                started_on=started,
                produced_on=produced,
                funds_wan=min(funds, investment),
            )
        )
    # One project of the list was dropped before September's report.
    victim = next(r for r in rows if r.produced_on is None)
    rows[rows.index(victim)] = replace(victim, cancel_reason=rng.choice(CANCEL_REASONS))
    return rows


def _month2(rng: random.Random, rows: list[DemoRow], prev: date, as_of: date) -> list[DemoRow]:
    out: list[DemoRow] = []
    corrected = 0
    cancelled = False
    for r in rows:
        if r.cancel_reason:
            out.append(r)
            continue
        n = r
        if n.landed_on and n.landed_on - timedelta(days=3) > n.signed_on and corrected < 2 and rng.random() < 0.3:
            n = replace(n, landed_on=n.landed_on - timedelta(days=3))  # a date the bureau got wrong last month
            corrected += 1
        if n.landed_on is None and rng.random() < 0.3:
            n = replace(n, landed_on=prev + timedelta(days=rng.randint(1, (as_of - prev).days)))
        elif n.landed_on and n.started_on is None and rng.random() < 0.3:
            n = replace(n, started_on=max(n.landed_on, prev) + timedelta(days=rng.randint(1, 20)))
        elif n.started_on and n.produced_on is None and rng.random() < 0.2:
            n = replace(n, produced_on=prev + timedelta(days=rng.randint(1, (as_of - prev).days)))
        # a stage dated after the ledger's month is not reported yet
        if n.produced_on and n.produced_on > as_of:
            n = replace(n, produced_on=None)
        if n.started_on and n.started_on > as_of:
            n = replace(n, started_on=None)
        if n.landed_on and n.landed_on > as_of:
            n = replace(n, landed_on=None)
        if n.landed_on and rng.random() < 0.4:
            n = replace(n, funds_wan=min(n.investment_wan, n.funds_wan + int(n.investment_wan * rng.uniform(0.02, 0.1))))
        if not cancelled and n.produced_on is None and n.started_on is None and rng.random() < 0.1:
            n = replace(n, cancel_reason=rng.choice(CANCEL_REASONS))
            cancelled = True
        out.append(n)
    # A finished project leaves the list; the import reports it and does not cancel it.
    done = next((r for r in out if r.produced_on is not None), None)
    if done is not None:
        out.remove(done)
    industry, _, (lo, hi) = rng.choice(INDUSTRIES)
    out.append(
        DemoRow(
            project_id=f"TZ{as_of.year}-{len(rows) + 1:03d}",
            name=f"{rng.choice(PRODUCTS[industry])}项目",
            investor=_company(rng, industry),
            industry=industry,
            investment_wan=rng.randint(lo, hi),
            unit=rng.choices(UNITS, weights=UNIT_WEIGHTS)[0],
            channel=rng.choice(CHANNELS),
            signed_on=prev + timedelta(days=rng.randint(1, (as_of - prev).days)),
        )
    )
    return out


def _date_cell(day: date | None, i: int) -> Any:
    """Dates as bureaus type them: a date cell, a serial number, and three text forms."""
    if day is None:
        return None
    form = i % 5
    if form == 0:
        return datetime(day.year, day.month, day.day)
    if form == 1:
        return (day - date(1899, 12, 30)).days
    if form == 2:
        return f"{day.year}.{day.month}.{day.day}"
    if form == 3:
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.year}/{day.month}/{day.day}"


def write_ledger_xlsx(path: Path, rows: list[DemoRow], as_of: date, district: str = "示范区") -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    rows = sorted(rows, key=lambda r: (UNITS.index(r.unit), r.project_id))
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "项目台账"
    ws.append([f"{district}{as_of.year}年{as_of.month}月招商引资项目推进台账"])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADERS))
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center")
    ws.append(HEADERS)
    first = 3
    for i, r in enumerate(rows):
        ws.append(
            [
                i + 1, r.project_id, r.name, r.investor, r.industry, round(r.investment_wan / 10000, 4),
                _date_cell(r.signed_on, i), _date_cell(r.landed_on, i + 1), _date_cell(r.started_on, i + 2),
                _date_cell(r.produced_on, i + 3), "取消" if r.cancel_reason else ("已投产" if r.produced_on else "推进中"),
                r.cancel_reason, r.funds_wan, r.unit, r.channel,
            ]
        )  # fmt: skip
    unit_col = HEADERS.index("责任单位") + 1
    run_start = 0
    for i in range(1, len(rows) + 1):  # merge 责任单位 down each run of equal units
        if i == len(rows) or rows[i].unit != rows[run_start].unit:
            if i - run_start > 1:
                ws.merge_cells(start_row=first + run_start, start_column=unit_col, end_row=first + i - 1, end_column=unit_col)
            run_start = i
    ws.append([])
    ws.append(
        [None, None, "合计", None, None, round(sum(r.investment_wan for r in rows) / 10000, 4), None, None, None, None, None, None,
         sum(r.funds_wan for r in rows), None, None]
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def write_demo_ledgers(out_dir: Path, *, seed: int = 2018, n_projects: int = 40) -> tuple[Path, Path]:
    """Write the September and October ledgers of the demo district; returns their paths in order."""
    rng = random.Random(seed)
    m1, m2 = DEMO_LEDGER_MONTHS
    rows1 = _month1(rng, n_projects, m1)
    rows2 = _month2(rng, rows1, m1, m2)
    p1 = write_ledger_xlsx(out_dir / f"项目台账_{m1:%Y-%m}.xlsx", rows1, m1)
    p2 = write_ledger_xlsx(out_dir / f"项目台账_{m2:%Y-%m}.xlsx", rows2, m2)
    return p1, p2


def import_demo_ledgers(engine: Engine, out_dir: Path, *, seed: int = 2018, n_projects: int = 40) -> list[LedgerImport]:
    """Write the two demo ledgers and import them in order; returns the two :class:`LedgerImport` results."""
    from ingestion.ledger_import import import_ledger

    return [import_ledger(engine, p) for p in write_demo_ledgers(out_dir, seed=seed, n_projects=n_projects)]
