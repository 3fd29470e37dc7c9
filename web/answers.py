"""Answers reused while the log stands still: kept in the process and in the warehouse, keyed by the read models' version.

Every answer the read models give (KPIs, trends, project lists) is the same for the same question
as long as the models are current with the log and not rebuilt: the log is append-only, and an
answer "as known at T" never changes afterwards either. ``warehouse.read_models.current_version`` says
whether that holds (position = newest event) and names the version (position, updated_at); while
the models lag behind the log nothing is reused: each request computes its answer, exactly, as the
read models' readers do.

Two levels: a small LRU per process, then the warehouse (``web_answer``), so every worker process
and every host behind a proxy computes each question once per version, not once each; a process
that finds another one computing the same question (its advisory lock) waits for that answer. In the
warehouse an answer is tagged JSON (:func:`encode` / :func:`decode`): dates, instants, tuples and the
answers' own dataclasses come back as they went in; data is never code (no pickle), and a type the
codec does not know is simply not shared. Its key is the SHA-256 of the code's fingerprint (a
changed module never reads another code's answers), the version and the question's ``repr``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from warehouse.answer_store import keep_answer, read_answer
from warehouse.read_models import current_version

log = logging.getLogger(__name__)

T = TypeVar("T")
CACHE_SIZE = 512  # answers per process (each is a page of rows or a few figures: kilobytes)
WAIT_S = 20.0  # at most this long for another process's answer to the same question, then compute it too
POLL_S = 0.05
# The packages whose dataclasses an answer may hold (decoding builds nothing else).
DATACLASS_PACKAGES = ("events.", "warehouse.", "web.")
_ROOT = Path(__file__).resolve().parent.parent

_cache: OrderedDict[tuple[Hashable, ...], object] = OrderedDict()
_lock = threading.Lock()


class NotEncodable(TypeError):
    """A value the codec does not carry (the answer stays in its process)."""


def _tag(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):  # before date: a datetime is a date
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, list):
        return [_tag(v) for v in value]
    if isinstance(value, tuple):
        return {"$t": [_tag(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: _tag(v) for k, v in value.items()}
        return {"$m": [[_tag(k), _tag(v)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if not cls.__module__.startswith(DATACLASS_PACKAGES):
            raise NotEncodable(f"{cls.__module__}.{cls.__qualname__}")
        fields = {f.name: _tag(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$c": f"{cls.__module__}:{cls.__qualname__}", "f": fields}
    raise NotEncodable(type(value).__qualname__)


def _class(name: str) -> type:
    module, _, qualname = name.partition(":")
    if not module.startswith(DATACLASS_PACKAGES) or "." in qualname:
        raise ValueError(f"not an answer's class: {name}")
    cls = getattr(importlib.import_module(module), qualname)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ValueError(f"not a dataclass: {name}")
    return cls


def _untag(value: Any) -> Any:
    if isinstance(value, list):
        return [_untag(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key == "$d":
            return date.fromisoformat(inner)
        if key == "$dt":
            return datetime.fromisoformat(inner)
        if key == "$t":
            return tuple(_untag(v) for v in inner)
        if key == "$m":
            return {_untag(k): _untag(v) for k, v in inner}
    if "$c" in value:
        return _class(value["$c"])(**{k: _untag(v) for k, v in value["f"].items()})
    return {k: _untag(v) for k, v in value.items()}


def encode(value: Any) -> bytes:
    """Tagged JSON of an answer; :class:`NotEncodable` for a type it does not carry."""
    return orjson.dumps(_tag(value))


def decode(blob: bytes) -> Any:
    """The answer :func:`encode` was given (equal to it, of the same types)."""
    return _untag(orjson.loads(blob))


@cache
def code_fingerprint() -> str:
    """SHA-256 of the modules that make answers (the domain, the warehouse, the workspace)."""
    digest = hashlib.sha256()
    for package in ("events", "warehouse", "web"):
        for path in sorted((_ROOT / package).rglob("*.py")):
            digest.update(path.relative_to(_ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def answer(conn: Connection, question: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
    """``compute()``, or the answer it gave for the same ``question`` at the same read-model version
    (in this process, else in any process of this warehouse)."""
    version = current_version(conn)
    if version is None:
        return compute()
    key = (conn.engine.url.render_as_string(hide_password=True), version, *question)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]  # type: ignore[return-value]
    models_version = f"{version[0]}@{version[1].isoformat()}"
    asked = repr(question)
    sha = hashlib.sha256(f"{code_fingerprint()}\n{models_version}\n{asked}".encode()).hexdigest()
    found: T = _once(conn, sha, lambda: _computed(conn, sha, models_version, asked, compute))
    with _lock:
        _cache[key] = found
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return found


def _computed(conn: Connection, sha: str, models_version: str, asked: str, compute: Callable[[], T]) -> T:
    found = compute()
    _share(conn, sha, models_version, asked, found)
    return found


def _once(conn: Connection, sha: str, compute: Callable[[], T]) -> T:
    """The kept answer, else ``compute()`` — unless another process is computing the same question
    (it holds the question's advisory lock): then wait for its answer to be kept, polling, for at most
    ``WAIT_S``. The lock is the transaction's (released however the request ends) and only ever tried,
    never waited on, so nested questions cannot deadlock."""
    lock = int.from_bytes(bytes.fromhex(sha[:16]), "big", signed=True)
    deadline = time.monotonic() + WAIT_S
    while True:
        kept = read_answer(conn, sha)
        if kept is not None:
            return decode(kept)  # type: ignore[no-any-return]
        if conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock}).scalar() or time.monotonic() > deadline:
            kept = read_answer(conn, sha)  # kept between the look and the lock
            return decode(kept) if kept is not None else compute()
        time.sleep(POLL_S)


def _share(conn: Connection, sha: str, models_version: str, asked: str, found: object) -> None:
    try:
        blob = encode(found)
    except NotEncodable as exc:
        log.warning("answer to %s kept in this process only: %s is not encodable", asked[:200], exc)
        return
    try:
        keep_answer(conn.engine, sha, models_version, asked, blob)
    except SQLAlchemyError:  # a cache that cannot be written costs a recomputation, never the request
        log.warning("answer to %s not kept in the warehouse", asked[:200], exc_info=True)
