"""Reading ledgers and planning their events (no database)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from events.model import EventType, local_date
from events.projection import fold
from ingestion.ledger import (
    CellError,
    LedgerError,
    derive_project_id,
    is_cancelled_status,
    ledger_totals,
    parse_amount,
    parse_grid,
    parse_ledger_date,
    parse_mapping,
    read_ledger,
)
from ingestion.ledger_events import LedgerOrderError, plan_ledger
from tests.ledger_fixtures import GBK_CSV, MONTH1_TOTALS, write_month1, write_month2


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2018.3.5", date(2018, 3, 5)),
        ("2018年3月5日", date(2018, 3, 5)),
        ("2018/3/5", date(2018, 3, 5)),
        ("2018-03-05", date(2018, 3, 5)),
        ("２０１８．３．５", date(2018, 3, 5)),  # full-width digits
        ("2018-03-05 00:00:00", date(2018, 3, 5)),
        ("20180305", date(2018, 3, 5)),
        (43164, date(2018, 3, 5)),  # Excel serial
        (43164.0, date(2018, 3, 5)),
        ("", None),
        ("未开工", None),
        ("—", None),
        (None, None),
    ],
)
def test_dates(cell: object, expected: date | None) -> None:
    assert parse_ledger_date(cell)[0] == expected


def test_month_only_date_is_read_with_a_warning() -> None:
    day, warning = parse_ledger_date("2018年3月")
    assert day == date(2018, 3, 1)
    assert warning and "no day" in warning


@pytest.mark.parametrize("cell", ["2018.13.5", "2018.2.30", "明年", 2018.3, 12])
def test_bad_dates_say_why(cell: object) -> None:
    with pytest.raises(CellError):
        parse_ledger_date(cell)


def test_amounts() -> None:
    assert parse_amount(1.5, 10000.0) == 15000.0
    assert parse_amount("12,000", 1.0) == 12000.0
    assert parse_amount("1.2亿", 1.0) == 12000.0  # the cell's unit overrides the header's
    assert parse_amount(" ", 1.0) is None
    with pytest.raises(CellError, match="not an amount"):
        parse_amount("约一亿", 1.0)
    with pytest.raises(CellError, match="negative"):
        parse_amount(-5, 1.0)


def test_cancel_status() -> None:
    assert is_cancelled_status("取消")
    assert is_cancelled_status("已终止")
    assert is_cancelled_status("是")
    assert not is_cancelled_status("否")
    assert not is_cancelled_status("未取消")
    assert not is_cancelled_status("在建")
    assert not is_cancelled_status(None)


def test_reads_a_messy_workbook(tmp_path: Path) -> None:
    table = read_ledger(write_month1(tmp_path))
    assert table.header_row == 2
    assert "2018年3月" in table.title
    assert table.as_of_hint == date(2018, 3, 31)
    assert table.rows_read == 6
    assert len(table.projects) == 4
    assert table.skipped == {"blank": [7], "total": [8]}
    assert table.rejected == []
    assert table.accounted()
    p1, p2, p3, p4 = table.projects
    assert (p1.project_id, p1.investment_wan, p1.signed_on, p1.landed_on, p1.started_on) == (
        "PB-001", 15000.0, date(2018, 1, 10), date(2018, 2, 5), date(2018, 3, 5),
    )  # fmt: skip
    assert p2.unit == "白云镇", "a merged 责任单位 applies to every row it covers"
    assert p2.signed_on == date(2018, 2, 1) and p2.landed_on == date(2018, 3, 1)
    assert not p3.id_from_ledger and p3.project_id == derive_project_id("现代物流园项目", "丙物流公司")
    assert p3.investment_wan == 20000.0 and p3.landed_on is None and p3.started_on is None
    assert p4.cancelled and p4.cancel_reason == "环评未通过"
    assert ledger_totals(table.projects) == MONTH1_TOTALS
    assert table.stated_totals == {"investment_wan": 53000.0, "funds_wan": 3500.0}


def test_gbk_csv_with_title_and_subtotal(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_bytes(GBK_CSV.encode("gbk"))
    table = read_ledger(path)
    assert table.header_row == 2
    assert table.as_of_hint == date(2019, 6, 30)
    assert [p.name for p in table.projects] == ["电子元件项目", "农产品深加工项目"]
    assert table.projects[0].investment_wan == 12000.0
    assert table.projects[0].landed_on == date(2019, 6, 1)
    assert table.skipped == {"blank": [4], "total": [6]}
    assert table.unmapped == ["项目负责人"]
    assert table.rows_read == 4 and table.accounted()
    # the same ledger in UTF-8 with a BOM reads the same
    path.write_bytes(GBK_CSV.encode("utf-8-sig"))
    again = read_ledger(path)
    assert [p.project_id for p in again.projects] == [p.project_id for p in table.projects]


def test_rows_it_cannot_read_are_reported_with_row_and_reason() -> None:
    grid: list[list[Any]] = [
        ["项目名称", "总投资(万元)", "签约时间", "落地时间", "奇怪的列"],
        ["甲项目", 1000, "2018.13.5", None, "x"],
        [None, 2000, "2018.1.5", None, None],
        ["乙项目", None, "2018.1.5", None, None],
        ["丙项目", "很多", "2018.1.5", "2018.2.1", None],
        ["丁项目", 500, "2018.1.5", "2018.2.1", None],
        ["丁项目", 600, "2018.1.6", None, None],
        ["注：金额单位为万元", None, None, None, None],
        ["一、工业项目", None, None, None, None],
    ]
    table = parse_grid(grid, source="t")
    reasons = {n.row: n.message for n in table.rejected}
    assert set(reasons) == {2, 3, 4, 5, 7}
    assert "签约时间" in reasons[2] and "2018.13.5" in reasons[2]
    assert "项目名称" in reasons[3]
    assert "总投资" in reasons[4]
    assert "很多" in reasons[5]
    assert "row 6" in reasons[7]
    assert [p.name for p in table.projects] == ["丁项目"]
    assert table.skipped == {"note": [8], "section": [9]}
    assert table.unmapped == ["奇怪的列"]
    assert table.rows_read == 8 and table.accounted()


def test_mapping_maps_custom_headers_with_units() -> None:
    mapping = parse_mapping({"columns": {"引资项目": "name", "协议引资额": {"field": "investment_wan", "unit": "亿元"}, "签订日": "signed_on"}})
    grid: list[list[Any]] = [["引资项目", "协议引资额", "签订日"], ["甲项目", 0.5, "2020.1.2"]]
    table = parse_grid(grid, source="t", mapping=mapping)
    assert table.projects[0].investment_wan == 5000.0
    assert table.projects[0].signed_on == date(2020, 1, 2)
    with pytest.raises(LedgerError, match="unknown field"):
        parse_mapping({"某列": "nonsense"})


def test_no_header_row_is_a_clear_error() -> None:
    with pytest.raises(LedgerError, match="no header row"):
        parse_grid([["a", "b"], [1, 2]], source="t")


def _plan(tmp_path: Path, existing: list, month: int):  # type: ignore[no-untyped-def]
    path = write_month1(tmp_path) if month == 1 else write_month2(tmp_path)
    table = read_ledger(path)
    return table, plan_ledger(table.projects, existing, date(2018, 3 + month - 1, 31 if month == 1 else 30))


def test_plan_month1_then_month2(tmp_path: Path) -> None:
    _, plan1 = _plan(tmp_path, [], 1)
    by_type = plan1.events_by_type()
    assert by_type == {"cancelled": 1, "funds_arrived": 2, "landed": 2, "signed": 4, "started": 1}
    assert all(e.recorded_at is not None and local_date(e.recorded_at) == date(2018, 3, 31) for e in plan1.events)
    # the same ledger against its own events: nothing
    _, again = _plan(tmp_path, plan1.events, 1)
    assert again.events == [] and again.unchanged_projects == 4
    # month 2: exactly the retraction, the corrected start and the funds difference
    _, plan2 = _plan(tmp_path, plan1.events, 2)
    types = sorted(e.type.value for e in plan2.events)
    assert types == ["funds_arrived", "retracted", "started"]
    old_start = next(e for e in plan1.events if e.type is EventType.STARTED)
    retraction = next(e for e in plan2.events if e.type is EventType.RETRACTED)
    assert retraction.payload["event_id"] == old_start.event_id
    funds = next(e for e in plan2.events if e.type is EventType.FUNDS_ARRIVED)
    assert funds.payload == {"amount_wan": 1200.0}
    state = fold(plan1.events + plan2.events)["PB-001"]
    assert state.started_on == date(2018, 3, 7) and state.funds_wan == 4200.0
    assert plan2.counts() == {"corrected": 1, "funds": 1}


def test_cleared_date_retracts_and_restated_date_reinstates(tmp_path: Path) -> None:
    table = read_ledger(write_month1(tmp_path))
    plan1 = plan_ledger(table.projects, [], date(2018, 3, 31))
    table.projects[0].started_on = None
    plan2 = plan_ledger(table.projects, plan1.events, date(2018, 4, 30))
    assert [e.type for e in plan2.events] == [EventType.RETRACTED]
    assert plan2.counts() == {"cleared": 1}
    log = plan1.events + plan2.events
    assert fold(log)["PB-001"].started_on is None
    table.projects[0].started_on = date(2018, 3, 5)
    plan3 = plan_ledger(table.projects, log, date(2018, 5, 31))
    assert [e.type for e in plan3.events] == [EventType.RETRACTED]  # withdraws the withdrawal
    assert fold(log + plan3.events)["PB-001"].started_on == date(2018, 3, 5)
    assert plan3.counts() == {"reinstated": 1}


def test_decrease_missing_and_cancel(tmp_path: Path) -> None:
    table = read_ledger(write_month1(tmp_path))
    plan1 = plan_ledger(table.projects, [], date(2018, 3, 31))
    table.projects[0].funds_wan = 1000.0  # less than the 3000 recorded
    dropped = table.projects.pop(1)
    plan2 = plan_ledger(table.projects, plan1.events, date(2018, 4, 30))
    assert plan2.events == []
    kinds = {(c.project_id, c.kind) for c in plan2.changes}
    assert ("PB-001", "funds_decrease") in kinds
    assert (dropped.project_id, "missing") in kinds
    assert fold(plan1.events)["PB-004"].cancel_reason == "环评未通过"
    assert fold(plan1.events)["PB-004"].cancelled_on == date(2018, 3, 31)


def test_changed_investment_replaces_the_signed_event(tmp_path: Path) -> None:
    table = read_ledger(write_month1(tmp_path))
    plan1 = plan_ledger(table.projects, [], date(2018, 3, 31))
    table.projects[1].investment_wan = 9000.0
    plan2 = plan_ledger(table.projects, plan1.events, date(2018, 4, 30))
    assert sorted(e.type.value for e in plan2.events) == ["retracted", "signed"]
    assert fold(plan1.events + plan2.events)["PB-002"].investment_wan == 9000.0


def test_older_ledger_after_a_newer_one_is_refused(tmp_path: Path) -> None:
    table = read_ledger(write_month1(tmp_path))
    plan2 = plan_ledger(table.projects, [], date(2018, 4, 30))
    with pytest.raises(LedgerOrderError, match="2018-04-30"):
        plan_ledger(table.projects, plan2.events, date(2018, 3, 31))


def test_two_row_header_picks_the_cumulative_funds_column(tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["2020年5月项目台账"])
    ws.append(["项目名称", "总投资(万元)", "签约时间", "到位资金（万元）", None])
    ws.append([None, None, None, "本年", "累计"])
    ws.merge_cells("A2:A3")
    ws.merge_cells("B2:B3")
    ws.merge_cells("C2:C3")
    ws.merge_cells("D2:E2")
    ws.append(["甲项目", 1000, "2020.1.5", 100, 300])
    path = tmp_path / "two.xlsx"
    wb.save(path)
    table = read_ledger(path)
    assert table.header_row == 2
    assert table.projects[0].funds_wan == 300.0
    assert table.unmapped == ["到位资金(万元)本年"]
    assert table.rows_read == 1 and table.accounted()
    assert table.projects[0].row == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("平坝区2018年3月招商引资项目台账", date(2018, 3, 31)),
        ("截至2018年3月20日项目推进情况", date(2018, 3, 20)),
        ("某县2018年1-6月项目台账 填报日期：2018年7月5日", date(2018, 6, 30)),
        ("台账_2018-12", date(2018, 12, 31)),
        ("项目台账", None),
    ],
)
def test_as_of_from_title_or_file_name(text: str, expected: date | None) -> None:
    from ingestion.ledger import date_in_text

    assert date_in_text(text) == expected


def test_a_project_merged_down_two_lines_is_one_project() -> None:
    grid: list[list[Any]] = [
        ["项目编号", "项目名称", "总投资(万元)", "签约时间", "建设内容"],
        ["A1", "甲项目", 1000, "43164", "一期厂房"],  # a serial exported to CSV as text
        ["A1", "甲项目", 1000, "43164", "二期仓库"],  # what filling the merged cells gives the second line
        ["A1", "甲项目", 2000, "2018.3.5", None],  # same id, different facts: rejected
    ]
    table = parse_grid(grid, source="t")
    assert len(table.projects) == 1 and table.projects[0].signed_on == date(2018, 3, 5)
    assert table.skipped == {"repeat": [3]}
    assert [n.row for n in table.rejected] == [4] and "row 2" in table.rejected[0].message
    assert table.accounted()


def test_facts_from_other_sources_are_kept_or_corrected(tmp_path: Path) -> None:
    from events.validation import validate_record

    table = read_ledger(write_month1(tmp_path))
    p1 = table.projects[0]  # PB-001: signed 2018-01-10, 1.5亿; the stream knows more
    stream = [
        validate_record(
            {"event_id": "s-1", "project_id": "PB-001", "type": "signed", "occurred_at": "2018-01-10", "recorded_at": "2018-01-10",
             "payload": {"name": p1.name, "investment_wan": 15000, "investor": p1.investor, "industry": p1.industry, "unit": "白云镇",
                         "location": {"lon": 106.3, "lat": 26.4}, "confidential": False}}
        ),
        validate_record({"event_id": "s-2", "project_id": "PB-001", "type": "produced", "occurred_at": "2018-03-20", "recorded_at": "2018-03-21"}),
        validate_record({"event_id": "s-3", "project_id": "PB-001", "type": "landed", "occurred_at": "2018-02-01", "recorded_at": "2018-02-02"}),
    ]  # fmt: skip
    plan = plan_ledger([p1], stream, date(2018, 3, 31))
    kinds = sorted((c.kind, c.detail.split(" ")[0]) for c in plan.changes)
    # signed matches what the stream says: nothing; produced is blank in the ledger: kept;
    # landed 2018-02-01 → 2018-02-05: corrected; started: new; funds: new
    assert ("kept", "投产时间") in kinds
    assert ("corrected", "落地时间") in kinds
    assert not any(e.type is EventType.SIGNED for e in plan.events)
    retracted = [e.payload["event_id"] for e in plan.events if e.type is EventType.RETRACTED]
    assert retracted == ["s-3"]
    state = fold(stream + plan.events)["PB-001"]
    assert state.landed_on == date(2018, 2, 5) and state.produced_on == date(2018, 3, 20)
    assert state.location == (106.3, 26.4)
    # a corrected 总投资 replaces the stream's signed event and keeps its location
    p1.investment_wan = 16000.0
    plan2 = plan_ledger([p1], stream + plan.events, date(2018, 4, 30))
    new_signed = next(e for e in plan2.events if e.type is EventType.SIGNED)
    assert new_signed.payload["location"] == {"lon": 106.3, "lat": 26.4}
    assert fold(stream + plan.events + plan2.events)["PB-001"].investment_wan == 16000.0


def test_a_project_that_gets_its_id_later_is_pointed_out(tmp_path: Path) -> None:
    table = read_ledger(write_month1(tmp_path))
    plan1 = plan_ledger(table.projects, [], date(2018, 3, 31))
    p3 = table.projects[2]
    old_id = p3.project_id
    p3.project_id, p3.id_from_ledger = "PB-003", True
    plan2 = plan_ledger(table.projects, plan1.events, date(2018, 4, 30))
    missing = [c for c in plan2.changes if c.kind == "missing"]
    assert [c.project_id for c in missing] == [old_id]
    assert "PB-003" in missing[0].detail


def test_sheet_choice_and_mapping_header_row(tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    first = wb.active
    assert first is not None
    first.title = "说明"
    first.append(["本表为示例"])
    ws = wb.create_sheet("2020年台账")
    ws.append(["项目", "金额", "日期"])  # headers no alias knows: the mapping names the row and the columns
    ws.append(["甲项目", 100, "2020.2.3"])
    path = tmp_path / "two_sheets.xlsx"
    wb.save(path)
    with pytest.raises(LedgerError, match="no header row"):
        read_ledger(path)
    with pytest.raises(LedgerError, match="no sheet '台账'"):
        read_ledger(path, sheet="台账")
    mapping = parse_mapping({"header_row": 1, "columns": {"项目": "name", "金额": "investment_wan", "日期": "signed_on"}})
    table = read_ledger(path, sheet="2020年台账", mapping=mapping)
    assert table.source == "two_sheets.xlsx[2020年台账]"
    assert [(p.name, p.investment_wan, p.signed_on) for p in table.projects] == [("甲项目", 100.0, date(2020, 2, 3))]
