"""The one clock and the month arithmetic everything date-dependent goes through."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from events.calendar import add_months, month_end, month_ends, months_between, previous_month_end
from zhaoshang import clock

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("day", "end", "previous"),
    [
        (date(2028, 2, 29), date(2028, 2, 29), date(2028, 1, 31)),
        (date(2027, 3, 1), date(2027, 3, 31), date(2027, 2, 28)),
        (date(2026, 12, 31), date(2026, 12, 31), date(2026, 11, 30)),
        (date(2027, 1, 1), date(2027, 1, 31), date(2026, 12, 31)),
        (date(2100, 2, 15), date(2100, 2, 28), date(2100, 1, 31)),
    ],
)
def test_month_ends_on_awkward_days(day: date, end: date, previous: date) -> None:
    assert month_end(day) == end
    assert previous_month_end(day) == previous


def test_month_sequences() -> None:
    assert month_ends(date(2026, 1, 15), date(2026, 3, 20)) == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 20)]
    assert month_ends(date(2026, 3, 1), date(2026, 3, 31)) == [date(2026, 3, 31)]
    assert month_ends(date(2027, 11, 3), date(2028, 2, 29)) == [date(2027, 11, 30), date(2027, 12, 31), date(2028, 1, 31), date(2028, 2, 29)]
    assert add_months(date(2026, 12, 31), 2) == date(2027, 2, 1)
    assert add_months(date(2027, 1, 31), -1) == date(2026, 12, 1)
    assert months_between(date(2019, 1, 1), date(2026, 10, 31)) == 94
    assert months_between(date(2026, 5, 1), date(2026, 4, 30)) == 0


def test_the_clock_is_pinned_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.TODAY_VARIABLE, "2028-02-29")
    assert clock.today() == date(2028, 2, 29) and clock.pinned_today() == date(2028, 2, 29)
    monkeypatch.setenv(clock.TODAY_VARIABLE, "")
    assert clock.pinned_today() is None and isinstance(clock.today(), date)
    monkeypatch.setenv(clock.TODAY_VARIABLE, "2028-02-30")
    with pytest.raises(clock.ClockError, match="ZHAOSHANG_TODAY"):
        clock.today()


def test_a_bad_pinned_day_is_one_line_from_the_cli(db_url_str: str) -> None:
    env = {"ZHAOSHANG_TODAY": "yesterday", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([str(BIN / "zhaoshang"), "replay", "--database-url", db_url_str], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "ZHAOSHANG_TODAY" in done.stderr and "Traceback" not in done.stderr


def test_no_module_reads_the_calendar_but_the_clock() -> None:
    """Business dates come from zhaoshang/clock.py; the warehouse's own arrival stamps are system time."""
    root = Path(__file__).resolve().parent.parent
    # The stores stamp an event's arrival with system time (a fact of the system, not a business date).
    allowed = {Path("zhaoshang/clock.py"), Path("warehouse/event_store.py"), Path("events/memory_store.py")}
    offenders = []
    for package in ("events", "land", "warehouse", "ingestion", "reports", "maps", "assets", "zhaoshang", "demo"):
        for path in (root / package).rglob("*.py"):
            rel = path.relative_to(root)
            source = path.read_text(encoding="utf-8")
            if rel not in allowed and any(s in source for s in ("date.today(", "datetime.now(", "datetime.today(", "time.localtime(")):
                offenders.append(str(rel))
    assert offenders == []
