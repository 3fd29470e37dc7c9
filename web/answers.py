"""Answers reused while the log stands still: a small cache per process, keyed by the read models' version.

Every answer the read models give (KPIs, trends, project lists) is the same for the same question
as long as the models are current with the log and not rebuilt: the log is append-only, and an
answer "as known at T" never changes afterwards either. ``warehouse.read_models.current_version`` says
whether that holds (position = newest event) and names the version (position, updated_at); the key
is the database, that version and the question. While the models lag behind the log nothing is
cached: each request computes its answer, exactly, as the read models' readers do.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from sqlalchemy import Connection

from warehouse.read_models import current_version

T = TypeVar("T")
CACHE_SIZE = 512  # answers per process (each is a page of rows or a few figures: kilobytes)

_cache: OrderedDict[tuple[Hashable, ...], object] = OrderedDict()
_lock = threading.Lock()


def answer(conn: Connection, question: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
    """``compute()``, or the answer it gave for the same ``question`` at the same read-model version."""
    version = current_version(conn)
    if version is None:
        return compute()
    key = (conn.engine.url.render_as_string(hide_password=True), version, *question)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]  # type: ignore[return-value]
    found = compute()
    with _lock:
        _cache[key] = found
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return found
