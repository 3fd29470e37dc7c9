"""Command groups shared by the command modules (``zhaoshang events …``, ``zhaoshang land …``)."""

import typer

events_app = typer.Typer(help="事件日志 · the project event log.", no_args_is_help=True)
report_app = typer.Typer(help="报表 · reports.", no_args_is_help=True)
deadletters_app = typer.Typer(help="死信 · rejected records: why, and re-drive after a fix.", no_args_is_help=True)
land_app = typer.Typer(help="土地台账 · idle land and standard factories.", no_args_is_help=True)
ledger_app = typer.Typer(help="项目台账 · bureau spreadsheets to events.", no_args_is_help=True)
maps_app = typer.Typer(help="地图 · promotion, pipeline and match maps.", no_args_is_help=True)
users_app = typer.Typer(help="用户 · workspace users and their roles (admin, planner, unit, leader), API tokens.", no_args_is_help=True)
projections_app = typer.Typer(help="读模型 · read models kept from the log: status, update, rebuild [--check].", no_args_is_help=True)

GROUPS = {
    "events": events_app,
    "report": report_app,
    "deadletters": deadletters_app,
    "land": land_app,
    "ledger": ledger_app,
    "maps": maps_app,
    "projections": projections_app,
    "users": users_app,
}
