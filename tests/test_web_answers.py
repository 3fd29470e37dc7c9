"""Answers shared by the workspace's processes (``web.answers``): the codec, the warehouse level, the warming."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from events.model import SHANGHAI
from tests.web_district import dashboard_event, hostile_unit_events
from tests.webutil import app_for, client_login
from warehouse import read_models
from warehouse.dashboard import Series, UnitActivity
from warehouse.event_store import load_records
from web import answers
from web.answers import NotEncodable, answer, decode, encode
from web.app import warm_answers


@dataclass(frozen=True)
class Outsider:  # a dataclass of no answer's package (tests.*)
    x: int


def test_codec_gives_back_what_it_was_given() -> None:
    value = {
        "trend": [{"month": "2025-06", "signed": 3, "funds_wan": 1.25}],
        "series": Series([{"month": "2025-06"}], {"夏云镇": UnitActivity("夏云镇", 3, 1, date(2025, 1, 31), 5)}),
        "at": datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=SHANGHAI),
        "naive": datetime(2025, 6, 30, 12, 0),
        "day": date(2024, 2, 29),
        "pair": (1, "a", None, (date(2025, 1, 1),)),
        "$d": "a key that looks like a tag",
        "keys": {1: "int key", None: "none key", ("a", 2): "tuple key"},
        "nested": [[{"$c": "os:system", "f": {}}]],
        "flags": [True, False, 0, 0.5, "<script>alert(1)</script>"],
    }
    back = decode(encode(value))
    assert back == value
    assert type(back["pair"]) is tuple and type(back["pair"][3][0]) is date
    assert type(back["naive"]) is datetime and back["at"].utcoffset() == timedelta(hours=8)
    assert type(back["series"]) is Series and type(back["series"].activity["夏云镇"]) is UnitActivity
    assert back["nested"] == [[{"$c": "os:system", "f": {}}]]  # data that looks like a class stays data


def test_codec_refuses_what_it_does_not_carry() -> None:
    for value in (object(), {1, 2}, Outsider(1), b"bytes"):
        with pytest.raises(NotEncodable):
            encode(value)
    for forged in (b'{"$c": "os:system", "f": {}}', b'{"$c": "subprocess:Popen", "f": {"args": "true"}}', b'{"$c": "warehouse.db:make_engine", "f": {}}'):
        with pytest.raises(ValueError):
            decode(forged)


def _calls(found: Any) -> tuple[list[int], Any]:
    made: list[int] = []

    def compute() -> Any:
        made.append(1)
        return found

    return made, compute


def _one_process_later() -> None:
    answers._cache.clear()  # what another worker process starts with


def test_an_answer_is_computed_once_for_every_process_and_version(db: Engine) -> None:
    end = date(2025, 6, 30)
    load_records(db, hostile_unit_events(end))
    read_models.refresh(db)
    question = ("test.shared", end)
    value = {"rows": [{"signed_on": end, "n": 3}], "total": 3}
    made, compute = _calls(value)
    with db.connect() as conn:
        assert answer(conn, question, compute) == value
    _one_process_later()
    with db.connect() as conn:
        assert answer(conn, question, compute) == value
        kept = conn.execute(text("SELECT count(*) FROM web_answer")).scalar_one()
    assert made == [1] and kept == 1  # the second process read the first one's answer

    # An event appended: the models lag, nothing is reused or kept.
    recorded = datetime.combine(end, datetime.min.time(), SHANGHAI)
    load_records(db, [dashboard_event("X-s", "X", "signed", end - timedelta(days=3), {"investment_wan": 1, "investor": "某", "industry": "新材料", "name": "x", "unit": "某单位"}, recorded)])
    with db.connect() as conn:
        assert answer(conn, question, compute) == value
    assert made == [1, 1]
    # Caught up: a new version, computed again; the old version's answers are gone once it is kept.
    read_models.refresh(db)
    _one_process_later()
    with db.connect() as conn:
        answer(conn, question, compute)
        versions = conn.execute(text("SELECT count(DISTINCT models_version), count(*) FROM web_answer")).one()
    assert made == [1, 1, 1] and tuple(versions) == (1, 1)


def test_an_answer_the_codec_cannot_carry_stays_in_its_process(db: Engine) -> None:
    load_records(db, hostile_unit_events(date(2025, 6, 30)))
    read_models.refresh(db)
    made, compute = _calls({1, 2})
    with db.connect() as conn:
        assert answer(conn, ("test.set",), compute) == {1, 2}
        assert answer(conn, ("test.set",), compute) == {1, 2}
        assert conn.execute(text("SELECT count(*) FROM web_answer")).scalar_one() == 0
    assert made == [1]


def _refuse(*_a: Any, **_k: Any) -> Any:
    raise AssertionError("computed although warmed")


def test_warming_computes_the_default_answers_every_process_then_reads(web_district_url: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url, district = web_district_url
    app = app_for(url)
    engine: Engine = app.state.engine
    _one_process_later()
    warmed = warm_answers(engine, district.today, None)
    assert warmed is not None
    assert warm_answers(engine, district.today, warmed) is warmed  # same version, same day: nothing to do

    # Another process: every default answer comes from the warehouse, nothing is computed.
    _one_process_later()
    import web.routes.dashboard as dashboard_routes
    import web.routes.projects as project_routes

    monkeypatch.setattr(dashboard_routes, "_kpis", _refuse)
    monkeypatch.setattr(dashboard_routes, "series_at", _refuse)
    monkeypatch.setattr(project_routes.ProjectListing, "count", _refuse)
    monkeypatch.setattr(project_routes.ProjectListing, "page", _refuse)
    monkeypatch.setattr(project_routes, "filter_choices", _refuse)
    with TestClient(app) as client:
        for user in ("planner1", "unit_a", "unit_b", "leader1"):
            client.cookies.clear()
            client_login(client, user)
            for path in ("/dashboard", "/api/kpis?by=unit", "/api/kpis/trend", "/projects", "/api/projects"):
                assert client.get(path).status_code == 200, (user, path)
    _one_process_later()


def _question_key(conn: Any, question: tuple[Any, ...]) -> tuple[str, str, int]:
    """(sha, models version, advisory lock key) of a question, as ``web.answers.answer`` makes them."""
    import hashlib

    from warehouse.read_models import current_version

    version = current_version(conn)
    assert version is not None
    models_version = f"{version[0]}@{version[1].isoformat()}"
    sha = hashlib.sha256(f"{answers.code_fingerprint()}\n{models_version}\n{question!r}".encode()).hexdigest()
    return sha, models_version, int.from_bytes(bytes.fromhex(sha[:16]), "big", signed=True)


def test_a_process_waits_for_the_answer_another_one_is_computing(db: Engine) -> None:
    import threading

    from warehouse.answer_store import keep_answer

    load_records(db, hostile_unit_events(date(2025, 6, 30)))
    read_models.refresh(db)
    question = ("test.single-flight",)
    with db.connect() as other:  # another process, computing the question: it holds the question's lock
        sha, models_version, lock = _question_key(other, question)
        assert other.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock}).scalar()
        made, compute = _calls("computed here")
        got: list[Any] = []

        def ask() -> None:
            with db.connect() as conn:
                got.append(answer(conn, question, compute))

        waiter = threading.Thread(target=ask)
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and made == []  # waiting, not computing
        keep_answer(db, sha, models_version, repr(question), encode("computed there"))
        waiter.join(10)
        assert got == ["computed there"] and made == []
        other.rollback()

    # The other process ends without keeping an answer (it failed): the waiter computes it.
    _one_process_later()
    question = ("test.single-flight", 2)
    with db.connect() as other:
        _sha, _v, lock = _question_key(other, question)
        other.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock})
        made, compute = _calls("computed here")
        got.clear()
        waiter = threading.Thread(target=ask)
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and made == []
        other.rollback()  # its transaction ends: the lock is released
        waiter.join(10)
    assert got == ["computed here"] and made == [1]
