"""``zhaoshang report bulletin``: the monthly bulletin (月通报) as Markdown, Word, PDF or HTML."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from events.calendar import month_end
from reports.bulletin_document import BulletinFormat, BulletinVersion
from zhaoshang.common import (
    DatabaseUrl,
    ExitCode,
    JsonFlag,
    console,
    emit_json,
    engine_of,
    fail,
    out,
    output_file,
    styled,
)
from zhaoshang.groups import report_app
from zhaoshang.settings import load_settings


def parse_month(value: str) -> date:
    """``YYYY-MM`` → that month's last day (a usage error otherwise)."""
    m = re.fullmatch(r"\s*(\d{4})-(\d{1,2})\s*", value)
    if not m or not 1 <= int(m.group(2)) <= 12:
        fail(f"--month expects a month like 2024-03, got {value!r}")
    return month_end(date(int(m.group(1)), int(m.group(2)), 1))


def report_bulletin(
    month: Annotated[str, typer.Option("--month", help="The month of the bulletin, YYYY-MM (ranked on the year to its end).")],
    as_: Annotated[BulletinVersion, typer.Option("--as", help="published: as known at the month end; corrected: as known now, with the corrections since.")] = BulletinVersion.PUBLISHED,
    fmt: Annotated[BulletinFormat, typer.Option("--format", help="md, docx (Word), pdf (headless Chromium) or html.")] = BulletinFormat.MD,
    out_file: Annotated[Path | None, typer.Option("--out", help="The file to write (md: default stdout).")] = None,
    district: Annotated[str, typer.Option("--district", help="The district named in the title, e.g. 平坝区.")] = "",
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """月通报 · the monthly bulletin: narrative, ranking by unit with 红黄绿灯, funnel and trend, corrections."""
    from reports.bulletin import bulletin_difference, bulletin_markdown
    from warehouse.bulletin import bulletin_reports

    day = parse_month(month)
    if out_file is None and fmt != BulletinFormat.MD:
        fail(f"--format {fmt.value} needs --out FILE")
    if out_file is not None:
        output_file(out_file, "--out")
    engine = engine_of(database_url)
    with engine.connect() as conn:
        reports = bulletin_reports(conn, day, as_.value)
    corrections = len(bulletin_difference(reports["published"], reports["corrected"]))
    if fmt == BulletinFormat.MD:
        text = bulletin_markdown(reports["published"], reports["corrected"], day, version=as_.value) + "\n"
        if out_file is None:
            out.file.write(text)
            return
        try:
            out_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {out_file}: {exc.strerror or exc}")
    else:
        assert out_file is not None
        _write_document(reports, day, as_, fmt, out_file, district)
    if json_out:
        emit_json({"month": f"{day:%Y-%m}", "as": as_.value, "format": fmt.value, "path": str(out_file.resolve()), "corrections": corrections})
    else:
        console.print(styled(("✓", "green"), f" 月通报 bulletin {day:%Y-%m} ({as_.value}, {corrections} 更正 corrections): ", str(out_file.resolve())))


def _write_document(reports: dict[str, Any], day: date, as_: BulletinVersion, fmt: BulletinFormat, path: Path, district: str) -> None:
    from maps.browser import BrowserError
    from reports.bulletin_document import BulletinReports, Version, build_bulletin
    from reports.bulletin_render import write_bulletin_files

    version: Version = "corrected" if as_ == BulletinVersion.CORRECTED else "published"
    content = build_bulletin(BulletinReports(**reports), day, version=version, district=district)
    chromium = load_settings().chromium
    try:
        write_bulletin_files(content, **{fmt.value: path}, chromium=chromium)
    except BrowserError as exc:
        fail(f"--format {fmt.value}: {exc}", code=ExitCode.FAILED)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


def register(app: typer.Typer) -> None:
    report_app.command("bulletin")(report_bulletin)
