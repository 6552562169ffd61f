"""SpERT training samples: gold spans and pairs plus random negatives that never contradict the gold."""

from __future__ import annotations

import random

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.documents import Document, Entity, Relation, RelationType, Schema
from ner.heads.spert_sampling import collate_targets, sample_document
from tests.conftest import SCHEMA
from tests.conftest import sample_document as gold_document

FAMILY = Schema(
    entity_labels=("Peop", "Org"),
    relation_types=(RelationType("Sibling", symmetric=True), RelationType("Work_For")),
)


def family_document() -> Document:
    """Two siblings (a symmetric relation), one of them also working for an organisation."""
    words = ["Anna", "and", "Ben", "Smith", "both", "work", "at", "Acme", "Corp"]
    return Document.from_words(
        words,
        entities=[Entity(0, 1, "Peop"), Entity(2, 4, "Peop"), Entity(7, 9, "Org")],
        relations=[Relation(0, 1, "Sibling"), Relation(1, 2, "Work_For"), Relation(0, 1, "Work_For")],
    )


def check_invariants(doc: Document, schema: Schema, max_width: int, neg_entities: int, neg_relations: int):
    """Every property a sample must have, whatever the document and the random draw."""
    spans, pairs = sample_document(doc, schema, max_width, neg_entities, neg_relations, random.Random(7))
    labels = {label: i + 1 for i, label in enumerate(schema.entity_labels)}
    n = len(doc.words)
    gold_spans = {(e.start, e.end) for e in doc.entities}

    # gold entities first, in order, with their labels
    assert spans[: len(doc.entities)] == [(e.start, e.end, labels[e.label]) for e in doc.entities]
    negatives = spans[len(doc.entities) :]
    candidates = {(s, s + w) for s in range(n) for w in range(1, max_width + 1) if s + w <= n} - gold_spans
    assert len(negatives) == min(neg_entities, len(candidates))
    assert len({(s, e) for s, e, _ in negatives}) == len(negatives)  # drawn without replacement
    for start, end, label in negatives:
        assert label == 0 and (start, end) not in gold_spans
        assert 0 <= start < end <= n and end - start <= max_width

    # gold pairs as multi-hot rows, then negatives that are no gold fact
    relation_ids = {label: i for i, label in enumerate(schema.relation_labels)}
    expected: dict[tuple[int, int], list[float]] = {}
    for r in doc.relations:
        expected.setdefault((r.head, r.tail), [0.0] * len(relation_ids))[relation_ids[r.label]] = 1.0
    positive = {(h, t): hot for h, t, hot in pairs if any(hot)}
    assert positive == expected
    symmetric_reversed = {(r.tail, r.head) for r in doc.relations if r.label in schema.symmetric_relations}
    negative_pairs = [(h, t) for h, t, hot in pairs if not any(hot)]
    entities = doc.entities
    candidates = [
        (i, j)
        for i in range(len(entities))
        for j in range(len(entities))
        if _share_no_word(entities[i], entities[j])
        and (i, j) not in expected
        and (i, j) not in symmetric_reversed
    ]
    assert len(negative_pairs) == len(set(negative_pairs)) == min(neg_relations, len(candidates))
    for h, t in negative_pairs:
        assert h != t and _share_no_word(entities[h], entities[t])  # inference never pairs overlaps
        assert (h, t) not in expected and (h, t) not in symmetric_reversed
    return spans, pairs


def _share_no_word(a: Entity, b: Entity) -> bool:
    return not set(range(a.start, a.end)) & set(range(b.start, b.end))


def test_overlapping_entities_are_never_a_negative_pair():
    """ "Redmond" inside "Redmond, Washington": inference never classifies such a pair, so training
    does not either; the disjoint pairs are all drawn."""
    words = ["Gates", "lives", "in", "Redmond", ",", "Washington"]
    doc = Document.from_words(
        words, entities=[Entity(0, 1, "Peop"), Entity(3, 4, "Loc"), Entity(3, 6, "Loc"), Entity(5, 6, "Loc")]
    )
    _, pairs = check_invariants(doc, SCHEMA, max_width=3, neg_entities=0, neg_relations=100)
    drawn = {(h, t) for h, t, _ in pairs}
    assert drawn == {(0, 1), (1, 0), (0, 2), (2, 0), (0, 3), (3, 0), (1, 3), (3, 1)}


