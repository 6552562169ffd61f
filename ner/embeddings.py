"""Word embeddings in less memory at inference: compact rows, and only the rows a language needs.

Why: a multilingual encoder's word-embedding matrix is most of its weights (250,037 x 384 fp32 rows,
about 380 MB, in multilingual-e5-small), yet encoding one language reads a small part of it, and a
lookup needs one row at a time. Two settings, which combine:

* ``embedding_dtype``: how each row is stored. ``"float32"`` as trained; ``"float16"`` (half the
  memory, each value rounded to 11 significant bits); ``"int8"`` (a quarter: each row symmetric int8
  with its own fp32 scale, :func:`quantize_rows`, an error of at most half a step, ``max|row| / 254``).
  A looked-up row is dequantized to fp32 on the fly, so the transformer above it is unchanged.
* ``vocab_rows``: which rows are kept. ``"all"``, or ``"pipeline"``: only the rows of the word pieces
  the tokenizer can produce for the pipeline's language (:func:`pipeline_vocabulary`).

How the kept set is decided (``vocab_rows = "pipeline"``): a language is written in a set of
scripts (:data:`LANGUAGE_SCRIPTS`; Latin is always one of them, for names and URLs). A piece is kept
when every letter in it (Unicode category ``L*``) belongs to one of those scripts (by its Unicode
character name: ``LATIN SMALL LETTER E WITH ACUTE``); pieces of digits, punctuation, symbols and
marks are always kept, and so is every special token. WordPiece and Unigram (SentencePiece) cut the
tokenizer's normalised text into pieces that are substrings of it (plus ``##`` or ``▁``), and
byte-level BPE's pieces are all Latin-named characters, so a text whose normalised letters are all
of the language's scripts only ever produces kept pieces: its encoding is the same as with every
row. A piece with a letter of another script (a Chinese name in an English text) is looked up as the
tokenizer's unknown token, never as a missing row; this is counted (``fallback_lookups``) and logged,
never silent. A language with no entry (``xx``, multilingual) keeps every row.

``float32`` with ``all`` (the default) leaves the encoder's ``nn.Embedding`` as it is: the results
are the same to the bit. Training never uses this: the compact rows have no gradients.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Literal

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

EmbeddingDtype = Literal["float32", "float16", "int8"]
EMBEDDING_DTYPES = ("float32", "float16", "int8")
VocabRows = Literal["all", "pipeline"]
VOCAB_ROWS = ("all", "pipeline")

_LATIN_LANGUAGES = ("af", "ca", "cs", "cy", "da", "de", "en", "es", "et", "eu", "fi", "fr", "ga", "gl", "hr")
_LATIN_LANGUAGES += ("hu", "id", "is", "it", "lb", "lt", "lv", "ms", "mt", "nb", "nl", "nn", "no", "pl", "pt")
_LATIN_LANGUAGES += ("ro", "sk", "sl", "sq", "sv", "sw", "tl", "tr", "vi")
#: the scripts (prefixes of Unicode character names) each language's letters are written in
LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    **{code: ("LATIN",) for code in _LATIN_LANGUAGES},
    **{code: ("LATIN", "CYRILLIC") for code in ("be", "bg", "kk", "mk", "ru", "sr", "uk")},
    "el": ("LATIN", "GREEK"),
    **{code: ("LATIN", "ARABIC") for code in ("ar", "fa", "ur")},
    "he": ("LATIN", "HEBREW"),
    **{code: ("LATIN", "DEVANAGARI") for code in ("hi", "mr", "ne")},
    "th": ("LATIN", "THAI"),
    "zh": ("LATIN", "CJK"),
    "ja": ("LATIN", "CJK", "HIRAGANA", "KATAKANA"),
    "ko": ("LATIN", "HANGUL", "CJK"),
}


def check_settings(embedding_dtype: str, vocab_rows: str) -> None:
    """A ValueError naming the allowed values, for a setting this module lacks."""
    if embedding_dtype not in EMBEDDING_DTYPES:
        raise ValueError(
            f"embedding_dtype must be one of {', '.join(EMBEDDING_DTYPES)}, not {embedding_dtype!r}"
        )
    if vocab_rows not in VOCAB_ROWS:
        raise ValueError(f"vocab_rows must be one of {', '.join(VOCAB_ROWS)}, not {vocab_rows!r}")


# ---------------------------------------------------------------------- int8 rows
def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric int8 per row: ``(codes [rows, dim] int8, scales [rows] fp32)``, with
    ``row ~ codes * scale`` and ``scale = max|row| / 127``; an all-zero row gets scale 0."""
    weight = weight.detach().float()
    scales = weight.abs().amax(dim=1) / 127
    steps = weight / scales.clamp_min(torch.finfo(torch.float32).tiny)[:, None]
    return steps.round().clamp(-127, 127).to(torch.int8), scales


def dequantize_rows(codes: Tensor, scales: Tensor) -> Tensor:
    """The fp32 rows that ``codes`` and ``scales`` stand for (:func:`quantize_rows`)."""
    return codes.float() * scales[:, None]


