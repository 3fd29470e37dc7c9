"""Property: any permutation of a valid history folds to the same state (anomalies included)."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from events.model import Event
from events.projection import fold
from tests.strategies import histories


@settings(max_examples=150, deadline=None)
@given(data=st.data(), history=histories())
def test_any_permutation_folds_to_the_same_state(data: st.DataObject, history: list[Event]) -> None:
    expected = fold(history)
    permuted = data.draw(st.permutations(history))
    got = fold(permuted)
    assert got == expected
    assert {p: [str(a) for a in s.anomalies] for p, s in got.items()} == {p: [str(a) for a in s.anomalies] for p, s in expected.items()}
    assert {p: s.to_row(datetime(2024, 12, 31).date()) for p, s in got.items()} == {
        p: s.to_row(datetime(2024, 12, 31).date()) for p, s in expected.items()
    }


@settings(max_examples=50, deadline=None)
@given(data=st.data(), history=histories())
def test_splitting_a_history_and_refolding_the_union_is_order_free(data: st.DataObject, history: list[Event]) -> None:
    """Arrival in two deliveries (a late batch) folds like one delivery."""
    cut = data.draw(st.integers(0, len(history)))
    late, early = history[:cut], history[cut:]
    assert fold([*early, *late]) == fold(history)
