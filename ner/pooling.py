"""Max-pooling over many arbitrary piece ranges without span-by-sequence copies.

SpERT's reference code builds a dense ``[spans, sequence, hidden]`` tensor per batch to max-pool
spans and relation contexts; memory and time grow with spans x sequence. Here a sparse table
(``table[k][i] = max(states[i : i + 2**k])``) is built once per batch in ``O(P log P)``, and any
range ``[s, e)`` is the maximum of two overlapping power-of-two blocks: ``O(1)`` per range,
exact, and differentiable through ``torch.maximum``.
"""

from __future__ import annotations

import torch
from torch import Tensor


class RangeMaxPool:
    """Answers ``max(states[doc, start:end])`` for batches of ranges; empty ranges give zeros."""

    def __init__(self, states: Tensor, longest: int | None = None) -> None:
        """``states`` is ``[docs, pieces, hidden]``; ``longest`` bounds the range lengths to be queried."""
        longest = states.shape[1] if longest is None else max(1, min(longest, states.shape[1]))
        levels = [states]
        width = 1
        while width * 2 <= longest:
            previous = levels[-1]
            shifted = torch.nn.functional.pad(previous[:, width:], (0, 0, 0, width))
            levels.append(torch.maximum(previous, shifted))
            width *= 2
        self.table = torch.stack(levels)  # [levels, docs, pieces, hidden]

    def __call__(self, doc: Tensor, start: Tensor, end: Tensor) -> Tensor:
        """``[n, hidden]`` maxima of ``states[doc[i], start[i]:end[i]]``."""
        length = end - start
        empty = length <= 0
        # The largest level whose block fits: floor(log2(length)), capped at the top level. Exact integer
        # search: a float32 log2 rounds lengths just below 2**21 and beyond up to the next power of two.
        widths = 1 << torch.arange(self.table.shape[0], device=length.device)
        level = torch.searchsorted(widths, length.clamp(min=1), right=True) - 1
        if bool((length > (1 << level) * 2).any()):
            raise ValueError("a range is longer than the table was built for")
        left = self.table[level, doc, start.clamp(max=self.table.shape[2] - 1)]
        right = self.table[level, doc, (end - (1 << level)).clamp(min=0)]
        pooled = torch.maximum(left, right)
        return pooled.masked_fill(empty[:, None], 0.0)
