"""`RangeMaxPool` (sparse-table range maxima) agrees with a naive per-range max, values and gradients."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.pooling import RangeMaxPool


def naive_pool(states: torch.Tensor, doc: list[int], start: list[int], end: list[int]) -> torch.Tensor:
    """``states[d, s:e].max(0)`` per range, zeros for an empty range."""
    rows = [
        states[d, s:e].max(0).values if e > s else states.new_zeros(states.shape[-1])
        for d, s, e in zip(doc, start, end, strict=True)
    ]
    return torch.stack(rows) if rows else states.new_zeros(0, states.shape[-1])


def pool(states, doc, start, end, longest=None) -> torch.Tensor:
    """The library's answer for the same ranges, given as lists."""
    doc, start, end = (torch.tensor(values, dtype=torch.long) for values in (doc, start, end))
    return RangeMaxPool(states, longest)(doc, start, end)


def every_range(docs: int, pieces: int) -> tuple[list[int], list[int], list[int]]:
    """All ranges ``[s, e)`` with ``0 <= s <= e <= pieces`` of every document, plus some with ``s > e``."""
    triples = [(d, s, e) for d in range(docs) for s in range(pieces + 1) for e in range(s, pieces + 1)]
    triples += [(d, s, s - 1) for d in range(docs) for s in range(1, pieces + 1)]
    doc, start, end = zip(*triples, strict=True)
    return list(doc), list(start), list(end)


@pytest.mark.parametrize("pieces", [1, 2, 7, 8, 9, 16])
def test_every_range_matches_the_naive_maximum(pieces):
    """Length 1, full length, powers of two and their neighbours, and empty ranges (``start >= end``)."""
    torch.manual_seed(pieces)
    states = torch.randn(2, pieces, 5) - 3.0  # mostly negative: a stray zero (padding) would show
    doc, start, end = every_range(2, pieces)
    torch.testing.assert_close(pool(states, doc, start, end), naive_pool(states, doc, start, end))


def test_empty_ranges_give_zeros_even_at_the_end_of_the_sequence():
    """``start == end == pieces`` and ``start > end`` are valid queries and pool to zero."""
    states = torch.randn(1, 4, 3)
    out = pool(states, [0, 0, 0], [4, 3, 0], [4, 1, 0])
    assert torch.equal(out, torch.zeros(3, 3))


def test_a_table_bounded_by_longest_answers_ranges_up_to_that_length_and_rejects_longer_ones():
    """``longest`` builds fewer levels; ranges up to ``longest`` are exact, longer ones raise."""
    states = torch.randn(1, 20, 4)
    doc, start, end = zip(*[(0, s, s + w) for w in range(1, 6) for s in range(20 - w + 1)], strict=True)
    torch.testing.assert_close(pool(states, doc, start, end, longest=5), naive_pool(states, doc, start, end))
    with pytest.raises(ValueError, match="longer"):
        pool(states, [0], [0], [16], longest=5)


def test_gradient_equals_the_naive_gradient():
    """Backward through the table routes each output's gradient to the arg-max piece, as ``max`` does."""
    torch.manual_seed(0)
    base = torch.randn(2, 13, 6)  # continuous values: no ties
    doc, start, end = every_range(2, 13)
    weights = torch.randn(len(doc), 6)
    grads = []
    for pooling in (pool, naive_pool):
        states = base.clone().requires_grad_(True)
        (pooling(states, doc, start, end) * weights).sum().backward()
        grads.append(states.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_ranges_just_below_a_large_power_of_two_are_exact():
    """Length ``2**21 - 1``: a float32 ``log2`` rounds it up to 21, which would read past the range."""
    pieces = 1 << 21
    states = torch.zeros(1, pieces, 1)
    states[0, 0] = 100.0  # just before the queried range
    states[0, 5] = 1.0
    out = pool(states, [0, 0], [1, 0], [pieces, pieces - 1])
    assert out[:, 0].tolist() == [1.0, 100.0]


@st.composite
def inputs(draw):
    docs = draw(st.integers(1, 3))
    pieces = draw(st.integers(1, 40))
    hidden = draw(st.integers(1, 4))
    index = st.integers(0, pieces)
    ranges = draw(st.lists(st.tuples(st.integers(0, docs - 1), index, index), min_size=0, max_size=30))
    seed = draw(st.integers(0, 2**16))
    return docs, pieces, hidden, ranges, seed


@settings(max_examples=150, deadline=None)
@given(inputs())
def test_random_sizes_and_ranges_match_the_naive_maximum(case):
    """Any document count, length, width and range list (including empty and reversed ranges)."""
    docs, pieces, hidden, ranges, seed = case
    states = torch.randn(docs, pieces, hidden, generator=torch.Generator().manual_seed(seed))
    doc, start, end = ([r[k] for r in ranges] for k in range(3))
    torch.testing.assert_close(pool(states, doc, start, end), naive_pool(states, doc, start, end))
