"""Run a model over gold documents and score one head with its task's protocol.

The evaluator depends on the head, not on how the model was trained, so single-task and
multi-task models are scored identically: tagging heads with seqeval (strict, IOB2; the MT-BioNER
protocol), SpERT heads with SpERT's strict entity and relation scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ner.corpora import FORMATS, read_corpus, read_spert_json, read_spert_types
from ner.documents import Document
from ner.heads.tagger import TaggerHead
from ner.metrics import Scores, evaluate_documents, seqeval_scores
from ner.model import ExtractionModel
from ner.pipeline import extractor_model
from ner.tasks import TaskData, TaskSettings, check_labels


def predict_documents(
    model: ExtractionModel, docs: Sequence[Document], head: str, batch_size: int = 64
) -> list[Document]:
    """Copies of ``docs`` (same words and text) carrying ``head``'s predictions instead of the gold."""
    outputs = model.predict([doc.words for doc in docs], batch_size=batch_size, heads=[head])
    return [
        Document(doc.words, doc.text, doc.offsets, entities=out[head][0], relations=out[head][1], id=doc.id)
        for doc, out in zip(docs, outputs)
    ]


def evaluate_model(
    model: ExtractionModel, docs: Sequence[Document], head: str | None = None, batch_size: int = 64
) -> dict[str, Scores]:
    """Scores of one head (the only head when ``head`` is None) on ``docs``: ``{"entities": ...}`` for
    a tagger, plus ``"relations"`` and ``"relations_with_types"`` for SpERT."""
    head = head or next(iter(model.heads))
    if head not in model.heads:
        raise KeyError(f"no head {head!r} in the model; heads: {list(model.heads)}")
    predicted = predict_documents(model, docs, head, batch_size)
    module = model.heads[head]
    if isinstance(module, TaggerHead):
        return {"entities": seqeval_scores(docs, predicted)}
    return evaluate_documents(docs, predicted, module.schema.symmetric_relations)


def primary_score(scores: dict[str, Scores]) -> float:
    """The figure model selection maximises: typed-relation micro F1 when the head predicts relations
    (SpERT's headline), else entity micro F1."""
    if "relations_with_types" in scores and scores["relations_with_types"].per_type:
        return scores["relations_with_types"].micro.f1
    return scores["entities"].micro.f1


def task_records(nlp) -> dict[str, TaskSettings]:
    """The training task of each head, as saved in the pipeline's meta (none for older pipelines)."""
    records = nlp.meta.get("training", {}).get("tasks", [])
    return {record["name"]: TaskSettings.model_validate(record) for record in records}


def evaluate_recorded_tasks(
    nlp, root: Path, split: str = "test", batch_size: int = 64
) -> dict[str, dict[str, Scores]]:
    """Every head on its own training task's ``split``, read from ``root`` (the corpora folder)."""
    model = extractor_model(nlp)
    records = task_records(nlp)
    if not records:
        raise ValueError("this pipeline records no training tasks; pass a gold file to evaluate")
    results = {}
    for name, task in records.items():
        if name not in model.heads or getattr(task, split, None) is None:
            continue
        data = TaskData(task, Path(root), splits=(split,), schema=model.heads[name].schema)
        results[name] = evaluate_model(model, getattr(data, split), name, batch_size)
    return results


def evaluate_file(
    nlp,
    path: Path,
    head: str | None = None,
    format: str | None = None,
    entity_type: str | None = None,
    types: Path | None = None,
    batch_size: int = 64,
) -> dict[str, Scores]:
    """One head on one gold file. The format and entity type default to the head's training task,
    else SpERT JSON for ``.json`` files."""
    model = extractor_model(nlp)
    head = head or next(iter(model.heads))
    if head not in model.heads:
        raise KeyError(f"no head {head!r} in the pipeline; heads: {list(model.heads)}")
    recorded = task_records(nlp).get(head)
    path = Path(path)
    suffix_format = "spert_json" if path.suffix == ".json" else None
    format = format or (recorded.format if recorded else None) or suffix_format
    if format is None:
        known = ", ".join([*FORMATS, "spert_json"])
        raise ValueError(f"cannot tell the format of {path}; pass --format ({known})")
    schema = model.heads[head].schema
    if format == "spert_json":
        types = types or path.parent / "types.json"
        docs = read_spert_json(path, read_spert_types(types) if types.is_file() else schema)
    else:
        entity_type = entity_type or (recorded.entity_type if recorded else None)
        docs = read_corpus(path, format, **({"entity_type": entity_type} if entity_type else {}))
    check_labels(head, path, docs, schema)
    return evaluate_model(model, docs, head, batch_size)
