"""Run a model over gold documents and score one head with its task's protocol, on two inputs.

The evaluator depends on the head, not on how the model was trained, so single-task and
multi-task models are scored identically: tagging heads with strict entity matching (seqeval,
strict, IOB2: the MT-BioNER protocol), SpERT heads with SpERT's strict entity and relation scores.

Two protocols say what the model is given (:data:`PROTOCOLS`, reported in that order):

* ``raw``, the headline: what a user gets. Each gold document's text (the corpus's tokens joined
  by single spaces, as the readers build it) goes through ``nlp.pipe``, the whole pipeline with
  its own tokenizer and sentencizer, and predictions and gold are compared as character spans
  (:mod:`ner.raw_text`). The gold is first moved onto the pipeline's tokens by the rule training
  uses (:mod:`ner.alignment`: "Kentucky." is gold "Kentucky"); a gold span the tokenizer cannot
  align keeps its characters and counts as a miss.
* ``tokens``, the papers' protocol: the model is given the corpus's own tokens, and spans are
  compared as token indices. It is the one that compares us with published figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from ner.alignment import Alignment
from ner.corpora import FORMATS, read_corpus, read_spert_json, read_spert_types
from ner.documents import Document, Schema
from ner.heads.tagger import TaggerHead
from ner.metrics import Scores, entity_scores, evaluate_documents, seqeval_scores
from ner.model import ExtractionModel
from ner.pipeline import extractor_model
from ner.raw_text import gold_characters_all, predicted_characters
from ner.tasks import TaskData, TaskSettings, check_labels

#: The protocols, in the order they are reported: raw text first (what users get), corpus tokens.
PROTOCOLS = ("raw", "tokens")
PROTOCOL_TITLES = {
    "raw": "raw text: nlp.pipe on each document's text, scored on character offsets",
    "tokens": "corpus tokens: the model given the corpus's own tokens (the papers' protocol)",
}


@dataclass
class Evaluation:
    """Scores by protocol (in :data:`PROTOCOLS` order), then by head, then by evaluation
    (``entities``, ``relations``, ``relations_with_types``); and, per head, what moving its gold onto
    the pipeline's tokens did for the raw-text protocol (unaligned spans are scored as misses)."""

    scores: dict[str, dict[str, dict[str, Scores]]] = field(default_factory=dict)
    alignment: dict[str, Alignment] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """``{protocol: {head: {evaluation: scores}}}``; each raw-text head also has
        ``gold_alignment``: its gold spans, how many were normalised, how many could not be
        aligned (misses), and the relations pointing at those."""
        result: dict = {}
        for protocol, heads in self.scores.items():
            result[protocol] = {
                head: {k: v.as_dict() for k, v in scores.items()} for head, scores in heads.items()
            }
            for head in heads if protocol == "raw" else ():
                result[protocol][head]["gold_alignment"] = alignment_counts(self.alignment[head])
        return result


def alignment_counts(alignment: Alignment) -> dict[str, int]:
    """What moving the raw-text gold onto the pipeline's tokens did, as numbers: unaligned spans,
    and the relations pointing at them, stay in the gold as misses."""
    return {
        "gold_spans": alignment.spans,
        "normalised": alignment.normalised,
        "unaligned_scored_as_misses": alignment.unaligned,
        "relations_on_unaligned_spans": alignment.relations_dropped,
    }


def describe_raw_gold(alignment: Alignment) -> str:
    """One line on the raw-text gold of a head, saying that unaligned spans are scored as misses."""
    line = f"gold on the pipeline's tokens: {alignment.describe()}"
    if alignment.unaligned:
        line += f"\n(the {alignment.unaligned} unaligned spans and their relations are scored as misses)"
    return line


def check_protocols(protocols: Sequence[str]) -> tuple[str, ...]:
    """``protocols`` in reporting order; an unknown or empty choice is refused."""
    unknown = sorted(set(protocols) - set(PROTOCOLS))
    if unknown or not protocols:
        raise ValueError(f"unknown protocol {unknown or '(none)'}; choose from {', '.join(PROTOCOLS)}")
    return tuple(p for p in PROTOCOLS if p in protocols)


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
    head, module = _head(model, head, ignore_labels)
    predicted = predict_documents(model, docs, head, batch_size)
    return _scores(module, docs, predicted, ignore_labels, seqeval_scores)


