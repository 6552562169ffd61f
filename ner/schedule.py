"""The order of training batches: length-bucketed batches per task, then a multi-task schedule.

Each batch holds documents of one task only (MT-DNN, MT-BioNER), so its loss can reach only that
task's head. How tasks alternate is a choice with known trade-offs, so it is configurable:

* ``shuffle`` (default, MT-DNN): every batch of every task once per epoch, in random order; big
  datasets get more steps, and every sentence is seen once.
* ``proportional``: each step draws a task with probability proportional to its size (with
  replacement, so an epoch may see a sentence twice or not at all).
* ``temperature``: probability proportional to ``size ** (1 / T)``; T > 1 flattens the mix towards
  small datasets (T = 1 is proportional, T -> infinity uniform).
* ``round_robin``: tasks in turn, a small task's batches recycled until the epoch ends.

Every mode yields the same number of steps per epoch (the total number of batches), so epochs and
learning-rate schedules are comparable across modes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Literal, TypeVar

T = TypeVar("T")
Sampling = Literal["shuffle", "proportional", "temperature", "round_robin"]
BUCKET_BATCHES = 50  # batches per length bucket: sorted within, shuffled across
# What one more inference batch costs, in padded words: measured on CPU (1 torch thread, the shipped
# 6-layer encoder with its SpERT head), a batch's fixed cost was 20-30 ms, the time of about 30 words.
# More threads make words cheaper, not the fixed cost, so the figure grows with them; 128 leaves a
# margin, so that batches stay large where there is little padding to save.
BATCH_COST_WORDS = 128


def length_batches(lengths: Sequence[int], batch_size: int, max_batch_words: int) -> list[list[int]]:
    """Indices of non-empty items grouped by length, each group within both budgets: at most
    ``batch_size`` items and ``max_batch_words`` padded words (a group's size times its longest)."""
    order = sorted((i for i, n in enumerate(lengths) if n > 0), key=lengths.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) >= batch_size or lengths[i] * (len(current) + 1) > max_batch_words):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def padding_aware_batches(
    lengths: Sequence[int], batch_size: int, max_batch_words: int, batch_cost_words: int = BATCH_COST_WORDS
) -> list[list[int]]:
    """Like :func:`length_batches` (same budgets, same length order), but cut where padding would
    cost more than another batch: the grouping of the length-sorted items with the fewest padded
    words plus ``batch_cost_words`` per batch (exact, by dynamic programming over the cut points).

    Why: filling every batch to ``batch_size`` pads a whole batch to one long outlier. After the
    abbreviation exceptions, 64 CoNLL04 test texts make exactly 64 sentences, so a 119-word sentence
    padded 63 short ones to its length (the old tokenizer made 65, and it went alone): 21 % more
    padded word pieces in the encoder, the retrained pipeline's 18 % slower ``nlp.pipe``.
    """
    order = sorted((i for i, n in enumerate(lengths) if n > 0), key=lengths.__getitem__)
    least = [0.0] + [math.inf] * len(order)  # least[end]: the cheapest grouping of the first `end` items
    first: list[int] = [0] * (len(order) + 1)  # first[end]: where that grouping's last batch begins
    for end in range(1, len(order) + 1):
        longest = lengths[order[end - 1]]
        for begin in range(end - 1, max(0, end - batch_size) - 1, -1):
            size = end - begin
            if size > 1 and size * longest > max_batch_words:
                break  # a larger batch only pads more
            cost = least[begin] + size * longest + batch_cost_words
            if cost <= least[end]:  # ties: the larger batch
                least[end], first[end] = cost, begin
    return _cut(order, first)


def _cut(order: list[int], first: list[int]) -> list[list[int]]:
    """``order`` cut into the batches that ``first`` (where each best grouping's last batch begins)
    chose, walking back from the end."""
    batches: list[list[int]] = []
    end = len(order)
    while end:
        batches.append(order[first[end] : end])
        end = first[end]
    return batches[::-1]


def length_bucketed_batches(
    items: Sequence[T], lengths: Sequence[int], size: int, rng: random.Random, max_words: int | None = None
) -> list[list[T]]:
    """Random batches of ``size`` whose members have similar lengths (less padding, same randomness
    across epochs): shuffle, sort each run of ``BUCKET_BATCHES * size`` items by length, cut, shuffle.

    ``max_words`` caps a batch's padded words: CoNLL-2002 has "sentences" of 300 to 1,238 words, and
    32 of them in one batch took over 20 GB in the backward pass; such batches are cut smaller. Items
    without words are left out (the encoder cannot take them).
    """
    order = list(range(len(items)))
    rng.shuffle(order)
    bucket = BUCKET_BATCHES * size
    budget = max_words or size * max(lengths, default=1)
    batches = []
    for begin in range(0, len(order), bucket):
        chunk = order[begin : begin + bucket]
        groups = length_batches([lengths[i] for i in chunk], size, budget)
        batches += [[items[chunk[k]] for k in group] for group in groups]
    rng.shuffle(batches)
    return batches


def task_weights(sizes: Sequence[int], sampling: Sampling, temperature: float) -> list[float]:
    """Probability of drawing each task per step for the sampled modes."""
    power = 1.0 / temperature if sampling == "temperature" else 1.0
    weights = [size**power for size in sizes]
    total = sum(weights)
    return [w / total for w in weights]


def epoch_schedule(
    batches: dict[str, list[list[T]]], sampling: Sampling, rng: random.Random, temperature: float = 2.0
) -> list[tuple[str, list[T]]]:
    """``(task, batch)`` pairs of one epoch, ``sum(len(b) for b in batches.values())`` steps long."""
    tasks = [task for task, task_batches in batches.items() if task_batches]
    steps = sum(len(batches[task]) for task in tasks)
    if sampling == "shuffle":
        schedule = [(task, batch) for task in tasks for batch in batches[task]]
        rng.shuffle(schedule)
        return schedule
    if sampling == "round_robin":
        order = [tasks[step % len(tasks)] for step in range(steps)]
    else:
        weights = task_weights([len(batches[task]) for task in tasks], sampling, temperature)
        order = rng.choices(tasks, weights=weights, k=steps)
    drawn = {task: 0 for task in tasks}
    schedule = []
    for task in order:  # each task's batches in order, recycled (reshuffled) when exhausted
        index = drawn[task] % len(batches[task])
        if index == 0 and drawn[task]:
            rng.shuffle(batches[task])
        schedule.append((task, batches[task][index]))
        drawn[task] += 1
    return schedule
