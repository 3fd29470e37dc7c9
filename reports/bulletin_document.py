"""The monthly bulletin (月通报) as documents: a Word file, and the HTML a browser prints to PDF.

Figures in, one content model out (:func:`build_bulletin`), written two ways: :func:`write_docx`
(python-docx) and :func:`bulletin_html` (Jinja2, autoescaped; ``reports.bulletin_render`` prints
it with headless Chromium and rasterises the charts for the Word file). Nothing here reads the
warehouse or the clock: the KPI reports come from ``warehouse.bulletin.bulletin_reports``.

红黄绿灯 (:class:`LightRules`): bureaus rank their units monthly (月统计、季排名) and push projects
to land and start (早落地、早开工). A unit's light is the third of the ranking it stands in (rank
by funds, then investment: ``events.kpis.finish_kpis``), top third 绿, middle 黄, bottom 红; a
unit with a stalled project (no progress for ``events.projection.STALLED_AFTER_MONTHS`` months)
is at best 黄, and one with half or more of its signed projects stalled is 红.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

from markupsafe import escape

from events.escape import docx_text, visible_controls
from events.kpis import GROUP_LABEL_ZH, KPI_LABELS_ZH
from events.projection import STALLED_AFTER_MONTHS
from reports.bulletin import bulletin_difference
from reports.kpi import format_kpi

Light = Literal["green", "yellow", "red"]
LIGHT_LABEL_ZH: dict[str, str] = {"green": "绿", "yellow": "黄", "red": "红"}
LIGHT_COLOUR: dict[str, str] = {"green": "43A047", "yellow": "FBC02D", "red": "E53935"}
Version = Literal["published", "corrected"]


class BulletinVersion(StrEnum):
    """Which knowledge a bulletin ranks on: as published (known at the month end) or as corrected since."""

    PUBLISHED = "published"
    CORRECTED = "corrected"


class BulletinFormat(StrEnum):
    """The files a bulletin is written as."""

    MD = "md"
    DOCX = "docx"
    PDF = "pdf"
    HTML = "html"


# The ranking table's figures, in order (after 排名 and 责任单位, before 亮灯).
TABLE_KEYS = ("signed", "landed", "started", "produced", "landing_rate", "start_rate", "investment_wan", "funds_wan", "stalled")
FUNNEL_KEYS = ("signed", "landed", "started", "produced")
FUNNEL_LABEL_ZH = {"signed": "签约", "landed": "落地", "started": "开工", "produced": "投产"}
CHART_IDS = ("funnel", "trend")
NO_COMPARISON = "无可比数据"


@dataclass(frozen=True)
class LightRules:
    """How a unit's 红黄绿灯 follows from its figures (the module's docstring)."""

    yellow_if_stalled: int = 1  # this many stalled projects or more: at best 黄
    red_if_stalled_share: float = 0.5  # stalled ≥ this share of the unit's signed projects: 红

    def describe(self) -> str:
        return (
            "亮灯规则：按到位资金（其次总投资）排名三等分，前三分之一为绿灯、中间为黄灯、后三分之一为红灯；"
            f"有停滞项目（连续{STALLED_AFTER_MONTHS}个月无进展）{self.yellow_if_stalled}个及以上的单位至多为黄灯，"
            f"停滞项目占其签约项目{self.red_if_stalled_share:.0%}及以上的单位为红灯。"
        )


def light_of(rank: int, units: int, *, signed: int, stalled: int, rules: LightRules) -> Light:
    """The light of the unit ranked ``rank`` of ``units`` (:class:`LightRules`)."""
    green_upto = math.ceil(units / 3)
    red_from = units - units // 3 + 1  # the bottom third; with one or two units nobody is in it
    light: Light = "green" if rank <= green_upto else "red" if rank >= red_from else "yellow"
    if stalled and signed and stalled / signed >= rules.red_if_stalled_share:
        return "red"
    if stalled >= rules.yellow_if_stalled and light == "green":
        return "yellow"
    return light


def unit_lights(report: dict[str, Any], rules: LightRules) -> dict[str, Light]:
    """Each unit's light in a ranked report (``by`` unit)."""
    groups = report["groups"]
    return {g["key"]: light_of(g["rank"], len(groups), signed=g["signed"], stalled=g["stalled"], rules=rules) for g in groups}


