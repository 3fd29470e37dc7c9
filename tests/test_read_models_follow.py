"""The projector following the log beside a writer (what ``zhaoshang stream`` runs): it catches up
while appends go on, and what it stores equals what the log gives."""

from __future__ import annotations

import json
import os
import time
from datetime import date

from sqlalchemy import Engine, text

from demo.history import generate_history
from events.store import Horizon, Incoming
from warehouse import read_models
from warehouse.event_store import load_records
from warehouse.replay import fold_states

BOUND_S = 60  # only turns a hang into a failure


def test_the_follower_catches_up_while_appends_go_on(db: Engine) -> None:
    history = generate_history(seed=11, n_projects=300, start=date(2022, 1, 1), end=date(2024, 12, 31))
    lines = [Incoming(json.dumps(ev, ensure_ascii=False), "follow", str(i)) for i, ev in enumerate(history)]
    with read_models.Follower(db, 0.05) as follower:
        for i in range(0, len(lines), 200):  # appends keep coming while it follows
            load_records(db, lines[i : i + 200])
        deadline = time.monotonic() + BOUND_S
        with db.connect() as conn:
            while time.monotonic() < deadline:
                at = read_models.position(conn)
                top = conn.execute(text("SELECT max(seq) FROM event_log")).scalar_one()
                conn.rollback()
                if at == top:
                    break
                time.sleep(0.05)
        assert follower.process.pid is not None
        # Below the writer's priority: the appends come first on a busy machine.
        assert os.getpriority(os.PRIO_PROCESS, follower.process.pid) == min(os.getpriority(os.PRIO_PROCESS, 0) + read_models.FOLLOWER_NICENESS, 19)
    assert at == top and follower.rounds >= 1
    with db.begin() as conn:
        _, differences = read_models.check(conn)
        assert differences == []
        horizon = Horizon(date(2024, 6, 30))
        assert read_models.states_at(conn, horizon) == fold_states(conn, horizon)


def test_the_settled_position_waits_for_an_append_in_flight_and_holds_no_lock_after(db: Engine) -> None:
    import threading

    from warehouse.event_store import append_raw

    history = generate_history(seed=12, n_projects=20, start=date(2023, 1, 1), end=date(2024, 6, 30))
    lines = [Incoming(json.dumps(ev, ensure_ascii=False), "settle", str(i)) for i, ev in enumerate(history)]
    load_records(db, lines[:1])
    settled: list[int] = []
    with db.begin() as writer:
        append_raw(writer, lines[1:])  # holds the append lock to its commit
        in_flight = writer.execute(text("SELECT max(seq) FROM event_log")).scalar_one()

        def settle() -> None:
            with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                settled.append(read_models.settled_seq(conn))

        reader = threading.Thread(target=settle)
        reader.start()
        reader.join(0.5)
        assert reader.is_alive() and not settled  # it waits for the append to commit
    reader.join(BOUND_S)
    assert settled == [in_flight]  # and then sees all of it
    with db.connect() as conn:
        held = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar_one()
    assert held == 0  # the server released the lock with the query: nothing waits on this process
