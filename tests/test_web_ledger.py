"""台账导入 in the workspace: the preview says what ``zhaoshang ledger import --dry-run`` says, confirming
writes the events once, refused files leave no trace, and only the bureau may do it."""

from __future__ import annotations

import json
import random
import re
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from ingestion.ledger_import import import_ledger
from tests.dbutil import truncate
from tests.ledger_fixtures import write_month1, write_month2
from tests.web_district import HOSTILE_NAMES
from tests.webutil import app_for, client_login, external_requests, login
from zhaoshang.cli import app as cli_app

BAD_CSV = "项目名称,总投资(万元),签约时间,开工时间\n甲项目,1000,2018.1.5,2018.13.1\n乙项目,2000,2018.2.1,\n合计,3000,,\n"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def _count(db: Engine, table: str = "event_log") -> int:
    with db.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _cli(db_url: str, path: Path, *extra: str) -> dict[str, Any]:
    res = CliRunner().invoke(cli_app, ["ledger", "import", str(path), *extra, "--database-url", db_url, "--json"])
    assert res.exit_code in (0, 1), res.output  # 1: rows rejected (still a report)
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def _files(path: Path) -> dict[str, Any]:
    return {"file": (path.name, path.read_bytes(), "application/octet-stream")}


def _html_figures(html: str) -> dict[str, Any]:
    """What the preview page states, read back from its data attributes."""
    rows = {k: int(v) for k, v in re.findall(r'data-rows="(\w+)">(\d+)<', html)}
    by_type = {k: int(v) for k, v in re.findall(r'<tr data-type="(\w+)"><td>.*?data-count>(\d+)<', html, re.S)}
    planned = re.search(r'data-events="planned">(\d+)<', html)
    changes = dict(re.findall(r'data-change="(\w+)">[^<]*?(\d+)</span>', html))
    return {"rows": rows, "by_type": by_type, "planned": int(planned.group(1)) if planned else None, "changes": {k: int(v) for k, v in changes.items()}}


def _assert_html_says(html: str, report: dict[str, Any]) -> None:
    figures = _html_figures(html)
    assert figures["rows"] == report["rows"]
    assert figures["planned"] == report["events"]["planned"]
    assert figures["by_type"] == report["events"]["by_type"]
    assert figures["changes"] == report["changes"]
    for change in report["details"]:
        if change["kind"] != "new":
            assert str(escape(change["detail"])) in html, change
    for rejected in report["rejected"]:
        assert f'<tr data-row="{rejected["row"]}">' in html and str(escape(rejected["reason"])) in html
    for m in report["totals_row_mismatches"]:
        assert f'data-field="{m["field"]}"' in html
    assert f"<strong class=\"as-of\">{report['as_of']}</strong>" in html


def _confirm_form(html: str) -> dict[str, str]:
    form = re.search(r'<form method="post" action="/ledger/confirm/(\d+)"(.*?)</form>', html, re.S)
    assert form, "the preview carries a confirm form"
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(2)))
    fields["upload_id"] = form.group(1)
    return fields


def test_preview_equals_the_cli_dry_run(client: TestClient, web_db: Engine, db_url_str: str, tmp_path: Path) -> None:
    # month 1 in the log, then month 2: corrections (retraction + started) and more funds
    import_ledger(web_db, write_month1(tmp_path))
    before = _count(web_db)
    month2 = write_month2(tmp_path)
    cli = _cli(db_url_str, month2, "--dry-run")
    assert cli["events"]["by_type"] == {"funds_arrived": 1, "retracted": 1, "started": 1}
    csrf = client_login(client, "planner1")
    api = client.post("/api/ledger/preview", files=_files(month2), headers={"X-CSRF-Token": csrf})
    assert api.status_code == 200, api.text
    assert api.json() == cli
    assert re.fullmatch(r"[0-9a-f]{64}", api.headers["X-Ledger-Plan"]) and int(api.headers["X-Upload-Id"]) >= 1
    page = client.post("/ledger/preview", files=_files(month2), data={"csrf_token": csrf})
    assert page.status_code == 200, page.text
    _assert_html_says(page.text, cli)
    assert 'data-project="PB-001" data-type="started"' in page.text and "白云镇" in page.text  # with project and unit
    assert _count(web_db) == before, "a preview writes nothing to the log"
    assert _count(web_db, "web_upload") == 2


