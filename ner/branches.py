"""Branches at the top of the encoder: a head that reads its own copy of the top K layers.

Why: a head added to a trained pipeline by fine-tuning the shared encoder moves the features every
other head reads (issue 17). A branch gives the new head its own copy of the encoder's top ``K``
transformer layers, trained for it alone, while the embeddings and bottom layers stay shared and
frozen: the other heads read the unchanged trunk, and inference costs one shared pass plus ``K``
layers per branch.

How, without the encoder knowing: a forward pre-hook on the first branched layer of the trunk
receives that layer's input (the shared bottom's output, per chunk of windows) and its arguments
(the attention mask in whatever form the transformer built it), and runs each branch's layers on
them. So the bottom runs once, exactly as in a plain pass, each branch runs once, and heads still
never run the encoder: they get the :class:`Encoding` of their branch.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ner.encoder import Encoder, Encoding, PieceBatch, gather_encoding

logger = logging.getLogger(__name__)
_noted_runtime: set[int] = set()


class Branch(nn.Module):
    """A copy of the encoder's top layers, from trunk layer ``start`` up, owned by one head."""

    def __init__(self, layers: Sequence[nn.Module], start: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for layer in layers)
        self.start = start

    @classmethod
    def from_encoder(cls, encoder: Encoder, count: int) -> Branch:
        """A trainable copy of ``encoder``'s top ``count`` layers (as they are now)."""
        depth = len(encoder.layers)
        if not 1 <= count <= depth:
            raise ValueError(f"branch_layers must be between 1 and {depth} (the encoder's depth): {count}")
        return cls(encoder.layers[depth - count :], depth - count).requires_grad_(True)

    def forward(self, hidden: Tensor, args: tuple, kwargs: dict) -> Tensor:
        """Run the copied layers with the arguments the trunk's layer ``start`` received."""
        for layer in self.layers:
            output = layer(hidden, *args, **kwargs)
            hidden = output[0] if isinstance(output, tuple) else output
        return hidden


def encode_with_branches(
    encoder: Encoder, branches: dict[str, Branch], pieces: PieceBatch
) -> tuple[Encoding, dict[str, Encoding]]:
    """The trunk's :class:`Encoding` and each branch's, from one run of the shared layers.

    Branches need the trunk's intermediate states, which only the torch transformer gives: an ONNX
    runtime attached to the encoder is set aside for this call (and said once)."""
    if not branches:
        return encoder(pieces), {}
    if getattr(encoder, "layers_released", False):
        raise RuntimeError(
            "this pipeline has branched heads, which read the torch encoder's intermediate states, but "
            "its torch layers were released for the ONNX backend; load it with backend = 'torch'"
        )
    masks: list[Tensor] = []
    chunks: dict[str, list[Tensor]] = {name: [] for name in branches}

    def keep_mask(module, args, kwargs) -> None:
        masks.append(kwargs["attention_mask"])

    def run_branches(start: int):
        def hook(module, args, kwargs) -> None:
            hidden, rest = (args[0], args[1:]) if args else (kwargs["hidden_states"], ())
            rest_kwargs = {k: v for k, v in kwargs.items() if k != "hidden_states"}
            real = masks[-1].bool()
            for name, branch in branches.items():
                if branch.start == start:
                    chunks[name].append(branch(hidden, rest, rest_kwargs)[real])

        return hook

    handles = [encoder.transformer.register_forward_pre_hook(keep_mask, with_kwargs=True)]
    for start in sorted({branch.start for branch in branches.values()}):
        handles.append(encoder.layers[start].register_forward_pre_hook(run_branches(start), with_kwargs=True))
    runtime, encoder.runtime = encoder.runtime, None
    if runtime is not None and id(encoder) not in _noted_runtime:
        _noted_runtime.add(id(encoder))
        logger.info("branched heads read the trunk's intermediate states: the encoder runs in torch for them")
    try:
        trunk = encoder(pieces)
    finally:
        encoder.runtime = runtime
        for handle in handles:
            handle.remove()
    return trunk, {name: gather_encoding(torch.cat(rows), pieces) for name, rows in chunks.items()}
