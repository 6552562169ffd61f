"""Run a model over gold documents and score one head with its task's protocol.

The evaluator depends on the head, not on how the model was trained, so single-task and
multi-task models are scored identically: tagging heads with seqeval (strict, IOB2; the MT-BioNER
protocol), SpERT heads with SpERT's strict entity and relation scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ner.corpora import FORMATS, read_corpus, read_spert_json, read_spert_types
from ner.documents import Document, Schema
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
    model: ExtractionModel,
    docs: Sequence[Document],
    head: str | None = None,
    batch_size: int = 64,
    ignore_labels: Sequence[str] = (),
) -> dict[str, Scores]:
    """Scores of one head (the only head when ``head`` is None) on ``docs``: ``{"entities": ...}`` for
    a tagger, plus ``"relations"`` and ``"relations_with_types"`` for SpERT.

    ``ignore_labels`` removes entities of those types from the gold and the predictions before
    scoring: the explicit mapping when a test set lacks a type the head predicts (WikiANN has no
    MISC). Only for tagging heads, whose entities no relation refers to.
    """
    head = head or next(iter(model.heads))
    if head not in model.heads:
        raise KeyError(f"no head {head!r} in the model; heads: {list(model.heads)}")
    module = model.heads[head]
    predicted = predict_documents(model, docs, head, batch_size)
    if ignore_labels:
        if not isinstance(module, TaggerHead):
            raise ValueError(
                "ignore_labels applies to tagging heads only (SpERT relations point at entities)"
            )
        docs, predicted = _without(docs, ignore_labels), _without(predicted, ignore_labels)
    if isinstance(module, TaggerHead):
        return {"entities": seqeval_scores(docs, predicted)}
    return evaluate_documents(docs, predicted, module.schema.symmetric_relations)


def _without(docs: Sequence[Document], labels: Sequence[str]) -> list[Document]:
    """Copies of ``docs`` without entities of ``labels`` (and without relations: taggers have none)."""
    drop = set(labels)
    return [
        Document(d.words, d.text, d.offsets, entities=[e for e in d.entities if e.label not in drop], id=d.id)
        for d in docs
    ]


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


#: The column format of each CoNLL shared-task language (``--lang``): 2002 for es/nl, 2003 for en/de.
CONLL_FORMAT_BY_LANGUAGE = {"es": "conll2002", "nl": "conll2002", "en": "conll2003", "de": "conll2003"}


def evaluate_file(
    nlp,
    path: Path,
    head: str | None = None,
    format: str | None = None,
    entity_type: str | None = None,
    types: Path | None = None,
    batch_size: int = 64,
    lang: str | None = None,
    ignore_labels: Sequence[str] = (),
    encoding: str | None = None,
) -> dict[str, Scores]:
    """One head on one gold file. The format is ``format``, else the CoNLL format of ``lang``, else
    the head's training task's, else SpERT JSON for ``.json`` files; the entity type of untyped
    files defaults to the head's training task's. ``types`` defaults to a ``types.json`` beside
    the file, else the head's own labels; given explicitly, it must exist. ``encoding`` is the
    files' text encoding (default UTF-8; never guessed, see :mod:`ner.corpora.text`). A file
    without documents is refused: it has nothing to score."""
    model = extractor_model(nlp)
    head = head or next(iter(model.heads))
    if head not in model.heads:
        raise KeyError(f"no head {head!r} in the pipeline; heads: {list(model.heads)}")
    recorded = task_records(nlp).get(head)
    path = Path(path)
    format = _file_format(path, format, lang, recorded)
    schema = model.heads[head].schema
    if format == "spert_json":
        if types is None and (path.parent / "types.json").is_file():
            types = path.parent / "types.json"
        docs = read_spert_json(path, read_spert_types(types, encoding) if types else schema, encoding)
    else:
        entity_type = entity_type or (recorded.entity_type if recorded else None)
        typed = {"entity_type": entity_type} if entity_type else {}
        docs = read_corpus(path, format, encoding=encoding, **typed)
    if not docs:
        raise ValueError(f"{path} holds no documents: nothing to score")
    known = Schema(tuple(label for label in schema.entity_labels if label not in ignore_labels), ())
    check_labels(head, path, _without(docs, ignore_labels), known)
    return evaluate_model(model, docs, head, batch_size, ignore_labels)


def _file_format(path: Path, format: str | None, lang: str | None, recorded: TaskSettings | None) -> str:
    if format:
        return format
    if lang and path.suffix != ".json":
        if lang not in CONLL_FORMAT_BY_LANGUAGE:
            raise ValueError(f"no CoNLL format known for language {lang!r}; pass --format")
        return CONLL_FORMAT_BY_LANGUAGE[lang]
    if recorded:
        return recorded.format
    if path.suffix == ".json":
        return "spert_json"
    known = ", ".join([*FORMATS, "spert_json"])
    raise ValueError(f"cannot tell the format of {path}; pass --format ({known})")