@dataclass(frozen=True)
class BulletinReports:
    """The KPI reports a bulletin is made of (``warehouse.bulletin.bulletin_reports``).

    ``published``/``corrected``: the year to date by unit, as known at publication and now.
    ``month``, ``previous_month``, ``last_year_month``: flow reports (None: no comparable figures);
    ``trend``: flow reports of the last twelve months, oldest first.
    """

    published: dict[str, Any]
    corrected: dict[str, Any]
    month: dict[str, Any] | None = None
    previous_month: dict[str, Any] | None = None
    last_year_month: dict[str, Any] | None = None
    trend: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class BulletinContent:
    """What both documents show, every string final (data still raw: each writer escapes it)."""

    title: str
    subtitle: str
    version_note: str
    narrative: list[str]
    head: list[str]
    rows: list[list[str]]
    lights: list[Light]
    total: list[str]
    lights_note: str
    funnel: list[tuple[str, int]]
    trend: list[tuple[str, int, float]]  # (month, signed, funds 万元)
    corrections: list[str] | None  # None: the bulletin as published (no section)
    figures: dict[str, Any] = field(default_factory=dict)  # the narrative's numbers, unformatted


def format_amount(value_wan: float | None) -> str:
    """An amount as a bulletin writes it: 亿元 from 1亿 (two decimals), else 万元."""
    if value_wan is None:
        return "—"
    if abs(value_wan) >= 10_000:
        return f"{value_wan / 10_000:,.2f}亿元"
    return f"{value_wan:,.0f}万元"


def change_text(now: float, before: float | None) -> str:
    """增长/下降 x% against ``before``; :data:`NO_COMPARISON` when there is nothing to compare with."""
    if before is None or before == 0:
        return NO_COMPARISON
    ratio = (now - before) / before
    if ratio == 0:
        return "持平"
    return f"{'增长' if ratio > 0 else '下降'}{abs(ratio):.1%}"


def _comparison(label: str, base_label: str, month: dict[str, Any], base: dict[str, Any] | None) -> str:
    if base is None:
        return f"{label}{NO_COMPARISON}"
    return (
        f"{label}新签约项目数{change_text(month['signed'], base['signed'])}（{base_label}{base['signed']}个），"
        f"签约投资额{change_text(month['investment_wan'], base['investment_wan'])}（{base_label}{format_amount(base['investment_wan'])}），"
        f"到位资金{change_text(month['funds_wan'], base['funds_wan'])}（{base_label}{format_amount(base['funds_wan'])}）"
    )


def _narrative(reports: BulletinReports, ranking: dict[str, Any], month_end_day: date, lights: dict[str, Light]) -> list[str]:
    m = month_end_day.month
    t = ranking["total"]
    out = []
    if reports.month is not None:
        mo = reports.month
        out.append(
            f"{month_end_day.year}年{m}月，全区新签约项目{mo['signed']}个、投资额{format_amount(mo['investment_wan'])}；"
            f"新落地项目{mo['landed']}个、新开工项目{mo['started']}个、新投产项目{mo['produced']}个；"
            f"当月到位资金{format_amount(mo['funds_wan'])}。"
        )
        out.append(
            _comparison("同比", "上年同月", mo, reports.last_year_month)
            + "；"
            + _comparison("环比", "上月", mo, reports.previous_month)
            + "。"
        )
    span = f"1—{m}月" if m > 1 else "1月"
    out.append(
        f"{span}累计签约项目{t['signed']}个、总投资{format_amount(t['investment_wan'])}，到位资金{format_amount(t['funds_wan'])}；"
        f"累计落地率{format_kpi('landing_rate', t['landing_rate'])}、开工率{format_kpi('start_rate', t['start_rate'])}、"
        f"投产率{format_kpi('production_rate', t['production_rate'])}；停滞项目{t['stalled']}个。"
    )
    groups = ranking["groups"]
    if groups:
        top = "、".join(g["key"] for g in groups[:3])
        red = [g["key"] for g in groups if lights[g["key"]] == "red"]
        out.append(
            f"按到位资金排名，前列单位为{top}；"
            + (f"红灯单位{len(red)}个：{'、'.join(red)}。" if red else "本月无红灯单位。")
        )
    return out


def _corrections(published: dict[str, Any], corrected: dict[str, Any]) -> list[str]:
    lines = []
    for diff in bulletin_difference(published, corrected):
        parts = []
        for key, change in diff["changes"].items():
            label = "排名" if key == "rank" else KPI_LABELS_ZH[key]
            before, after = (format_kpi(key, change[v]) for v in ("published", "corrected"))
            parts.append(f"{label} {before} → {after}")
        lines.append(f"{diff['unit']}：" + "；".join(parts))
    return lines or ["发布以来无更正。"]


