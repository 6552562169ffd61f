"""Loading a ``delta`` model for inference with no more memory than the model keeps.

Why: the plain way (``from_pretrained`` the whole base, cut it to the trained depth, copy its state
to add the differences, copy that into the model, then compact the word embeddings) held the 12-layer
base, a copy of it and the compacted rows at once; memory freed while loading stays with the process,
so a 6-layer e5 pipeline kept about 1.3 GB of RSS whatever its embedding settings. Here the base's
safetensors file is read one tensor at a time (:class:`ner.tensor_files.TensorFile`):

* every tensor is hashed as it is read, in the order and form of :func:`ner.model.state_sha256`, so
  the check that the base is the one the differences were computed from stays complete (every byte
  of every tensor, the layers that are cut included) and runs before the model is returned;
* a tensor the model keeps is read straight into its own memory and its difference added there, in
  place; a tensor it drops (a layer above the trained depth) only passes through one hashing buffer;
* the word-embedding matrix, when ``embedding_dtype`` / ``vocab_rows`` ask for less, is read in blocks
  of rows, each block hashed, given its differences and compacted (:class:`ner.embeddings.CompactRows`),
  so the fp32 matrix is never whole in memory;
* the transformer is built with its parameters on the meta device and handed these tensors as they
  are (:meth:`ner.encoder.Encoder.from_state`): no random initialisation, no second copy.

Every operation is the one the plain way does, value by value (the differences are added to the same
fp32 values, rows are compacted one by one), so the loaded weights are the same to the bit. A base this
cannot read that way (not one ``model.safetensors``, or tensors other than the model's, in other dtypes)
returns None, and the caller loads it the plain way.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from transformers import AutoConfig, AutoModel

from ner.embeddings import CompactEmbedding, CompactRows, compact_rows, log_compacted, unknown_id
from ner.encoder import Encoder, layer_stack, load_tokenizer, local_encoder
from ner.quiet import quiet_loading
from ner.tensor_files import TensorFile, tensor_header

logger = logging.getLogger(__name__)

BASE_WEIGHTS = "model.safetensors"
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
#: rows of the word-embedding matrix read at a time when they are compacted (6 MB of e5's fp32 rows)
BLOCK_ROWS = 4096
#: values of each tensor the format-1 base fingerprint reads (:func:`ner.model._fingerprint`)
FINGERPRINT_VALUES = 4096


@dataclass(frozen=True)
class EmbeddingSettings:
    """How loaded word embeddings are stored (:mod:`ner.embeddings`); the default keeps them as trained."""

    dtype: str = "float32"
    vocab_rows: str = "all"
    language: str | None = None


@dataclass
class BaseHashes:
    """What the base check compares: the full state hash (format 2) and the format-1 fingerprint."""

    sha256: str
    fingerprint: str


# ---------------------------------------------------------------------- the differences
def unpack(tensors: dict, key: str, dtype: torch.dtype, rows: Tensor | None = None) -> Tensor:
    """The stored difference ``key`` in ``dtype`` (int8 times its per-row scale), or only its ``rows``."""
    value = tensors[key] if rows is None else tensors[key][rows]
    if value.dtype == torch.int8:
        scale = tensors[f"scale.{key}"] if rows is None else tensors[f"scale.{key}"][rows]
        return (value.float() * scale).to(dtype)
    return value.to(dtype)


def add_delta(name: str, value: Tensor, tensors: dict, start: int = 0) -> Tensor:
    """``value`` (the base tensor ``name``, or its rows from ``start``) with its stored difference
    added in place; a tensor stored whole (``full.``) is returned instead."""
    if f"full.{name}" in tensors:
        full = tensors[f"full.{name}"]
        return full if start == 0 and len(value) == len(full) else full[start : start + len(value)]
    if f"delta.{name}" in tensors:
        key = f"delta.{name}"
        rows = None if start == 0 and len(value) == len(tensors[key]) else slice(start, start + len(value))
        value += unpack(tensors, key, value.dtype, rows)
    index = tensors.get(f"rows.{name}.index")
    if index is not None:
        inside = ((index >= start) & (index < start + len(value))).nonzero(as_tuple=True)[0]
        if len(inside):
            value[index[inside] - start] += unpack(tensors, f"rows.{name}.delta", value.dtype, inside)
    return value


def delta_targets(tensors: dict) -> set[str]:
    """The encoder tensors the stored differences change."""
    names = set()
    for key in tensors:
        kind, _, name = key.partition(".")
        if kind in ("delta", "full"):
            names.add(name)
        elif kind == "rows" and name.endswith(".index"):
            names.add(name[: -len(".index")])
    return names


# ---------------------------------------------------------------------- the base, streamed
def load_delta_encoder(
    name: str,
    delta: dict[str, Tensor],
    depth: int | None,
    embeddings: EmbeddingSettings,
    check: Callable[[Path, str, BaseHashes], None],
    **options,
) -> Encoder | None:
    """The encoder of a ``delta`` model: its base ``name`` read from disk, cut to ``depth`` layers, with
    the differences ``delta`` added and the word embeddings stored as ``embeddings`` say. ``check``
    raises when the base's hashes are not the recorded ones, before anything is returned.
    None when the base is not one safetensors file of exactly the model's tensors (load it the plain way).
    """
    options.pop("local_files_only", None)  # always: loading a saved model never downloads
    path = Path(local_encoder(name))
    if not (path / BASE_WEIGHTS).is_file():
        return None
    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    with torch.device("meta"), quiet_loading():
        expected = AutoModel.from_config(config, add_pooling_layer=False)
    stack, layers = layer_stack(expected)
    depth = depth if depth is not None and depth < len(layers) else len(layers)
    shapes = {key: (t.dtype, tuple(t.shape)) for key, t in expected.state_dict().items()}
    del expected
    with TensorFile(path / BASE_WEIGHTS) as file:
        found = {key: (e.dtype, e.shape) for key, e in file.entries.items() if key in shapes}
        if found != shapes:
            logger.info(
                "%s: its tensors are not exactly the model's; loading it in full", path / BASE_WEIGHTS
            )
            return None
        tokenizer = load_tokenizer(str(path), local_files_only=True)
        release_freed_memory()  # the tokenizer's loading leaves freed memory that the weights can reuse
        dropped = tuple(f"{stack}.{i}." for i in range(depth, len(layers)))
        rows = _compact_plan(tokenizer, shapes, embeddings)
        state, hashes = _stream(file, sorted(shapes), lambda key: not key.startswith(dropped), delta, rows)
    check(path, name, hashes)
    missing = delta_targets(delta) - set(state) - ({WORD_EMBEDDINGS} if rows else set())
    if missing:
        raise ValueError(
            f"the stored differences change {sorted(missing)[:5]}, which the base {name!r} lacks"
        )
    config.num_hidden_layers = depth
    floating = {dtype for dtype, _ in shapes.values() if dtype.is_floating_point}
    if len(floating) == 1:  # what from_pretrained records: the dtype the weights were loaded in
        config.dtype = floating.pop()
    compact = None if rows is None else CompactEmbedding.from_rows(rows, unknown_id(tokenizer))
    if compact is not None:
        log_compacted(compact)
    return Encoder.from_state(config, tokenizer, state, compact, **options)


def _compact_plan(tokenizer, shapes: dict, embeddings: EmbeddingSettings) -> CompactRows | None:
    if WORD_EMBEDDINGS not in shapes:
        return None
    dtype, shape = shapes[WORD_EMBEDDINGS]
    if dtype != torch.float32 or len(shape) != 2:
        return None
    return compact_rows(tokenizer, shape, embeddings.dtype, embeddings.vocab_rows, embeddings.language)


def _stream(
    file: TensorFile,
    names: list[str],
    keep: Callable[[str], bool],
    delta: dict[str, Tensor],
    rows: CompactRows | None,
) -> tuple[dict[str, Tensor], BaseHashes]:
    """Read ``names`` in order: hash each (name, dtype, shape, bytes) as :func:`ner.model.state_sha256`
    does, keep those ``keep`` accepts with their differences added, compact the word embeddings into
    ``rows`` when given."""
    digest, fingerprint = hashlib.sha256(), hashlib.sha256()
    state = {}
    for name in names:
        entry = file.entries[name]
        digest.update(tensor_header(name, entry.dtype, entry.shape))
        fingerprint.update(name.encode())
        fingerprint.update(_first_values(file, name))
        if name == WORD_EMBEDDINGS and rows is not None:
            _stream_rows(file, name, delta, rows, digest)
        elif keep(name):
            value = file.read(name)
            digest.update(value.reshape(-1).view(torch.uint8).numpy())
            state[name] = add_delta(name, value, delta)
        else:
            file.hash_bytes(name, digest)
    return state, BaseHashes(digest.hexdigest(), fingerprint.hexdigest())


def _stream_rows(file: TensorFile, name: str, delta: dict, rows: CompactRows, digest) -> None:
    """The word-embedding matrix, block by block: hashed, given its differences, compacted."""
    total = file.entries[name].shape[0]
    for start in range(0, total, BLOCK_ROWS):
        block = file.read(name, (start, min(start + BLOCK_ROWS, total)))
        digest.update(block.reshape(-1).view(torch.uint8).numpy())
        rows.add(start, add_delta(name, block, delta, start))


def _first_values(file: TensorFile, name: str) -> bytes:
    """What the format-1 fingerprint reads of a tensor: its first 4,096 values, as fp32 bytes."""
    entry = file.entries[name]
    if not entry.shape:
        return file.read(name).float().reshape(-1).numpy().tobytes()
    per_row = max(entry.row_bytes // entry.dtype.itemsize, 1)
    count = min(entry.shape[0], -(-FINGERPRINT_VALUES // per_row))
    head = file.read(name, (0, count)).float().flatten()[:FINGERPRINT_VALUES]
    return head.numpy().tobytes()


def release_freed_memory() -> None:
    """Hand memory that was freed back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    Why: glibc keeps freed heap memory for reuse, so what a loader used for a moment (the tokenizer's
    JSON, a second copy of its vocabulary) stays in the process's RSS after loading."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)
