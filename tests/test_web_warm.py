"""`zhaoshang serve` builds today's land and public views when a process starts (no user waits for the first)."""

from __future__ import annotations

import time
from typing import Any

from tests.webutil import app_for


def test_views_are_built_in_the_background_at_start(web_district_url: Any) -> None:
    app = app_for(web_district_url[0], warm_caches=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        land = getattr(app.state, "land_views", None)
        public = getattr(app.state, "public_views", None)
        if land is not None and land.loads >= 1 and public is not None and public._views:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the views were not warmed")
    assert not hasattr(app_for(web_district_url[0]).state, "land_views")  # off by default (the tests' apps)
