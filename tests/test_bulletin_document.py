"""The monthly bulletin as documents: the .docx's tables and narrative equal the KPI reports, the
PDF prints the Chinese text with an embedded CJK font, published and corrected differ where the
log holds a late correction, hostile unit names stay text, and the Dagster asset writes both."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import docx
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from assets.partitions import monthly_partitions
from assets.pipeline import build_pipeline_assets
from assets.resources import OutputResource, WarehouseResource
from events.escape import docx_text, visible_controls
from events.model import end_of_day
from reports.bulletin_document import (
    BulletinReports,
    LightRules,
    build_bulletin,
    format_amount,
    light_of,
    write_docx,
)
from reports.bulletin_render import write_bulletin_files
from reports.kpi import format_kpi
from tests.bulletin_docs import expected_rows, table_rows, ytd
from tests.kpi_district import DISTRICT, LATE, NOVEMBER, U_ANPING, U_BAIYUN, U_XIAYUN
from warehouse.bulletin import bulletin_reports
from warehouse.event_store import Incoming, load_records
from warehouse.replay import kpi_report
from zhaoshang.cli import app

runner = CliRunner()
needs_poppler = pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils missing (./run installs it)")


def load(engine: Engine, records: list[dict[str, Any]]) -> None:
    result = load_records(engine, [Incoming(json.dumps(r, ensure_ascii=False), "test", f"line {i}") for i, r in enumerate(records, 1)])
    assert result.rejected == 0, result.reasons


def zs(url: str, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, [*args, "--database-url", url])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def month_flow(engine: Engine, first: date, last: date, known_at: Any = None) -> dict[str, Any]:
    with engine.connect() as conn:
        return kpi_report(conn, date_from=first, date_to=last, known_at=known_at, mode="flow")


def paragraphs(path: Path) -> str:
    return "\n".join(p.text for p in docx.Document(str(path)).paragraphs)


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rank", "units", "signed", "stalled", "light"),
    [
        (1, 3, 2, 0, "green"),
        (2, 3, 2, 0, "yellow"),
        (3, 3, 2, 0, "red"),
        (1, 1, 1, 0, "green"),
        (2, 2, 1, 0, "yellow"),  # two units: nobody is in the bottom third
        (1, 3, 4, 1, "yellow"),  # a stalled project: at best 黄
        (1, 3, 4, 2, "red"),  # half its projects stalled
        (4, 6, 4, 0, "yellow"),
        (5, 6, 4, 0, "red"),
    ],
)
def test_lights_follow_the_rank_tertile_and_stalled_projects(rank: int, units: int, signed: int, stalled: int, light: str) -> None:
    assert light_of(rank, units, signed=signed, stalled=stalled, rules=LightRules()) == light


def test_docx_ranking_table_and_narrative_equal_the_kpi_reports(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    load(db, DISTRICT)
    out = tmp_path / "2024-11.docx"
    zs(db_url_str, "report", "bulletin", "--month", "2024-11", "--format", "docx", "--out", str(out), "--district", "平坝区")
    report = ytd(db, date(2024, 11, 30), published=True)
    rows = table_rows(out)
    assert rows[0][:4] == ["排名", "责任单位", "签约项目", "落地项目"] and rows[0][-1] == "亮灯"
    assert rows[1:] == expected_rows(report)  # cell by cell, the total included
    # 夏云 first (no stalled project); 白云 second, half its projects stalled (P2); 安平 last.
    assert [(r[1], r[-1]) for r in rows[1:-1]] == [(U_XIAYUN, "绿"), (U_BAIYUN, "红"), (U_ANPING, "红")]

    text = paragraphs(out)
    assert "平坝区招商引资项目推进情况月通报" in text and "2024年11月" in text
    month = month_flow(db, date(2024, 11, 1), date(2024, 11, 30), end_of_day(date(2024, 11, 30)))
    previous = month_flow(db, date(2024, 10, 1), date(2024, 10, 31), end_of_day(date(2024, 11, 30)))
    assert (month["signed"], month["investment_wan"], previous["funds_wan"]) == (1, 20000.0, 6000.0)  # P4 signed; P5's funds in October
    assert f"全区新签约项目{month['signed']}个、投资额{format_amount(month['investment_wan'])}" in text
    assert "投资额2.00亿元" in text
    assert f"当月到位资金{format_amount(month['funds_wan'])}" in text
    # Nothing in November 2023 nor signed in October: no growth rate to give, but the funds fell.
    assert "同比新签约项目数无可比数据（上年同月0个）" in text
    assert "环比新签约项目数无可比数据（上月0个）" in text
    assert f"到位资金下降100.0%（上月{format_amount(previous['funds_wan'])}）" in text
    t = report["total"]
    assert f"1—11月累计签约项目{t['signed']}个、总投资{format_amount(t['investment_wan'])}，到位资金{format_amount(t['funds_wan'])}" in text
    assert f"累计落地率{format_kpi('landing_rate', t['landing_rate'])}、开工率{format_kpi('start_rate', t['start_rate'])}" in text
    assert "累计落地率80.0%、开工率40.0%" in text
    assert "红灯单位2个" in text
    document = docx.Document(str(out))
    assert len(document.inline_shapes) == 2  # the funnel and the trend
    assert "更正说明" not in text  # as published


def test_published_and_corrected_differ_after_a_late_correction(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    load(db, NOVEMBER)
    nov = date(2024, 11, 30)
    with db.connect() as conn:
        before = bulletin_reports(conn, nov, "published")
    load(db, LATE)  # a late signing, a late funds arrival, a retracted landing
    with db.connect() as conn:
        published = bulletin_reports(conn, nov, "published")
        corrected = bulletin_reports(conn, nov, "corrected")
    assert published["published"] == before["published"] and published["month"] == before["month"]  # reproducible
    pub_report, cor_report = ytd(db, nov, published=True), ytd(db, nov, published=False)
    assert published["published"] == pub_report and corrected["corrected"] == cor_report
    assert pub_report["groups"] != cor_report["groups"]

    pub_doc, cor_doc = tmp_path / "pub.docx", tmp_path / "cor.docx"
    write_docx(build_bulletin(BulletinReports(**published), nov, version="published"), pub_doc, {})
    write_docx(build_bulletin(BulletinReports(**corrected), nov, version="corrected"), cor_doc, {})
    assert table_rows(pub_doc)[1:] == expected_rows(pub_report)
    assert table_rows(cor_doc)[1:] == expected_rows(cor_report)
    assert table_rows(pub_doc) != table_rows(cor_doc)

    pub_text, cor_text = paragraphs(pub_doc), paragraphs(cor_doc)
    assert "全区新签约项目2个" in pub_text and "全区新签约项目3个" in cor_text  # Q4 was recorded in December
    assert "更正说明" not in pub_text
    assert "四、更正说明" in cor_text
    assert "白云镇：签约项目 1 → 2" in cor_text and "到位资金(万元) 0 → 100" in cor_text
    assert "安平街道：落地项目 1 → 0" in cor_text

    md = zs(db_url_str, "report", "bulletin", "--month", "2024-11", "--as", "corrected").stdout
    assert "按更正后口径" in md and "更正说明" in md and "白云镇: 签约项目 1 → 2" in md
    md_pub = zs(db_url_str, "report", "bulletin", "--month", "2024-11").stdout
    assert "按发布时口径" in md_pub and "更正说明" not in md_pub


def _ppm_is_blank(ppm: bytes) -> bool:
    """A binary PPM (P6) whose every pixel is white."""
    header = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", ppm)
    assert header is not None
    pixels = ppm[header.end():]
    return pixels.count(b"\xff") == len(pixels)


@needs_poppler
def test_pdf_renders_with_the_chinese_text(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    load(db, DISTRICT)
    pdf = tmp_path / "月通报.pdf"
    done = zs(db_url_str, "report", "bulletin", "--month", "2024-12", "--format", "pdf", "--out", str(pdf), "--district", "平坝区", "--json")
    assert json.loads(done.stdout)["path"] == str(pdf.resolve())
    assert pdf.read_bytes().startswith(b"%PDF")
    page = subprocess.run(["pdftoppm", "-r", "40", "-f", "1", "-l", "1", str(pdf)], capture_output=True, check=True).stdout
    assert not _ppm_is_blank(page)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "平坝区招商引资项目推进情况月通报" in text
    assert all(unit in text for unit in (U_XIAYUN, U_BAIYUN, U_ANPING))
    assert "一、总体情况" in text and "亮灯" in text
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout.splitlines()[2:]
    assert fonts and all(" yes " in line for line in fonts)  # every font embedded (emb), with a ToUnicode map
    # Chromium embeds the CFF outlines of Noto Sans CJK as Type 3 glyphs; their descriptor names the font.
    assert b"NotoSansCJK" in pdf.read_bytes()


def test_a_document_needs_an_output_file_and_a_month(db: Engine, db_url_str: str, tmp_path: Path) -> None:
    assert "needs --out" in zs(db_url_str, "report", "bulletin", "--month", "2024-11", "--format", "pdf", code=2).stderr
    assert "2024-03" in zs(db_url_str, "report", "bulletin", "--month", "2024-13", code=2).stderr
    missing = tmp_path / "no" / "b.docx"
    assert "cannot write" in zs(db_url_str, "report", "bulletin", "--month", "2024-11", "--format", "docx", "--out", str(missing), code=2).stderr


HOSTILE_UNITS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '=HYPERLINK("http://x","y")',
    "{{ 7*7 }}",
    "\x1b[31m红色",
    "\u202e反转",
    "a|b",
    "# 标题\n- 列表",
]


@needs_poppler
def test_hostile_unit_names_are_text_in_docx_html_and_pdf(db: Engine, tmp_path: Path) -> None:
    load(
        db,
        [
            {"event_id": f"h{i}", "project_id": f"H{i}", "type": "signed", "occurred_at": "2024-03-01", "recorded_at": "2024-03-01T10:00:00+08:00",
             "payload": {"name": f"H{i}", "investment_wan": 1000 + i, "unit": unit}}
            for i, unit in enumerate(HOSTILE_UNITS)
        ],
    )
    with db.connect() as conn:
        reports = bulletin_reports(conn, date(2024, 3, 31), "corrected")
    content = build_bulletin(BulletinReports(**reports), date(2024, 3, 31), version="corrected")
    paths = {k: tmp_path / f"b.{k}" for k in ("docx", "pdf", "html")}
    write_bulletin_files(content, **paths)

    units = [row[1] for row in table_rows(paths["docx"])[1:-1]]
    assert sorted(units) == sorted(docx_text(u) for u in HOSTILE_UNITS)
    assert "\\x1b[31m红色" in units and "\\u202e反转" in units  # controls written out, not obeyed

    page = paths["html"].read_text(encoding="utf-8")
    assert "<script>alert" not in page and "<img src=x" not in page and "{{ 7*7 }}" in page
    cells = [html.unescape(c) for c in re.findall(r'<td class="unit">(.*?)</td>', page, flags=re.S)]
    assert sorted(cells) == sorted(visible_controls(u) for u in HOSTILE_UNITS)  # each name one cell, as written

    text = subprocess.run(["pdftotext", str(paths["pdf"]), "-"], capture_output=True, text=True, check=True).stdout
    assert "<script>alert(1)</script>" in text and "{{ 7*7 }}" in text and "\\x1b[31m红色" in text


def test_the_asset_writes_the_documents_beside_the_markdown(db: Engine, tmp_path: Path) -> None:
    load(db, [*NOVEMBER, *LATE])
    url = db.url.render_as_string(hide_password=False)
    result = dg.materialize(
        build_pipeline_assets(monthly_partitions("2024-01-01")),
        resources={"warehouse": WarehouseResource(database_url=url), "output": OutputResource(root=str(tmp_path))},
        partition_key="2024-11-01",
        raise_on_error=True,
    )
    assert result.success
    folder = tmp_path / "bulletins"
    assert {p.name for p in folder.iterdir()} == {
        "2024-11.md", "2024-11.json", "2024-11.docx", "2024-11.pdf", "2024-11-corrected.docx", "2024-11-corrected.pdf",
    }
    assert table_rows(folder / "2024-11.docx")[1:] == expected_rows(ytd(db, date(2024, 11, 30), published=True))
    assert table_rows(folder / "2024-11-corrected.docx")[1:] == expected_rows(ytd(db, date(2024, 11, 30), published=False))
    assert (folder / "2024-11.pdf").read_bytes().startswith(b"%PDF")
    mat = result.asset_materializations_for_node("monthly_bulletin")[0]
    assert len(mat.metadata["documents"].value) == 4  # type: ignore[attr-defined,arg-type]
