"""Query parameters the pages share: dates, the as-of / known-at horizon, choice patterns.

One reading for every page, so a date the land page refuses the projects page refuses the same
way (422, both languages), and the product's clock gives the default as-of day.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from fastapi import HTTPException, Request

from events.store import Horizon
from warehouse.replay import parse_known_at

EARLIEST, LATEST = date(1990, 1, 1), date(2200, 12, 31)  # dates a query may name
DATE = r"^$|^\d{4}-\d{2}-\d{2}$"  # an empty form field, or YYYY-MM-DD


def choice(values: Iterable[object]) -> str:
    """A query pattern: empty (no filter) or one of ``values``."""
    return "^(|" + "|".join(str(v) for v in values) + ")$"


def parse_day(name: str, value: str | None) -> date | None:
    """The date of query parameter ``name`` (None when empty); 422 when it is no date or out of range."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name}: 不是有效日期 not a valid date: {value!r}") from None
    if not EARLIEST <= day <= LATEST:
        raise HTTPException(422, f"{name}: 应在 {EARLIEST} 至 {LATEST} 之间 must be between {EARLIEST} and {LATEST}")
    return day


def parse_as_of(request: Request, as_of: str | None) -> date:
    """The as-of date of a query: the product's today when absent."""
    day = parse_day("as_of", as_of)
    if day is not None:
        return day
    today: date = request.app.state.config.today()
    return today


def parse_known(known_at: str | None) -> datetime | None:
    """The known-at instant of a query (None when empty); 422 when unreadable or out of range."""
    if not known_at:
        return None
    try:
        instant = parse_known_at(known_at)
    except Exception:  # noqa: BLE001 - any unreadable instant is the caller's error, said as such
        raise HTTPException(422, f"known_at: 不是有效时刻 not a valid date or instant: {known_at!r}") from None
    if not EARLIEST <= instant.date() <= LATEST:
        raise HTTPException(422, f"known_at: 应在 {EARLIEST} 至 {LATEST} 之间 must be between {EARLIEST} and {LATEST}")
    return instant


def horizon_of(request: Request, as_of: str | None, known_at: str | None) -> Horizon:
    """The horizon (as of, known at) a page's query asks for."""
    return Horizon(parse_as_of(request, as_of), parse_known(known_at))
