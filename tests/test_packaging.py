"""The wheel is the product: it carries the migrations and the vendored browser assets, so an
installed zhaoshang renders maps offline and never fetches anything at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_wheel_carries_its_front_end_assets_and_migrations(tmp_path: Path) -> None:
    # A copy of the tracked files: a build leaves build/ behind, and stale files there would be shipped.
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    source = tmp_path / "src"
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("zhaoshang-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for member in (
        "maps/vendor/leaflet/dist/leaflet.js",
        "maps/vendor/leaflet/dist/leaflet.css",
        "maps/vendor/leaflet/dist/images/marker-icon.png",
        "maps/vendor/leaflet/LICENSE",
        "maps/runtime.js",
        "warehouse/alembic.ini",
        "assets/definitions.py",
        "zhaoshang/clock.py",
    ):
        assert member in names, member
    assert any(n.startswith("warehouse/migrations/versions/") for n in names)
    assert not any(n.startswith("tests/") for n in names)


def test_rendering_never_fetches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The vendored assets are read from the package; no npm, no network, even when npm is absent."""
    from maps import vendor

    monkeypatch.setattr(vendor, "_cache", None)
    monkeypatch.setattr(vendor.shutil, "which", lambda _name: pytest.fail("npm looked up at render time"))
    got = vendor.assets()
    assert "L.version" in got.js[0] or "Leaflet" in got.js[0]
    assert "data:image/png;base64," in got.css[0]