def test_preview_of_rejected_rows_and_options_equals_the_cli(client: TestClient, web_db: Engine, db_url_str: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV, encoding="utf-8")
    cli = _cli(db_url_str, path, "--dry-run", "--as-of", "2018-03-31")
    assert cli["rows"]["rejected"] == 1 and cli["totals_row_mismatches"]
    csrf = client_login(client, "admin1")
    api = client.post("/api/ledger/preview", files=_files(path), data={"as_of": "2018-03-31"}, headers={"X-CSRF-Token": csrf})
    assert api.status_code == 200 and api.json() == cli
    # HTMX asks for the result panel alone
    page = client.post("/ledger/preview", files=_files(path), data={"csrf_token": csrf, "as_of": "2018-03-31"}, headers={"HX-Request": "true"})
    assert page.status_code == 200 and "<html" not in page.text
    _assert_html_says(page.text, cli)
    assert "2018.13.1" in page.text
    assert _confirm_form(page.text)["as_of"] == "2018-03-31"


def test_confirm_adds_the_events_once(client: TestClient, web_db: Engine, tmp_path: Path) -> None:
    month1 = write_month1(tmp_path)
    csrf = client_login(client, "planner1")
    preview = client.post("/ledger/preview", files=_files(month1), data={"csrf_token": csrf})
    form = _confirm_form(preview.text)
    upload_id = form.pop("upload_id")
    done = client.post(f"/ledger/confirm/{upload_id}", data=form)
    assert done.status_code == 200, done.text
    assert 'data-mode="imported"' in done.text and re.search(r'data-append="accepted">10<', done.text)
    assert _count(web_db) == 10
    with web_db.connect() as conn:
        sources = conn.execute(text("SELECT DISTINCT source FROM event_log")).scalars().all()
        position = conn.execute(text("SELECT source_position FROM event_log WHERE project_id = 'PB-002' LIMIT 1")).scalar_one()
        rm_seq = conn.execute(text("SELECT seq FROM rm_position")).scalar_one()
        max_seq = conn.execute(text("SELECT max(seq) FROM event_log")).scalar_one()
        versions = conn.execute(text("SELECT count(DISTINCT project_id) FROM rm_project_version")).scalar_one()
    assert sources == ["ledger:平坝区招商引资项目台账"]  # the series, as the CLI writes it: later months find it
    assert "web:planner1" in position and "台账_2018-03.xlsx" in position
    assert rm_seq == max_seq and versions == 4, "the read models follow the import"
    again = client.post(f"/ledger/confirm/{upload_id}", data=form)
    assert again.status_code == 200 and re.search(r'data-append="accepted">0<', again.text)
    assert _count(web_db) == 10, "confirming twice adds nothing"


def test_api_confirm_equals_the_cli_import_and_is_idempotent(client: TestClient, web_db: Engine, db_url_str: str, tmp_path: Path) -> None:
    month1 = write_month1(tmp_path)
    csrf = client_login(client, "planner1")
    preview = client.post("/api/ledger/preview", files=_files(month1), headers={"X-CSRF-Token": csrf})
    upload_id, sha, plan = preview.headers["X-Upload-Id"], preview.headers["X-Upload-SHA256"], preview.headers["X-Ledger-Plan"]
    first = client.post(f"/api/ledger/confirm/{upload_id}", params={"sha256": sha, "plan": plan}, headers={"X-CSRF-Token": csrf})
    assert first.status_code == 200, first.text
    assert first.json()["append"]["accepted"] == 10 and first.json()["reconcile"]["mismatches"] == []
    second = client.post(f"/api/ledger/confirm/{upload_id}", params={"sha256": sha, "plan": plan}, headers={"X-CSRF-Token": csrf})
    assert second.status_code == 200 and second.json()["append"]["accepted"] == 0 and second.json()["events"]["planned"] == 0
    assert _count(web_db) == 10
    assert second.json() == _cli(db_url_str, month1), "a repeated import says the same on the web and in the CLI"
    with web_db.begin() as conn:
        truncate(conn, "event_log")
    assert first.json() == _cli(db_url_str, month1), "the first import says the same on the web and in the CLI"
    wrong = client.post(f"/api/ledger/confirm/{upload_id}", params={"sha256": "0" * 64}, headers={"X-CSRF-Token": csrf})
    assert wrong.status_code == 409
    assert client.post("/api/ledger/confirm/999999", headers={"X-CSRF-Token": csrf}).status_code == 404


