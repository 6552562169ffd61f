"""Multi-task batch schedules: one task per batch, every mode seeded and of the same length."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.schedule import (
    epoch_schedule,
    length_batches,
    length_bucketed_batches,
    padding_aware_batches,
    task_weights,
)


@settings(deadline=None)
@given(st.lists(st.integers(1, 80), max_size=300), st.integers(1, 40), st.integers(0, 10**6))
def test_bucketed_batches_hold_every_item_once_in_batches_of_at_most_size(lengths, size, seed):
    items = list(range(len(lengths)))
    batches = length_bucketed_batches(items, lengths, size, random.Random(seed))
    assert sorted(i for batch in batches for i in batch) == items
    assert all(1 <= len(batch) <= size for batch in batches)
    assert batches == length_bucketed_batches(items, lengths, size, random.Random(seed))


def test_bucketing_reduces_padding():
    rng = random.Random(0)
    lengths = [rng.randint(1, 100) for _ in range(3200)]
    items = list(range(len(lengths)))

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    plain = [items[k : k + 32] for k in range(0, len(items), 32)]
    bucketed = length_bucketed_batches(items, lengths, 32, random.Random(1))
    assert padded(bucketed) < 0.7 * padded(plain)


def _batches() -> dict[str, list[list[str]]]:
    return {
        "big": [[f"big{i}"] for i in range(30)],
        "small": [[f"small{i}"] for i in range(6)],
        "empty": [],
    }


@pytest.mark.parametrize("sampling", ["shuffle", "proportional", "temperature", "round_robin"])
def test_every_mode_gives_single_task_batches_and_the_same_number_of_steps(sampling):
    schedule = epoch_schedule(_batches(), sampling, random.Random(0), temperature=3.0)
    assert len(schedule) == 36
    for task, batch in schedule:
        assert all(item.startswith(task) for item in batch)
    assert epoch_schedule(_batches(), sampling, random.Random(0), 3.0) == schedule


def test_shuffle_takes_every_batch_exactly_once():
    schedule = epoch_schedule(_batches(), "shuffle", random.Random(5))
    assert sorted(b[0] for _, b in schedule) == sorted(b[0] for bs in _batches().values() for b in bs)
    assert [t for t, _ in schedule[:10]] != ["big"] * 10, "tasks are interleaved"


def test_round_robin_alternates_and_recycles_the_small_task():
    schedule = epoch_schedule(_batches(), "round_robin", random.Random(0))
    assert [t for t, _ in schedule[:4]] == ["big", "small", "big", "small"]
    counts = Counter(t for t, _ in schedule)
    assert counts == {"big": 18, "small": 18}
    small = [b[0] for t, b in schedule if t == "small"]
    assert set(small) == {f"small{i}" for i in range(6)} and len(small) == 18


def test_temperature_flattens_the_mix():
    assert task_weights([90, 10], "proportional", 1.0) == pytest.approx([0.9, 0.1])
    assert task_weights([90, 10], "temperature", 2.0) == pytest.approx([0.75, 0.25])
    many = epoch_schedule({"a": [[1]] * 900, "b": [[2]] * 100}, "temperature", random.Random(0), 2.0)
    share = Counter(t for t, _ in many)["b"] / len(many)
    assert 0.2 < share < 0.3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=30), st.integers(1, 8), st.integers(1, 120))
def test_length_batches_respect_both_budgets_and_cover_every_non_empty_item(lengths, batch_size, max_words):
    """Each non-empty index once, empty ones never; a batch exceeds the word budget only when alone."""
    batches = length_batches(lengths, batch_size, max_words)
    indices = [i for batch in batches for i in batch]
    assert sorted(indices) == [i for i, n in enumerate(lengths) if n > 0]
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= max_words
    ordered = [lengths[i] for i in indices]
    assert ordered == sorted(ordered)  # grouped by length, shortest first


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=200), st.integers(1, 8), st.integers(0, 99))
def test_a_word_budget_cuts_long_batches_and_changes_nothing_when_it_does_not_bind(lengths, size, seed):
    items = list(range(len(lengths)))
    plain = length_bucketed_batches(items, lengths, size, random.Random(seed))
    assert plain == length_bucketed_batches(items, lengths, size, random.Random(seed), max(lengths) * size)
    capped = length_bucketed_batches(items, lengths, size, random.Random(seed), max_words=64)
    assert sorted(i for batch in capped for i in batch) == items
    for batch in capped:
        assert len(batch) <= size
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= 64


def _cost(batches: list[list[int]], lengths: list[int], batch_cost: int) -> int:
    """Padded words plus ``batch_cost`` per batch: what :func:`padding_aware_batches` minimises."""
    return sum(len(b) * max(lengths[i] for i in b) + batch_cost for b in batches)


def _feasible(batches: list[list[int]], lengths: list[int], batch_size: int, max_words: int) -> bool:
    return all(
        1 <= len(b) <= batch_size and (len(b) == 1 or len(b) * max(lengths[i] for i in b) <= max_words)
        for b in batches
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=40), st.integers(1, 8), st.integers(1, 120), st.integers(0, 200))
def test_padding_aware_batches_keep_the_budgets_and_never_cost_more_than_filling_batches(
    lengths, batch_size, max_words, batch_cost
):
    batches = padding_aware_batches(lengths, batch_size, max_words, batch_cost)
    indices = [i for batch in batches for i in batch]
    assert sorted(indices) == [i for i, n in enumerate(lengths) if n > 0]
    assert _feasible(batches, lengths, batch_size, max_words)
    ordered = [lengths[i] for i in indices]
    assert ordered == sorted(ordered)  # grouped by length, shortest first
    greedy = length_batches(lengths, batch_size, max_words)
    assert _cost(batches, lengths, batch_cost) <= _cost(greedy, lengths, batch_cost)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=9), st.integers(1, 5), st.integers(0, 60))
def test_padding_aware_batches_are_the_cheapest_cut_of_the_sorted_items(lengths, batch_size, batch_cost):
    """Against every way of cutting the length-sorted items into consecutive batches."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    costs = []
    for cuts in itertools.product([False, True], repeat=len(order) - 1):
        bounds = [0] + [k + 1 for k, cut in enumerate(cuts) if cut] + [len(order)]
        batches = [order[a:b] for a, b in itertools.pairwise(bounds)]
        if _feasible(batches, lengths, batch_size, 60):
            costs.append(_cost(batches, lengths, batch_cost))
    found = padding_aware_batches(lengths, batch_size, 60, batch_cost)
    assert _cost(found, lengths, batch_cost) == min(costs)


def test_one_long_item_is_not_padded_onto_a_full_batch_of_short_ones():
    """Issue 13: 63 short sentences and a long one made one batch of 64 padded to the long one."""
    lengths = [12] * 63 + [119]
    assert length_batches(lengths, 64, 8192) == [list(range(64))]  # 64 x 119 padded words
    assert padding_aware_batches(lengths, 64, 8192) == [list(range(63)), [63]]  # 63 x 12 + 119


def test_padding_aware_batches_stay_full_when_there_is_little_padding_to_save():
    lengths = [10, 11, 12] * 50
    assert len(padding_aware_batches(lengths, 64, 8192)) == 3 == len(length_batches(lengths, 64, 8192))
