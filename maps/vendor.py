"""Third-party browser assets, vendored in the repository and the wheel, inlined into every page.

Maps are handed out on USB sticks and opened in halls without internet, so a page must never
load a script or stylesheet at view time, and the product never fetches anything at run time.
The pinned packages' files live under ``maps/vendor/`` (committed, and package data of the
wheel). ``python -m maps.vendor --force`` refreshes them with ``npm pack`` (the npm registry's
ordinary client) when a pin changes. Leaflet's CSS refers to a few PNG icons by relative URL; they
are rewritten to ``data:`` URIs so nothing is fetched relative to the page either.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "vendor"

# name -> (npm spec, files inside the package tarball we keep)
PACKAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "leaflet": (
        "leaflet@1.9.4",
        (
            "package/dist/leaflet.js",
            "package/dist/leaflet.css",
            "package/dist/images/layers.png",
            "package/dist/images/layers-2x.png",
            "package/dist/images/marker-icon.png",
            "package/dist/images/marker-icon-2x.png",
            "package/dist/images/marker-shadow.png",
            "package/LICENSE",
        ),
    ),
}

Say = Callable[[str], None]


class VendorError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Assets:
    """The inlinable text of the vendored scripts and stylesheets."""

    js: tuple[str, ...]
    css: tuple[str, ...]


def _package_dir(name: str) -> Path:
    return VENDOR_DIR / name


def is_vendored() -> bool:
    return all((_package_dir(n) / Path(f).relative_to("package")).is_file() for n, (_, fs) in PACKAGES.items() for f in fs)


def ensure_vendor(say: Say = print, *, force: bool = False) -> list[str]:
    """Fetch the pinned packages with ``npm pack`` unless present. Returns what was fetched."""
    fetched: list[str] = []
    npm = shutil.which("npm")
    for name, (spec, members) in PACKAGES.items():
        target = _package_dir(name)
        if not force and all((target / Path(m).relative_to("package")).is_file() for m in members):
            continue
        if npm is None:
            raise VendorError("npm is missing: install it (Debian: apt-get install npm) to fetch Leaflet at set-up")
        with tempfile.TemporaryDirectory() as tmp:
            say(f"$ npm pack {spec}")
            proc = subprocess.run(
                [npm, "pack", spec, "--silent", "--pack-destination", tmp], capture_output=True, text=True, cwd=tmp
            )
            tgz = sorted(Path(tmp).glob("*.tgz"))
            if proc.returncode != 0 or not tgz:
                raise VendorError(f"npm pack {spec} failed ({proc.returncode}): {proc.stderr.strip()[-1000:]}")
            staging = Path(tmp) / "out"
            with tarfile.open(tgz[0], "r:gz") as tar:
                for member in members:
                    info = tar.getmember(member)
                    data = tar.extractfile(info)
                    if data is None:
                        raise VendorError(f"{spec}: {member} is not a file")
                    dest = staging / Path(member).relative_to("package")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data.read())
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(staging, target)
        fetched.append(spec)
    return fetched


_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)
_CSS_URL = re.compile(r"url\((['\"]?)(images/[^)'\"]+)\1\)")


def _inline_css_urls(css: str, base: Path) -> str:
    """``url(images/x.png)`` -> ``url(data:image/png;base64,…)``: no request relative to the page."""

    def repl(m: re.Match[str]) -> str:
        path = base / m.group(2)
        b64 = base64.b64encode(path.read_bytes()).decode()
        return f"url(data:image/png;base64,{b64})"

    return _CSS_URL.sub(repl, css)


_cache: Assets | None = None


def assets() -> Assets:
    """The vendored Leaflet JS and CSS as text, ready to inline (never fetched here)."""
    global _cache
    if _cache is None:
        if not is_vendored():
            raise VendorError(f"the vendored Leaflet is missing under {VENDOR_DIR}: reinstall zhaoshang (its wheel carries it)")
        dist = _package_dir("leaflet") / "dist"
        js = _SOURCE_MAP.sub("", (dist / "leaflet.js").read_text(encoding="utf-8"))
        css = _inline_css_urls((dist / "leaflet.css").read_text(encoding="utf-8"), dist)
        _cache = Assets(js=(js,), css=(css,))
    return _cache


def main() -> None:
    try:
        done = ensure_vendor(say=lambda m: print(m, file=sys.stderr), force="--force" in sys.argv[1:])
    except VendorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    print(f"vendored {', '.join(done)}" if done else "vendored assets present", file=sys.stderr)


if __name__ == "__main__":
    main()
