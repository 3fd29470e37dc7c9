"""Pausing Python's cyclic garbage collector around bulk work that builds many acyclic objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside: each pass would rescan every object already built (events
    loaded for a replay, a batch being prepared), a fifth to a third of such work's CPU. Nests:
    the collector is re-enabled only by the outermost pause, and only if it was enabled before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
