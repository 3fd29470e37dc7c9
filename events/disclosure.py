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
nor any project: :func:`public_match` is the public view of a match result.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

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


def public_match(result: Mapping[str, Any]) -> dict[str, Any]:
    """A match result as a public page may show it: no investor name, no project named in any reason.

    Only the ``status`` constraint of a site that is not available names projects (the ones
    occupying it): that is a closest miss's failed constraint (ranked sites are available), and
    its reason is worded again without them (``events.matching.status_reason``).
    """
    from events.matching import status_reason

    def row(r: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in r.items() if k != "project_ids"}
        if out.get("failed") == "status":
            out["reason_zh"], out["reason_en"] = status_reason(out.get("value"), ())
        return out

    public = {k: v for k, v in result.items() if k != "investor"}
    public["investor"] = None
    public["results"] = [row(r) for r in result.get("results") or []]
    public["closest_misses"] = [row(m) for m in result.get("closest_misses") or []]
    return public
