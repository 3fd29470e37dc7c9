"""Reading a bureau's project ledger (项目台账): an Excel sheet or a CSV into typed rows.

Ledgers are written by hand and come with the usual mess: a title row above the headers,
merged cells, dates as Excel serials or as text (2018.3.5, 2018年3月5日), amounts in 亿元 when the
header says so, blank rows, 合计/小计 rows, section rows (一、工业项目), notes below the table,
CSV in GBK. Every row after the header is accounted for exactly once:

    rows_read = projects + skipped (blank, total, section, note, repeated header, repeated project) + rejected

Nothing here touches the warehouse; turning rows into events is :mod:`ingestion.ledger_events`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from events.calendar import month_end

# --- fields and the headers that name them -------------------------------------------------------

FIELD_LABELS_ZH: dict[str, str] = {
    "project_id": "项目编号",
    "name": "项目名称",
    "investor": "投资方",
    "industry": "行业",
    "investment_wan": "总投资(万元)",
    "foreign_usd_wan": "合同利用外资(万美元)",
    "signed_on": "签约时间",
    "landed_on": "落地时间",
    "started_on": "开工时间",
    "produced_on": "投产时间",
    "status": "状态/是否取消",
    "cancelled_on": "取消时间",
    "cancel_reason": "取消原因",
    "funds_wan": "到位资金(万元)",
    "funds_usd_wan": "实际利用外资(万美元)",
    "unit": "责任单位",
    "channel": "签约渠道",
    "parcel_id": "地块编号",
}
FIELD_NAMES = tuple(FIELD_LABELS_ZH)
DATE_FIELDS = ("signed_on", "landed_on", "started_on", "produced_on", "cancelled_on")
CNY_AMOUNT_FIELDS = ("investment_wan", "funds_wan")
USD_AMOUNT_FIELDS = ("foreign_usd_wan", "funds_usd_wan")
TEXT_FIELDS = ("project_id", "name", "investor", "industry", "status", "cancel_reason", "unit", "channel", "parcel_id")

# Header text (normalised: NFKC, no spaces, units in brackets removed) → field.
_ALIASES: dict[str, tuple[str, ...]] = {
    "project_id": ("项目编号", "项目代码", "编号", "项目id", "projectid", "project_id"),
    "name": ("项目名称", "项目名", "名称", "name", "projectname"),
    "investor": ("投资方", "投资主体", "投资企业", "投资商", "签约企业", "投资单位", "签约主体", "投资人", "investor"),
    "industry": ("行业", "所属行业", "产业", "产业类别", "行业类别", "产业类型", "industry"),
    "investment_wan": ("总投资", "计划总投资", "投资总额", "总投资额", "签约金额", "协议投资额", "合同投资额", "签约总投资", "investment"),
    "foreign_usd_wan": ("合同利用外资", "合同外资"),
    "signed_on": ("签约时间", "签约日期", "签订时间", "签约"),
    "landed_on": ("落地时间", "落地日期", "注册落地时间", "落地"),
    "started_on": ("开工时间", "开工日期", "开工"),
    "produced_on": ("投产时间", "投产日期", "建成投产时间", "投产"),
    "status": ("状态", "项目状态", "是否取消", "状态/是否取消", "是否终止", "进展状态", "status"),
    "cancelled_on": ("取消时间", "取消日期", "终止时间", "终止日期"),
    "cancel_reason": ("取消原因", "终止原因", "取消/终止原因", "reason"),
    "funds_wan": ("到位资金", "累计到位资金", "实际到位资金", "累计到位", "到位资金累计", "funds"),
    "funds_usd_wan": ("实际利用外资", "实际到位外资", "到位外资", "累计到位外资"),
    "unit": ("责任单位", "牵头单位", "责任部门", "包保单位", "主责单位", "unit"),
    "channel": ("签约渠道", "招商渠道", "签约活动", "引进渠道", "channel"),
    "parcel_id": ("地块编号", "宗地编号", "地块", "parcelid", "parcel_id"),
}
# Columns ledgers carry that are no event's business: read, not listed as unknown.
IGNORED_HEADERS = ("序号", "备注", "联系人", "联系电话", "项目简介", "建设内容", "建设规模", "进展情况", "存在问题", "no")

_ALIAS_TO_FIELD: dict[str, str] = {}
for _field, _names in _ALIASES.items():
    for _n in _names:
        _ALIAS_TO_FIELD[_n] = _field

# 亿元 → 万元 ×10000; 元 → 万元 ÷10000. USD headers are 万美元 unless they say otherwise.
UNIT_FACTORS_CNY = {"亿元": 10000.0, "亿": 10000.0, "万元": 1.0, "万": 1.0, "元": 0.0001}
UNIT_FACTORS_USD = {"亿美元": 10000.0, "万美元": 1.0, "美元": 0.0001}

HEADER_SCAN_ROWS = 30


class LedgerError(ValueError):
    """The ledger as a whole cannot be read (no header row, unknown sheet, bad mapping file)."""


@dataclass(frozen=True, slots=True)
class Column:
    index: int  # 0-based column
    header: str  # as written
    field: str
    factor: float = 1.0  # multiply the cell by this to get 万元 / 万美元


@dataclass(frozen=True, slots=True)
class RowNote:
    row: int  # the sheet's row number (1-based), or the CSV line number
    message: str


@dataclass(slots=True)
class LedgerProject:
    """One ledger row that is a project: the facts as the ledger states them (amounts in 万元/万美元)."""

    row: int
    project_id: str
    id_from_ledger: bool  # False: derived from 项目名称 + 投资方
    name: str
    investor: str | None = None
    industry: str | None = None
    unit: str | None = None
    channel: str | None = None
    parcel_id: str | None = None
    investment_wan: float | None = None
    foreign_usd_wan: float | None = None
    funds_wan: float | None = None
    funds_usd_wan: float | None = None
    signed_on: date | None = None
    landed_on: date | None = None
    started_on: date | None = None
    produced_on: date | None = None
    cancelled: bool = False
    cancelled_on: date | None = None
    cancel_reason: str | None = None
    status: str | None = None


@dataclass(slots=True)
class LedgerTable:
    source: str  # file name (and sheet)
    title: str
    header_row: int
    columns: list[Column]
    unmapped: list[str]  # headers no field was found for (with why, when it is a duplicate or a unit clash)
    rows_read: int = 0
    projects: list[LedgerProject] = field(default_factory=list)
    skipped: dict[str, list[int]] = field(default_factory=dict)  # kind → row numbers
    rejected: list[RowNote] = field(default_factory=list)
    warnings: list[RowNote] = field(default_factory=list)
    stated_totals: dict[str, float] = field(default_factory=dict)  # what the 合计 row says (the first one)
    as_of_hint: date | None = None  # a date found in the title or the file name

    @property
    def skipped_count(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def accounted(self) -> bool:
        return self.rows_read == len(self.projects) + self.skipped_count + len(self.rejected)

    def skip(self, kind: str, row: int) -> None:
        self.skipped.setdefault(kind, []).append(row)


# --- normalisation ---------------------------------------------------------------------------------


def normalize_text(value: Any) -> str:
    """Full-width to half-width (NFKC), whitespace collapsed; what a cell 'says'."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFKC", str(value))
    return re.sub(r"\s+", " ", text).strip()