def build_bulletin(
    reports: BulletinReports,
    month_end_day: date,
    *,
    version: Version = "published",
    rules: LightRules | None = None,
    district: str = "",
) -> BulletinContent:
    """The bulletin of the month ending ``month_end_day``: ranked on ``version``'s year to date."""
    rules = rules or LightRules()
    ranking = reports.published if version == "published" else reports.corrected
    lights = unit_lights(ranking, rules)
    head = ["排名", GROUP_LABEL_ZH["unit"], *(KPI_LABELS_ZH[k] for k in TABLE_KEYS), "亮灯"]
    rows = [[str(g["rank"]), g["key"], *(format_kpi(k, g[k]) for k in TABLE_KEYS), LIGHT_LABEL_ZH[lights[g["key"]]]] for g in ranking["groups"]]
    total = ["", "合计", *(format_kpi(k, ranking["total"][k]) for k in TABLE_KEYS), ""]
    if version == "published":
        note = f"按发布时口径（截至 {ranking['known_at']} 已录入的数据）"
    else:
        note = "按更正后口径（截至目前已录入的数据，含发布后补报与更正）"
    trend = [(r["to"][:7], int(r["signed"]), float(r["funds_wan"])) for r in reports.trend]
    figures = {"total": ranking["total"], "month": reports.month, "previous_month": reports.previous_month, "last_year_month": reports.last_year_month}
    return BulletinContent(
        title=f"{district}招商引资项目推进情况月通报",
        subtitle=f"{month_end_day.year}年{month_end_day.month}月（统计期 {ranking['from']} ~ {ranking['to']}）",
        version_note=note,
        narrative=_narrative(reports, ranking, month_end_day, lights),
        head=head,
        rows=rows,
        lights=[lights[g["key"]] for g in ranking["groups"]],
        total=total,
        lights_note=rules.describe(),
        funnel=[(FUNNEL_LABEL_ZH[k], int(ranking["total"][k])) for k in FUNNEL_KEYS],
        trend=trend,
        corrections=_corrections(reports.published, reports.corrected) if version == "corrected" else None,
        figures=figures,
    )


# ---------------------------------------------------------------------------------------------
# Charts: SVG built here (our markup; every text through markupsafe.escape), no plotting library.

_FONT = "'Noto Sans CJK SC', 'Noto Sans CJK', 'Source Han Sans SC', sans-serif"


def _svg(width: int, height: int, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' font-family="{_FONT}" font-size="13">'
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, value: Any, anchor: str = "start", **attrs: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(visible_controls(str(value)))}</text>'


def funnel_svg(content: BulletinContent, width: int = 720, height: int = 260) -> str:
    """签约→落地→开工→投产: one centred bar per stage, its count and its share of the signed."""
    body = [_text(width / 2, 24, "项目推进漏斗（累计）", "middle", font_size="15", font_weight="bold")]
    top = max((n for _, n in content.funnel), default=0) or 1
    signed = content.funnel[0][1] if content.funnel else 0
    row_h, y0, bar_w = 46, 44, width - 260
    colours = ("#1565C0", "#1E88E5", "#42A5F5", "#90CAF9")
    for i, (label, n) in enumerate(content.funnel):
        w = max(2.0, bar_w * n / top)
        x = 120 + (bar_w - w) / 2
        y = y0 + i * row_h
        body.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 10}" fill="{colours[i % len(colours)]}"/>')
        body.append(_text(110, y + row_h / 2, label, "end", font_size="14"))
        share = f"{n / signed:.1%}" if signed else "—"
        body.append(_text(130 + bar_w, y + row_h / 2, f"{n}个  {share}", "start"))
    return _svg(width, height, body)


