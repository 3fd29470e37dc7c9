"""read models: status, update, rebuild and check against the log."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from zhaoshang.common import (
    DatabaseUrl,
    JsonFlag,
    console,
    emit_json,
    engine_of,
    keep_read_models,
    out,
    progress,
    styled,
)
from zhaoshang.groups import projections_app


def status(database_url: DatabaseUrl = None, json_out: JsonFlag = False) -> None:
    """读模型状态 · the log position each read model reflects and how far it lags."""
    from warehouse import read_models

    with engine_of(database_url).connect() as conn:
        info = read_models.status(conn)
    if json_out:
        emit_json(info)
        return
    out.print(
        f"{info['projection']}: 位置 seq {info['seq']:,} / 日志 log {info['log_seq']:,} · "
        f"滞后 lag {info['lag_events']:,} events · {info['versions']:,} versions of {info['open_projects']:,} projects · "
        f"updated {info['updated_at']}"
    )


def update(database_url: DatabaseUrl = None, json_out: JsonFlag = False) -> None:
    """更新读模型 · bring the read models up to the log (only the projects touched since their position)."""
    done = keep_read_models(engine_of(database_url), "更新 update")
    if json_out:
        emit_json(asdict(done))
        return
    out.print(f"seq {done.from_seq:,} → {done.to_seq:,}: {done.projects:,} projects, {done.versions:,} versions")


def rebuild(
    check: Annotated[bool, typer.Option("--check", help="Change nothing: compare what is stored with what the log gives; exit 1 on any difference.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=0, help="--check: differences listed (0: all).")] = 50,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
) -> None:
    """重建读模型 · rebuild the read models from the log alone, or --check them against it."""
    from warehouse import read_models

    engine = engine_of(database_url)
    with progress() as bar:
        task = bar.add_task("核对 check" if check else "重建 rebuild", total=None, status="")

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, status="projects")

        with engine.begin() as conn:
            if check:
                at, differences = read_models.check(conn, on_progress=on_progress)
            else:
                built = read_models.rebuild(conn, on_progress=on_progress)
    if not check:
        if json_out:
            emit_json(asdict(built))
        else:
            out.print(f"rebuilt at seq {built.to_seq:,}: {built.projects:,} projects, {built.versions:,} versions")
        return
    shown = differences[:limit] if limit else differences
    if json_out:
        emit_json({"seq": at, "differences": len(differences), "listed": [asdict(d) for d in shown]})
    else:
        if differences:
            console.print(styled(("不一致 differences:", "bold red"), f" {len(differences):,} at seq {at:,}"))
            for d in shown:
                out.print(f"  {d.project_id} from {d.valid_from}: {d.what} — {d.detail}")
        else:
            out.print(f"一致 no difference: the read models equal the log at seq {at:,}")
    if differences:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    projections_app.command("status")(status)
    projections_app.command("update")(update)
    projections_app.command("rebuild")(rebuild)
