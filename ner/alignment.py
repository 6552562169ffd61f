"""Gold annotations moved onto the tokens the pipeline itself produces.

Users give ``nlp()`` raw text, and the pipeline's tokenizer cuts it differently from a corpus's
own tokens: CoNLL04 writes "Kentucky." and "Knight-Ridder" as one token each, spaCy makes two and
three of them. A model trained on the corpus's tokens has never seen the pieces it will be given.
So training, like inference, starts from the text: every reader keeps each document's text and
the character offsets of its words (:class:`ner.documents.Document`), and :func:`retokenize`
cuts that text with the pipeline's tokenizer and moves each gold span onto the new tokens, the
way spaCy's ``Doc.char_span(alignment_mode="strict")`` does.

**The normalisation rule.** A gold span whose last corpus token carried a sentence or clause
mark that the tokenizer splits off (``.``, ``,``, ``;``, ``:``, ``!``, ``?``, glued to the word
before it, as in "Kentucky.") loses that mark: a full stop is not part of a place name, and at
inference the model sees the mark as a token of its own. Marks the tokenizer keeps inside a
token ("U.S.", "Inc." where the language's exceptions say so) stay, and so does a mark the corpus
wrote as a token of its own inside the span (whitespace before it: the annotator chose it). The
same rule applies to the gold of the raw-text evaluation, so the two always agree.

**What cannot be aligned** is a span whose start or end falls inside one of the pipeline's tokens
(the corpus split a word that the tokenizer keeps whole). It is left out of the aligned document,
with the relations that point at it, and reported: :class:`Alignment` says how many, and which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from spacy.tokens import Doc

from ner.documents import Document, Entity, Relation

#: Marks stripped from the end of a gold span when the tokenizer splits them off a word.
TRAILING_MARKS = frozenset(".,;:!?")
Tokenizer = Callable[[str], Doc]


@dataclass
class Alignment:
    """What :func:`retokenize` did to the gold of some documents (add them up with ``+=``)."""

    spans: int = 0  # gold entity spans seen
    normalised: int = 0  # of which trailing marks were stripped (the rule above)
    unaligned: int = 0  # of which could not be aligned, and were left out
    relations_dropped: int = 0  # relations left out because an argument could not be aligned
    examples: list[str] = field(default_factory=list)  # the first unaligned spans, for a report

    def __iadd__(self, other: Alignment) -> Alignment:
        self.spans += other.spans
        self.normalised += other.normalised
        self.unaligned += other.unaligned
        self.relations_dropped += other.relations_dropped
        self.examples += other.examples[: max(0, 5 - len(self.examples))]
        return self

    def describe(self) -> str:
        text = (
            f"{self.spans} gold spans, {self.normalised} with a trailing mark stripped, "
            f"{self.unaligned} not aligned to the pipeline's tokens"
        )
        if self.relations_dropped:
            text += f" ({self.relations_dropped} relations with them)"
        if self.examples:
            text += ": " + "; ".join(self.examples)
        return text


def retokenize(document: Document, tokenizer: Tokenizer) -> tuple[Document, Alignment]:
    """``document`` on ``tokenizer``'s tokens (whitespace tokens left out, as the extractor does),
    its entities aligned and normalised, and what that did."""
    doc = tokenizer(document.text)
    tokens = [token for token in doc if not token.is_space]
    starts = {token.idx: i for i, token in enumerate(tokens)}
    ends = {token.idx + len(token): i + 1 for i, token in enumerate(tokens)}
    report = Alignment()
    new_index: dict[int, int] = {}
    entities: list[Entity] = []
    for index, entity in enumerate(document.entities):
        report.spans += 1
        first, last = document.char_span(entity.start, entity.end)
        span = _aligned(tokens, starts, ends, first, last)
        if span is None:
            report.unaligned += 1
            if len(report.examples) < 5:
                where = f"{document.id}: " if document.id else ""
                report.examples.append(f"{where}{document.text[first:last]!r} ({entity.label})")
            continue
        normal = _normalised(tokens, *span)
        report.normalised += normal != span
        aligned = Entity(normal[0], normal[1], entity.label)
        if aligned not in entities:
            entities.append(aligned)
        new_index[index] = entities.index(aligned)
    relations = _relations(document.relations, new_index, report)
    words = [token.text for token in tokens]
    offsets = [(token.idx, token.idx + len(token)) for token in tokens]
    return Document(words, document.text, offsets, entities, relations, document.id), report


def retokenize_all(documents: Iterable[Document], tokenizer: Tokenizer) -> tuple[list[Document], Alignment]:
    """:func:`retokenize` of each document, and what it did to all of them."""
    return each_aligned(documents, lambda document: retokenize(document, tokenizer))


def each_aligned(
    documents: Iterable[Document], align: Callable[[Document], tuple[Document, Alignment]]
) -> tuple[list[Document], Alignment]:
    """``align`` applied to each document, and the sum of what it did."""
    total, aligned = Alignment(), []
    for document in documents:
        new, report = align(document)
        aligned.append(new)
        total += report
    return aligned, total


def _aligned(tokens, starts: dict[int, int], ends: dict[int, int], first: int, last: int):
    """The tokens ``[start, end)`` covering characters ``[first, last)`` exactly, or None."""
    start, end = starts.get(first), ends.get(last)
    if start is None or end is None or end <= start:
        return None
    return start, end


def _normalised(tokens, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` without trailing marks the tokenizer split off a word (the rule above)."""
    while end - start > 1 and _split_off_mark(tokens[end - 1], tokens[end - 2]):
        end -= 1
    return start, end


def _split_off_mark(token, before) -> bool:
    glued = before.idx + len(before) == token.idx
    return glued and len(token.text) > 0 and set(token.text) <= TRAILING_MARKS


def _relations(relations: list[Relation], new_index: dict[int, int], report: Alignment) -> list[Relation]:
    kept: list[Relation] = []
    for relation in relations:
        head, tail = new_index.get(relation.head), new_index.get(relation.tail)
        if head is None or tail is None:
            report.relations_dropped += 1
            continue
        moved = Relation(head, tail, relation.label)
        if moved not in kept and head != tail:
            kept.append(moved)
    return kept
