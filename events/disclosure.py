"""What a public output may say about projects and investors: one rule, decided once.

Confidentiality (保密) is a property of a project's whole known history, not of its current
``signed`` event:

    A project is confidential when any ``signed`` payload known for it says
    ``"confidential": true``, also one that was later retracted (a retraction corrects a fact;
    it does not make a secret public), until an active ``signed`` event recorded after every such
    payload explicitly says ``"confidential": false``. A payload that omits the flag is no
    correction (ledgers never state it), and neither is one recorded at the same instant.

``events.projection.fold`` applies :func:`is_confidential` and stores the verdict in
``ProjectState.confidential``; :func:`is_public_project` is the one test every public output
uses for a project (the promotion map through ``warehouse.land.project_locations``' ``public``
column). A public page never names the requirement's investor (a prospect still negotiating)
nor any project: ``land.matching.public_match`` is the public view of a match result.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from events.model import Event, EventType

if TYPE_CHECKING:
    from events.projection import ProjectState


def _known(ev: Event) -> tuple[datetime, datetime]:
    # When the fact became known; an event not yet stamped on arrival is known from its own date.
    return (ev.recorded_at or ev.occurred_at, ev.occurred_at)


def is_confidential(signed: Iterable[Event], withdrawn: Container[str] = frozenset()) -> bool:
    """The rule above, over every ``signed`` event known for one project (retracted ones included;
    ``withdrawn`` holds the ids of the retracted ones)."""
    events = [e for e in signed if e.type is EventType.SIGNED]
    flagged = [_known(e) for e in events if e.payload.get("confidential") is True]
    if not flagged:
        return False
    last_secret = max(flagged)
    return not any(
        e.payload.get("confidential") is False and e.event_id not in withdrawn and _known(e)[0] > last_secret[0] for e in events
    )


def is_public_project(state: ProjectState) -> bool:
    """A project a public page may show: signed (an active ``signed`` event), not confidential, not cancelled."""
    return state.signed_on is not None and not state.confidential and state.cancelled_on is None
