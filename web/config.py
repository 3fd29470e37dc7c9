"""What a workspace process needs, given by its entry point (``zhaoshang serve``, the tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class Lights:
    """红黄绿灯 of the ranking: a unit is yellow after ``yellow_months`` months without progress on
    any of its projects, red after ``red_months``."""

    yellow_months: int = 3
    red_months: int = 6


@dataclass(frozen=True, slots=True)
class WebConfig:
    """``today``: the product's clock (``zhaoshang.clock.today``), asked per request.
    ``secure_cookies``: set the cookies' Secure flag (behind HTTPS; off on loopback HTTP).
    """

    today: Callable[[], date]
    secure_cookies: bool = False
    session_ttl: timedelta = timedelta(hours=12)
    # Login throttling: failures allowed per user name (since its last success) and per client in the window.
    throttle_window: timedelta = timedelta(minutes=15)
    throttle_per_user: int = 5
    throttle_per_client: int = 30
    lights: Lights = field(default_factory=Lights)
    upload_max_bytes: int = 10 * 1024 * 1024
    chromium: str | None = None
    # Build today's land and public views when the process starts, so no user waits for the first
    # (seconds at a province's size); `zhaoshang serve` turns it on, tests leave it off.
    warm_caches: bool = False
    # With warm_caches: how often (seconds) to look for a new read-model version (or a new day) and
    # compute the default dashboard, KPI and project-list answers for it in one of the processes.
    warm_every_s: float = 60.0