def trend_svg(content: BulletinContent, width: int = 720, height: int = 310) -> str:
    """The last twelve months: new signings (bars, left axis) and funds arrived (line, right axis, 万元)."""
    body = [_text(width / 2, 22, "近12个月新签约项目与到位资金", "middle", font_size="15", font_weight="bold")]
    left, right, top_y, bottom_y = 56, width - 76, 70, height - 40
    months = content.trend
    max_n = max((n for _, n, _ in months), default=0)
    max_n = max(2, max_n + max_n % 2)  # even, so the half-way tick is a whole number of projects
    max_f = max((f for _, _, f in months), default=0.0) or 1.0
    body.append(f'<rect x="{left}" y="34" width="12" height="9" fill="#42A5F5"/>')
    body.append(_text(left + 16, 42, "新签约项目(个)", font_size="11"))
    body.append(f'<line x1="{left + 120}" y1="38.5" x2="{left + 140}" y2="38.5" stroke="#E53935" stroke-width="2"/>')
    body.append(_text(left + 144, 42, "到位资金(万元)", font_size="11"))
    body.append(f'<line x1="{left}" y1="{bottom_y}" x2="{right}" y2="{bottom_y}" stroke="#555"/>')
    for frac in (0.5, 1.0):
        y = bottom_y - (bottom_y - top_y) * frac
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(_text(left - 6, y + 4, f"{max_n * frac:.0f}", "end", font_size="11"))
        body.append(_text(right + 6, y + 4, f"{max_f * frac:,.0f}", "start", font_size="11"))
    body.append(_text(left - 6, top_y - 8, "个", "end", font_size="11"))
    body.append(_text(right + 6, top_y - 8, "万元", "start", font_size="11"))
    step = (right - left) / max(1, len(months))
    points: list[tuple[float, float]] = []
    for i, (label, n, funds) in enumerate(months):
        cx = left + step * (i + 0.5)
        h = (bottom_y - top_y) * n / max_n
        body.append(f'<rect x="{cx - step * 0.3:.1f}" y="{bottom_y - h:.1f}" width="{step * 0.6:.1f}" height="{h:.1f}" fill="#42A5F5"/>')
        if n:
            body.append(_text(cx, bottom_y - h - 4, n, "middle", font_size="11"))
        body.append(_text(cx, bottom_y + 16, f"{int(label[5:7])}月", "middle", font_size="11"))
        if i == 0 or label.endswith("-01"):
            body.append(_text(cx, bottom_y + 30, f"{label[:4]}年", "middle", font_size="10", fill="#777"))
        points.append((cx, bottom_y - (bottom_y - top_y) * funds / max_f))
    if points:
        body.append(f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}" fill="none" stroke="#E53935" stroke-width="2"/>')
        body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#E53935"/>' for x, y in points)
    return _svg(width, height, body)


def chart_svgs(content: BulletinContent) -> dict[str, str]:
    return {"funnel": funnel_svg(content), "trend": trend_svg(content)}


# ---------------------------------------------------------------------------------------------
# HTML (for the PDF): Jinja2 with autoescape; every value shown also has its control and bidi
# characters written out (finalize), as the other formats do.

