"""Closed vocabularies of options: each is a ``StrEnum`` defined once, in the lowest package that owns
it (the label language here, the KPI mode and grouping in ``events.kpis``, the land kinds in
``land.vocabulary``, the map profile and basemap in ``maps.vocabulary``).

The CLI declares its options with these types, so typer lists the values in ``--help`` and refuses
any other value itself (exit 2, a usage error). A member *is* its string (``Lang.EN == "en"``), so
the layers below take either; :func:`member` is the one check for a value that did not come
through the CLI (a Python caller, a Dagster config).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)


class Lang(StrEnum):
    """The language of labels: every label table is a (Chinese, English) pair."""

    ZH = "zh"
    EN = "en"
    BOTH = "both"


def member(vocabulary: type[E], value: str, name: str) -> E:
    """``value`` as a member of ``vocabulary``; else ``ValueError`` naming ``name`` and the allowed values."""
    try:
        return vocabulary(value)
    except ValueError:
        raise ValueError(f"{name} must be one of {', '.join(vocabulary)}, got {value!r}") from None
