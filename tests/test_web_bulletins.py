"""月通报 from the workspace: the Word file a planner downloads has the ranking table of the KPI report
(year to date by unit, as published at the month end); the PDF is a PDF; a month not ended is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from events.calendar import previous_month_end
from tests.bulletin_docs import expected_rows, table_rows, ytd
from tests.web_district import WebDistrict
from tests.webutil import client_login
from warehouse.db import make_engine


def test_workspace_bulletin_docx_equals_the_kpi_report(district_client: Any, web_district_url: Any, web_district: WebDistrict, tmp_path: Path) -> None:
    client_login(district_client, "leader1")
    month = previous_month_end(web_district.today)
    assert f"{month:%Y-%m}" in district_client.get("/bulletins").text
    response = district_client.get(f"/bulletins/{month:%Y-%m}.docx?as=published")
    assert response.status_code == 200, response.text[:500]
    path = tmp_path / "b.docx"
    path.write_bytes(response.content)
    engine = make_engine(web_district_url[0], as_app=False)
    try:
        assert table_rows(path)[1:] == expected_rows(ytd(engine, month, published=True))  # below the header row
    finally:
        engine.dispose()
    pdf = district_client.get(f"/bulletins/{month:%Y-%m}.pdf?as=corrected")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")


def test_unfinished_month_and_anonymous_are_refused(district_client: Any, web_district: WebDistrict) -> None:
    assert district_client.get(f"/bulletins/{web_district.today:%Y-%m}.docx", follow_redirects=False).status_code == 303
    client_login(district_client, "planner1")
    assert district_client.get(f"/bulletins/{web_district.today:%Y-%m}.docx").status_code == 404
    assert district_client.get("/bulletins/2024-13.docx").status_code == 404