def _header_key(header: str) -> tuple[str, str]:
    """(base name, unit) of a header: 总投资（亿元） → ('总投资', '亿元'); 到位资金万元 → ('到位资金', '万元')."""
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", header)).lower()
    unit = ""
    bracketed = re.findall(r"[(\[【]([^)\]】]*)[)\]】]", text)
    for part in bracketed:
        for u in (*UNIT_FACTORS_USD, *UNIT_FACTORS_CNY):
            if u in part:
                unit = u
                break
        if unit:
            break
    base = re.sub(r"[(\[【][^)\]】]*[)\]】]", "", text)
    if not unit:
        for u in sorted((*UNIT_FACTORS_USD, *UNIT_FACTORS_CNY), key=len, reverse=True):
            if base.endswith(u) and len(base) > len(u):
                unit, base = u, base[: -len(u)]
                break
    base = base.rstrip(":：/")
    return base, unit


def _amount_factor(field_name: str, unit: str) -> float | None:
    """The factor to 万元 (or 万美元); None when the unit's currency does not fit the field."""
    if field_name in CNY_AMOUNT_FIELDS:
        return UNIT_FACTORS_CNY.get(unit, 1.0) if unit not in UNIT_FACTORS_USD else None
    if field_name in USD_AMOUNT_FIELDS:
        if unit in UNIT_FACTORS_CNY and unit not in ("万", "亿"):
            return None
        return UNIT_FACTORS_USD.get(unit, {"亿": 10000.0}.get(unit, 1.0))
    return 1.0


