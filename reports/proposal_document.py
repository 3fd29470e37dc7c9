"""招商方案 proposal documents: a printable page (and its PDF) of a saved match — the ranked sites on a
map, their reasons, the closest misses, and a QR code of the investor's share link.

The page is self-contained (inline CSS and SVG, no script), so the same HTML is the printable page
of the workspace and what headless Chromium prints to PDF. The map is drawn as SVG from the sites'
centroids (CGCS2000 lon/lat, scaled by cos(latitude)): it needs no tiles and no JavaScript.
Everything from data goes through Jinja2's autoescape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import segno
from jinja2 import Environment
from markupsafe import Markup

_ENV = Environment(autoescape=True)

MAP_W, MAP_H, PAD = 640, 360, 28


@dataclass(frozen=True, slots=True)
class MapMark:
    x: float
    y: float
    label: str  # rank number or point name
    kind: str  # 'site', 'miss', 'near'
    title: str


def _marks(result: dict[str, Any], requirement: dict[str, Any] | None) -> list[tuple[float, float, str, str, str]]:
    out = []
    for r in result.get("results") or []:
        if r.get("lon") is not None and r.get("lat") is not None:
            out.append((float(r["lon"]), float(r["lat"]), str(r["rank"]), "site", f"{r.get('name') or r['site_id']}"))
    for m in result.get("closest_misses") or []:
        if m.get("lon") is not None and m.get("lat") is not None:
            out.append((float(m["lon"]), float(m["lat"]), "", "miss", f"{m.get('name') or m['site_id']}"))
    for p in (requirement or {}).get("near") or []:
        if isinstance(p, dict) and p.get("lon") is not None and p.get("lat") is not None:
            out.append((float(p["lon"]), float(p["lat"]), "★", "near", str(p.get("name") or "")))
    return out


def map_marks(result: dict[str, Any], requirement: dict[str, Any] | None = None) -> list[MapMark]:
    """The marks of the SVG map in pixels: sites by rank, closest misses, the points to be near."""
    raw = _marks(result, requirement)
    if not raw:
        return []
    lons, lats = [m[0] for m in raw], [m[1] for m in raw]
    lat0 = math.radians(sum(lats) / len(lats))
    xs = [lon * math.cos(lat0) for lon in lons]
    span_x = max(max(xs) - min(xs), 1e-4)
    span_y = max(max(lats) - min(lats), 1e-4)
    scale = min((MAP_W - 2 * PAD) / span_x, (MAP_H - 2 * PAD) / span_y)
    x0, y1 = min(xs), max(lats)
    return [
        MapMark(round(PAD + (x - x0) * scale, 1), round(PAD + (y1 - lat) * scale, 1), label, kind, title)
        for x, lat, (_, _, label, kind, title) in zip(xs, lats, raw, strict=True)
    ]


def qr_svg(url: str) -> Markup:
    """The QR code of ``url`` as inline SVG (segno; error correction M)."""
    return Markup(segno.make(url, error="m").svg_inline(scale=4, border=2))  # noqa: S704 - segno's own SVG of our URL


_PAGE = _ENV.from_string(
    """<!doctype html>
