"""The ``zhaoshang`` command."""

from __future__ import annotations

import importlib
import sys

import typer

from zhaoshang.common import exit_codes_text

_app = typer.Typer(
    name="zhaoshang",
    help="招商引资项目全周期与土地台账平台 · investment-promotion pipeline and land inventory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog="退出码 exit codes:\n\n" + exit_codes_text().replace("\n", "\n\n"),
)



@_app.callback()
def _root() -> None:
    # A callback keeps the app a group of commands when a run loads a module with one command
    # (`demo`, `match`): typer would otherwise make that command the whole program.
    pass


# Each command group lives in its own module and registers itself. A run imports only the modules
# of the command it was given (a module pulls in its layer: the web app, Dagster, geopandas), so a
# command starts without the others' imports; `--help`, no command or an unknown one loads them all.
COMMAND_MODULES = {
    "setup": ("zhaoshang.commands.core",),
    "replay": ("zhaoshang.commands.core",),
    "events": ("zhaoshang.commands.core", "zhaoshang.commands.stream"),
    "report": ("zhaoshang.commands.core", "zhaoshang.commands.bulletin"),
    "deadletters": ("zhaoshang.commands.core",),
    "demo": ("zhaoshang.commands.demo",),
    "stream": ("zhaoshang.commands.stream",),
    "broker": ("zhaoshang.commands.stream",),
    "ledger": ("zhaoshang.commands.ledger",),
    "land": ("zhaoshang.commands.land",),
    "maps": ("zhaoshang.commands.maps",),
    "match": ("zhaoshang.commands.match",),
    "settings": ("zhaoshang.commands.settings",),
    "projections": ("zhaoshang.commands.projections",),
    "serve": ("zhaoshang.commands.serve",),
    "users": ("zhaoshang.commands.serve",),
}
# The order `--help` lists them in.
ALL_MODULES = (
    "zhaoshang.commands.core",
    "zhaoshang.commands.bulletin",
    "zhaoshang.commands.demo",
    "zhaoshang.commands.stream",
    "zhaoshang.commands.ledger",
    "zhaoshang.commands.land",
    "zhaoshang.commands.maps",
    "zhaoshang.commands.match",
    "zhaoshang.commands.settings",
    "zhaoshang.commands.projections",
    "zhaoshang.commands.serve",
)
_loaded: set[str] = set()


def modules_for(args: list[str]) -> tuple[str, ...]:
    """The command modules a command line needs: its command's, or all of them."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command in COMMAND_MODULES:
        return COMMAND_MODULES[command]
    return ALL_MODULES


def load_commands(modules: tuple[str, ...]) -> typer.Typer:
    """The command line with these modules' commands registered (each module once a process)."""
    from zhaoshang.groups import GROUPS

    for name in modules:
        if name not in _loaded:
            importlib.import_module(name).register(_app)
            _loaded.add(name)
    added = {info.name for info in _app.registered_groups}
    for group, sub in GROUPS.items():
        if group not in added and (sub.registered_commands or sub.registered_groups):
            _app.add_typer(sub, name=group)
    return _app


def __getattr__(name: str) -> typer.Typer:
    # ``from zhaoshang.cli import app``: every command (tests, documentation).
    if name == "app":
        return load_commands(modules_for([]))
    raise AttributeError(name)


def main() -> None:
    """The console script: whatever escapes a command ends it with one line on stderr, not a traceback.

    Commands word the failures they expect (``common.fail``); this is the net under them, for
    the ones that come from below: a connection killed mid-load, a file that turned unreadable.
    ``ZHAOSHANG_DEBUG=1`` lets the traceback through.
    """
    from zhaoshang.common import ExitCode, describe_failure, fail, leave
    from zhaoshang.logs import configure_logging
    from zhaoshang.settings import InvalidSettings, describe_invalid, load_settings

    try:
        settings = load_settings()
    except InvalidSettings as exc:
        try:
            fail(f"invalid setting (see `zhaoshang settings`): {describe_invalid(exc)}")
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None
    configure_logging(settings.log_format, settings.log_level)
    app = load_commands(modules_for(sys.argv[1:]))
    try:
        app()
    except Exception as exc:
        if settings.debug:
            raise
        try:
            fail(describe_failure(exc), code=ExitCode.FAILED)
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None
    finally:
        leave()


if __name__ == "__main__":
    main()
