"""``zhaoshang settings``: every environment variable the product reads, its value and its meaning."""

from __future__ import annotations

import typer
from rich.table import Table

from zhaoshang.common import JsonFlag, emit_json, fail, out
from zhaoshang.settings import InvalidSettings, describe_invalid, load_settings


def settings_cmd(json_out: JsonFlag = False) -> None:
    """环境设置 · the environment variables zhaoshang reads, with their values here and what they mean."""
    try:
        settings = load_settings()
    except InvalidSettings as exc:
        fail(f"invalid setting: {describe_invalid(exc)}")
    rows = settings.variables()
    if json_out:
        emit_json([{"variable": v, "value": value or None, "description": d} for v, value, d in rows])
        return
    table = Table(title="环境变量 environment variables")
    for col in ("变量 variable", "值 value", "说明 description"):
        table.add_column(col, overflow="fold")
    for variable, value, description in rows:
        table.add_row(variable, value or "—", description)
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("settings")(settings_cmd)
