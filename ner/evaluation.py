"""Run a model over gold documents and score it with SpERT's protocol."""

from __future__ import annotations

from collections.abc import Sequence

from ner.documents import Document
from ner.metrics import Scores, evaluate_documents
from ner.model import ExtractionModel


def predict_documents(
    model: ExtractionModel, docs: Sequence[Document], head: str, batch_size: int = 64
) -> list[Document]:
    """Copies of ``docs`` (same words and text) carrying ``head``'s predictions instead of the gold."""
    outputs = model.predict([doc.words for doc in docs], batch_size=batch_size)
    return [
        Document(doc.words, doc.text, doc.offsets, entities=out[head][0], relations=out[head][1], id=doc.id)
        for doc, out in zip(docs, outputs)
    ]


def evaluate_model(
    model: ExtractionModel, docs: Sequence[Document], head: str | None = None, batch_size: int = 64
) -> dict[str, Scores]:
    """Entity and relation scores of one head (the only head when ``head`` is None) on ``docs``."""
    head = head or next(iter(model.heads))
    predicted = predict_documents(model, docs, head, batch_size)
    return evaluate_documents(docs, predicted, model.heads[head].schema.symmetric_relations)
