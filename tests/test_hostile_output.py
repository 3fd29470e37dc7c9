"""Hostile strings as project names, units, investors and parcel names through every output.

Each output shows them as text (exactly, where the format can hold them) and nothing is read as
markup, a formula, HTML or a table cell boundary: the CLI (rich), the KPI xlsx, the bulletin
Markdown, the maps and the JSON. The formats' escaping is ``events/escape.py``.
"""

from __future__ import annotations

import csv
import html
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from markdown_it import MarkdownIt
from openpyxl import Workbook, load_workbook
from shapely.geometry import box
from sqlalchemy import Engine
from typer.testing import CliRunner

from events.escape import html_text, markdown_cell, terminal, xlsx_append, xlsx_unescape
from ingestion.land_files import load_land_file
from maps.publish import publish_maps
from reports.bulletin import bulletin_markdown
from warehouse.event_store import load_records, read_jsonl
from warehouse.replay import kpi_report
from zhaoshang.cli import app
from zhaoshang.common import progress
from zhaoshang.data_column import DataColumn

HOSTILE = [
    "[/]",
    "[bold]x[/bold]",
    "[link=http://evil]x[/link]",
    "Acme [beijing] Ltd",
    '=HYPERLINK("http://x","y")',
    "+1",
    "-1+2",
    "@SUM(A1)",
    "|",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'; DROP TABLE event_log; --",
    "\x1b[31m",
    "\r",
    "\u202e",
    "a|b\\|c\\",  # a backslash before the separator, and at the end
    "# 标题\n- 列表",
]
IDS = [f"h{i}" for i in range(len(HOSTILE))]
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202e]")
AS_OF = "2024-06-30"


# ---------------------------------------------------------------------------------------------
# The escaping functions, one per format


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_terminal_shows_the_text_and_obeys_nothing(value: str) -> None:
    from rich.table import Table

    from zhaoshang.common import DataConsole, styled

    shown = terminal(value)
    assert not RAW_CONTROL.search(shown.replace("\n", ""))
    console = DataConsole(width=200, force_terminal=True, color_system="standard")
    with console.capture() as cap:
        table = Table(title=value)
        table.add_column(value)
        table.add_row(value)
        console.print(table)
        console.print(value)
        console.print(styled(("label:", "bold red"), " ", value))
    text = re.sub(r"\x1b\[[0-9;]*m", "", cap.get())  # our own styling
    for line in shown.split("\n"):
        assert text.count(line) >= 5  # title, header, cell, plain, styled: all shown as written
    assert "\x1b]8;" not in cap.get()  # no hyperlink escape
    if not RAW_CONTROL.search(value):
        assert shown == value  # exact where the terminal can show it


def _md_shown(value: str) -> str:
    """What a rendered Markdown cell shows for ``value``: exact, but for line breaks (a cell is one
    line) and control characters, which renderers cannot show (written out as in a terminal)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub("[\x00-\x08\x0b-\x1f\x7f-\x9f]", lambda m: terminal(m.group()), value).replace("\n", "<br>")


def _md_table(cell: str) -> list[list[str]]:
    md = MarkdownIt("commonmark").enable("table")
    page = md.render(f"| a | b |\n|---|---|\n| {markdown_cell('x')} | {cell} |\n")
    assert "<script" not in page and "<img" not in page and "<a " not in page and "<strong" not in page
    rows = re.findall(r"<tr>(.*?)</tr>", page, flags=re.S)
    return [[html.unescape(c) for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", r, flags=re.S)] for r in rows]


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_markdown_cell_renders_exactly_and_keeps_the_table(value: str) -> None:
    cell = markdown_cell(value)
    assert "\n" not in cell and "\r" not in cell and not RAW_CONTROL.search(cell)
    rows = _md_table(cell)
    assert [len(r) for r in rows] == [2, 2]  # no shifted or extra cells
    assert rows[1] == ["x", _md_shown(value)]


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_html_text_round_trips(value: str) -> None:
    out = html_text(value)
    assert "<" not in out and ">" not in out and '"' not in out
    assert html.unescape(out) == value


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_xlsx_cells_are_text_never_formulas(value: str, tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    xlsx_append(ws, [value, 1, None])
    path = tmp_path / "t.xlsx"
    wb.save(path)
    cell = load_workbook(path).active.cell(1, 1)  # type: ignore[union-attr]
    assert cell.data_type == "s"
    assert xlsx_unescape(str(cell.value)) == value
    if value.startswith(("=", "+", "-", "@", "\r", "\t")):
        assert cell.quotePrefix


# ---------------------------------------------------------------------------------------------
# A warehouse full of hostile data, and every command over it


def _write_events(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


def _signed(pid: str, value: str, *, on: str = "2024-03-01", lon: float = 106.301, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{pid}-signed",
        "project_id": pid,
        "type": "signed",
        "occurred_at": on,
        "recorded_at": f"{on}T20:00:00+08:00",
        "payload": {
            "name": value if value.strip() else f"项目{value}",
            "investment_wan": 1000,
            "investor": value,
            "industry": "新材料",
            "unit": value,
            "channel": value,
            "location": {"lon": lon, "lat": 26.401},
            **extra,
        },
    }


def _hostile_warehouse(db: Engine, tmp_path: Path) -> Path:
    """Parcels named by the hostile strings, a project per string (name, unit, investor), broken records."""
    n = len(HOSTILE)
    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": [f"P-{i}" for i in range(n)],
            "name": HOSTILE,
            "park": ["夏云工业园区"] * n,
            "land_use": ["100102"] * n,
            "status": ["闲置"] * n,
            "area_mu": [60.0] * n,
            "price_wan_per_mu": [20.0] * n,
        },
        geometry=[box(106.300 + 0.003 * i, 26.400, 106.302 + 0.003 * i, 26.402) for i in range(n)],
        crs="EPSG:4490",
    )
    parcels.to_file(tmp_path / "parcels.geojson", driver="GeoJSON")
    report = load_land_file(db, tmp_path / "parcels.geojson", kind="idle", valid_from=date(2024, 1, 1))
    assert report["loaded"] == n
    records = [_signed(f"H-{i}", h, lon=106.301 + 0.003 * i) for i, h in enumerate(HOSTILE)]
    # The first parcel is taken, so a match lists it as a closest miss naming its project.
    records.append({"event_id": "H-0-landed", "project_id": "H-0", "type": "landed", "occurred_at": "2024-04-01", "payload": {"parcel_id": "P-0"}})
    path = _write_events(tmp_path / "hostile.jsonl", records)
    result = load_records(db, read_jsonl(path, "hostile"))
    assert result.rejected == 0 and result.accepted == len(records)
    return path


def _broken_records(tmp_path: Path) -> Path:
    """Records the log refuses, each carrying a hostile string into its dead letter's reason."""
    return _write_events(
        tmp_path / "broken.jsonl",
        # Controls first: the summaries list the first ten reasons.
        [{"event_id": f"bad-{i}-{h}", "project_id": h, "type": h, "occurred_at": "2024-01-01"} for i, h in reversed(list(enumerate(HOSTILE)))],
    )


