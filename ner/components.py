"""The spaCy layer: one thin component over :class:`ner.model.ExtractionModel`.

A single component owns the encoder and every head, so a batch of docs costs exactly one
encoder pass whatever the number of heads, the weights live in one place, and no tensors are
stored on Docs. It writes:

* ``doc.spans[<head name>]``: every span the head predicted (SpERT spans may overlap), with
  their scores in ``doc.spans[<head name>].attrs["scores"]``;
* ``doc.ents``: a non-overlapping selection of the heads' spans, merged with entities set by
  earlier components where they do not overlap. Overlaps between heads (a BC5CDR and an NCBI
  disease head tagging "breast cancer" and "cancer") are resolved by ``ents_merge``:

  - ``"score"`` (default): the higher score wins, then the longer span, then the earlier one;
  - ``"length"``: the longer span wins, then the higher score;
  - ``"priority"``: the head listed first in ``ents_heads`` wins, then score, then length.

  ``ents_heads`` (default: every head) also says which heads feed ``doc.ents`` at all; every
  head's own predictions are always in ``doc.spans[<head name>]``;
* ``span._.score`` on those spans, and ``doc._.relations``: ``RelationMention(head, label, tail,
  score)`` tuples, computed from the JSON-serialisable ``doc._.relation_data`` so that relations
  survive ``DocBin(store_user_data=True)``.

Each sentence (or the whole doc, with ``segment_by_sentence = false``) is one segment for the
model, and a blank line always ends one: paragraphs are never joined, with or without the
sentencizer, so no entity and no relation crosses a blank line
(:func:`ner.segments.paragraph_segments`). ``max_segment_words`` (default 256) bounds what the
model sees at once: a longer segment, such as a text with no full stop, is cut into windows of
at most that many words that overlap by ``segment_overlap_words`` (default 64), and their
predictions are merged (:mod:`ner.segments`).
Memory and time then grow linearly with the text, and relations are only sought within a window.
Segments no longer than the bound are predicted exactly as before.

The factory is registered through the ``spacy_factories`` entry point, so ``spacy.load`` needs
no import of this package.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from ner.embeddings import EmbeddingDtype, VocabRows, check_settings, compact_word_embeddings, is_compact
from ner.integrity import sha256_file
from ner.lean_loading import EmbeddingSettings
from ner.model import CONFIG_FILE, DeltaDtype, ExtractionModel, HeadOutput
from ner.onnx_backend import Backend, Quantize, check_backend, use_backend
from ner.segments import Window, cut_strengths, merge_windows, paragraph_segments, plan_windows

MergeRule = Literal["score", "length", "priority"]
MERGE_RULES = ("score", "length", "priority")
_MERGE_KEYS = {  # sort keys of (score, head rank, span): the first in order wins an overlap
    "score": lambda s, rank, span: (-s, -len(span), span.start, rank),
    "length": lambda s, rank, span: (-len(span), -s, span.start, rank),
    "priority": lambda s, rank, span: (rank, -s, -len(span), span.start),
}


class RelationMention(NamedTuple):
    """A predicted relation: ``(head span, relation label, tail span, score)``."""

    head: Span
    label: str
    tail: Span
    score: float


def _relations(doc: Doc) -> list[RelationMention]:
    return [
        RelationMention(
            Span(doc, r["head"][0], r["head"][1], label=r["head"][2]),
            r["label"],
            Span(doc, r["tail"][0], r["tail"][1], label=r["tail"][2]),
            r["score"],
        )
        for r in doc._.relation_data or []
    ]


def register_extensions() -> None:
    """Register the Doc/Span extensions (idempotent; runs when this module is imported)."""
    if not Doc.has_extension("relation_data"):
        Doc.set_extension("relation_data", default=None)
    if not Doc.has_extension("relations"):
        Doc.set_extension("relations", getter=_relations)
    if not Span.has_extension("score"):
        Span.set_extension("score", default=None)


register_extensions()


@Language.factory(
    "ner_extractor",
    default_config={
        "batch_size": 64,
        "max_batch_words": 8192,
        "max_segment_words": 256,
        "segment_overlap_words": 64,
        "segment_by_sentence": True,
        "set_ents": True,
        "ents_merge": "score",
        "ents_heads": None,
        "storage": "full",
        "dtype": "float16",
        "backend": "torch",
        "onnx_quantize": "none",
        "embedding_dtype": "float32",
        "vocab_rows": "all",
    },
)
def make_extractor(
    nlp: Language,
    name: str,
    batch_size: int,
    max_batch_words: int,
    max_segment_words: int,
    segment_overlap_words: int,
    segment_by_sentence: bool,
    set_ents: bool,
    ents_merge: MergeRule,
    ents_heads: list[str] | None,
    storage: Literal["full", "delta"],
    dtype: DeltaDtype,
    backend: Backend = "torch",
    onnx_quantize: Quantize = "none",
    embedding_dtype: EmbeddingDtype = "float32",
    vocab_rows: VocabRows = "all",
) -> Extractor:
    return Extractor(
        name,
        batch_size,
        max_batch_words,
        segment_by_sentence,
        set_ents,
        storage,
        dtype,
        ents_merge=ents_merge,
        ents_heads=ents_heads,
        max_segment_words=max_segment_words,
        segment_overlap_words=segment_overlap_words,
        backend=backend,
        onnx_quantize=onnx_quantize,
        embedding_dtype=embedding_dtype,
        vocab_rows=vocab_rows,
        language=nlp.lang,
    )


class Extractor:
    """Runs an :class:`ExtractionModel` on spaCy Docs; the model is attached by ``from_disk`` or by hand."""

    def __init__(
        self,
        name: str = "ner_extractor",
        batch_size: int = 64,
        max_batch_words: int = 8192,
        segment_by_sentence: bool = True,
        set_ents: bool = True,
        storage: Literal["full", "delta"] = "full",
        dtype: DeltaDtype = "float16",
        model: ExtractionModel | None = None,
        ents_merge: MergeRule = "score",
        ents_heads: Sequence[str] | None = None,
        max_segment_words: int = 256,
        segment_overlap_words: int = 64,
        backend: Backend = "torch",
        onnx_quantize: Quantize = "none",
        embedding_dtype: EmbeddingDtype = "float32",
        vocab_rows: VocabRows = "all",
        language: str | None = None,
    ) -> None:
        """``max_segment_words``: the most words the model sees at once (the memory bound on long
        segments); ``segment_overlap_words``: the overlap of the windows a longer segment is cut into,
        at most half of ``max_segment_words``.

        ``backend``: what runs the encoder's transformer at inference. ``"torch"``, or ``"onnx"``: ONNX
        Runtime with fused attention, built from the loaded weights at first load into
        ``$NER_CACHE_DIR/onnx`` and reused (:mod:`ner.onnx_backend`; needs ``onnxruntime``). The heads
        run in torch either way; saving is unchanged. ``onnx_quantize``: ``"none"`` (fp32, the same
        results as torch to about 1e-5) or ``"int8"`` (dynamic int8 weights: faster on CPUs, results
        close to but not the same as torch's; ``"int8-u8u8"``: unsigned int8 weights, ORT's other setting
        for AVX2); only read with ``backend = "onnx"``.

        ``embedding_dtype`` (``"float32"``, ``"float16"``, ``"int8"``) and ``vocab_rows`` (``"all"``, or
        ``"pipeline"``: only the word pieces of ``language``'s scripts, the pipeline's ``lang``): the word
        embeddings in less memory at inference (:mod:`ner.embeddings`). These, and the ONNX backend's
        dropping of the torch layers it replaces, apply to a model loaded from disk (``spacy.load``),
        never to one attached by hand (which may be training); saving, or switching backend, reloads the
        full weights from the loaded directory, checked against the ``model.json`` it was loaded from."""
        check_backend(backend, onnx_quantize)
        check_settings(embedding_dtype, vocab_rows)
        self.backend = backend
        self.onnx_quantize = onnx_quantize
        self.embedding_dtype = embedding_dtype
        self.vocab_rows = vocab_rows
        self.language = language
        #: ``(directory, sha256 of its model.json)`` of a model loaded by :meth:`from_disk`
        self._source: tuple[Path, str] | None = None
        if max_segment_words < 1:
            raise ValueError(f"max_segment_words must be at least 1, not {max_segment_words}")
        if not 0 <= segment_overlap_words <= max_segment_words // 2:
            raise ValueError(
                f"segment_overlap_words must be between 0 and half of max_segment_words "
                f"({max_segment_words // 2}), not {segment_overlap_words}"
            )
        self.max_segment_words = max_segment_words
        self.segment_overlap_words = segment_overlap_words
        if ents_merge not in MERGE_RULES:
            raise ValueError(f"ents_merge must be one of {', '.join(MERGE_RULES)}, not {ents_merge!r}")
        if ents_merge == "priority" and not ents_heads:
            raise ValueError("ents_merge = 'priority' needs ents_heads: the heads in order of precedence")
        self.ents_merge = ents_merge
        self.ents_heads = list(ents_heads) if ents_heads else None
        self.name = name
        self.batch_size = batch_size
        self.max_batch_words = max_batch_words
        self.segment_by_sentence = segment_by_sentence
        self.set_ents = set_ents
        self.storage = storage
        self.dtype = dtype
        self.model = model

    @property
    def model(self) -> ExtractionModel | None:
        return self._model

    @model.setter
    def model(self, model: ExtractionModel | None) -> None:
        """Attach ``model`` (by hand: never slimmed, see ``__init__``) and point its encoder at this
        component's ``backend``."""
        if model is not None:
            use_backend(model.encoder, self.backend, self.onnx_quantize)
        self._model = model
        self._source = None

    def set_backend(self, backend: Backend, onnx_quantize: Quantize = "none") -> None:
        """Switch what runs the encoder (``backend`` and ``onnx_quantize`` as in ``__init__``) on a
        loaded pipeline; the attached model follows at once. The pipeline's ``config.cfg`` keeps the
        value it was built or loaded with (spaCy's config is fixed then): to save a pipeline that loads
        with ONNX, build or load it with ``config={"components": {name: {"backend": "onnx"}}}``."""
        check_backend(backend, onnx_quantize)
        self.backend, self.onnx_quantize = backend, onnx_quantize
        if self._model is not None and self._source is not None:  # loaded: slimmed as the settings say
            reloaded = self._reload(self._embedding_settings()) if self._slimmed() else self._model
            self._attach_loaded(reloaded)
        else:
            self.model = self._model

    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, stream: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        for docs in minibatch(stream, size=batch_size or self.batch_size):
            self.annotate(docs)
            yield from docs

    def annotate(self, docs: list[Doc]) -> None:
        """Predict on every segment of ``docs`` in one model call and write the results onto the docs."""
        if self.model is None:
            raise RuntimeError(
                f"component {self.name!r} has no model: load a trained pipeline with spacy.load"
            )
        segments = [(doc, tokens) for doc in docs for tokens in self._segments(doc)]
        windows = [self._windows(doc, tokens) for doc, tokens in segments]
        texts = [
            [doc[i].text for i in tokens[w.start : w.end]]
            for (doc, tokens), planned in zip(segments, windows)
            for w in planned
        ]
        outputs = iter(self.model.predict(texts, self.batch_size, self.max_batch_words))
        per_doc: dict[int, list[tuple[list[int], dict[str, HeadOutput]]]] = {id(doc): [] for doc in docs}
        for (doc, tokens), planned in zip(segments, windows):
            window_outputs = [next(outputs) for _ in planned]
            merged = {
                name: merge_windows(planned, [output[name] for output in window_outputs])
                for name in self.model.heads
            }
            per_doc[id(doc)].append((tokens, merged))
        for doc in docs:
            self._write(doc, per_doc[id(doc)])

    def _segments(self, doc: Doc) -> list[list[int]]:
        """Token indices of each segment (sentence, or the whole doc, cut at blank lines), whitespace
        tokens left out."""
        by_sentence = self.segment_by_sentence and doc.has_annotation("SENT_START")
        spans = list(doc.sents) if by_sentence else [doc[:]]
        return [segment for span in spans for segment in paragraph_segments(span)]

    def _windows(self, doc: Doc, tokens: list[int]) -> list[Window]:
        """The windows the model sees of one segment: the segment itself when short enough."""
        if len(tokens) <= self.max_segment_words:
            return [Window(0, len(tokens), 0, len(tokens))]
        return plan_windows(cut_strengths(doc, tokens), self.max_segment_words, self.segment_overlap_words)

    def _write(self, doc: Doc, results: list[tuple[list[int], dict[str, HeadOutput]]]) -> None:
        relation_data: list[dict] = list(doc._.relation_data or [])
        for name in self.model.heads:
            spans, scores = [], []
            for tokens, output in results:
                entities, relations = output[name]
                head_spans = [
                    Span(doc, tokens[e.start], tokens[e.end - 1] + 1, label=e.label) for e in entities
                ]
                spans += head_spans
                scores += [e.score for e in entities]
                relation_data += [relation_record(head_spans, r, name) for r in relations]
            doc.spans[name] = spans
            doc.spans[name].attrs["scores"] = scores
        doc._.relation_data = relation_data
        if self.set_ents:
            self.merge_ents(doc, list(self.model.heads))

    def merge_ents(self, doc: Doc, heads: Sequence[str]) -> None:
        """Set ``doc.ents`` (and ``span._.score``) from the ``heads``' ``doc.spans`` by ``ents_merge``.

        Public so that Docs rebuilt from saved predictions (``ner extract --docbin``) get exactly
        the entities the component would have chosen."""
        rank = {name: i for i, name in enumerate(self.ents_heads or heads)}
        unknown = set(rank) - set(heads)
        if unknown and self.model is not None:
            raise ValueError(f"ents_heads names {sorted(unknown)}, not heads of this model: {list(heads)}")
        selected: list[tuple[float, int, Span]] = []
        for name in heads:
            group = doc.spans.get(name)
            if name in rank and group:
                selected += [(s, rank[name], span) for s, span in zip(group.attrs["scores"], group)]
        doc.ents = _non_overlapping(selected, list(doc.ents), self.ents_merge)
        for span, score in _scores_by_span(selected).items():
            doc.char_span(span[0], span[1])._.score = score

    # ------------------------------------------------------------------ serialisation
    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        if self.model is None:
            raise RuntimeError(f"component {self.name!r} has no model to save")
        slimmed = self._slimmed()
        model = self._reload() if slimmed else self.model
        model.save(path, storage=self.storage, dtype=self.dtype)
        if slimmed:  # what was saved is the full model: the new directory can give it back as well
            self._source = (Path(path), sha256_file(Path(path) / CONFIG_FILE))

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> Extractor:
        path = Path(path)
        self._source = (path, sha256_file(path / CONFIG_FILE))
        self._attach_loaded(ExtractionModel.load(path, self._embedding_settings()))
        return self

    def _embedding_settings(self) -> EmbeddingSettings:
        """This component's word-embedding settings, applied while loading (the full fp32 matrix is
        then never in memory: :mod:`ner.lean_loading`)."""
        return EmbeddingSettings(self.embedding_dtype, self.vocab_rows, self.language)

    # ------------------------------------------------------------------ memory at inference
    def _attach_loaded(self, model: ExtractionModel) -> None:
        """Attach a model loaded from disk, compacting its word embeddings and, with ONNX, dropping
        the torch layers the session replaces (both as this component's settings say)."""
        encoder = model.encoder
        if not is_compact(encoder.transformer):
            compact_word_embeddings(
                encoder.transformer, encoder.tokenizer, self.embedding_dtype, self.vocab_rows, self.language
            )
        # a branched head runs its own copies of the top layers on the torch layers below them
        # (ner/branches.py), so those layers stay loaded
        release = self.backend == "onnx" and not len(model.branches)
        use_backend(encoder, self.backend, self.onnx_quantize, release=release)
        self._model = model

    def _slimmed(self) -> bool:
        """Whether the attached model lacks some of its trained torch weights (see ``_attach_loaded``)."""
        encoder = self.model.encoder
        return encoder.layers_released or is_compact(encoder.transformer)

    def _reload(self, embeddings: EmbeddingSettings | None = None) -> ExtractionModel:
        """The attached model with all its torch weights (its word embeddings stored as ``embeddings``
        say; default: as trained): loaded again from its directory (which must still be the one
        loaded), with the heads as they are now."""
        directory, digest = self._source
        if sha256_file(directory / CONFIG_FILE) != digest:
            raise RuntimeError(
                f"{directory} changed since this pipeline was loaded from it, and the full weights of its "
                "encoder were not kept in memory (embedding_dtype / vocab_rows / backend = 'onnx'); "
                "load the pipeline again"
            )
        model = ExtractionModel.load(directory, embeddings)
        model.heads.load_state_dict(self.model.heads.state_dict())
        return model


