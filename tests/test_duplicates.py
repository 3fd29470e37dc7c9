"""重复签约: one project signed at two promotion events is a candidate; a merge (an event) makes the
KPIs count it once, as known from the merge on; retracting the merge restores both."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text

from events.store import Horizon, Incoming
from tests.webutil import UNIT_A, client_login
from warehouse import duplicates, read_models
from warehouse.event_store import append_raw
from warehouse.replay import kpi_report, project_states
from zhaoshang import clock


def _signed(pid: str, name: str, investor: str, day: Any, amount: float, channel: str, industry: str = "新材料") -> dict[str, Any]:
    return {
        "event_id": f"{pid}-s", "project_id": pid, "type": "signed", "occurred_at": day.isoformat(),
        "payload": {"name": name, "investor": investor, "investment_wan": amount, "industry": industry, "unit": UNIT_A, "channel": channel},
    }


@pytest.fixture
def twice_signed(web_db: Engine) -> Engine:
    today = clock.today()
    first, second = today - timedelta(days=200), today - timedelta(days=60)
    records = [
        _signed("D-1", "年产5万吨新型材料项目", "某某新材料有限公司", first, 50000, "2026春季推介会"),
        _signed("D-2", "新型材料项目(二期)", "某某新材料 有限公司", second, 52000, "2026秋季推介会"),
        _signed("D-3", "精密铸件项目", "另一家公司", second, 8000, "2026秋季推介会", "装备制造"),
        _signed("D-4", "完全不同的物流园", "某某新材料有限公司", second, 51000, "2026秋季推介会"),
        {"event_id": "D-2-l", "project_id": "D-2", "type": "landed", "occurred_at": (second + timedelta(days=10)).isoformat(), "payload": {"land_area_mu": 80}},
    ]
    with web_db.begin() as conn:
        assert append_raw(conn, [Incoming(orjson.dumps(r), "test", None) for r in records]).accepted == len(records)
    read_models.refresh(web_db)
    return web_db


def _kpis(engine: Engine, known_at: datetime | None = None) -> dict[str, Any]:
    today = clock.today()
    with engine.connect() as conn:
        return kpi_report(conn, date_from=today - timedelta(days=365), date_to=today, known_at=known_at)


def test_the_pair_signed_at_two_events_is_a_candidate(twice_signed: Engine) -> None:
    with twice_signed.connect() as conn:
        found = duplicates.candidates(conn, clock.today())
    pairs = {(c.keep.project_id, c.duplicate.project_id) for c in found}
    assert pairs == {("D-1", "D-2")}
    reasons = " ".join(en for _, en in found[0].reasons)
    assert "same investor" in reasons and "two events" in reasons


def test_merge_counts_once_and_can_be_withdrawn(twice_signed: Engine) -> None:
    before = _kpis(twice_signed)
    with twice_signed.connect() as conn:
        published_at = conn.execute(text("SELECT max(recorded_at) FROM event_log")).scalar_one()
    with twice_signed.begin() as conn:
        merge_id = duplicates.merge(conn, duplicate="D-2", into="D-1", on=clock.today(), reason="同一项目", by="web:planner1")
    read_models.refresh(twice_signed)
    after = _kpis(twice_signed)
    assert after["signed"] == before["signed"] - 1
    assert after["investment_wan"] == pytest.approx(before["investment_wan"] - 52000)
    assert after["landed"] == before["landed"] - 1  # the duplicate's landing counts as the kept one's only
    # As known before the merge, the bulletin still shows both (it is reproduced as published).
    assert _kpis(twice_signed, known_at=published_at)["signed"] == before["signed"]
    # The fold (reference) agrees with the read models.
    with twice_signed.connect() as conn:
        states = project_states(conn, Horizon(clock.today()))
        from warehouse.replay import fold_states

        assert fold_states(conn, Horizon(clock.today()))["D-2"].merged_into == states["D-2"].merged_into == "D-1"
        assert set(duplicates.active_merges(conn)) == {"D-2"}
        assert duplicates.candidates(conn, clock.today()) == []
    with twice_signed.begin() as conn:
        duplicates.unmerge(conn, merge_event_id=merge_id, on=clock.today(), reason="误合并", by="web:planner1")
    read_models.refresh(twice_signed)
    assert _kpis(twice_signed)["signed"] == before["signed"]
    with twice_signed.connect() as conn:
        assert duplicates.active_merges(conn) == {}


def test_merge_refuses_unknown_and_self(twice_signed: Engine) -> None:
    with twice_signed.begin() as conn, pytest.raises(duplicates.MergeError, match="itself"):
        duplicates.merge(conn, duplicate="D-1", into="D-1", on=clock.today(), reason="", by="x")
    with twice_signed.begin() as conn, pytest.raises(duplicates.MergeError, match="no such project"):
        duplicates.merge(conn, duplicate="D-1", into="NOPE", on=clock.today(), reason="", by="x")


def test_planner_merges_in_the_workspace_and_unit_officer_may_not(client: Any, twice_signed: Engine) -> None:
    csrf = client_login(client, "unit_a")
    assert client.get("/duplicates").status_code == 403
    assert client.post("/api/duplicates/merge", json={"duplicate": "D-2", "into": "D-1"}, headers={"X-CSRF-Token": csrf}).status_code == 403
    client.cookies.clear()
    csrf = client_login(client, "planner1")
    page = client.get("/duplicates")
    assert page.status_code == 200 and "D-2" in page.text and "2026秋季推介会" in page.text
    assert client.post("/duplicates/merge", data={"duplicate": "D-2", "into": "D-1"}, follow_redirects=False).status_code == 403  # no CSRF
    done = client.post("/duplicates/merge", data={"duplicate": "D-2", "into": "D-1", "csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    merges = client.get("/duplicates").text
    assert "web:planner1" in merges and "撤销合并" in merges
    assert client.get("/api/duplicates").json() == []


def test_the_dashboard_trend_counts_a_merged_project_once(twice_signed: Engine) -> None:
    from warehouse.dashboard import series_at, trend_months

    today = clock.today()
    spans = trend_months(today, 12)
    with twice_signed.begin() as conn:
        duplicates.merge(conn, duplicate="D-2", into="D-1", on=today, reason="", by="web:planner1")
    read_models.refresh(twice_signed)
    with twice_signed.connect() as conn:
        trend = series_at(conn, Horizon(today)).trend
        flow = kpi_report(conn, date_from=spans[0][0], date_to=spans[-1][1], mode="flow")
    assert sum(m["signed"] for m in trend) == flow["signed"]
    assert sum(m["landed"] for m in trend) == flow["landed"]
