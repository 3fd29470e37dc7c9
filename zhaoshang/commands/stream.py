"""Kafka: ``events publish``, ``stream`` (the warehouse sink) and ``broker`` (a local Tansu)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.exc import DBAPIError

from ingestion.broker import DEFAULT_TOPIC, BrokerError, LocalBroker
from ingestion.kafka_stream import (
    DEFAULT_PARTITIONS,
    DEFAULT_SINK_BATCH,
    SinkFenced,
    StreamError,
    publish_records,
    run_sink,
    run_sink_workers,
)
from warehouse import read_models
from warehouse.event_store import read_jsonl
from zhaoshang.common import (
    DatabaseUrl,
    ExitCode,
    JsonFlag,
    console,
    emit_json,
    engine_of,
    fail,
    finish,
    keep_read_models,
    progress,
    styled,
    url_of,
)
from zhaoshang.groups import events_app
from zhaoshang.logs import LogFormat, configure_logging, more_verbose
from zhaoshang.settings import load_settings

log = logging.getLogger(__name__)

Bootstrap = Annotated[
    str,
    typer.Option("--bootstrap", envvar="ZHAOSHANG_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers, HOST:PORT[,HOST:PORT].")
]
Topic = Annotated[
    str | None,
    typer.Option("--topic", help=f"Kafka topic of the lifecycle events (default: ZHAOSHANG_KAFKA_TOPIC, else {DEFAULT_TOPIC}).", show_default=False),
]

def publish(
    file: Annotated[Path, typer.Argument(help="JSON Lines file, one event per line.")],
    bootstrap: Bootstrap,
    topic: Topic = None,
    # Not --partitions: that names partitions (`stream --partitions 0,2`), this is how many.
    partition_count: Annotated[
        int, typer.Option("--partition-count", min=1, help="How many partitions the topic gets when this creates it.")
    ] = DEFAULT_PARTITIONS,
    validate: Annotated[bool, typer.Option("--validate", help="Check every line first; invalid lines are reported, not sent.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """发布事件 · publish events to Kafka, one message per line, keyed by project_id."""
    topic = topic or load_settings().kafka_topic
    if not file.is_file():
        fail(f"no such file: {file}")
    total = sum(1 for line in file.open("rb") if line.strip())
    with progress() as bar:
        task = bar.add_task(f"发布 publishing {file.name} → {topic}", total=total, status="")
        try:
            counts = publish_records(
                bootstrap,
                topic,
                # As `events load` reads it: each line sent as its bytes, whatever they hold (the sink explains).
                read_jsonl(file, file.name),
                partitions=partition_count,
                validate=validate,
                on_progress=lambda n: bar.update(task, completed=n),
            )
        except StreamError as exc:
            fail(str(exc))
    if json_out:
        emit_json(counts)
    else:
        console.print(
            f"读取 read {counts['read']} · 发送 sent {counts['sent']} · 无效 invalid {counts['invalid']}"
            f" → {topic} ({counts['partitions']} partitions)"
        )
        for reason in counts["invalid_reasons"][:20]:
            console.print(styled("  ", ("invalid:", "yellow"), " ", reason[:300]))
    finish(counts["invalid"])  # with --validate: lines kept out


def _parse_partitions(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        parts = [int(x) for x in value.replace(" ", "").split(",") if x != ""]
    except ValueError:
        fail(f"--partitions expects numbers like 0,2, got {value!r}")
    if not parts or any(p < 0 for p in parts):
        fail(f"--partitions expects partition numbers ≥ 0 like 0,2, got {value!r}")
    return parts


class _StreamLog:
    """Progress as log records: one every few seconds and the last,
    each with the sink's counters as fields (JSON lines under ``--log-format json``)."""

    EVERY_S = 5.0

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.last = -1e9

    def __enter__(self) -> _StreamLog:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, st: dict[str, Any]) -> None:
        import time

        if "waiting_for" in st:
            log.info("waiting for partitions %s", st["partitions_busy"], extra={"topic": self.topic, **st})
        elif st.get("final") or time.monotonic() - self.last >= self.EVERY_S:
            fields = {"topic": self.topic, **st, "lag": {str(p): v for p, v in st["lag"].items()}}
            log.info("sink stopped" if st.get("final") else "sink progress", extra=fields)
            self.last = time.monotonic()