def relation_record(spans: list[Span], relation, head_name: str) -> dict:
    """The JSON-serialisable form of ``relation`` (indices into ``spans``) kept in ``doc._.relation_data``."""
    head, tail = spans[relation.head], spans[relation.tail]
    return {
        "head": [head.start, head.end, head.label_],
        "tail": [tail.start, tail.end, tail.label_],
        "label": relation.label,
        "score": relation.score,
        "model_head": head_name,  # which head predicted it (its arguments are in doc.spans[model_head])
    }


def _non_overlapping(
    scored: list[tuple[float, int, Span]], existing: list[Span], rule: MergeRule
) -> list[Span]:
    """Greedy choice of ``(score, head rank, span)`` items in ``rule``'s order; existing entities
    keep their place where nothing chosen overlaps them."""
    taken = [False] * (len(scored[0][2].doc) if scored else 0)
    chosen = []
    for *_, span in sorted(scored, key=lambda item: _MERGE_KEYS[rule](*item)):
        if not any(taken[span.start : span.end]):
            chosen.append(span)
            taken[span.start : span.end] = [True] * len(span)
    chosen += [span for span in existing if not any(taken[span.start : span.end])]
    return sorted(chosen, key=lambda span: span.start)


def _scores_by_span(scored: list[tuple[float, int, Span]]) -> dict[tuple[int, int], float]:
    """The best score per character range (``span._.score`` is keyed by character offsets)."""
    best: dict[tuple[int, int], float] = {}
    for score, _, span in scored:
        key = (span.start_char, span.end_char)
        best[key] = max(score, best.get(key, 0.0))
    return best
