"""The SpERT head: span and pair enumeration, representations against a dense reference, loss, decoding."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.documents import Document, RelationType, Schema
from ner.heads.spert import SpertConfig, SpertHead, disjoint, enumerate_spans, pairs_within_docs
from ner.pooling import RangeMaxPool
from tests.conftest import SCHEMA, sample_document, tiny_encoder

WORDS = [
    ["Arnold", "Schwarzenegger", "governed", "California", "unbelievably", "well", "."],
    ["Angela", "Merkel", "lives", "in", "Berlin"],
]


@pytest.fixture(scope="module")
def encoder():
    return tiny_encoder().eval()


@pytest.fixture(scope="module")
def encoding(encoder):
    with torch.no_grad():
        return encoder.encode(WORDS)


def make_head(schema: Schema = SCHEMA, **config) -> SpertHead:
    torch.manual_seed(0)
    return SpertHead(32, schema, SpertConfig(**config)).eval()


def eager_head(**config) -> SpertHead:
    """A head on the symmetric schema for which every span is an entity ("None" never wins) and
    every relation type fires for every pair it considers."""
    head = make_head(SYMMETRIC_SCHEMA, **config)
    with torch.no_grad():
        head.entity_classifier.bias[0] = -1e4
        head.relation_classifier.bias.fill_(1e4)
    return head


# ---------------------------------------------------------------------- enumeration
def naive_spans(word_counts: list[int], max_width: int) -> list[tuple[int, int, int]]:
    return [
        (d, s, s + w)
        for d, n in enumerate(word_counts)
        for s in range(n)
        for w in range(1, max_width + 1)
        if s + w <= n
    ]


def naive_pairs(items: list[tuple[int, int]], max_distance: int | None = None) -> list[tuple[int, int]]:
    """Ordered pairs of distinct ``(doc, start)`` items of one doc, starts at most ``max_distance`` apart."""
    return [
        (i, j)
        for i, (doc_i, start_i) in enumerate(items)
        for j, (doc_j, start_j) in enumerate(items)
        if i != j and doc_i == doc_j and (max_distance is None or abs(start_i - start_j) <= max_distance)
    ]


def library_pairs(items: list[tuple[int, int]], max_distance: int | None = None) -> list[tuple[int, int]]:
    """The same pairs from the library, as a list."""
    doc = torch.tensor([d for d, _ in items], dtype=torch.long)
    start = torch.tensor([s for _, s in items], dtype=torch.long)
    head, tail = pairs_within_docs(doc, start, max_distance)
    return list(zip(head.tolist(), tail.tolist(), strict=True))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=5), st.integers(1, 6))
def test_enumerate_spans_lists_every_span_up_to_the_width_doc_major(word_counts, max_width):
    """All ``(doc, start, end)`` with ``1 <= end - start <= max_width``, ordered by doc, start, width."""
    doc, start, end = enumerate_spans(torch.tensor(word_counts), max_width)
    got = list(zip(doc.tolist(), start.tolist(), end.tolist(), strict=True))
    assert got == naive_spans(word_counts, max_width)


EDGE_CASES = {
    "empty": [],
    "one item": [(0, 3)],
    "one item per doc": [(0, 1), (2, 0), (5, 4)],
    "same starts": [(0, 0), (0, 0), (0, 1), (0, 1)],
    "gaps in doc numbers": [(0, 0), (1, 2), (1, 5), (3, 0), (3, 1), (3, 9), (4, 7)],
}


@pytest.mark.parametrize("max_distance", [None, 1, 3])
@pytest.mark.parametrize("items", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_pairs_within_docs_on_edge_cases(items, max_distance):
    """Empty input, single items, equal starts (spans of several widths) and gaps in the doc numbering."""
    assert library_pairs(items, max_distance) == naive_pairs(items, max_distance)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 15)), max_size=30).map(sorted),
    st.none() | st.integers(1, 6),
)
def test_pairs_within_docs_lists_every_ordered_pair_of_the_same_doc(items, max_distance):
    """All ``(i, j)``, ``i != j``, same doc, starts within ``max_distance``, in head-major order."""
    assert library_pairs(items, max_distance) == naive_pairs(items, max_distance)


# ---------------------------------------------------------------------- representations
def dense_span(encoding, d: int, s: int, e: int) -> tuple[torch.Tensor, int, int]:
    """Max over the span's pieces, computed directly from the padded states."""
    first, last = int(encoding.word_starts[d, s]), int(encoding.word_ends[d, e - 1])
    return encoding.states[d, first:last].max(0).values, first, last