# --- the mapping file -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mapping:
    """Custom headers from a YAML file: header → field, or header → {field, unit}; optional header_row."""

    columns: dict[str, tuple[str, str | None]]  # normalised header base → (field, unit or None)
    header_row: int | None = None
    sheet: str | None = None


def load_mapping(path: Path) -> Mapping:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LedgerError(f"cannot read the mapping file {path}: {exc}") from None
    return parse_mapping(data, str(path))


def parse_mapping(data: Any, where: str = "mapping") -> Mapping:
    if not isinstance(data, dict):
        raise LedgerError(f"{where}: expected a mapping of header → field, got {type(data).__name__}")
    header_row = data.get("header_row")
    sheet = data.get("sheet")
    cols = data.get("columns", data if "columns" not in data else None)
    if not isinstance(cols, dict):
        raise LedgerError(f"{where}: 'columns' must map header → field")
    out: dict[str, tuple[str, str | None]] = {}
    for header, target in cols.items():
        if header in ("header_row", "sheet") and "columns" not in data:
            continue
        unit: str | None = None
        if isinstance(target, dict):
            fname, unit = target.get("field"), target.get("unit")
        else:
            fname = target
        if fname not in FIELD_NAMES:
            raise LedgerError(f"{where}: header {header!r} maps to unknown field {fname!r}; fields are: {', '.join(FIELD_NAMES)}")
        if unit is not None and unit not in UNIT_FACTORS_CNY and unit not in UNIT_FACTORS_USD:
            raise LedgerError(f"{where}: header {header!r}: unknown unit {unit!r} (亿元, 万元, 元, 万美元)")
        base, header_unit = _header_key(str(header))
        out[base] = (str(fname), unit or header_unit or None)
    if header_row is not None and (isinstance(header_row, bool) or not isinstance(header_row, int) or header_row < 1):
        raise LedgerError(f"{where}: header_row must be a row number ≥ 1, got {header_row!r}")
    return Mapping(out, header_row, str(sheet) if sheet is not None else None)


# --- header detection --------------------------------------------------------------------------------


def _map_headers(cells: Sequence[Any], mapping: Mapping | None) -> tuple[list[Column], list[str]]:
    columns: list[Column] = []
    unmapped: list[str] = []
    taken: dict[str, str] = {}
    for idx, raw in enumerate(cells):
        header = normalize_text(raw)
        if not header:
            continue
        base, unit = _header_key(header)
        fname: str | None = None
        if mapping and base in mapping.columns:
            fname, m_unit = mapping.columns[base]
            unit = m_unit or unit
        elif base in _ALIAS_TO_FIELD:
            fname = _ALIAS_TO_FIELD[base]
        if fname is None:
            if base not in IGNORED_HEADERS:
                unmapped.append(header)
            continue
        factor = _amount_factor(fname, unit)
        if factor is None:
            unmapped.append(f"{header} (单位 {unit} 与 {FIELD_LABELS_ZH[fname]} 不符 · unit does not fit the field)")
            continue
        if fname in taken:
            unmapped.append(f"{header} (与「{taken[fname]}」重复 · same field as an earlier column)")
            continue
        taken[fname] = header
        columns.append(Column(idx, header, fname, factor))
    return columns, unmapped


