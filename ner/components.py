"""The spaCy layer: one thin component over :class:`ner.model.ExtractionModel`.

A single component owns the encoder and every head, so a batch of docs costs exactly one
encoder pass whatever the number of heads, the weights live in one place, and no tensors are
stored on Docs. It writes:

* ``doc.spans[<head name>]``: every span the head predicted (SpERT spans may overlap), with
  their scores in ``doc.spans[<head name>].attrs["scores"]``;
* ``doc.ents``: a non-overlapping selection (higher score first, then the longer span), merged
  with entities set by earlier components where they do not overlap;
* ``span._.score`` on those spans, and ``doc._.relations``: ``RelationMention(head, label, tail,
  score)`` tuples, computed from the JSON-serialisable ``doc._.relation_data`` so that relations
  survive ``DocBin(store_user_data=True)``.

The factory is registered through the ``spacy_factories`` entry point, so ``spacy.load`` needs
no import of this package.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, NamedTuple

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from ner.model import ExtractionModel, HeadOutput


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
        "segment_by_sentence": True,
        "set_ents": True,
        "storage": "full",
        "dtype": "float16",
    },
)
def make_extractor(
    nlp: Language,
    name: str,
    batch_size: int,
    max_batch_words: int,
    segment_by_sentence: bool,
    set_ents: bool,
    storage: Literal["full", "delta"],
    dtype: Literal["float16", "float32"],
) -> Extractor:
    return Extractor(name, batch_size, max_batch_words, segment_by_sentence, set_ents, storage, dtype)


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
        dtype: Literal["float16", "float32"] = "float16",
        model: ExtractionModel | None = None,
    ) -> None:
        self.name = name
        self.batch_size = batch_size
        self.max_batch_words = max_batch_words
        self.segment_by_sentence = segment_by_sentence
        self.set_ents = set_ents
        self.storage = storage
        self.dtype = dtype
        self.model = model

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
        outputs = self.model.predict(
            [[doc[i].text for i in tokens] for doc, tokens in segments], self.batch_size, self.max_batch_words
        )
        per_doc: dict[int, list[tuple[list[int], dict[str, HeadOutput]]]] = {id(doc): [] for doc in docs}
        for (doc, tokens), output in zip(segments, outputs):
            per_doc[id(doc)].append((tokens, output))
        for doc in docs:
            self._write(doc, per_doc[id(doc)])

    def _segments(self, doc: Doc) -> list[list[int]]:
        """Token indices of each segment (sentence, or the whole doc), whitespace tokens left out."""
        by_sentence = self.segment_by_sentence and doc.has_annotation("SENT_START")
        spans = list(doc.sents) if by_sentence else [doc[:]]
        return [[t.i for t in span if not t.is_space] for span in spans]

    def _write(self, doc: Doc, results: list[tuple[list[int], dict[str, HeadOutput]]]) -> None:
        relation_data: list[dict] = list(doc._.relation_data or [])
        selected: list[tuple[float, Span]] = []
        for name in self.model.heads:
            spans, scores = [], []
            for tokens, output in results:
                entities, relations = output[name]
                head_spans = [
                    Span(doc, tokens[e.start], tokens[e.end - 1] + 1, label=e.label) for e in entities
                ]
                spans += head_spans
                scores += [e.score for e in entities]
                relation_data += [_relation_record(head_spans, r) for r in relations]
            doc.spans[name] = spans
            doc.spans[name].attrs["scores"] = scores
            selected += zip(scores, spans)
        doc._.relation_data = relation_data
        if self.set_ents:
            doc.ents = _non_overlapping(selected, list(doc.ents))
            for span, score in _scores_by_span(selected).items():
                doc.char_span(span[0], span[1])._.score = score

    # ------------------------------------------------------------------ serialisation
    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        if self.model is None:
            raise RuntimeError(f"component {self.name!r} has no model to save")
        self.model.save(path, storage=self.storage, dtype=self.dtype)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> Extractor:
        self.model = ExtractionModel.load(path)
        return self


def _relation_record(spans: list[Span], relation) -> dict:
    head, tail = spans[relation.head], spans[relation.tail]
    return {
        "head": [head.start, head.end, head.label_],
        "tail": [tail.start, tail.end, tail.label_],
        "label": relation.label,
        "score": relation.score,
    }


def _non_overlapping(scored: list[tuple[float, Span]], existing: list[Span]) -> list[Span]:
    """Greedy choice by score, then length; existing entities keep their place where they fit."""
    taken = [False] * (len(scored[0][1].doc) if scored else 0)
    chosen = []
    for _, span in sorted(scored, key=lambda item: (-item[0], -len(item[1]), item[1].start)):
        if not any(taken[span.start : span.end]):
            chosen.append(span)
            taken[span.start : span.end] = [True] * len(span)
    chosen += [span for span in existing if not any(taken[span.start : span.end])]
    return sorted(chosen, key=lambda span: span.start)


def _scores_by_span(scored: list[tuple[float, Span]]) -> dict[tuple[int, int], float]:
    """The best score per character range (``span._.score`` is keyed by character offsets)."""
    best: dict[tuple[int, int], float] = {}
    for score, span in scored:
        key = (span.start_char, span.end_char)
        best[key] = max(score, best.get(key, 0.0))
    return best