class _StreamDisplay:
    """Progress on stderr: a live line on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.live = console.is_terminal
        self.bar = progress(transient=False) if self.live else None
        self.task: Any = None
        self.last_plain = -1e9

    def __enter__(self) -> _StreamDisplay:
        if self.bar is not None:
            self.bar.__enter__()
            self.task = self.bar.add_task(f"流入 streaming {self.topic}", total=None, status="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def __call__(self, st: dict[str, Any]) -> None:
        import time

        if "waiting_for" in st:
            line = f"等待 waiting: partitions {st['partitions_busy']} held by {'; '.join(st['waiting_for'])}"
        else:
            lag = " ".join(f"p{p}={'?' if v is None else v}" for p, v in sorted(st["lag"].items()))
            line = (
                f"{st['events_per_s']:,.0f} events/s · read {st['read']} accepted {st['accepted']}"
                f" dup {st['duplicates']} rejected {st['rejected']} · 积压 lag {lag}"
            )
        if self.bar is not None:
            self.bar.update(self.task, completed=st.get("read", 0), status=line)
        elif st.get("final") or time.monotonic() - self.last_plain >= 5:
            console.print(line)
            self.last_plain = time.monotonic()


def stream(
    bootstrap: Bootstrap,
    topic: Topic = None,
    name: Annotated[str, typer.Option("--name", help="Sink name: its offsets are kept under this name.")] = "warehouse",
    partitions: Annotated[str | None, typer.Option("--partitions", help="Partitions to stream, e.g. 0,2 (default: all).")] = None,
    stop_when_idle: Annotated[
        float | None, typer.Option("--stop-when-idle", min=0.0, help="Exit after this many seconds with no new message.")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Messages per warehouse transaction (at most).")] = DEFAULT_SINK_BATCH,
    wait: Annotated[bool, typer.Option("--wait", help="If another sink holds these partitions, wait and take over when it stops.")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="Read these partitions again from the start (already-stored events count as duplicates).")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Sink processes, the partitions dealt out among them (more cores).")] = 1,
    projections_every: Annotated[
        float,
        typer.Option("--projections-every", min=0, help="Seconds between bringing the read models up to the log while streaming (0: only when the sink stops)."),
    ] = 30.0,
    database_url: DatabaseUrl = None,
    json_out: JsonFlag = False,
    log_format: Annotated[
        LogFormat | None,
        typer.Option("--log-format", help="Progress as log lines: json for a log collector (default: ZHAOSHANG_LOG_FORMAT, else text).", show_default=False),
    ] = None,
) -> None:
    """流入数仓 · the warehouse sink: Kafka → event log, offsets in the same transaction (exactly once)."""
    settings = load_settings()
    topic = topic or settings.kafka_topic
    fmt = log_format or settings.log_format
    if fmt is LogFormat.JSON:
        # A collector wants the progress: logged at INFO at least, as JSON lines on stderr.
        configure_logging(fmt, more_verbose(settings.log_level, "INFO"))
    parts = _parse_partitions(partitions)
    engine = engine_of(database_url)
    stop = threading.Event()
    # Installed here (not in run_sink) so a SIGTERM during set-up also ends the command cleanly.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with _StreamLog(topic) if fmt is LogFormat.JSON else _StreamDisplay(topic) as display:
            options: dict[str, Any] = {
                "name": name,
                "partitions": parts,
                "stop_when_idle": stop_when_idle,
                "on_progress": display,
                "batch_size": batch_size,
                "wait_for_lock": wait,
                "reset": reset,
                "stop_event": stop,
            }
            with read_models.Follower(engine, projections_every):
                if workers > 1:
                    url = url_of(database_url).render_as_string(hide_password=False)
                    result = run_sink_workers(url, bootstrap, topic, workers=workers, **options)
                else:
                    result = run_sink(engine, bootstrap, topic, handle_signals=False, **options)
        keep_read_models(engine)
    except SinkFenced as exc:
        fail(str(exc), code=ExitCode.FENCED)
    except StreamError as exc:
        fail(str(exc))
    except DBAPIError as exc:
        # The batch in flight was rolled back with its offsets: restarting the sink is safe.
        fail(f"数据库错误 database error, the sink stopped (restart it: no event is lost or doubled): {exc.orig or exc}", code=ExitCode.FAILED)
    finally:
        engine.dispose()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if json_out:
        emit_json(result)
        return
    console.print(
        f"读取 read {result['read']} · 接收 accepted {result['accepted']} · 重复 duplicates {result['duplicates']}"
        f" · 拒收 rejected {result['rejected']} · {result['events_per_s']:,.0f} events/s · 停止 stopped by {result['stopped_by']}"
    )
    for p, info in result["partitions"].items():
        console.print(f"  partition {p}: next offset {info['next_offset']}, lag {info['lag']}, read {info['read']}")
    for warning in result.get("warnings", []):
        console.print(styled("  ", ("警告 warning:", "bold yellow"), " ", warning))
    for reason in result["reasons"][:10]:
        console.print(styled("  ", ("rejected:", "yellow"), " ", reason[:300]))
    if result["rejected"]:
        console.print("  see them with `zhaoshang deadletters list`")


def broker(
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="TCP port on 127.0.0.1 (default: a free one).")] = None,
) -> None:
    """本地消息代理 · run a local Kafka-compatible broker (Tansu, in memory) in the foreground."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with LocalBroker(port) as local:
            console.print(styled(("✓", "green"), f" Tansu 已启动 broker ready: --bootstrap {local.bootstrap}  (内存存储 in memory; Ctrl-C 停止 to stop)"))
            # The bootstrap address on stdout, for scripts.
            typer.echo(local.bootstrap)
            while not stop.wait(0.5):
                proc = local.process
                if proc is not None and proc.poll() is not None:
                    fail(f"the broker exited with code {proc.returncode}: {local.log_tail()}", code=ExitCode.FAILED)
    except BrokerError as exc:
        fail(str(exc))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("已停止 broker stopped")


def register(app: typer.Typer) -> None:
    events_app.command("publish")(publish)
    app.command("stream")(stream)
    app.command("broker")(broker)
