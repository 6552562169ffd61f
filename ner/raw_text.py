"""Gold and predictions on character offsets: the two sides of the raw-text protocol.

Users give ``nlp()`` text, not a corpus's tokens, so the raw-text protocol scores what the whole
pipeline makes of each gold document's ``text`` against the gold, both as character spans. Both
sides become *character documents*: :class:`Document`\\ s whose words are the text's characters,
so an entity ``[start, end)`` over those words is exactly ``[start_char, end_char)``, and
:mod:`ner.metrics` scores them unchanged (strict matches, symmetric relations put in order).

* **Predictions** are every span a head put in ``doc.spans[head]`` (all of them, as the corpus-token
  protocol scores all of a head's predictions, not the non-overlapping ``doc.ents``) and the
  head's relations in ``doc._.relation_data``.
* **Gold** follows :mod:`ner.alignment`'s rule, the one training uses: each gold span is moved
  onto the pipeline tokenizer's tokens (a trailing "." or "," the tokenizer splits off is dropped:
  "Kentucky." becomes "Kentucky"). A gold span the tokenizer cannot align (it starts or ends
  inside one of its tokens) keeps its original characters: no prediction, which always lies on
  token boundaries, can match it, so it counts as a miss, and so do the relations that point at
  it. Nothing is dropped from the gold.
"""

from __future__ import annotations

from collections.abc import Iterable

from spacy.tokens import Doc

from ner.alignment import Alignment, Tokenizer, each_aligned, retokenize
from ner.documents import Document, Entity, Relation


def character_document(
    text: str, entities: list[Entity], relations: list[Relation], id: str | None = None
) -> Document:
    """A document whose words are ``text``'s characters, so that ``entities`` are character spans."""
    return Document(list(text), text, [(i, i + 1) for i in range(len(text))], entities, relations, id)


def gold_characters(document: Document, tokenizer: Tokenizer) -> tuple[Document, Alignment]:
    """``document``'s gold as a character document, each span aligned and normalised by
    :func:`ner.alignment.retokenize` where it can be and kept as it is where it cannot; and what
    aligning did (``relations_dropped`` counts the relations with an unaligned argument, which are
    kept here and scored as misses)."""
    cut = tokenizer(document.text)  # once: every entity is aligned to the same tokens
    report, entities, unaligned = Alignment(), [], set()
    for index, entity in enumerate(document.entities):  # one at a time: each keeps its index
        alone = Document(document.words, document.text, document.offsets, [entity], id=document.id)
        aligned, one = retokenize(alone, lambda _text: cut)
        report += one
        if aligned.entities:
            moved = aligned.entities[0]
            entities.append(Entity(*aligned.char_span(moved.start, moved.end), entity.label))
        else:
            unaligned.add(index)
            entities.append(Entity(*document.char_span(entity.start, entity.end), entity.label))
    relations = [Relation(r.head, r.tail, r.label) for r in document.relations]
    report.relations_dropped = sum(r.head in unaligned or r.tail in unaligned for r in relations)
    return character_document(document.text, entities, relations, document.id), report


def gold_characters_all(
    documents: Iterable[Document], tokenizer: Tokenizer
) -> tuple[list[Document], Alignment]:
    """:func:`gold_characters` of each document, and what aligning did to all of them."""
    return each_aligned(documents, lambda document: gold_characters(document, tokenizer))


def predicted_characters(doc: Doc, head: str) -> Document:
    """``head``'s predictions on ``doc`` (every span in ``doc.spans[head]``, and its relations) as
    a character document."""
    entities = [Entity(span.start_char, span.end_char, span.label_) for span in doc.spans.get(head, [])]
    index = {(e.start, e.end, e.label): i for i, e in enumerate(entities)}
    relations = []
    for record in doc._.relation_data or []:
        if record.get("model_head", head) != head:
            continue
        ends = [_characters(doc, *record[side]) for side in ("head", "tail")]
        for key in ends:  # arguments are the head's spans; a record from elsewhere still scores
            if key not in index:
                index[key] = len(entities)
                entities.append(Entity(*key))
        relations.append(Relation(index[ends[0]], index[ends[1]], record["label"]))
    return character_document(doc.text, entities, relations)


def _characters(doc: Doc, start: int, end: int, label: str) -> tuple[int, int, str]:
    """The character span and label of the token span ``[start, end)``."""
    span = doc[start:end]
    return span.start_char, span.end_char, label
