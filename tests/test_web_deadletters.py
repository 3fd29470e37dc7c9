"""死信 dead letters in the workspace: admins see why, fix the text and re-drive it (as the CLI does)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from events.store import Incoming
from tests.webutil import client_login, external_requests, login
from warehouse import read_models
from warehouse.event_store import append_raw
from warehouse.users import add_api_token, get_user
from web.security import sha256_hex

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
BROKEN = '{"event_id": "dl-1", "project_id": "DL-P", "type": "signed", "occurred_at": "2024-03-01", "payload": {"name": "<b>死信项目</b>"'
FIXED = {
    "event_id": "dl-1", "project_id": "DL-P", "type": "signed", "occurred_at": "2024-03-01",
    "recorded_at": "2024-03-01T20:00:00+08:00", "payload": {"name": "<b>死信项目</b>", "investment_wan": 100},
}
STILL_BAD = {"event_id": "dl-1", "project_id": "DL-P", "type": "no-such-type", "occurred_at": "2024-03-01", "payload": {}}


def _letter(db: Engine, raw: str = BROKEN, position: str = "1") -> int:
    with db.begin() as conn:
        result = append_raw(conn, [Incoming(raw, "test:web-deadletters", position)])
    assert result.rejected == 1
    with db.connect() as conn:
        return int(conn.execute(text("SELECT max(id) FROM dead_letter")).scalar_one())


def _row(db: Engine, letter_id: int) -> Any:
    with db.connect() as conn:
        return conn.execute(text("SELECT status, attempts, reason, raw, fixed_raw FROM dead_letter WHERE id = :i"), {"i": letter_id}).one()


def _token(db: Engine, username: str) -> str:
    secret = f"token-of-{username}"
    with db.begin() as conn:
        user = get_user(conn, username)
        assert user is not None
        add_api_token(conn, user_id=user.user_id, token_sha256=sha256_hex(secret), label="test")
    return secret


def test_admin_sees_the_letter_with_its_reason_and_raw_text(client: Any, web_db: Engine) -> None:
    letter_id = _letter(web_db)
    client_login(client, "admin1")
    page = client.get("/deadletters")
    assert page.status_code == 200
    assert f'id="letter-{letter_id}"' in page.text
    assert "&lt;b&gt;死信项目&lt;/b&gt;" in page.text and "<b>死信项目</b>" not in page.text  # raw shown as text
    assert re.search(r'<pre class="raw">[^<]*dl-1', page.text)
    reason = _row(web_db, letter_id).reason
    assert reason.split(":")[0] in page.text
    assert "resolved" not in client.get("/deadletters?status=resolved").text or "no-letters" in client.get("/deadletters?status=resolved").text
    assert client.get("/deadletters?status=bogus").status_code == 422


def test_fix_and_redrive_through_the_page(client: Any, web_db: Engine) -> None:
    letter_id = _letter(web_db)
    csrf = client_login(client, "admin1")
    # A fix that is JSON but still no valid event: still failing, with the new reason, one more attempt.
    response = client.post(f"/deadletters/{letter_id}/retry", data={"csrf_token": csrf, "replacement": json.dumps(STILL_BAD)})
    assert response.status_code == 200
    assert 'data-outcome="failing"' in response.text
    row = _row(web_db, letter_id)
    assert row.status == "open" and row.attempts == 1 and "no-such-type" in row.reason
    assert row.raw == BROKEN  # the original is never overwritten
    # Not JSON: refused before any attempt, the text kept in the form.
    response = client.post(f"/deadletters/{letter_id}/retry", data={"csrf_token": csrf, "replacement": "{not json"})
    assert response.status_code == 422 and "not JSON" in response.text and "{not json</textarea>" in response.text
    assert _row(web_db, letter_id).attempts == 1
    # The real fix: accepted, in the log, the letter resolved and the read models up to the log.
    response = client.post(f"/deadletters/{letter_id}/retry", data={"csrf_token": csrf, "replacement": json.dumps(FIXED, ensure_ascii=False)})
    assert response.status_code == 200 and 'data-outcome="accepted"' in response.text
    row = _row(web_db, letter_id)
    assert row.status == "resolved" and row.attempts == 2 and row.raw == BROKEN
    with web_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_log WHERE event_id = 'dl-1'")).scalar_one() == 1
        assert read_models.position(conn) == conn.execute(text("SELECT max(seq) FROM event_log")).scalar_one()
    assert f'id="letter-{letter_id}"' in client.get("/deadletters?status=resolved").text
    # A resolved letter is not re-driven again.
    again = client.post(f"/deadletters/{letter_id}/retry", data={"csrf_token": csrf, "replacement": ""})
    assert again.status_code == 409


def test_retry_as_it_is_redrives_the_stored_text(client: Any, web_db: Engine) -> None:
    """The textarea comes prefilled with the raw text: sent back unchanged, the stored text is retried (no fixed_raw)."""
    letter_id = _letter(web_db)
    csrf = client_login(client, "admin1")
    response = client.post(f"/deadletters/{letter_id}/retry", data={"csrf_token": csrf, "replacement": BROKEN})
    assert 'data-outcome="failing"' in response.text
    row = _row(web_db, letter_id)
    assert row.attempts == 1 and row.fixed_raw is None


def test_csrf_is_required(client: Any, web_db: Engine) -> None:
    letter_id = _letter(web_db)
    client_login(client, "admin1")
    assert client.post(f"/deadletters/{letter_id}/retry", data={"replacement": json.dumps(FIXED)}).status_code == 403
    assert client.post(f"/api/deadletters/{letter_id}/retry", json={"replacement": json.dumps(FIXED)}).status_code == 403
    assert _row(web_db, letter_id).attempts == 0


@pytest.mark.parametrize("username", ["planner1", "unit_a", "leader1"])
def test_non_admins_get_403(client: Any, web_db: Engine, username: str) -> None:
    letter_id = _letter(web_db)
    csrf = client_login(client, username)
    assert client.get("/deadletters").status_code == 403
    assert client.get(f"/deadletters/{letter_id}").status_code == 403
    assert client.get("/api/deadletters").status_code == 403
    assert client.post(f"/deadletters/{letter_id}/retry", data={"csrf_token": csrf, "replacement": json.dumps(FIXED)}).status_code == 403
    assert _row(web_db, letter_id).attempts == 0
    bearer = {"Authorization": f"Bearer {_token(web_db, username)}"}
    client.cookies.clear()
    assert client.post(f"/api/deadletters/{letter_id}/retry", json={}, headers=bearer).status_code == 403


def test_anonymous_is_sent_to_log_in(client: Any, web_db: Engine) -> None:
    assert client.get("/deadletters", follow_redirects=False).status_code == 303
    assert client.get("/api/deadletters").status_code == 401


def test_the_api_lists_and_redrives_with_a_bearer_token(client: Any, web_db: Engine) -> None:
    first = _letter(web_db, position="1")
    second = _letter(web_db, raw="not json at all <script>", position="2")
    bearer = {"Authorization": f"Bearer {_token(web_db, 'admin1')}"}
    listing = client.get("/api/deadletters?limit=1", headers=bearer).json()
    assert listing["total"] == 2 and [i["id"] for i in listing["items"]] == [second]  # newest first
    assert client.get("/api/deadletters?offset=1&limit=1", headers=bearer).json()["items"][0]["id"] == first
    refused = client.post(f"/api/deadletters/{first}/retry", json={"replacement": "{nope"}, headers=bearer)
    assert refused.status_code == 422
    outcome = client.post(f"/api/deadletters/{first}/retry", json={"replacement": json.dumps(FIXED)}, headers=bearer).json()
    assert outcome["accepted"] == 1 and outcome["letter"]["status"] == "resolved"
    failing = client.post(f"/api/deadletters/{second}/retry", headers=bearer).json()
    assert failing["still_failing"] == 1 and failing["failures"][0]["id"] == second and failing["letter"]["attempts"] == 1
    assert client.post("/api/deadletters/999999/retry", headers=bearer).status_code == 404
    assert client.get("/api/deadletters?status=resolved", headers=bearer).json()["total"] == 1


def test_fix_and_redrive_in_the_browser(browser: Any, web_server: str, web_db: Engine) -> None:
    letter_id = _letter(web_db)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        outside = external_requests(page)
        login(page, web_server, "admin1")
        page.goto(f"{web_server}/deadletters")
        card = page.locator(f"#letter-{letter_id}")
        assert "dl-1" in card.locator("textarea").input_value()
        page.screenshot(path=str(SCREENSHOTS / "deadletters-desktop.png"))
        page.set_viewport_size({"width": 375, "height": 812})
        page.screenshot(path=str(SCREENSHOTS / "deadletters-phone.png"))
        page.set_viewport_size({"width": 1280, "height": 800})
        card.locator("textarea").fill(json.dumps(FIXED, ensure_ascii=False, indent=1))
        card.locator("button[type=submit]").click()
        page.wait_for_selector("#retry-result")
        assert page.locator("#retry-result").get_attribute("data-outcome") == "accepted"
        assert _row(web_db, letter_id).status == "resolved"
        assert outside == []
    finally:
        context.close()