_HTML = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{{ c.title }} {{ c.subtitle }}</title>
<style>
@page { size: A4; margin: 16mm 14mm; }
body { font-family: 'Noto Sans CJK SC', 'Noto Sans CJK', 'Source Han Sans SC', sans-serif; font-size: 10.5pt; color: #111; margin: 0; }
h1 { font-size: 17pt; text-align: center; margin: 0 0 4pt; }
.sub { text-align: center; margin: 0 0 2pt; }
.note { text-align: center; color: #555; font-size: 9pt; margin: 0 0 10pt; }
h2 { font-size: 12.5pt; margin: 12pt 0 6pt; }
p { line-height: 1.6; margin: 0 0 5pt; text-indent: 2em; }
table { border-collapse: collapse; width: 100%; font-size: 8.5pt; }
th, td { border: 0.6pt solid #444; padding: 2.5pt 3pt; text-align: right; }
td { white-space: nowrap; }
th { background: #eceff1; text-align: center; }
td.unit { text-align: left; white-space: pre-wrap; word-break: break-all; }
td.light { text-align: center; font-weight: bold; color: #fff; }
td.light.yellow { color: #222; }
tr.total td { font-weight: bold; }
.rule { font-size: 8.5pt; color: #444; text-indent: 0; }
.chart { display: block; width: 100%; max-width: 720px; margin: 4pt auto 8pt; }
li { line-height: 1.5; }
</style></head>
<body>
<h1>{{ c.title }}</h1>
<p class="sub">{{ c.subtitle }}</p>
<p class="note">{{ c.version_note }}</p>
<h2>一、总体情况</h2>
{% for para in c.narrative %}<p>{{ para }}</p>
{% endfor %}
<h2>二、各责任单位排名</h2>
<table id="ranking">
<thead><tr>{% for h in c.head %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in c.rows %}{% set light = c.lights[loop.index0] %}<tr>{% for cell in row %}{% if loop.last %}<td class="light {{ light }}" style="background:#{{ colours[light] }}">{{ cell }}</td>{% elif loop.index0 == 1 %}<td class="unit">{{ cell }}</td>{% else %}<td>{{ cell }}</td>{% endif %}{% endfor %}</tr>
{% endfor %}<tr class="total">{% for cell in c.total %}<td>{{ cell }}</td>{% endfor %}</tr>
</tbody></table>
<p class="rule">{{ c.lights_note }}</p>
<h2>三、推进漏斗与趋势</h2>
<img id="funnel" class="chart" alt="项目推进漏斗" src="{{ charts.funnel }}">
<img id="trend" class="chart" alt="近12个月趋势" src="{{ charts.trend }}">
{% if c.corrections is not none %}<h2>四、更正说明</h2>
<p class="rule">发布后补报或更正的数据（发布时 → 更正后）：</p>
<ul>{% for line in c.corrections %}<li>{{ line }}</li>{% endfor %}</ul>
{% endif %}
</body></html>
"""


def _shown(value: Any) -> Any:
    """Jinja2's finalize: strings with their control and bidi characters written out (then autoescaped)."""
    return visible_controls(value) if isinstance(value, str) else value


def bulletin_html(content: BulletinContent) -> str:
    """The bulletin as one self-contained HTML page (charts as SVG data URIs), ready to print."""
    from jinja2 import Environment

    env = Environment(autoescape=True, finalize=_shown)
    charts = {k: "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii") for k, svg in chart_svgs(content).items()}
    return env.from_string(_HTML).render(c=content, charts=charts, colours=LIGHT_COLOUR)


# ---------------------------------------------------------------------------------------------
# Word (python-docx): every string through events.escape.docx_text.


def _shade(cell: Any, fill: str) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    cell._tc.get_or_add_tcPr().append(shd)


def _east_asian_font(style: Any, name: str) -> None:
    from docx.oxml.ns import qn

    style.font.name = name
    style.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), name)


def write_docx(content: BulletinContent, path: Path, charts_png: dict[str, bytes]) -> Path:
    """The bulletin as a .docx at ``path``; ``charts_png``: the :data:`CHART_IDS` as PNG (a chart missing is left out)."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm, Pt

    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.left_margin = section.right_margin = Cm(2)
    _east_asian_font(doc.styles["Normal"], "宋体")
    doc.styles["Normal"].font.size = Pt(11)
    doc.core_properties.title = docx_text(f"{content.title} {content.subtitle}")

    title = doc.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = title.add_run(docx_text(content.title))
    run.bold, run.font.size = True, Pt(18)
    for line, size in ((content.subtitle, 12), (content.version_note, 9)):
        p = doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        p.add_run(docx_text(line)).font.size = Pt(size)

    doc.add_heading("一、总体情况", level=2)
    for para in content.narrative:
        p = doc.add_paragraph(docx_text(para))
        p.paragraph_format.first_line_indent = Pt(22)

    doc.add_heading("二、各责任单位排名", level=2)
    table = doc.add_table(rows=1, cols=len(content.head))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, h in zip(table.rows[0].cells, content.head, strict=True):
        cell.text = docx_text(h)
        _shade(cell, "ECEFF1")
    for row, light in zip(content.rows, content.lights, strict=True):
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = docx_text(value)
        _shade(cells[-1], LIGHT_COLOUR[light])
    for cell, value in zip(table.add_row().cells, content.total, strict=True):
        cell.text = docx_text(value)
    for r in table.rows:
        for cell in r.cells:
            for p in cell.paragraphs:
                for run in p.runs:
                    run.font.size = Pt(8)
    doc.add_paragraph(docx_text(content.lights_note)).runs[0].font.size = Pt(8)

    doc.add_heading("三、推进漏斗与趋势", level=2)
    for chart in CHART_IDS:
        if chart in charts_png:
            doc.add_picture(BytesIO(charts_png[chart]), width=Cm(16))

    if content.corrections is not None:
        doc.add_heading("四、更正说明", level=2)
        doc.add_paragraph("发布后补报或更正的数据（发布时 → 更正后）：")
        for line in content.corrections:
            doc.add_paragraph(docx_text(line), style="List Bullet")
    doc.save(str(path))
    return path