def test_confirm_refuses_when_the_log_changed_since_the_preview(client: TestClient, web_db: Engine, tmp_path: Path) -> None:
    month1 = write_month1(tmp_path)
    csrf = client_login(client, "planner1")
    form = _confirm_form(client.post("/ledger/preview", files=_files(month1), data={"csrf_token": csrf}).text)
    upload_id = form.pop("upload_id")
    other = tmp_path / "other.csv"  # an earlier ledger of another series signs PB-002 on another day
    other.write_text("项目编号,项目名称,投资方,总投资(万元),签约时间\nPB-002,食品加工项目,乙食品公司,8000,2018.1.1\n", encoding="utf-8")
    earlier = import_ledger(web_db, other, as_of=date(2018, 1, 31))
    assert earlier.append is not None and earlier.append.accepted == 1
    before = _count(web_db)
    refused = client.post(f"/ledger/confirm/{upload_id}", data=form)
    assert refused.status_code == 409 and "preview" in refused.text, refused.text[-6000:]
    assert _count(web_db) == before


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("ledger.xlsx", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(200), 415),  # an .exe renamed
        ("台账_2018-03.xlsx", random.Random(7).randbytes(4096), 415),
        ("empty.csv", b"", 422),
    ],
)
def test_wrong_types_are_refused_and_nothing_is_kept(client: TestClient, web_db: Engine, name: str, content: bytes, status: int) -> None:
    csrf = client_login(client, "planner1")
    files = {"file": (name, content, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")}
    page = client.post("/ledger/preview", files=files, data={"csrf_token": csrf})
    assert page.status_code == status
    assert ("by its content this file is not" if status == 415 else "empty") in page.text
    api = client.post("/api/ledger/preview", files=files, headers={"X-CSRF-Token": csrf})
    assert api.status_code == status and api.json()["detail"]
    assert _count(web_db) == 0 and _count(web_db, "web_upload") == 0


def test_a_zip_that_is_not_a_workbook_and_an_unreadable_ledger_are_refused(client: TestClient, web_db: Engine, tmp_path: Path) -> None:
    fake = tmp_path / "fake.xlsx"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("readme.txt", "not a workbook")
    csrf = client_login(client, "planner1")
    assert client.post("/api/ledger/preview", files=_files(fake), headers={"X-CSRF-Token": csrf}).status_code == 415
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n1,2\n", encoding="utf-8")
    res = client.post("/api/ledger/preview", files=_files(junk), headers={"X-CSRF-Token": csrf})
    assert res.status_code == 422 and "no header row" in str(res.json()["detail"])
    assert _count(web_db, "web_upload") == 0


def test_an_oversized_file_is_refused(database_url: Any, web_db: Engine, tmp_path: Path) -> None:
    month1 = write_month1(tmp_path)
    with TestClient(app_for(database_url, upload_max_bytes=1000)) as small:
        csrf = client_login(small, "planner1")
        page = small.post("/ledger/preview", files=_files(month1), data={"csrf_token": csrf}, headers={"HX-Request": "true"})
        assert page.status_code == 413 and "the limit is 1,000" in page.text
        api = small.post("/api/ledger/preview", files=_files(month1), headers={"X-CSRF-Token": csrf})
        assert api.status_code == 413 and "the limit is 1,000" in api.json()["detail"]
    assert _count(web_db) == 0 and _count(web_db, "web_upload") == 0


@pytest.mark.parametrize("username", ["leader1", "unit_a"])
def test_only_the_bureau_uploads_ledgers(client: TestClient, web_db: Engine, tmp_path: Path, username: str) -> None:
    csrf = client_login(client, username)
    page = client.get("/ledger")
    assert page.status_code == 403 and 'href="/ledger"' not in page.text
    assert client.post("/ledger/preview", files=_files(write_month1(tmp_path)), data={"csrf_token": csrf}).status_code == 403
    assert client.post("/api/ledger/preview", files=_files(write_month1(tmp_path)), headers={"X-CSRF-Token": csrf}).status_code == 403
    assert client.post("/api/ledger/confirm/1", headers={"X-CSRF-Token": csrf}).status_code == 403
    assert _count(web_db, "web_upload") == 0


def test_anonymous_is_sent_to_login_and_the_bureau_sees_the_menu_item(client: TestClient, web_db: Engine) -> None:
    assert client.get("/ledger", follow_redirects=False).headers["location"].startswith("/login")
    assert client.post("/api/ledger/preview").status_code in (401, 403)  # the CSRF check comes first
    client_login(client, "planner1")
    page = client.get("/ledger")
    assert page.status_code == 200 and 'href="/ledger"' in page.text and "台账导入" in page.text


def test_csrf_is_required(client: TestClient, web_db: Engine, tmp_path: Path) -> None:
    client_login(client, "planner1")
    month1 = write_month1(tmp_path)
    assert client.post("/ledger/preview", files=_files(month1)).status_code == 403
    assert client.post("/ledger/preview", files=_files(month1), data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/api/ledger/preview", files=_files(month1)).status_code == 403
    assert _count(web_db, "web_upload") == 0


def test_hostile_cell_text_is_shown_as_text(client: TestClient, web_db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "hostile_2020-01.csv"
    lines = ["项目名称,投资方,责任单位,总投资(万元),签约时间,开工时间"]
    lines += [f'"{n.replace(chr(34), chr(34) * 2)}","{n.replace(chr(34), chr(34) * 2)}",<b>镇</b>,100,2020.1.2,' for n in HOSTILE_NAMES]
    lines.append("乙项目,某公司,某镇,100,2020.1.3,<img src=y onerror=alert(3)>")  # rejected: the reason quotes the cell
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    csrf = client_login(client, "planner1")
    page = client.post("/ledger/preview", files=_files(path), data={"csrf_token": csrf, "as_of": "2020-01-31"})
    assert page.status_code == 200, page.text
    for name in HOSTILE_NAMES:
        assert str(escape(name)) in page.text
    assert "<script>alert" not in page.text and "<img src=" not in page.text and "<b>镇</b>" not in page.text
    assert "&lt;b&gt;镇&lt;/b&gt;" in page.text and "&lt;img src=y onerror=alert(3)&gt;" in page.text


def test_browser_uploads_previews_and_confirms(browser: Any, web_server: str, web_db: Engine, tmp_path: Path) -> None:
    month1 = write_month1(tmp_path)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    outside = external_requests(page)
    try:
        login(page, web_server, "planner1")
        page.goto(f"{web_server}/ledger")
        page.set_input_files("input[name=file]", str(month1))
        page.click("form.ledger-form button[type=submit]")
        page.wait_for_selector(".ledger-report[data-mode=preview]")
        assert page.url == f"{web_server}/ledger", "HTMX swapped the preview into the page"
        assert page.locator("[data-events=planned]").inner_text() == "10"
        assert _count(web_db) == 0
        page.screenshot(path=str(SCREENSHOTS / "ledger-desktop.png"))
        page.set_viewport_size({"width": 375, "height": 812})
        page.locator(".ledger-report").evaluate("el => el.scrollIntoView()")
        page.screenshot(path=str(SCREENSHOTS / "ledger-phone.png"))
        page.set_viewport_size({"width": 1280, "height": 800})
        page.click("form.confirm button[type=submit]")
        page.wait_for_selector(".ledger-report[data-mode=imported]")
        assert page.locator("[data-append=accepted]").inner_text() == "10"
        assert _count(web_db) == 10
        assert outside == []
    finally:
        context.close()


def test_file_names_are_kept_safe_and_typed_by_content() -> None:
    from warehouse.uploads import MAX_NAME_BYTES, safe_filename
    from web.routes.ledger import ledger_file_name

    assert safe_filename("C:\\Users\\张三\\台账_2018-03.xlsx") == "台账_2018-03.xlsx"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("..") == "upload" and safe_filename("a\x00b\n.csv") == "ab.csv"
    long_name = safe_filename("台" * 300 + ".xlsx")
    assert long_name.endswith(".xlsx") and len(long_name.encode()) <= MAX_NAME_BYTES
    assert ledger_file_name("台账_2018-03.xlsx", "csv") == "台账_2018-03.csv"  # CSV text named .xlsx is read as CSV
    assert ledger_file_name("ledger", "xlsx") == "ledger.xlsx" and ledger_file_name("x.XLSM", "xlsx") == "x.XLSM"


def test_a_csv_field_over_the_csv_limit_is_refused_not_an_error(client: TestClient, web_db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "huge_2018-03.csv"
    path.write_text('项目名称,总投资(万元),签约时间\n"' + "长" * 200_000 + '",1,2018.1.1\n', encoding="utf-8")
    csrf = client_login(client, "planner1")
    res = client.post("/api/ledger/preview", files=_files(path), headers={"X-CSRF-Token": csrf})
    assert res.status_code in (200, 422), res.text