# ---------------------------------------------------------------------- the kept rows
def letters_in_scripts(piece: str, scripts: tuple[str, ...]) -> bool:
    """Whether every letter of ``piece`` is written in one of ``scripts`` (non-letters always are)."""
    return all(
        not unicodedata.category(ch).startswith("L") or unicodedata.name(ch, "").startswith(scripts)
        for ch in piece
    )


def pipeline_vocabulary(tokenizer, language: str | None, rows: int) -> Tensor | None:
    """The sorted ids (below ``rows``) of the pieces ``tokenizer`` can produce for ``language``,
    special tokens included; None (every row) for a language with no entry in :data:`LANGUAGE_SCRIPTS`."""
    scripts = LANGUAGE_SCRIPTS.get(language or "")
    if scripts is None:
        logger.info("vocab_rows = 'pipeline': no script table for language %r; keeping every row", language)
        return None
    kept = {index for piece, index in tokenizer.get_vocab().items() if letters_in_scripts(piece, scripts)}
    kept |= set(tokenizer.all_special_ids)
    return torch.tensor(sorted(i for i in kept if 0 <= i < rows), dtype=torch.long)


# ---------------------------------------------------------------------- building the rows
class CompactRows:
    """The stored rows of a :class:`CompactEmbedding`, filled from blocks of the fp32 matrix given in
    order (:meth:`add`): each row is converted on its own (fp16 rounding, or int8 with its own scale),
    so rows built block by block are, to the bit, those built from the whole matrix at once, and only
    one block of fp32 rows is ever in memory beside them.

    ``shape``: the full matrix's ``(rows, dim)``; ``kept``: the sorted ids to keep (None: all)."""

    def __init__(self, shape: tuple[int, int], dtype: EmbeddingDtype, kept: Tensor | None = None) -> None:
        check_settings(dtype, "all")
        self.shape, self.dtype, self.kept = shape, dtype, kept
        count = shape[0] if kept is None else len(kept)
        storage = torch.int8 if dtype == "int8" else getattr(torch, dtype)
        self.values = torch.empty(count, shape[1], dtype=storage)
        self.scales = torch.empty(count, dtype=torch.float32) if dtype == "int8" else None
        self.next_row = 0  # the first row of the full matrix not given yet
        self.sorted = kept is None or bool((kept[1:] > kept[:-1]).all())

    def add(self, start: int, block: Tensor) -> None:
        """Rows ``[start, start + len(block))`` of the full matrix (fp32), right after the last block."""
        if start != self.next_row or start + len(block) > self.shape[0]:
            raise ValueError(f"blocks must come in order: expected row {self.next_row}, got {start}")
        stop = start + len(block)
        if self.kept is None:
            first, rows = start, block
        elif start == 0 and stop == self.shape[0]:  # the whole matrix: the kept ids in any order
            first, rows = 0, block[self.kept]
        else:
            if not self.sorted:
                raise ValueError("building the rows block by block needs the kept ids sorted")
            first, last = (int(i) for i in torch.searchsorted(self.kept, torch.tensor([start, stop])))
            rows = block[self.kept[first:last] - start]
        if self.scales is not None:
            codes, scales = quantize_rows(rows)
            self.values[first : first + len(rows)] = codes
            self.scales[first : first + len(rows)] = scales
        else:
            self.values[first : first + len(rows)] = rows.to(self.values.dtype)
        self.next_row = stop

    def check_complete(self) -> None:
        if self.next_row != self.shape[0]:
            raise ValueError(f"only {self.next_row} of the {self.shape[0]} embedding rows were given")


def compact_rows(
    tokenizer, shape: tuple[int, int], dtype: EmbeddingDtype, vocab_rows: VocabRows, language: str | None
) -> CompactRows | None:
    """Empty :class:`CompactRows` for a ``shape`` matrix as the settings ask; None for ``float32`` with
    ``all`` (the matrix stays an ``nn.Embedding``)."""
    check_settings(dtype, vocab_rows)
    if dtype == "float32" and vocab_rows == "all":
        return None
    kept = pipeline_vocabulary(tokenizer, language, shape[0]) if vocab_rows == "pipeline" else None
    return CompactRows(shape, dtype, kept)


def unknown_id(tokenizer) -> int:
    """The id an out-of-language piece is read as: the tokenizer's unknown token (0 without one)."""
    return tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0