def test_span_representations_equal_a_dense_reference(encoding):
    """``[CLS] ; max(span pieces) ; width`` for every span, through the entity classifier."""
    head = make_head(max_span_width=4)
    doc, start, end = enumerate_spans(encoding.word_counts, 4)
    pool = RangeMaxPool(encoding.states)
    with torch.no_grad():
        pooled, widths, _, _ = head.span_features(encoding, pool, doc, start, end)
        logits = head.entity_logits(encoding, doc, pooled, widths)
        expected = []
        for d, s, e in zip(doc.tolist(), start.tolist(), end.tolist(), strict=True):
            span, _, _ = dense_span(encoding, d, s, e)
            width = head.width_embedding.weight[e - s]
            expected.append(head.entity_classifier(torch.cat([encoding.cls[d], span, width])))
    torch.testing.assert_close(logits, torch.stack(expected))


def test_relation_features_equal_a_dense_reference(encoding):
    """``max(pieces between) ; span_a ; span_b ; width_a ; width_b``; zero context when nothing is between."""
    head = make_head(max_span_width=3)
    doc, start, end = enumerate_spans(encoding.word_counts, 3)
    pair_head, pair_tail = pairs_within_docs(doc, start)
    pool = RangeMaxPool(encoding.states)
    with torch.no_grad():
        pooled, widths, piece_start, piece_end = head.span_features(encoding, pool, doc, start, end)
        logits = head.relation_logits(pool, doc, piece_start, piece_end, pooled, widths, pair_head, pair_tail)
        spans = [
            dense_span(encoding, *triple)
            for triple in zip(doc.tolist(), start.tolist(), end.tolist(), strict=True)
        ]
        expected = []
        for h, t in zip(pair_head.tolist(), pair_tail.tolist(), strict=True):
            (span_h, first_h, last_h), (span_t, first_t, last_t) = spans[h], spans[t]
            between = encoding.states[int(doc[h]), min(last_h, last_t) : max(first_h, first_t)]
            context = between.max(0).values if len(between) else torch.zeros(32)
            width_h = head.width_embedding.weight[int(end[h] - start[h])]
            width_t = head.width_embedding.weight[int(end[t] - start[t])]
            expected.append(head.relation_classifier(torch.cat([context, span_h, span_t, width_h, width_t])))
    torch.testing.assert_close(logits, torch.stack(expected))


def test_context_is_zero_for_adjacent_and_overlapping_spans(encoding):
    """Spans that touch or overlap have no pieces between them: the context block of the features is 0."""
    head = make_head()
    head.relation_classifier = torch.nn.Identity()  # expose the features
    doc = torch.tensor([0, 0, 0, 0])
    start, end = torch.tensor([0, 2, 1, 4]), torch.tensor([2, 4, 3, 5])  # [0,2) [2,4) [1,3) [4,5)
    pool = RangeMaxPool(encoding.states)
    with torch.no_grad():
        pooled, widths, piece_start, piece_end = head.span_features(encoding, pool, doc, start, end)
        pair_head, pair_tail = torch.tensor([0, 1, 0, 2, 1]), torch.tensor([1, 0, 2, 0, 3])
        features = head.relation_logits(
            pool, doc, piece_start, piece_end, pooled, widths, pair_head, pair_tail
        )
        assert torch.equal(features[:, :32], torch.zeros(5, 32))
        separated = head.relation_logits(
            pool, doc, piece_start, piece_end, pooled, widths, torch.tensor([0]), torch.tensor([3])
        )
    assert separated[:, :32].abs().sum() > 0  # [0,2) and [4,5) have words 2-3 between them


# ---------------------------------------------------------------------- training
def test_loss_is_a_finite_scalar_whose_gradient_reaches_the_encoder():
    """The sampled-target loss backpropagates through the head into the transformer's embeddings."""
    encoder = tiny_encoder()
    head = SpertHead(32, SCHEMA, SpertConfig(neg_entities=20, neg_relations=20))
    docs = [sample_document(), Document.from_words(["Angela", "Merkel", "lives", "in", "Berlin"])]
    targets = head.targets(docs, random.Random(0))
    loss = head.loss(encoder.encode([d.words for d in docs]), targets)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    embedding_grad = encoder.transformer.embeddings.word_embeddings.weight.grad
    assert embedding_grad is not None and embedding_grad.abs().sum() > 0
    assert head.relation_classifier.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------------- decoding
SYMMETRIC_SCHEMA = Schema(
    entity_labels=("Peop", "Org"),
    relation_types=(RelationType("Sibling", symmetric=True), RelationType("Work_For")),
)