def test_the_conll_sample_document_with_few_and_many_negatives():
    """Fewer negatives than candidates are drawn as asked; more are capped at the candidate count."""
    doc = gold_document()
    spans, pairs = check_invariants(doc, SCHEMA, max_width=3, neg_entities=5, neg_relations=1)
    assert len(spans) == 3 + 5 and len(pairs) == 2 + 1
    spans, pairs = check_invariants(doc, SCHEMA, max_width=3, neg_entities=1000, neg_relations=1000)
    assert len(spans) == 10 + 9 + 8  # all spans of width <= 3 of 10 words (the gold ones counted once)
    assert len(pairs) == 3 * 2  # every ordered pair of the 3 entities: 2 gold, 4 negatives


def test_symmetric_gold_pair_is_never_a_negative_in_reverse():
    """``Sibling(0, 1)`` is the same fact as ``Sibling(1, 0)``; a shared pair gets one multi-hot row."""
    doc = family_document()
    spans, pairs = check_invariants(doc, FAMILY, max_width=2, neg_entities=100, neg_relations=100)
    rows = {(h, t): hot for h, t, hot in pairs}
    assert rows[(0, 1)] == [1.0, 1.0] and rows[(1, 2)] == [0.0, 1.0]
    assert (1, 0) not in rows  # the reverse of the symmetric pair
    assert set(rows) == {(0, 1), (1, 2), (0, 2), (2, 0), (2, 1)}


def test_same_seed_same_sample_and_different_seed_different_sample():
    """Sampling depends only on the random generator passed in."""
    doc = gold_document()

    def draw(seed: int):
        return sample_document(doc, SCHEMA, 10, 8, 2, random.Random(seed))

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


@st.composite
def documents(draw):
    """A random document with distinct entity spans and random (possibly symmetric) relations."""
    n = draw(st.integers(1, 12))
    span = st.tuples(st.integers(0, n - 1), st.integers(1, 4)).map(lambda sw: (sw[0], min(n, sw[0] + sw[1])))
    spans = draw(st.lists(span, max_size=5, unique=True))
    entities = [Entity(s, e, draw(st.sampled_from(FAMILY.entity_labels))) for s, e in spans]
    relations = []
    if len(entities) >= 2:
        index = st.integers(0, len(entities) - 1)
        label = st.sampled_from(FAMILY.relation_labels)
        triples = st.tuples(index, index, label).filter(lambda r: r[0] != r[1])
        relations = [Relation(*triple) for triple in draw(st.lists(triples, max_size=4, unique=True))]
    return Document.from_words([f"w{i}" for i in range(n)], entities=entities, relations=relations)


@settings(max_examples=150, deadline=None)
@given(documents(), st.integers(1, 5), st.integers(0, 30), st.integers(0, 10))
def test_random_documents_satisfy_every_sampling_invariant(doc, max_width, neg_entities, neg_relations):
    """Gold kept with labels; negatives counted, bounded, and never a gold span, gold pair or its mirror."""
    check_invariants(doc, FAMILY, max_width, neg_entities, neg_relations)


def test_collate_shifts_pair_indices_by_the_spans_of_earlier_documents():
    """Pairs of the second document point past the first document's spans."""
    first = ([(0, 2, 1), (3, 4, 2), (5, 6, 0)], [(0, 1, [1.0, 0.0]), (1, 0, [0.0, 0.0])])
    second = ([(1, 3, 2), (0, 1, 1)], [(1, 0, [0.0, 1.0])])
    empty: tuple[list, list] = ([], [])
    third = ([(0, 1, 1), (2, 3, 1)], [(0, 1, [1.0, 1.0])])
    targets = collate_targets([first, second, empty, third], num_relation_types=2)
    assert targets.span_doc.tolist() == [0, 0, 0, 1, 1, 3, 3]
    assert targets.span_start.tolist() == [0, 3, 5, 1, 0, 0, 2]
    assert targets.span_end.tolist() == [2, 4, 6, 3, 1, 1, 3]
    assert targets.span_label.tolist() == [1, 2, 0, 2, 1, 1, 1]
    assert targets.pair_head.tolist() == [0, 1, 3 + 1, 5 + 0]
    assert targets.pair_tail.tolist() == [1, 0, 3 + 0, 5 + 1]
    assert torch.equal(targets.pair_labels, torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))


def test_collate_of_documents_without_pairs_gives_empty_pair_tensors():
    """No pairs at all still yields ``[0]`` and ``[0, types]`` tensors of the right dtypes."""
    targets = collate_targets([([(0, 1, 0)], [])], num_relation_types=3)
    assert targets.pair_head.shape == (0,) and targets.pair_head.dtype == torch.long
    assert targets.pair_labels.shape == (0, 3) and targets.pair_labels.dtype == torch.float32
