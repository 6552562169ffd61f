"""The tiny encoder config that the tests and the benchmarks' quick runs build a random encoder from.

One definition for both, at the bottom layer (it imports nothing): 2 layers of width 32 and a
64-position window, so that windowing is exercised by short inputs and a run takes seconds on CPU.
Only to check that code runs; a model built from it has learned nothing.
"""

from __future__ import annotations

TINY_BERT: dict[str, object] = {
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}