def _requirement(tmp_path: Path, investor: str = "[/]<script>alert(1)</script>某投资方") -> Path:
    path = tmp_path / "req.json"
    req = {
        "investor": investor,
        "industry": "新材料",
        "land_area_mu": {"min": 10, "max": 100},
        "near": [{"name": "Acme [beijing] Ltd [/]", "lon": 106.30, "lat": 26.40, "max_km": 50}],
    }
    path.write_text(json.dumps(req, ensure_ascii=False), encoding="utf-8")
    return path


def _ledger_csv(tmp_path: Path) -> Path:
    path = tmp_path / "台账2024年6月.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["项目编号", "项目名称", "投资方", "总投资(万元)", "签约时间", "责任单位"])
        for i, h in enumerate(HOSTILE):
            w.writerow([f"L-{i}", h if h.strip() else f"项目{h}", h, "100", "2024-05-01", h])
        w.writerow(["L-X", "[/]日期错", "x", "100", "[/]", "x"])  # a row rejected with its value in the reason
    return path


def _assert_shown_as_text(output: str) -> None:
    """No raw control character from the data (the runner has no colour: rich emits none itself)."""
    assert not RAW_CONTROL.search(output.replace("\n", "").replace("\t", "")), repr(RAW_CONTROL.findall(output))


COMMANDS = ["events load", "deadletters list", "replay", "report kpis", "land status", "match", "match --batch", "ledger import"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_prints_hostile_data_as_text(command: str, db: Engine, db_url_str: str, tmp_path: Path) -> None:
    _hostile_warehouse(db, tmp_path)
    runner = CliRunner()
    url = ["--database-url", db_url_str]
    expect_stdout: list[str] = []  # hostile strings the table shows (in their terminal form)
    if command == "events load":
        args = ["events", "load", str(_broken_records(tmp_path)), "--source", "[/]src", *url]
    elif command == "deadletters list":
        # Exit 1: every broken record is rejected (README, exit codes).
        assert runner.invoke(app, ["events", "load", str(_broken_records(tmp_path)), "--source", "[/]src", *url]).exit_code == 1
        args = ["deadletters", "list", *url]
        expect_stdout = ["[/]src"]
    elif command == "replay":
        args = ["replay", "--as-of", AS_OF, *url]
        expect_stdout = [h for h in HOSTILE if h.strip()]
    elif command == "report kpis":
        xlsx = tmp_path / "kpi.xlsx"
        args = ["report", "kpis", "--from", "2024-01-01", "--to", AS_OF, "--by", "unit", "--xlsx", str(xlsx), *url]
        expect_stdout = [h for h in HOSTILE if h.strip()]
    elif command == "land status":
        args = ["land", "status", "--as-of", AS_OF, "--limit", "0", *url]
        expect_stdout = HOSTILE
    elif command == "match":
        args = ["match", str(_requirement(tmp_path)), "--as-of", AS_OF, "--top", "20", *url]
        expect_stdout = ["[/]<script>alert(1)</script>某投资方", "Acme [beijing] Ltd [/]", "H-0", *HOSTILE[1:]]
    elif command == "match --batch":
        _requirement(tmp_path)
        args = ["match", "--batch", str(tmp_path), "--as-of", AS_OF, *url]
        expect_stdout = ["[/]<script>alert(1)</script>某投资方"]
    else:
        args = ["ledger", "import", str(_ledger_csv(tmp_path)), "--as-of", AS_OF, *url]
    result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1), result.stderr  # 1: records or ledger rows rejected, as designed
    _assert_shown_as_text(result.stdout + result.stderr)
    flat = re.sub(r"[ │┃]+\n[ │┃]*", "", result.stdout)  # a long cell may fold onto the next line
    for h in expect_stdout:
        for line in terminal(h).split("\n"):  # a newline in a cell is a line break
            assert line in result.stdout or line in flat, (h, result.stdout[-3000:])
    if command == "events load":
        assert "rejected 17" in result.stderr and "DROP TABLE" in result.stderr and "\\x1b" in result.stderr
    if command == "report kpis":
        ws = load_workbook(tmp_path / "kpi.xlsx").active
        assert ws is not None
        units = {xlsx_unescape(str(c.value)) for c in ws["B"][3:] if c.value is not None}
        assert {h for h in HOSTILE} <= units | {""}
        assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    if command == "ledger import":
        assert "[/]" in result.stderr


