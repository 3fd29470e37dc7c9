"""Headless Chromium (Debian's ``chromium``) for print PNGs and for checking what a page draws.

``inspect_page`` opens a page over the DevTools protocol and reports console errors, uncaught
exceptions, every network request the page made (a self-contained page makes none but
``file:``/``data:``), the feature count the page published in ``document.body.dataset`` and its
load time. With ``offline=True`` Chromium runs behind a dead proxy, so nothing can be fetched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")

# Flags Chromium needs to run headless as root in a container without hanging on the network.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)
OFFLINE_FLAGS = ("--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>")


class BrowserError(RuntimeError):
    pass


def chromium_path(chromium: str | None = None) -> str:
    """``chromium`` (the settings' ``ZHAOSHANG_CHROMIUM``: a name on PATH or a path) if it is there, else one found on PATH."""
    for name in (chromium or "", *CHROMIUM_CANDIDATES):
        if name and (path := shutil.which(name)):
            return path
    raise BrowserError("Chromium is missing: install Debian's chromium (./run installs it)")


def screenshot(
    page: Path,
    png: Path,
    *,
    size: tuple[int, int] = (1600, 1000),
    scale: float = 2.0,
    offline: bool = True,
    wait_ms: int = 4000,
    view: tuple[int, float, float] | None = None,
    chromium: str | None = None,
) -> Path:
    """A PNG of ``page`` at ``size`` CSS pixels × ``scale`` (2 = print-ready ~3200 px wide).

    ``wait_ms`` of virtual time lets tiles and the canvas settle before the shot; ``view``
    (zoom, lat, lon) opens the page on that view instead of the whole extent.
    """
    url = page.resolve().as_uri() + (f"#{view[0]}/{view[1]:.5f}/{view[2]:.5f}/print" if view else "#print")
    with tempfile.TemporaryDirectory(prefix="zs-chromium-", ignore_cleanup_errors=True) as profile:
        cmd = [
            chromium_path(chromium),
            *BASE_FLAGS,
            *(OFFLINE_FLAGS if offline else ()),
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            f"--force-device-scale-factor={scale}",
            f"--virtual-time-budget={wait_ms}",
            f"--screenshot={png.resolve()}",
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0 or not png.is_file():
        raise BrowserError(f"chromium screenshot failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return png


@dataclass
class PageReport:
    """What a page did when opened: errors, requests, what it reported drawing, timings (ms)."""

    url: str
    dataset: dict[str, str] = field(default_factory=dict)
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    load_ms: float | None = None
    ready_ms: float | None = None
    values: list[Any] = field(default_factory=list)

    @property
    def features(self) -> int | None:
        v = self.dataset.get("features")
        return int(v) if v is not None else None

    @property
    def layers(self) -> dict[str, int]:
        layers: dict[str, int] = json.loads(self.dataset.get("layers", "{}"))
        return layers

    @property
    def errors(self) -> list[str]:
        return self.console_errors + self.exceptions + self.log_errors

    @property
    def remote_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:", "about:", "blob:"))]


class _Cdp:
    """A minimal DevTools-protocol client over one page's websocket."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self._conn = connect(ws_url, max_size=None, open_timeout=30)
        self.ws = self._conn.__enter__()
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            if "method" in msg:
                self.events.append(msg)

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                return
            if "method" in msg:
                self.events.append(msg)

    def close(self) -> None:
        self._conn.__exit__(None, None, None)


def _start(offline: bool, size: tuple[int, int], profile: str, chromium: str | None = None) -> tuple[subprocess.Popen[str], int, IO[str]]:
    cmd = [
        chromium_path(chromium),
        *BASE_FLAGS,
        *(OFFLINE_FLAGS if offline else ()),
        f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
        "--remote-debugging-port=0",
        "--remote-allow-origins=*",
        "about:blank",
    ]
    # Chromium logs a lot on stderr; a file, not a pipe nobody drains, so it can never block.
    log = open(Path(profile) / "chromium.log", "w")  # noqa: SIM115 - the caller closes it after the browser
    # Its own session: the browser's helper processes (renderer, GPU, crash handler) are killed with it.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    port_file = Path(profile) / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if port_file.is_file():
            first = port_file.read_text().splitlines()
            if first and first[0].strip().isdigit():
                return proc, int(first[0]), log
        if proc.poll() is not None:
            log.close()
            raise BrowserError(f"chromium exited ({proc.returncode}): {(Path(profile) / 'chromium.log').read_text(errors='replace')[-800:]}")
        time.sleep(0.05)
    _stop(proc)
    log.close()
    raise BrowserError("chromium did not open its DevTools port within 60 s")


def _stop(proc: subprocess.Popen[str]) -> None:
    """End the browser and every helper process it started, so its profile folder can be removed."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # helpers that outlived it still write to the profile


def inspect_page(
    page: Path | str,
    *,
    offline: bool = True,
    timeout: float = 90,
    settle_s: float = 0.5,
    size: tuple[int, int] = (1400, 900),
    evaluate: Sequence[str] = (),
    capture: Path | None = None,
    chromium: str | None = None,
) -> PageReport:
    """Open ``page`` (a path or URL) in headless Chromium and report what happened.

    Waits until the document at ``page`` has loaded and, on a map page, the runtime has set
    ``document.body.dataset.ready``, then ``settle_s`` more for late errors.
    Each expression in ``evaluate`` then runs in the page (in order, after a short settle each);
    their JSON-able values are in ``report.values``, and errors they cause land in the report.
    ``capture``: a PNG of the page as it stands after them.
    """
    url = Path(page).resolve().as_uri() if not str(page).startswith(("file:", "http:", "https:")) else str(page)
    report = PageReport(url=url)
    with tempfile.TemporaryDirectory(prefix="zs-chromium-", ignore_cleanup_errors=True) as profile:
        proc, port, log = _start(offline, size, profile, chromium)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:  # noqa: S310 - loopback DevTools
                targets = json.load(resp)
            ws_url = next(tg["webSocketDebuggerUrl"] for tg in targets if tg.get("type") == "page")
            cdp = _Cdp(ws_url)
            try:
                for domain in ("Page", "Runtime", "Log", "Network"):
                    cdp.send(f"{domain}.enable")
                cdp.send("Page.navigate", {"url": url})
                # Asked of the document itself, not inferred from a load event: a late load event of
                # the initial about:blank would otherwise pass for ours and the page be read half-built.
                ready_js = (
                    f"location.href.split('#')[0] === {json.dumps(url.split('#')[0])}"
                    " && document.readyState === 'complete'"
                    " && (!window.ZS || (document.body && document.body.dataset.ready === '1'))"
                )
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    cdp.pump(0.1)
                    state = cdp.send("Runtime.evaluate", {"expression": ready_js, "returnByValue": True})
                    if state.get("result", {}).get("value") is True:
                        break
                else:
                    raise BrowserError(f"{url} did not finish loading within {timeout:.0f} s")
                cdp.pump(settle_s)
                for expr in evaluate:
                    out = cdp.send("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
                    if "exceptionDetails" in out:
                        report.exceptions.append(str(out["exceptionDetails"].get("exception", {}).get("description", expr)))
                    report.values.append(out.get("result", {}).get("value"))
                    cdp.pump(0.2)
                if capture is not None:
                    import base64

                    shot = cdp.send("Page.captureScreenshot", {"format": "png"})
                    capture.write_bytes(base64.b64decode(shot["data"]))
                res = cdp.send(
                    "Runtime.evaluate",
                    {
                        "expression": "JSON.stringify({d: Object.assign({}, document.body.dataset),"
                        " nav: (performance.getEntriesByType('navigation')[0] || {}).toJSON ? performance.getEntriesByType('navigation')[0].toJSON() : null,"
                        " ready: window.__zsReadyMs || null})",
                        "returnByValue": True,
                    },
                )
                data = json.loads(res["result"]["value"])
                report.dataset = {k: str(v) for k, v in data["d"].items()}
                nav = data.get("nav") or {}
                report.load_ms = nav.get("loadEventEnd") or None
                if "readyMs" in report.dataset:
                    report.ready_ms = float(report.dataset["readyMs"])
            finally:
                cdp.close()
        finally:
            _stop(proc)
            log.close()
    for ev in cdp.events:
        method, params = ev["method"], ev.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            report.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            det = params.get("exceptionDetails", {})
            report.exceptions.append(det.get("exception", {}).get("description") or det.get("text", "exception"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            report.log_errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            report.requests.append(params.get("request", {}).get("url", ""))
    return report