def _find_header(grid: Sequence[Sequence[Any]], mapping: Mapping | None) -> int:
    """0-based index of the header row: the first with a name/id column and ≥ 3 known columns."""
    if mapping and mapping.header_row:
        if mapping.header_row > len(grid):
            raise LedgerError(f"header_row {mapping.header_row} is beyond the last row ({len(grid)})")
        return mapping.header_row - 1
    for i, row in enumerate(grid[:HEADER_SCAN_ROWS]):
        cols, _ = _map_headers(row, mapping)
        fields = {c.field for c in cols}
        if len(fields) >= 3 and fields & {"name", "project_id"}:
            return i
    raise LedgerError(
        f"no header row in the first {HEADER_SCAN_ROWS} rows: expected headers such as 项目名称, 总投资(万元), 签约时间 "
        "(use --mapping for other names)"
    )


# --- cell values ---------------------------------------------------------------------------------------

_EMPTY_WORDS = {"", "-", "--", "—", "——", "/", "\\", "无", "暂无", "未", "待定", "n/a", "na", "none", "null", "空"}
_FULL_DATE = re.compile(
    r"^(\d{4})\s*[年./\-]\s*(\d{1,2})\s*[月./\-]\s*(\d{1,2})\s*[日号]?(?:\s*[T ]?\s*\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)
_MONTH_ONLY = re.compile(r"^(\d{4})\s*[年./\-]\s*(\d{1,2})\s*月?(?:份)?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
EXCEL_EPOCH = date(1899, 12, 30)
# Serials of plausible ledger dates: 1990-01-01 … 2099-12-31.
_SERIAL_MIN, _SERIAL_MAX = 32874, 73415


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return normalize_text(value).lower() in _EMPTY_WORDS
    return False


class CellError(ValueError):
    pass


def parse_ledger_date(value: Any) -> tuple[date | None, str | None]:
    """A ledger date cell → (date, warning). Raises :class:`CellError` with the reason."""
    if _is_empty(value):
        return None, None
    if isinstance(value, datetime):
        return value.date(), None
    if isinstance(value, date):
        return value, None
    if isinstance(value, bool):
        raise CellError(f"{value!r} is not a date")
    if isinstance(value, int | float):
        if float(value).is_integer() and _SERIAL_MIN <= value <= _SERIAL_MAX:
            return EXCEL_EPOCH + timedelta(days=int(value)), None
        m = _COMPACT.match(str(int(value))) if float(value).is_integer() else None
        if m:
            return _ymd(m.group(1), m.group(2), m.group(3), str(value)), None
        raise CellError(f"{value!r} is a number, not a date (write 2018.3.5 or 2018-03-05)")
    text = normalize_text(value)
    if text.startswith("未"):  # 未开工, 未落地: the stage has not happened
        return None, None
    if text.isdigit() and len(text) == 5 and _SERIAL_MIN <= int(text) <= _SERIAL_MAX:
        return EXCEL_EPOCH + timedelta(days=int(text)), None  # a serial exported to CSV as text
    m = _FULL_DATE.match(text) or _COMPACT.match(text)
    if m:
        return _ymd(m.group(1), m.group(2), m.group(3), text), None
    m = _MONTH_ONLY.match(text)
    if m:
        day = _ymd(m.group(1), m.group(2), "1", text)
        return day, f"{text!r} has no day: read as {day.isoformat()}"
    raise CellError(f"{text!r} is not a date (2018.3.5, 2018年3月5日, 2018/3/5, 2018-03-05)")


def _ymd(y: str, m: str, d: str, text: str) -> date:
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        raise CellError(f"{text!r} is not a calendar date") from None


def parse_amount(value: Any, factor: float) -> float | None:
    """An amount cell → 万元 (or 万美元), rounded to 4 decimals. Raises :class:`CellError`."""
    if _is_empty(value):
        return None
    if isinstance(value, bool):
        raise CellError(f"{value!r} is not an amount")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = normalize_text(value).replace(",", "").replace(" ", "")
        cell_factor = None
        for suffix, f in (("亿元", 10000.0), ("亿", 10000.0), ("万元", 1.0), ("万", 1.0)):
            if text.endswith(suffix):
                text, cell_factor = text[: -len(suffix)], f
                break
        try:
            number = float(text)
        except ValueError:
            raise CellError(f"{normalize_text(value)!r} is not an amount") from None
        if cell_factor is not None:  # the cell states its own unit: it overrides the header's
            factor = cell_factor
    if number != number or number in (float("inf"), float("-inf")):
        raise CellError(f"{value!r} is not a finite amount")
    if number < 0:
        raise CellError(f"{value!r} is negative")
    return round(number * factor, 4)


_CANCEL_WORDS = ("取消", "终止", "撤销", "撤资", "退出")
_YES = {"是", "y", "yes", "true", "√", "✓", "✔", "已取消", "已终止"}


def is_cancelled_status(value: str | None) -> bool:
    if not value:
        return False
    text = normalize_text(value).lower()
    if text in _YES:
        return True
    if text.startswith(("否", "未", "不")):
        return False
    return any(w in text for w in _CANCEL_WORDS)


def derive_project_id(name: str, investor: str | None) -> str:
    """A stable id for a ledger without 项目编号: hash of the normalised 项目名称 + 投资方."""
    key = normalize_text(name).replace(" ", "") + "|" + normalize_text(investor or "").replace(" ", "")
    return "LG-" + hashlib.sha256(key.encode()).hexdigest()[:12]


# --- row classification -------------------------------------------------------------------------------

_TOTAL_ROW = re.compile(r"^(合\s*计|小\s*计|总\s*计|共\s*计)")
_SECTION_ROW = re.compile(r"^([一二三四五六七八九十]+\s*[、.．]|[(（][一二三四五六七八九十]+[)）])")
_NOTE_ROW = re.compile(r"^(注|备注|说明|填报|填表|制表|审核|负责人|统计人|联系人|数据来源)\s*[:：]?")


def _classify(cells: Sequence[Any], columns: list[Column], header_fields: set[str]) -> str | None:
    """'blank', 'total', 'section', 'note' or 'header' for rows that are not projects; None for a candidate."""
    texts = [normalize_text(c) for c in cells]
    filled = [t for t in texts if t]
    if not filled:
        return "blank"
    # 合计 in the id/name column or left of it (序号, a merged label); not in free text such as 备注
    name_idx = max((c.index for c in columns if c.field in ("name", "project_id")), default=0)
    if any(_TOTAL_ROW.match(t) for t in texts[: name_idx + 1]):
        return "total"
    by_field = {c.field: texts[c.index] if c.index < len(texts) else "" for c in columns}
    if sum(1 for c in columns if c.index < len(texts) and _header_key(texts[c.index])[0] in _ALIAS_TO_FIELD) >= 3:
        return "header"  # a header repeated on each printed page
    if len(set(filled)) == 1 and (_SECTION_ROW.match(filled[0]) or not (by_field.get("project_id") or by_field.get("name"))):
        # one text only (a merged banner, a section title) and no project id/name of its own
        if _NOTE_ROW.match(filled[0]):
            return "note"
        return "section"
    if _NOTE_ROW.match(filled[0]) and not by_field.get("project_id"):
        return "note"
    return None


def _cell_value(col: Column, raw: Any, warns: list[str]) -> Any:
    """One cell read as its column's field: a date, an amount in 万元 (万美元 for USD), or text (None when empty).

    A date read with a caveat appends it to ``warns``; a cell that cannot be read raises :class:`CellError`.
    """
    if col.field in DATE_FIELDS:
        day, warn = parse_ledger_date(raw)
        if warn:
            warns.append(f"{col.header}: {warn}")
        return day
    if col.field in CNY_AMOUNT_FIELDS or col.field in USD_AMOUNT_FIELDS:
        return parse_amount(raw, col.factor)
    text = normalize_text(raw)
    if isinstance(raw, float) and raw.is_integer():
        text = str(int(raw))  # 项目编号 typed as a number
    return None if _is_empty(text) else text


def _date_order_warnings(values: dict[str, Any]) -> list[str]:
    """Stage dates before the previous stage's, or given without a signing date."""
    signed_on = values.get("signed_on")
    later = [f for f in ("landed_on", "started_on", "produced_on") if values.get(f)]
    if signed_on is None:
        if not later:
            return []
        return [f"{', '.join(FIELD_LABELS_ZH[f] for f in later)} given without 签约时间: the project has no signed event"]
    order = [("signed_on", signed_on)] + [(f, values[f]) for f in later]
    return [
        f"{FIELD_LABELS_ZH[fb]} {db} is before {FIELD_LABELS_ZH[fa]} {da}"
        for (fa, da), (fb, db) in zip(order, order[1:], strict=False)
        if db < da
    ]


def _row_to_project(row_no: int, cells: Sequence[Any], columns: list[Column], table: LedgerTable) -> LedgerProject | None:
    reasons: list[str] = []
    warns: list[str] = []
    values: dict[str, Any] = {}
    for col in columns:
        raw = cells[col.index] if col.index < len(cells) else None
        try:
            values[col.field] = _cell_value(col, raw, warns)
        except CellError as exc:
            reasons.append(f"{col.header}: {exc}")
    name = values.get("name")
    pid = values.get("project_id")
    if not name:
        reasons.append("项目名称 is empty · no project name")
    if values.get("signed_on") is not None and values.get("investment_wan") is None:
        reasons.append("总投资 is empty but 签约时间 is set · a signed project needs its investment")
    warns.extend(_date_order_warnings(values))
    if reasons:
        table.rejected.append(RowNote(row_no, "; ".join(reasons)))
        return None
    for w in warns:
        table.warnings.append(RowNote(row_no, w))
    assert name is not None
    status = values.get("status")
    project = LedgerProject(
        row=row_no,
        project_id=pid or derive_project_id(name, values.get("investor")),
        id_from_ledger=bool(pid),
        name=name,
        status=status,
        cancelled=is_cancelled_status(status) or values.get("cancelled_on") is not None,
    )
    for key in (
        "investor", "industry", "unit", "channel", "parcel_id", "investment_wan", "foreign_usd_wan", "funds_wan",
        "funds_usd_wan", "signed_on", "landed_on", "started_on", "produced_on", "cancelled_on", "cancel_reason",
    ):  # fmt: skip
        if key in values:
            setattr(project, key, values[key])
    return project


def _stated_totals(cells: Sequence[Any], columns: list[Column]) -> dict[str, float]:
    out: dict[str, float] = {}
    for col in columns:
        if col.field in CNY_AMOUNT_FIELDS and col.index < len(cells):
            try:
                amount = parse_amount(cells[col.index], col.factor)
            except CellError:
                continue
            if amount is not None:
                out[col.field] = amount
    return out


# --- as-of date from a title or a file name ------------------------------------------------------------

_FULL = r"(\d{4})\s*[年./\-_]\s*(\d{1,2})\s*[月./\-_]\s*(\d{1,2})\s*[日号]?"
_MONTH = r"(\d{4})\s*年\s*(?:\d{1,2}\s*[-—~至到]\s*)?(\d{1,2})\s*月(?!\s*\d{1,2}\s*[日号])"
_UNTIL = r"(?:截至|截止|截止到|截至到)\s*"
_TITLE_FULL = re.compile(_FULL)
_TITLE_MONTH = re.compile(_MONTH)
_NAME_MONTH = re.compile(r"(?<!\d)(\d{4})[\-_.]?(0[1-9]|1[0-2])(?!\d)")


def date_in_text(text: str) -> date | None:
    """The date a ledger is as of, from its title or file name.

    截至2018年3月31日 → 2018-03-31; 2018年3月 / 2018年1-3月 / 台账_2018-03 → the month's last day.
    The reporting month wins over another full date (填报日期：2018年4月5日) in the same title.
    """
    text = unicodedata.normalize("NFKC", text)
    candidates: list[tuple[re.Pattern[str], bool]] = [
        (re.compile(_UNTIL + _FULL), False),
        (re.compile(_UNTIL + _MONTH), True),
        (_TITLE_MONTH, True),
        (_TITLE_FULL, False),
        (_NAME_MONTH, True),
    ]
    for rx, month_only in candidates:
        for m in rx.finditer(text):
            try:
                y, mo = int(m.group(1)), int(m.group(2))
                if not 1990 <= y <= 2099:
                    continue
                return month_end(date(y, mo, 1)) if month_only else date(y, mo, int(m.group(3)))
            except ValueError:
                continue
    return None


_SERIES_STRIP = re.compile(
    r"(截至|截止|至)?\s*\d{4}\s*[年./\-_]?\s*(\d{1,2}\s*[-—~至到]\s*)?(\d{1,2}\s*[月./\-_]?)?\s*(\d{1,2}\s*[日号]?)?\s*(份|底|末|止)?"
)


def series_name(title: str, file_stem: str = "") -> str:
    """The ledger's series without its date: 平坝区2018年3月招商引资项目台账 → 平坝区招商引资项目台账.

    Successive months of one ledger share it, so a project missing from a later month is noticed
    within its own ledger and not against another bureau's.
    """
    for text in (title, file_stem):
        stripped = _SERIES_STRIP.sub("", unicodedata.normalize("NFKC", text))
        stripped = re.sub(r"[\s_\-.()（）\[\]]+", "", stripped)
        if stripped:
            return stripped
    return "台账"


# --- reading files ----------------------------------------------------------------------------------------


def _xlsx_grid(path: Path, sheet: str | None) -> tuple[list[list[Any]], str]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = load_workbook(path, data_only=True)  # cached formula results, not the formulas
        if sheet is not None and sheet not in wb.sheetnames:
            raise LedgerError(f"no sheet {sheet!r} in {path.name}; sheets: {', '.join(wb.sheetnames)}")
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        grid = [list(r) for r in ws.iter_rows(values_only=True)]
        merged = list(ws.merged_cells.ranges)
    except LedgerError:
        raise
    except InvalidFileException as exc:
        raise LedgerError(f"cannot open {path.name} as an Excel workbook: {exc}") from None
    except Exception as exc:  # empty, truncated, corrupt: zipfile, zlib, the XML parsers and openpyxl each raise their own
        raise LedgerError(f"cannot open {path.name} as an Excel workbook ({type(exc).__name__}: {exc or 'no detail'})") from None
    width = max((len(r) for r in grid), default=0)
    for cells in grid:
        cells.extend([None] * (width - len(cells)))
    # A merged range shows its value in every cell it covers (a 责任单位 merged down several projects).
    for rng in merged:
        top = grid[rng.min_row - 1][rng.min_col - 1] if rng.min_row - 1 < len(grid) else None
        for ri in range(rng.min_row - 1, min(rng.max_row, len(grid))):
            for ci in range(rng.min_col - 1, min(rng.max_col, width)):
                grid[ri][ci] = top
    return grid, ws.title


def _csv_grid(path: Path) -> list[list[Any]]:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):  # GB18030 reads GBK and GB2312 too
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise LedgerError(f"{path.name} is neither UTF-8 nor GBK text")
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    return [list(r) for r in csv.reader(io.StringIO(text), dialect)]


def read_ledger(path: Path, *, sheet: str | None = None, mapping: Mapping | None = None) -> LedgerTable:
    """Read a ledger file (.xlsx/.xlsm or .csv/.txt) into projects, skipped rows and rejected rows."""
    if not path.is_file():
        raise LedgerError(f"no such file: {path}")
    suffix = path.suffix.lower()
    sheet = sheet or (mapping.sheet if mapping else None)
    if suffix in (".xlsx", ".xlsm"):
        grid, sheet_name = _xlsx_grid(path, sheet)
        source = f"{path.name}[{sheet_name}]"
    elif suffix in (".csv", ".txt", ".tsv"):
        if sheet:
            raise LedgerError("--sheet applies to Excel workbooks, not to CSV")
        grid, source = _csv_grid(path), path.name
    elif suffix == ".xls":
        raise LedgerError(f"{path.name}: the old .xls format is not read; save it as .xlsx (另存为 Excel 工作簿)")
    else:
        raise LedgerError(f"{path.name}: expected an .xlsx or .csv ledger")
    return parse_grid(grid, source=source, file_name=path.stem, mapping=mapping)


def _two_row_header(grid: Sequence[Sequence[Any]], h: int) -> tuple[list[Any], int]:
    """A header over two rows (到位资金 merged over 本年 | 累计): parent and child texts joined.

    Returns the header cells and how many rows the header takes. The row below the header is a
    sub-header when all its cells are text that repeats the cell above (merged down) or sits under
    a header repeated across columns (merged across), with at least one such child.
    """
    top = [normalize_text(c) for c in grid[h]]
    if h + 1 >= len(grid):
        return top, 1
    below = grid[h + 1]
    sub = [normalize_text(c) for c in below]
    repeated = {t for t in top if t and top.count(t) > 1}
    children = 0
    for i, t in enumerate(sub):
        if not t:
            continue
        if not isinstance(below[i], str) or i >= len(top):
            return top, 1
        if t == top[i]:
            continue
        if top[i] in repeated:
            children += 1
            continue
        return top, 1
    if children == 0:
        return top, 1
    return [t if i >= len(sub) or sub[i] in ("", t) else t + sub[i] for i, t in enumerate(top)], 2


def parse_grid(grid: Sequence[Sequence[Any]], *, source: str, file_name: str = "", mapping: Mapping | None = None) -> LedgerTable:
    """The rows of a sheet (row 1 first) → a :class:`LedgerTable`. Pure."""
    h = _find_header(grid, mapping)
    header_cells, header_rows = _two_row_header(grid, h)
    columns, unmapped = _map_headers(header_cells, mapping)
    fields = {c.field for c in columns}
    if "name" not in fields:
        raise LedgerError(f"row {h + 1}: no 项目名称 column among {', '.join(t for t in header_cells if t)}")
    title = " ".join(dict.fromkeys(normalize_text(c) for row in grid[:h] for c in row if normalize_text(c)))
    table = LedgerTable(source=source, title=title, header_row=h + 1, columns=columns, unmapped=unmapped)
    table.as_of_hint = date_in_text(title) or date_in_text(file_name)
    body = list(grid[h + header_rows :])
    while body and all(_is_empty(c) and normalize_text(c) == "" for c in body[-1]):
        body.pop()  # trailing empty rows are the sheet's formatting, not rows of the ledger
    seen: dict[str, int] = {}
    by_id: dict[str, LedgerProject] = {}
    for offset, cells in enumerate(body):
        row_no = h + header_rows + 1 + offset
        table.rows_read += 1
        kind = _classify(cells, columns, fields)
        if kind is not None:
            table.skip(kind, row_no)
            if kind == "total" and not table.stated_totals:
                table.stated_totals = _stated_totals(cells, columns)
            continue
        project = _row_to_project(row_no, cells, columns, table)
        if project is None:
            continue
        if project.project_id in seen:
            first = by_id[project.project_id]
            if replace(project, row=first.row) == first:
                # the same project again: a second line of a project merged down two rows
                table.skip("repeat", row_no)
                continue
            how = "项目编号" if project.id_from_ledger else "项目名称 + 投资方"
            table.rejected.append(RowNote(row_no, f"duplicate project: same {how} as row {seen[project.project_id]} ({project.project_id})"))
            continue
        seen[project.project_id] = row_no
        by_id[project.project_id] = project
        table.projects.append(project)
    assert table.accounted(), "every row must be a project, a skipped row or a rejected row"
    return table


def ledger_totals(projects: Iterable[LedgerProject]) -> dict[str, float]:
    """The ledger's own totals: projects with each date, 总投资 of signed projects, 到位资金."""
    ps = list(projects)
    return {
        "signed": sum(1 for p in ps if p.signed_on),
        "landed": sum(1 for p in ps if p.landed_on),
        "started": sum(1 for p in ps if p.started_on),
        "produced": sum(1 for p in ps if p.produced_on),
        "cancelled": sum(1 for p in ps if p.cancelled),
        "investment_wan": round(sum(p.investment_wan or 0.0 for p in ps if p.signed_on), 4),
        "funds_wan": round(sum(p.funds_wan or 0.0 for p in ps), 4),
    }