def test_json_output_round_trips(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    _hostile_warehouse(db, tmp_path)
    result = CliRunner().invoke(app, ["replay", "--as-of", AS_OF, "--json", "--database-url", db_url_str])
    assert result.exit_code == 0, result.stderr
    rows = {r["project_id"]: r for r in json.loads(result.stdout)}
    assert [rows[f"H-{i}"]["unit"] for i in range(len(HOSTILE))] == HOSTILE


def test_stream_summary_prints_hostile_reasons_as_text(db: Engine, db_url_str: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    import uuid

    topic = f"hostile-{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    broken = _broken_records(tmp_path)
    sent = runner.invoke(app, ["events", "publish", str(broken), "--bootstrap", kafka_bootstrap, "--topic", topic, "--partition-count", "1"])
    assert sent.exit_code == 0, sent.stderr
    result = runner.invoke(
        app, ["stream", "--bootstrap", kafka_bootstrap, "--topic", topic, "--stop-when-idle", "1", "--database-url", db_url_str]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 0, result.stderr
    _assert_shown_as_text(result.stdout + result.stderr)
    assert "rejected 17" in result.stderr and "DROP TABLE" in result.stderr and "\\x1b" in result.stderr


def test_bulletin_markdown_keeps_its_table(db: Engine, tmp_path: Path) -> None:
    _hostile_warehouse(db, tmp_path)
    with db.connect() as conn:
        report = kpi_report(conn, date_from=date(2024, 1, 1), date_to=date(2024, 6, 30), by="unit")
    text = bulletin_markdown(report, report, date(2024, 6, 30))
    assert not RAW_CONTROL.search(text.replace("\n", ""))
    page = MarkdownIt("commonmark").enable("table").render(text)
    assert "<script" not in page and "<img" not in page and "<a " not in page and "<strong" not in page
    rows = [re.findall(r"<t[dh]>(.*?)</t[dh]>", r, flags=re.S) for r in re.findall(r"<tr>(.*?)</tr>", page, flags=re.S)]
    assert len({len(r) for r in rows}) == 1  # every row as wide as the header: nothing shifted
    units = [html.unescape(r[1]) for r in rows[1:-1]]
    want = [_md_shown(h) for h in HOSTILE]
    assert sorted(units) == sorted(want)


def test_maps_show_hostile_names_as_text(db: Engine, tmp_path: Path) -> None:
    from maps.browser import inspect_page

    _hostile_warehouse(db, tmp_path)
    req = json.loads(_requirement(tmp_path).read_text(encoding="utf-8"))
    for profile in ("public", "internal"):
        written = publish_maps(db, tmp_path / profile, profile=profile, as_of=date(2024, 6, 30), requirements=[req], lang="both")
        for name, path in written.items():
            page = Path(path).read_text(encoding="utf-8")
            assert "<script>alert" not in page and "<img src=x" not in page, (profile, name)
            assert not re.search("[\x00-\x08\x0b-\x1f]", page.replace("\r\n", "\n")), (profile, name)
    # The pages run: the names reach the DOM as text (no script ran, nothing failed).
    for page in ("public/promotion.html", "public/match-1.html"):
        report = inspect_page(tmp_path / page)
        assert report.errors == [], report.errors
        assert (report.features or 0) > 0


@pytest.mark.parametrize("value", HOSTILE)
def test_a_progress_bar_shows_a_file_name_as_text(value: str) -> None:
    """The bar's description and status (a file name, a project) are data: shown, never read as markup."""
    bar = progress()
    with bar:
        bar.add_task(value, total=None, status=value)
        task = bar.tasks[0]
        columns = [c for c in bar.columns if isinstance(c, DataColumn)]
        shown = [c.render(task) for c in columns]
    assert [t.plain for t in shown] == [terminal(value), terminal(value)]
    assert all(not t.spans for t in shown)
