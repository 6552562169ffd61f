"""SpERT: span-based joint entity and relation extraction (Eberts & Ulges, arXiv 1909.07755).

An entity candidate is every word span up to ``max_span_width`` words. Its representation is
``[CLS] ; max-pool(span pieces) ; width embedding``, classified into the entity types or "None".
Spans not classified "None" are paired, except spans that overlap: two spans sharing a word are
readings of one name ("Redmond" and "Redmond, Washington"), never two arguments of a relation (no
gold relation of CoNLL04 or SciERC links overlapping spans), so they are not classified. A pair
is ``max-pool(pieces strictly between) ; span_a ; span_b ; width_a ; width_b`` (the context is
zero when the spans touch), and each relation type is an independent sigmoid, kept at ``relation_threshold``.

All spans and pairs of a batch are built with index arithmetic and gathered from a sparse
max table (:mod:`ner.pooling`); no ``[spans, sequence, hidden]`` tensor is ever materialised.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from ner.documents import Document, Entity, Relation, Schema, canonical_pair
from ner.encoder import Encoding
from ner.heads.spert_sampling import SpertTargets, collate_targets, sample_document
from ner.pooling import RangeMaxPool

MAX_WIDTH_EMBEDDINGS = 100  # as the reference: widths beyond 99 share the last embedding
PAIR_CHUNK = 16_384  # pairs classified per step at inference, to bound memory on long texts


class SpertConfig(BaseModel):
    """Hyper-parameters of the SpERT head; defaults are the paper's."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["spert"] = "spert"
    max_span_width: int = Field(10, ge=1, le=MAX_WIDTH_EMBEDDINGS - 1)
    width_embedding_size: int = Field(25, ge=1)
    neg_entities: int = Field(100, ge=0, description="random non-entity spans per sentence in training")
    neg_relations: int = Field(
        100, ge=0, description="random unrelated entity pairs per sentence in training"
    )
    relation_threshold: float = Field(0.4, gt=0.0, lt=1.0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    max_pair_distance: int | None = Field(
        None, ge=1, description="at inference, pair only spans whose starts are at most this many words apart"
    )


def enumerate_spans(word_counts: Tensor, max_width: int) -> tuple[Tensor, Tensor, Tensor]:
    """All spans of up to ``max_width`` words of every document: ``(doc, start, end)``, doc-major."""
    max_words = int(word_counts.max())
    starts = torch.arange(max_words, device=word_counts.device)
    widths = torch.arange(1, max_width + 1, device=word_counts.device)
    ends = starts[:, None] + widths[None, :]
    valid = ends[None] <= word_counts[:, None, None]
    doc, start, width = valid.nonzero(as_tuple=True)
    return doc, start, start + width + 1


def pairs_within_docs(doc: Tensor, start: Tensor, max_distance: int | None = None) -> tuple[Tensor, Tensor]:
    """Ordered pairs ``(i, j)``, ``i != j``, of items in the same ``doc`` whose ``start``s are at most
    ``max_distance`` apart (any distance when None). Items must be sorted by ``(doc, start)``.

    Each item's partners form one contiguous run of the sorted keys (found by ``searchsorted``), so
    only the pairs that are kept are ever materialised.
    """
    if doc.numel() == 0:
        empty = doc.new_zeros(0)
        return empty, empty
    span = int(start.max()) + 1 if max_distance is None else max_distance
    keys = doc * (int(start.max()) + 2 * span + 1) + start
    low = torch.searchsorted(keys, keys - span, right=False)
    high = torch.searchsorted(keys, keys + span, right=True)
    partners = high - low
    head = torch.repeat_interleave(torch.arange(doc.numel(), device=doc.device), partners)
    first_of_block = torch.repeat_interleave(partners.cumsum(0) - partners, partners)
    tail = low[head] + torch.arange(head.numel(), device=doc.device) - first_of_block
    keep = head != tail
    return head[keep], tail[keep]


def disjoint(head: Tensor, tail: Tensor, start: Tensor, end: Tensor) -> Tensor:
    """Which pairs ``(head[k], tail[k])`` of spans ``[start, end)`` share no word (a boolean mask)."""
    return (end[head] <= start[tail]) | (end[tail] <= start[head])


class SpertHead(nn.Module):
    """Entity and relation classifiers over a shared :class:`Encoding`."""

    def __init__(self, hidden_size: int, schema: Schema, config: SpertConfig | None = None) -> None:
        super().__init__()
        self.schema = schema
        self.config = config or SpertConfig()
        width = self.config.width_embedding_size
        self.width_embedding = nn.Embedding(MAX_WIDTH_EMBEDDINGS, width)
        self.entity_classifier = nn.Linear(2 * hidden_size + width, len(schema.entity_labels) + 1)
        self.relation_classifier = nn.Linear(3 * hidden_size + 2 * width, len(schema.relation_types))
        self.dropout = nn.Dropout(self.config.dropout)

    # ------------------------------------------------------------------ representations
    def span_features(self, encoding: Encoding, pool: RangeMaxPool, doc: Tensor, start: Tensor, end: Tensor):
        """Pooled states, piece boundaries and width embeddings of word spans."""
        piece_start = encoding.word_starts[doc, start]
        piece_end = encoding.word_ends[doc, end - 1]
        pooled = pool(doc, piece_start, piece_end)
        widths = self.width_embedding((end - start).clamp(max=MAX_WIDTH_EMBEDDINGS - 1))
        return pooled, widths, piece_start, piece_end

    def entity_logits(self, encoding: Encoding, doc: Tensor, pooled: Tensor, widths: Tensor) -> Tensor:
        """Entity-type logits (index 0: no entity) of spans from :meth:`span_features`; public because
        training, decoding and distillation (ner/distill.py) must score spans the same way."""
        return self.entity_classifier(self.dropout(torch.cat([encoding.cls[doc], pooled, widths], dim=-1)))

    def relation_logits(self, pool, doc, piece_start, piece_end, pooled, widths, head, tail) -> Tensor:
        """Relation-type logits of span pairs (indices into the spans), with the context between them."""
        context = pool(
            doc[head],
            torch.minimum(piece_end[head], piece_end[tail]),
            torch.maximum(piece_start[head], piece_start[tail]),
        )
        features = torch.cat([context, pooled[head], pooled[tail], widths[head], widths[tail]], dim=-1)
        return self.relation_classifier(self.dropout(features))

    # ------------------------------------------------------------------ training
    def targets(self, docs: Sequence[Document], rng: random.Random) -> SpertTargets:
        """Sample the training spans and pairs of a batch (CPU work, done by the data loader)."""
        c = self.config
        samples = [
            sample_document(doc, self.schema, c.max_span_width, c.neg_entities, c.neg_relations, rng)
            for doc in docs
        ]
        return collate_targets(samples, len(self.schema.relation_types))

    def loss(self, encoding: Encoding, targets: SpertTargets) -> Tensor:
        """Entity cross-entropy (mean over sampled spans) + relation BCE (sum over types, mean over pairs)."""
        device = encoding.states.device
        t = {name: value.to(device) for name, value in vars(targets).items()}
        pool = RangeMaxPool(encoding.states)
        pooled, widths, piece_start, piece_end = self.span_features(
            encoding, pool, t["span_doc"], t["span_start"], t["span_end"]
        )
        entity_logits = self.entity_logits(encoding, t["span_doc"], pooled, widths)
        loss = nn.functional.cross_entropy(entity_logits, t["span_label"])
        if t["pair_head"].numel() and self.schema.relation_types:
            relation_logits = self.relation_logits(
                pool, t["span_doc"], piece_start, piece_end, pooled, widths, t["pair_head"], t["pair_tail"]
            )
            per_pair = nn.functional.binary_cross_entropy_with_logits(
                relation_logits, t["pair_labels"], reduction="none"
            ).sum(-1)
            loss = loss + per_pair.mean()
        return loss

    # ------------------------------------------------------------------ inference
    def decode(self, encoding: Encoding) -> list[tuple[list[Entity], list[Relation]]]:
        """Entities (possibly overlapping, as SpERT predicts them) and relations of every document."""
        pool = RangeMaxPool(encoding.states)
        doc, start, end = enumerate_spans(encoding.word_counts, self.config.max_span_width)
        pooled, widths, piece_start, piece_end = self.span_features(encoding, pool, doc, start, end)
        probs = self.entity_logits(encoding, doc, pooled, widths).softmax(-1)
        score, label = probs.max(-1)
        kept = (label > 0).nonzero(as_tuple=True)[0]
        head, tail = pairs_within_docs(doc[kept], start[kept], self.config.max_pair_distance)
        head, tail = kept[head], kept[tail]
        apart = disjoint(head, tail, start, end)
        head, tail = head[apart], tail[apart]
        relation_probs = torch.cat(
            [
                self.relation_logits(
                    pool,
                    doc,
                    piece_start,
                    piece_end,
                    pooled,
                    widths,
                    head[i : i + PAIR_CHUNK],
                    tail[i : i + PAIR_CHUNK],
                ).sigmoid()
                for i in range(0, head.numel(), PAIR_CHUNK)
            ]
            or [pooled.new_zeros(0, len(self.schema.relation_types))]
        )
        return self._to_documents(encoding, doc, start, end, score, label, kept, head, tail, relation_probs)

    def _to_documents(self, encoding, doc, start, end, score, label, kept, head, tail, relation_probs):
        """Convert the kept tensors into per-document entity and relation lists (one ``tolist`` each)."""
        results: list[tuple[list[Entity], list[Relation]]] = [
            ([], []) for _ in range(len(encoding.word_counts))
        ]
        position: dict[int, int] = {}
        labels = self.schema.entity_labels
        for i, d, s, e, lab, sc in zip(
            kept.tolist(),
            doc[kept].tolist(),
            start[kept].tolist(),
            end[kept].tolist(),
            label[kept].tolist(),
            score[kept].tolist(),
        ):
            position[i] = len(results[d][0])
            results[d][0].append(Entity(s, e, labels[lab - 1], sc))
        pair, rel_type = (relation_probs >= self.config.relation_threshold).nonzero(as_tuple=True)
        doc_of = doc.tolist()
        seen: set[tuple] = set()
        relation_types = self.schema.relation_types
        for h, t, r, p in zip(
            head[pair].tolist(),
            tail[pair].tolist(),
            rel_type.tolist(),
            relation_probs[pair, rel_type].tolist(),
        ):
            d = doc_of[h]
            entities = results[d][0]
            a, b = entities[position[h]], entities[position[t]]
            first, _ = canonical_pair(a, b, relation_types[r].symmetric)
            h_index, t_index = (position[h], position[t]) if first is a else (position[t], position[h])
            key = (d, h_index, t_index, r)
            if key not in seen:
                seen.add(key)
                results[d][1].append(Relation(h_index, t_index, relation_types[r].label, p))
        return results