<html lang="{{ 'en' if lang == 'en' else 'zh-CN' }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
@page { size: A4; margin: 14mm; }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", sans-serif; color: #1d2733; font-size: 11pt; margin: 0; }
h1 { font-size: 18pt; margin: 0 0 4pt; color: #b3261e; } h2 { font-size: 13pt; margin: 12pt 0 4pt; }
.meta { color: #5d6b7a; font-size: 9pt; }
.head { display: flex; justify-content: space-between; gap: 12pt; align-items: flex-start; }
.qr { text-align: center; font-size: 8pt; color: #5d6b7a; max-width: 160px; word-break: break-all; }
table { border-collapse: collapse; width: 100%; font-size: 9.5pt; } th, td { border: 1px solid #d9e0e7; padding: 3pt 5pt; vertical-align: top; text-align: left; }
th { background: #eef2f6; } svg.map { border: 1px solid #d9e0e7; background: #f5f7fa; width: 100%; height: auto; }
.miss { color: #5d6b7a; } ul { margin: 0; padding-left: 14pt; }
</style></head><body>
<div class="head">
  <div>
    <h1>{{ title }}</h1>
    <div class="meta">{{ t("招商方案", "Investment proposal") }}{% if investor %} · {{ investor }}{% endif %}
      · {{ t("行业", "Industry") }} {{ result.industry or "—" }} · {{ t("数据日期", "Data as of") }} {{ as_of }}
      · {{ t("生成", "Made") }} {{ made_on }}</div>
  </div>
  {% if share_url %}<div class="qr" id="qr">{{ qr }}<div>{{ t("扫码查看在线方案", "Scan for the online proposal") }}</div><div>{{ share_url }}</div></div>{% endif %}
</div>
<h2>{{ t("推荐地块与厂房", "Recommended sites") }}</h2>
<svg class="map" viewBox="0 0 {{ map_w }} {{ map_h }}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{{ t('位置示意图', 'Location sketch') }}">
  {% for m in marks %}
    {% if m.kind == "site" %}<circle cx="{{ m.x }}" cy="{{ m.y }}" r="11" fill="#b3261e"><title>{{ m.title }}</title></circle>
      <text x="{{ m.x }}" y="{{ m.y + 4 }}" text-anchor="middle" font-size="11" fill="#fff">{{ m.label }}</text>
    {% elif m.kind == "miss" %}<circle cx="{{ m.x }}" cy="{{ m.y }}" r="5" fill="#9aa7b4"><title>{{ m.title }}</title></circle>
    {% else %}<rect x="{{ m.x - 6 }}" y="{{ m.y - 6 }}" width="12" height="12" fill="#2e7d32"><title>{{ m.title }}</title></rect>
      <text x="{{ m.x + 9 }}" y="{{ m.y + 4 }}" font-size="10" fill="#2e7d32">{{ m.title }}</text>{% endif %}
  {% endfor %}
</svg>
<table>
  <thead><tr><th>#</th><th>{{ t("名称", "Site") }}</th><th>{{ t("园区", "Park") }}</th><th>{{ t("得分", "Score") }}</th><th>{{ t("理由", "Reasons") }}</th></tr></thead>
  <tbody>
  {% for r in result.results %}
  <tr><td>{{ r.rank }}</td><td>{{ r.name or r.site_id }}<div class="meta">{{ r.site_id }}</div></td><td>{{ r.park or "" }}</td><td>{{ r.score }}</td>
    <td><ul>{% for c in r.criteria %}<li>{{ c.reason_en if lang == "en" else c.reason_zh }}</li>{% endfor %}</ul></td></tr>
  {% else %}<tr><td colspan="5">{{ t("没有符合条件的地块", "No site meets the requirement") }}</td></tr>{% endfor %}
  </tbody>
</table>
{% if result.closest_misses %}
<h2>{{ t("接近但未满足条件的", "Closest misses") }}</h2>
<table class="miss"><tbody>
{% for m in result.closest_misses %}<tr><td>{{ m.name or m.site_id }}</td><td>{{ m.park or "" }}</td><td>{{ m.reason_en if lang == "en" else m.reason_zh }}</td></tr>{% endfor %}
</tbody></table>
{% endif %}
</body></html>"""
)


def proposal_html(
    *, title: str, result: dict[str, Any], requirement: dict[str, Any] | None, as_of: date, made_on: date,
    share_url: str | None = None, investor: str | None = None, lang: str = "zh",
) -> str:
    """The printable proposal. Pass the public result (``land.matching.public_match``) and no
    ``investor`` for anything an investor receives; the internal one for the bureau's own copy."""
    def t(zh: str, en: str) -> str:
        return en if lang == "en" else zh

    return _PAGE.render(
        title=title, result=result, as_of=as_of.isoformat(), made_on=made_on.isoformat(), share_url=share_url,
        qr=qr_svg(share_url) if share_url else "", investor=investor, lang=lang, t=t, marks=map_marks(result, requirement),
        map_w=MAP_W, map_h=MAP_H,
    )
