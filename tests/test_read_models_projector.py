"""The projector's paths, on PostGIS: a rebuild, and updates in many small rounds (projects split
across rounds extend their open versions; retractions and late records re-version whole), each
equal to what the log gives (``read_models.check``, the reference fold of every project)."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import Engine, text

from demo.history import generate_history
from events.store import Incoming
from warehouse import read_models
from warehouse.event_store import load_records


def _lines(seed: int) -> list[Incoming]:
    history = generate_history(seed=seed, n_projects=250, start=date(2021, 1, 1), end=date(2024, 12, 31))
    return [Incoming(json.dumps(ev, ensure_ascii=False), "projector", str(i)) for i, ev in enumerate(history)]


def _differences(db: Engine) -> list[read_models.Difference]:
    with db.begin() as conn:
        _, differences = read_models.check(conn)
    return differences


def test_a_rebuild_gives_what_the_log_gives(db: Engine) -> None:
    lines = _lines(5)
    load_records(db, lines)
    with db.begin() as conn:
        built = read_models.rebuild(conn)
        stored = conn.execute(text("SELECT count(*) FROM rm_project_version")).scalar_one()
    assert built.versions == stored > 0
    assert _differences(db) == []


def test_updates_in_small_rounds_give_what_the_log_gives(db: Engine) -> None:
    lines = _lines(6)
    # The log in the generator's order (project by project) with every 7th record held back and
    # appended at the end: late records among in-order ones.
    late = lines[::7]
    ordered = [line for i, line in enumerate(lines) if i % 7]
    for i in range(0, len(ordered), 90):
        load_records(db, ordered[i : i + 90])
        read_models.refresh(db)
    load_records(db, late)
    read_models.refresh(db)
    assert _differences(db) == []
    with db.begin() as conn:
        assert read_models.position(conn) == conn.execute(text("SELECT max(seq) FROM event_log")).scalar_one()
