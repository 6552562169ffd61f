"""Training samples for SpERT: gold spans and pairs plus random negatives, as in the reference code.

Per sentence: every gold entity, ``neg_entities`` random spans (width <= ``max_width``) that are
not gold entities, every gold relation pair (multi-label), and ``neg_relations`` random ordered
pairs of gold entities that are not related. Two deliberate refinements: the reverse of a
symmetric gold pair is never drawn as a negative (it is the same fact), and neither is a pair of
overlapping entities (inference never classifies one: see :mod:`ner.heads.spert`), so training
sees the pairs inference sees.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ner.documents import Document, Entity, Schema


@dataclass
class SpertTargets:
    """Sampled spans and pairs of a batch; pair indices point into the span lists."""

    span_doc: Tensor  # [spans]
    span_start: Tensor  # [spans] first word
    span_end: Tensor  # [spans] one past the last word
    span_label: Tensor  # [spans] 0 = no entity, i + 1 = schema.entity_labels[i]
    pair_head: Tensor  # [pairs]
    pair_tail: Tensor  # [pairs]
    pair_labels: Tensor  # [pairs, relation types] multi-hot, float


def sample_document(
    doc: Document, schema: Schema, max_width: int, neg_entities: int, neg_relations: int, rng: random.Random
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, list[float]]]]:
    """One document's spans ``(start, end, label)`` and pairs ``(head, tail, multi-hot)``."""
    entity_ids = {label: i + 1 for i, label in enumerate(schema.entity_labels)}
    spans = [(e.start, e.end, entity_ids[e.label]) for e in doc.entities]
    gold = {(start, end) for start, end, _ in spans}
    n = len(doc.words)
    candidates = [
        (s, s + w) for s in range(n) for w in range(1, max_width + 1) if s + w <= n and (s, s + w) not in gold
    ]
    spans += [(s, e, 0) for s, e in rng.sample(candidates, min(neg_entities, len(candidates)))]
    return spans, _pairs(doc, schema, neg_relations, rng)


def _pairs(doc: Document, schema: Schema, neg_relations: int, rng: random.Random):
    relation_ids = {label: i for i, label in enumerate(schema.relation_labels)}
    multi_hot: dict[tuple[int, int], list[float]] = {}
    for relation in doc.relations:
        labels = multi_hot.setdefault((relation.head, relation.tail), [0.0] * len(relation_ids))
        labels[relation_ids[relation.label]] = 1.0
    symmetric = schema.symmetric_relations
    reverse_ok = {(r.tail, r.head) for r in doc.relations if r.label in symmetric}
    entities = doc.entities
    candidates = [
        (i, j)
        for i in range(len(entities))
        for j in range(len(entities))
        if _disjoint(entities[i], entities[j]) and (i, j) not in multi_hot and (i, j) not in reverse_ok
    ]
    negatives = rng.sample(candidates, min(neg_relations, len(candidates)))
    empty = [0.0] * len(relation_ids)
    return [(h, t, labels) for (h, t), labels in multi_hot.items()] + [(h, t, empty) for h, t in negatives]


def _disjoint(a: Entity, b: Entity) -> bool:
    return a.end <= b.start or b.end <= a.start


def collate_targets(samples: Sequence[tuple[list, list]], num_relation_types: int) -> SpertTargets:
    """Stack per-document samples into batch tensors, shifting pair indices to batch span indices."""
    span_rows, pair_rows = [], []
    for doc_index, (spans, pairs) in enumerate(samples):
        offset = len(span_rows)
        span_rows += [(doc_index, start, end, label) for start, end, label in spans]
        pair_rows += [(offset + head, offset + tail, labels) for head, tail, labels in pairs]
    spans = torch.tensor(span_rows, dtype=torch.long).reshape(-1, 4)
    return SpertTargets(
        span_doc=spans[:, 0],
        span_start=spans[:, 1],
        span_end=spans[:, 2],
        span_label=spans[:, 3],
        pair_head=torch.tensor([row[0] for row in pair_rows], dtype=torch.long),
        pair_tail=torch.tensor([row[1] for row in pair_rows], dtype=torch.long),
        pair_labels=torch.tensor([row[2] for row in pair_rows], dtype=torch.float32).reshape(
            -1, num_relation_types
        ),
    )