# ---------------------------------------------------------------------- the module
class CompactEmbedding(nn.Module):
    """An inference-only stand-in for ``nn.Embedding``: rows stored as fp32, fp16 or int8 (with a
    scale per row), optionally only some of them, each looked-up row dequantized to fp32.

    ``kept``: the ids whose rows are kept (None: all); any other id reads the row of ``fallback``
    (the unknown token), which must be kept. The rows are buffers that are not part of a
    ``state_dict``: asking for one raises, because a model whose rows were compacted cannot be saved
    as it was trained (save it from a pipeline loaded with ``float32`` and ``all``)."""

    def __init__(
        self, weight: Tensor, dtype: EmbeddingDtype, kept: Tensor | None = None, fallback: int = 0
    ) -> None:
        super().__init__()
        rows = CompactRows(tuple(weight.shape), dtype, kept)
        rows.add(0, weight.detach())
        self._attach(rows, fallback)

    @classmethod
    def from_rows(cls, rows: CompactRows, fallback: int = 0) -> CompactEmbedding:
        """The module over rows built block by block (:class:`CompactRows`), so that the full fp32
        matrix never has to be in memory (:mod:`ner.lean_loading` reads it from the file in blocks)."""
        module = cls.__new__(cls)
        nn.Module.__init__(module)
        module._attach(rows, fallback)
        return module

    def _attach(self, rows: CompactRows, fallback: int) -> None:
        rows.check_complete()
        self.num_embeddings, self.embedding_dim = rows.shape
        self.dtype_name = rows.dtype
        self.fallback_lookups = 0
        self.register_buffer("rows", rows.values, persistent=False)
        self.register_buffer("scales", rows.scales, persistent=False)
        kept = rows.kept
        self.register_buffer("remap", None if kept is None else self._remap(kept, fallback), persistent=False)
        self._register_state_dict_hook(_refuse_state_dict)

    def _remap(self, kept: Tensor, fallback: int) -> Tensor:
        """id -> row among the kept ones; -1 for an id whose row was left out."""
        remap = torch.full((self.num_embeddings,), -1, dtype=torch.int32)
        remap[kept] = torch.arange(len(kept), dtype=torch.int32)
        if remap[fallback] < 0:
            raise ValueError(f"the fallback id {fallback} (the unknown token) must be among the kept rows")
        self.fallback_row = int(remap[fallback])
        return remap

    def forward(self, ids: Tensor) -> Tensor:
        rows = ids if self.remap is None else self._kept_rows(ids)
        values = self.rows[rows].float()
        if self.scales is not None:
            values = values * self.scales[rows].unsqueeze(-1)
        return values

    def _kept_rows(self, ids: Tensor) -> Tensor:
        rows = self.remap[ids].long()
        missing = rows < 0
        if bool(missing.any()):
            count = int(missing.sum())
            if not self.fallback_lookups:
                logger.warning(
                    "vocab_rows = 'pipeline': %d word piece(s) of a script outside the pipeline's language "
                    "(ids %s) read as the unknown token; load with vocab_rows = 'all' to keep every row "
                    "(logged once; counted in fallback_lookups)",
                    count,
                    sorted(set(ids[missing].tolist()))[:5],
                )
            self.fallback_lookups += count
            rows = rows.masked_fill(missing, self.fallback_row)
        return rows

    def nbytes(self) -> int:
        """Bytes of the kept rows, their scales and the id map: what this module holds in memory."""
        tensors = (self.rows, self.scales, self.remap)
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)

    def extra_repr(self) -> str:
        kept = self.num_embeddings if self.remap is None else len(self.rows)
        return f"{self.num_embeddings}, {self.embedding_dim}, dtype={self.dtype_name}, kept_rows={kept}"


def _refuse_state_dict(module, state_dict, prefix, local_metadata) -> None:
    raise RuntimeError(
        "the word embeddings were compacted for inference (embedding_dtype / vocab_rows) and cannot be "
        "saved as trained; save from a pipeline loaded with embedding_dtype = 'float32' and "
        "vocab_rows = 'all' (the pipeline component does this by itself, reloading its directory)"
    )


def compact_word_embeddings(
    transformer: nn.Module,
    tokenizer,
    dtype: EmbeddingDtype = "float32",
    vocab_rows: VocabRows = "all",
    language: str | None = None,
) -> CompactEmbedding | None:
    """Replace ``transformer``'s word embeddings by a :class:`CompactEmbedding` (returned), freeing
    the fp32 matrix; ``float32`` with ``all`` changes nothing (None)."""
    check_settings(dtype, vocab_rows)
    current = transformer.get_input_embeddings()
    if isinstance(current, CompactEmbedding):
        raise ValueError("the word embeddings are compacted already")
    rows = compact_rows(tokenizer, tuple(current.weight.shape), dtype, vocab_rows, language)
    if rows is None:
        return None
    rows.add(0, current.weight.detach())
    module = CompactEmbedding.from_rows(rows, unknown_id(tokenizer))
    transformer.set_input_embeddings(module)
    log_compacted(module)
    return module


def log_compacted(module: CompactEmbedding) -> None:
    logger.info("word embeddings: %s (%.0f MB)", module.extra_repr(), module.nbytes() / 2**20)


def is_compact(transformer: nn.Module) -> bool:
    """Whether ``transformer``'s word embeddings were compacted (:func:`compact_word_embeddings`)."""
    return isinstance(transformer.get_input_embeddings(), CompactEmbedding)
