"""Pure domain: the event model, validation, the lifecycle fold and KPIs. No I/O here."""

from events.model import Event, EventType, Stage
from events.projection import Anomaly, ProjectState, fold, fold_project
from events.validation import EventValidationError, parse_event, validate_record

__all__ = [
    "Anomaly",
    "Event",
    "EventType",
    "EventValidationError",
    "ProjectState",
    "Stage",
    "fold",
    "fold_project",
    "parse_event",
    "validate_record",
]
