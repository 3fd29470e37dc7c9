"""The bulletin's files: the PDF printed by headless Chromium, the .docx with the charts it rasterised.

One browser per bulletin: it opens the page of ``reports.bulletin_document.bulletin_html`` offline,
takes each chart as a PNG (for the Word file, which cannot show SVG) and prints the page to PDF.
The fonts are the system's: ``./run`` installs fonts-noto-cjk, whose glyphs the PDF embeds.
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
import urllib.request
from pathlib import Path

from maps.browser import BrowserError, _Cdp, _start, _stop  # the DevTools client the map checks use
from reports.bulletin_document import CHART_IDS, BulletinContent, bulletin_html, write_docx

# A4 in inches; margins come from the page's @page rule (preferCSSPageSize).
_PDF = {"printBackground": True, "paperWidth": 8.27, "paperHeight": 11.69, "preferCSSPageSize": True, "displayHeaderFooter": False}

_READY = (
    "document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"
    " && document.fonts.status === 'loaded'"
)


def _wait_ready(cdp: _Cdp, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = cdp.send("Runtime.evaluate", {"expression": _READY, "returnByValue": True})
        if state.get("result", {}).get("value") is True:
            return
        cdp.pump(0.1)
    raise BrowserError(f"the bulletin page did not finish loading within {timeout_s:.0f} s")


def print_page(page: Path, *, charts: tuple[str, ...] = (), pdf: bool = True, chromium: str | None = None, timeout_s: float = 90) -> tuple[bytes | None, dict[str, bytes]]:
    """``page`` printed to PDF (when ``pdf``) and the elements whose ids are ``charts`` as PNG (2× scale)."""
    url = page.resolve().as_uri()
    pngs: dict[str, bytes] = {}
    printed: bytes | None = None
    with tempfile.TemporaryDirectory(prefix="zs-bulletin-", ignore_cleanup_errors=True) as profile:
        proc, port, log = _start(True, (1000, 1400), profile, chromium)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:  # noqa: S310 - loopback DevTools
                targets = json.load(resp)
            cdp = _Cdp(next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"))
            try:
                cdp.send("Page.enable")
                cdp.send("Runtime.enable")
                cdp.send("Page.navigate", {"url": url})
                _wait_ready(cdp, timeout_s)
                for chart in charts:
                    rect_js = f"JSON.stringify((r => [r.left + scrollX, r.top + scrollY, r.width, r.height])(document.getElementById({json.dumps(chart)}).getBoundingClientRect()))"
                    x, y, w, h = json.loads(cdp.send("Runtime.evaluate", {"expression": rect_js, "returnByValue": True})["result"]["value"])
                    shot = cdp.send(
                        "Page.captureScreenshot",
                        {"format": "png", "captureBeyondViewport": True, "clip": {"x": x, "y": y, "width": w, "height": h, "scale": 2}},
                    )
                    pngs[chart] = base64.b64decode(shot["data"])
                if pdf:
                    printed = base64.b64decode(cdp.send("Page.printToPDF", _PDF, timeout=120)["data"])
            finally:
                cdp.close()
        finally:
            _stop(proc)
            log.close()
    return printed, pngs


def write_bulletin_files(content: BulletinContent, *, docx: Path | None = None, pdf: Path | None = None, html: Path | None = None, chromium: str | None = None) -> list[Path]:
    """Write the bulletin as .docx, .pdf and/or .html; Chromium runs once, and only for the first two."""
    page_html = bulletin_html(content)
    written: list[Path] = []
    if html is not None:
        html.write_text(page_html, encoding="utf-8")
        written.append(html)
    if docx is None and pdf is None:
        return written
    with tempfile.TemporaryDirectory(prefix="zs-bulletin-page-") as tmp:
        page = Path(tmp) / "bulletin.html"
        page.write_text(page_html, encoding="utf-8")
        printed, pngs = print_page(page, charts=CHART_IDS if docx is not None else (), pdf=pdf is not None, chromium=chromium)
    if pdf is not None and printed is not None:
        pdf.write_bytes(printed)
        written.append(pdf)
    if docx is not None:
        written.append(write_docx(content, docx, pngs))
    return written