def test_decode_keeps_every_span_and_pair_when_forced_and_deduplicates_symmetric_relations(encoding):
    """Every span an entity, every pair of spans that share no word related: a symmetric relation
    appears once per unordered pair."""
    head = eager_head(max_span_width=2)
    results = head.decode(encoding)
    assert len(results) == len(WORDS)
    for words, (entities, relations) in zip(WORDS, results, strict=True):
        n = len(entities)
        assert n == len(naive_spans([len(words)], 2))
        disjoint = sum(a.end <= b.start or b.end <= a.start for a in entities for b in entities)
        sibling = [(r.head, r.tail) for r in relations if r.label == "Sibling"]
        work_for = [(r.head, r.tail) for r in relations if r.label == "Work_For"]
        assert len(work_for) == len(set(work_for)) == disjoint
        assert len(sibling) == len(set(sibling)) == disjoint // 2
        assert {frozenset(pair) for pair in sibling} == {frozenset(pair) for pair in work_for}
        for h, t in sibling:
            assert (entities[h].start, entities[h].end) < (entities[t].start, entities[t].end)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_decoded_entities_and_relations_are_well_formed(encoding, threshold):
    """Entities within the text and width limit; relations index existing entities, none below threshold."""
    head = make_head(SYMMETRIC_SCHEMA, max_span_width=3, relation_threshold=threshold)
    with torch.no_grad():
        head.entity_classifier.bias[0] = -1e4
    for words, (entities, relations) in zip(WORDS, head.decode(encoding), strict=True):
        assert entities
        for entity in entities:
            assert 0 <= entity.start < entity.end <= len(words)
            assert entity.width <= 3 and entity.label in SYMMETRIC_SCHEMA.entity_labels
            assert 0.0 <= entity.score <= 1.0
        assert relations  # random relation weights: some pairs land on each side of the threshold
        keys = [(r.head, r.tail, r.label) for r in relations]
        assert len(keys) == len(set(keys))
        for relation in relations:
            assert 0 <= relation.head < len(entities) and 0 <= relation.tail < len(entities)
            assert relation.head != relation.tail
            assert threshold <= relation.score <= 1.0


def test_decode_finds_nothing_when_none_always_wins(encoding):
    """With the "None" class dominant there are no entities and hence no relations."""
    head = make_head()
    with torch.no_grad():
        head.entity_classifier.bias[0] = 1e4
    assert head.decode(encoding) == [([], []), ([], [])]


def test_pair_chunking_does_not_change_the_relations(encoding, monkeypatch):
    """Relation scoring in chunks of pairs (bounded memory on long texts) gives the unchunked result."""
    head = make_head(SYMMETRIC_SCHEMA, max_span_width=2)
    with torch.no_grad():
        head.entity_classifier.bias[0] = -1e4
    whole = head.decode(encoding)
    monkeypatch.setattr("ner.heads.spert.PAIR_CHUNK", 7)
    chunked = head.decode(encoding)
    for (entities, relations), (chunked_entities, chunked_relations) in zip(whole, chunked, strict=True):
        assert chunked_entities == entities
        assert [(r.head, r.tail, r.label) for r in chunked_relations] == [
            (r.head, r.tail, r.label) for r in relations
        ]
        assert [r.score for r in chunked_relations] == pytest.approx([r.score for r in relations], abs=1e-6)


def test_no_relation_links_two_spans_that_overlap(encoding):
    """ "Redmond" Located_In "Redmond, Washington" is one name read twice: spans that share a word are
    never paired, however sure the relation classifier is; spans that only touch still are."""
    head = eager_head(max_span_width=4)
    for entities, relations in head.decode(encoding):
        assert relations
        for relation in relations:
            a, b = entities[relation.head], entities[relation.tail]
            assert a.end <= b.start or b.end <= a.start, (a, b)
        touching = {(r.head, r.tail) for r in relations if entities[r.head].end == entities[r.tail].start}
        assert touching


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(1, 4)), min_size=1, max_size=12))
def test_disjoint_is_exactly_sharing_no_word(spans):
    start = torch.tensor([s for s, _ in spans])
    end = torch.tensor([s + w for s, w in spans])
    head, tail = torch.meshgrid(torch.arange(len(spans)), torch.arange(len(spans)), indexing="ij")
    mask = disjoint(head.flatten(), tail.flatten(), start, end).tolist()
    words = [set(range(s, s + w)) for s, w in spans]
    assert mask == [not (words[i] & words[j]) for i in range(len(spans)) for j in range(len(spans))]


def test_max_pair_distance_limits_the_pairs_considered(encoding):
    """With ``max_pair_distance=1`` only entities starting at most one word apart are related."""
    head = eager_head(max_span_width=2, max_pair_distance=1)
    for entities, relations in head.decode(encoding):
        assert relations
        for relation in relations:
            assert abs(entities[relation.head].start - entities[relation.tail].start) <= 1