def evaluate_raw(
    nlp,
    docs: Sequence[Document],
    head: str | None = None,
    batch_size: int = 64,
    ignore_labels: Sequence[str] = (),
) -> tuple[dict[str, Scores], Alignment]:
    """Scores of one head (the first when ``head`` is None) under the raw-text protocol: each
    document's ``text`` through ``nlp.pipe`` as a user would run it, predictions and gold compared
    as character spans (:mod:`ner.raw_text`); and what moving the gold onto ``nlp.tokenizer``'s
    tokens did. Tagging heads get strict span matching, seqeval strict's equivalent on spans."""
    head, module = _head(extractor_model(nlp), head, ignore_labels)
    gold, alignment = gold_characters_all(docs, nlp.tokenizer)
    outputs = nlp.pipe((doc.text for doc in docs), batch_size=batch_size)
    predicted = [predicted_characters(doc, head) for doc in outputs]
    return _scores(module, gold, predicted, ignore_labels, entity_scores), alignment


def evaluate_pipeline(
    nlp,
    docs: Sequence[Document],
    head: str | None = None,
    protocols: Sequence[str] = PROTOCOLS,
    batch_size: int = 64,
    ignore_labels: Sequence[str] = (),
    into: Evaluation | None = None,
) -> Evaluation:
    """One head (the first when None) on ``docs`` under each of ``protocols``, added to ``into``."""
    result = into if into is not None else Evaluation()
    head = head or next(iter(extractor_model(nlp).heads))
    for protocol in check_protocols(protocols):
        if protocol == "raw":
            scores, result.alignment[head] = evaluate_raw(nlp, docs, head, batch_size, ignore_labels)
        else:
            scores = evaluate_model(extractor_model(nlp), docs, head, batch_size, ignore_labels)
        result.scores.setdefault(protocol, {})[head] = scores
    return result


def _head(model: ExtractionModel, head: str | None, ignore_labels: Sequence[str]) -> tuple[str, nn.Module]:
    """The head's name and module; ``ignore_labels`` only for tagging heads."""
    head = head or next(iter(model.heads))
    if head not in model.heads:
        raise KeyError(f"no head {head!r} in the model; heads: {list(model.heads)}")
    module = model.heads[head]
    if ignore_labels and not isinstance(module, TaggerHead):
        raise ValueError("ignore_labels applies to tagging heads only (SpERT relations point at entities)")
    return head, module


def _scores(
    module: nn.Module,
    gold: Sequence[Document],
    predicted: Sequence[Document],
    ignore_labels: Sequence[str],
    tagging: Callable[[Sequence[Document], Sequence[Document]], Scores],
) -> dict[str, Scores]:
    """``tagging``'s entity scores for a tagging head, SpERT's three evaluations for the others."""
    if ignore_labels:
        gold, predicted = _without(gold, ignore_labels), _without(predicted, ignore_labels)
    if isinstance(module, TaggerHead):
        return {"entities": tagging(gold, predicted)}
    return evaluate_documents(gold, predicted, module.schema.symmetric_relations)


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
    nlp, root: Path, split: str = "test", batch_size: int = 64, protocols: Sequence[str] = PROTOCOLS
) -> Evaluation:
    """Every head on its own training task's ``split``, read from ``root`` (the corpora folder) on
    the corpus's own tokens, under each of ``protocols``."""
    model = extractor_model(nlp)
    records = task_records(nlp)
    if not records:
        raise ValueError("this pipeline records no training tasks; pass a gold file to evaluate")
    protocols, result = check_protocols(protocols), Evaluation()
    for name, task in records.items():
        if name not in model.heads or getattr(task, split, None) is None:
            continue
        data = TaskData(task, Path(root), splits=(split,), schema=model.heads[name].schema)
        evaluate_pipeline(nlp, getattr(data, split), name, protocols, batch_size, into=result)
    return result


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
    protocols: Sequence[str] = PROTOCOLS,
) -> Evaluation:
    """One head (the first when None) on one gold file (:func:`read_gold_file`), under each of
    ``protocols``."""
    head = head or next(iter(extractor_model(nlp).heads))
    docs = read_gold_file(nlp, path, head, format, entity_type, types, lang, ignore_labels, encoding)
    return evaluate_pipeline(nlp, docs, head, protocols, batch_size, ignore_labels)


def read_gold_file(
    nlp,
    path: Path,
    head: str,
    format: str | None = None,
    entity_type: str | None = None,
    types: Path | None = None,
    lang: str | None = None,
    ignore_labels: Sequence[str] = (),
    encoding: str | None = None,
) -> list[Document]:
    """The gold documents of a file for ``head``, on the corpus's tokens. The format is ``format``,
    else the CoNLL format of ``lang``, else the head's training task's, else SpERT JSON for
    ``.json`` files; the entity type of untyped files defaults to the head's training task's.
    ``types`` defaults to a ``types.json`` beside the file, else the head's own labels; given
    explicitly, it must exist. ``encoding`` is the files' text encoding (default UTF-8; never
    guessed, see :mod:`ner.corpora.text`). A file without documents is refused (it has nothing
    to score), and so is one with labels the head does not predict, ``ignore_labels`` aside."""
    model = extractor_model(nlp)
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
    return docs


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
