"""Every case of the log-store contract (``tests/store_contract.py``) on both stores: in memory and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from events.memory_store import MemoryLogStore
from tests.store_contract import CASES, StoreFactory


@pytest.fixture(params=["memory", "postgis"])
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    if request.param == "memory":
        return MemoryLogStore
    from ingestion.log_store import PostgisLogStore

    engine = request.getfixturevalue("db")  # only this store needs the database (emptied per test)
    return lambda: PostgisLogStore(engine)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_contract(case: Callable[[StoreFactory], None], make_store: StoreFactory) -> None:
    case(make_store)

