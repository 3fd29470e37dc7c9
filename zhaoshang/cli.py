"""The ``zhaoshang`` command."""

from __future__ import annotations

import importlib

import typer

from zhaoshang.common import exit_codes_text

app = typer.Typer(
    name="zhaoshang",
    help="招商引资项目全周期与土地台账平台 · investment-promotion pipeline and land inventory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog="退出码 exit codes:\n\n" + exit_codes_text().replace("\n", "\n\n"),
)

# Each command group lives in its own module and registers itself.
COMMAND_MODULES = (
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

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)

from zhaoshang.groups import GROUPS  # noqa: E402

for _group, _sub in GROUPS.items():
    if _sub.registered_commands or _sub.registered_groups:
        app.add_typer(_sub, name=_group)


def main() -> None:
    """The console script: whatever escapes a command ends it with one line on stderr, not a traceback.

    Commands word the failures they expect (``common.fail``); this is the net under them, for
    the ones that come from below: a connection killed mid-load, a file that turned unreadable.
    ``ZHAOSHANG_DEBUG=1`` lets the traceback through.
    """
    from pydantic import ValidationError

    from zhaoshang.common import ExitCode, describe_failure, fail
    from zhaoshang.logs import configure_logging
    from zhaoshang.settings import describe_invalid, load_settings

    try:
        settings = load_settings()
    except ValidationError as exc:
        try:
            fail(f"invalid setting (see `zhaoshang settings`): {describe_invalid(exc)}")
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None
    configure_logging(settings.log_format, settings.log_level)
    try:
        app()
    except Exception as exc:
        if settings.debug:
            raise
        try:
            fail(describe_failure(exc), code=ExitCode.FAILED)
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None


if __name__ == "__main__":
    main()
