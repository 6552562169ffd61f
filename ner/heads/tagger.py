"""A BIO tagging head: one token classifier over the shared encoder's first-piece word states.

This is the per-dataset head of multi-task NER (MT-BioNER, arXiv 2001.08904): each dataset gets
its own tagger with its own label set, all reading the same :class:`Encoding`. Tags are IOB2;
decoding uses conlleval's chunking (``ner.corpora.conll.tags_to_spans``), so a stray ``I-X``
starts an entity instead of being dropped. An entity's score is the mean probability of the
predicted tags over its words.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from ner.corpora.conll import spans_to_bio, tags_to_spans
from ner.documents import Document, Entity, Relation, Schema
from ner.encoder import Encoding

IGNORE = -100  # label id of padding words, skipped by the loss


class TaggerConfig(BaseModel):
    """Hyper-parameters of a tagging head."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["tagger"] = "tagger"
    dropout: float = Field(0.1, ge=0.0, lt=1.0)


def bio_labels(entity_labels: Sequence[str]) -> list[str]:
    """The tag inventory: ``O`` then ``B-X``, ``I-X`` for each type, in schema order."""
    return ["O"] + [f"{prefix}-{label}" for label in entity_labels for prefix in ("B", "I")]


class TaggerHead(nn.Module):
    """Token classification over the first word piece of every word."""

    def __init__(self, hidden_size: int, schema: Schema, config: TaggerConfig | None = None) -> None:
        super().__init__()
        self.schema = schema
        self.config = config or TaggerConfig()
        self.labels = bio_labels(schema.entity_labels)
        self.label_ids = {label: i for i, label in enumerate(self.labels)}
        self.dropout = nn.Dropout(self.config.dropout)
        self.classifier = nn.Linear(hidden_size, len(self.labels))

    def logits(self, encoding: Encoding) -> Tensor:
        """``[docs, words, tags]`` logits from each word's first-piece state."""
        hidden = encoding.states.shape[-1]
        index = encoding.word_starts[..., None].expand(-1, -1, hidden)
        return self.classifier(self.dropout(encoding.states.gather(1, index)))

    def targets(self, docs: Sequence[Document], rng: random.Random | None = None) -> Tensor:
        """``[docs, words]`` gold tag ids (``IGNORE`` past each document's end); no sampling needed."""
        width = max(len(doc.words) for doc in docs)
        rows = []
        for doc in docs:
            tags = [self.label_ids[tag] for tag in spans_to_bio(len(doc.words), doc.entities)]
            rows.append(tags + [IGNORE] * (width - len(tags)))
        return torch.tensor(rows, dtype=torch.long)

    def loss(self, encoding: Encoding, targets: Tensor) -> Tensor:
        """Cross-entropy over the real words of the batch."""
        logits = self.logits(encoding)
        return nn.functional.cross_entropy(
            logits.flatten(0, 1), targets.to(logits.device).flatten(), ignore_index=IGNORE
        )

    def decode(self, encoding: Encoding) -> list[tuple[list[Entity], list[Relation]]]:
        """Entities of every document (a tagger predicts no relations)."""
        probs = self.logits(encoding).softmax(-1)
        score, tag = probs.max(-1)
        results = []
        for doc_tags, doc_scores, count in zip(tag.tolist(), score.tolist(), encoding.word_counts.tolist()):
            tags = [self.labels[t] for t in doc_tags[:count]]
            entities = [
                Entity(start, end, label, sum(doc_scores[start:end]) / (end - start))
                for start, end, label in tags_to_spans(tags)
            ]
            results.append((entities, []))
        return results
