"""Datasets into projects: extraction JSONL, SpERT JSON, CoNLL-style columns, folders of text.

Gold annotations (SpERT, CoNLL) become accepted spans; a model's output (the records of
``ner extract``, or :func:`preannotate`) becomes suggestions to review. Every span is snapped to
whole tokens of the project's language, as :func:`~ner.annotation.edits.add_span` does, so what
the annotator sees is what gets exported. Anything unusable raises :class:`AnnotationError`
naming the file and, where there is one, the line.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from spacy.language import Language

from ner.annotation.files import Unreadable, read_folder, read_text
from ner.annotation.model import (
    AnnotatedDoc,
    AnnotationError,
    Link,
    Project,
    Span,
    check_doc,
    label_order,
)
from ner.annotation.tokens import snap
from ner.batch.records import doc_record, pipeline_info
from ner.batch.sources import DEFAULT_MAX_BYTES, SourceText
from ner.corpora import FORMATS as COLUMN_FORMATS
from ner.corpora import read_corpus, read_spert_json
from ner.corpora.conll import DOCSTART
from ner.documents import Document
from ner.pipeline import extractor_model

FORMATS = ("jsonl", "spert_json", "text", "conll", *COLUMN_FORMATS)
_TAG = re.compile(r"O|[BI](-\S+)?")
_SNIFF_LINES = 50
logger = logging.getLogger(__name__)


def load_dataset(
    path: str | Path,
    format: str = "auto",
    *,
    text_field: str = "text",
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    lang: str = "en",
    name: str | None = None,
    entity_type: str | None = None,
) -> Project:
    """A project from ``path`` (a file, or a folder of ``.txt`` and ``.md`` files read recursively,
    one document each; files left out are logged, :func:`load_folder` returns them).

    ``format`` is ``"auto"`` (by suffix, and for other files by looking at the lines) or one of
    :data:`FORMATS`: ``"conll"`` is any token-then-tag column file; the column presets of
    :data:`ner.corpora.FORMATS` are accepted by name. ``text_field`` is where JSONL records keep
    their text; ``entity_type`` names the type of untyped B/I tags (BioBERT TSV). Files over
    ``max_bytes`` are refused.
    """
    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"{path}: no such file or folder")
    if path.is_dir():
        if format not in ("auto", "text"):
            raise AnnotationError(f"{path.name} is a folder: only folders of .txt files can be loaded")
        project, unreadable = load_folder(path, max_bytes=max_bytes, lang=lang, name=name)
        for file in unreadable:
            logger.warning("%s: left out: %s", file.name, file.reason)
        return project
    else:
        text = read_text(path, max_bytes)
        format = _detect(path, text) if format == "auto" else format
        if format == "jsonl":
            docs = _jsonl(path, text, text_field, lang)
        elif format == "spert_json":
            docs = _spert_json(path)
        elif format == "text":
            docs = [AnnotatedDoc(path.name, text, source=str(path))]
        elif format == "conll" or format in COLUMN_FORMATS:
            docs = _columns(path, "conll2002" if format == "conll" else format, entity_type)
        else:
            raise AnnotationError(f"unknown format {format!r}; expected auto or one of {', '.join(FORMATS)}")
    if not docs:
        raise AnnotationError(f"{path.name}: no documents")
    return _project(docs, name or path.stem, lang)


def project_from_texts(
    texts: list[tuple[str, str]], *, name: str = "annotations", lang: str = "en"
) -> Project:
    """A project of unannotated ``(id, text)`` documents (pasted or uploaded texts)."""
    docs = [AnnotatedDoc(str(doc_id), text) for doc_id, text in texts]
    for doc in docs:
        if not doc.text.strip():
            raise AnnotationError(f"document {doc.id!r} is empty")
    return _project(docs, name, lang)


def preannotate(project: Project, nlp: Language, batch_size: int = 32) -> int:
    """Add ``nlp``'s entities and relations (every head's) as suggestions to the documents that are
    not done and have never had suggestions; returns how many documents it annotated.

    A document counts as having had suggestions once a pipeline ran on it (``meta["pipeline"]``),
    so documents whose suggestions were all rejected are not suggested to again. Each suggestion
    records whether the pipeline put it in ``doc.ents`` (:attr:`Span.ent`: what the app shows by
    default), and the pipeline's labels join the project's, in its order (:func:`_collect_labels`).
    """
    try:
        model, info = extractor_model(nlp), pipeline_info(nlp)
    except ValueError as error:  # not one of this package's pipelines
        raise AnnotationError(str(error)) from None
    heads = list(model.heads)
    declared = (
        [label for head in model.heads.values() for label in head.schema.entity_labels],
        [relation.label for head in model.heads.values() for relation in head.schema.relation_types],
    )
    todo = [doc for doc in project.docs if not doc.done and "pipeline" not in doc.meta]
    todo = [doc for doc in todo if all(span.status == "accepted" for span in doc.spans)]
    for doc, parsed in zip(todo, nlp.pipe((doc.text for doc in todo), batch_size=batch_size)):
        record = doc_record(parsed, SourceText(doc.source or doc.id, doc.text), heads, info)
        ents = {(ent.start_char, ent.end_char, ent.label_) for ent in parsed.ents}
        _add_suggestions(doc, _Record.model_validate(record), project.lang, ents)
        doc.meta["pipeline"] = info
    _collect_labels(project, *declared)
    return len(todo)


# ------------------------------------------------------------------------------------ detection
def _detect(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "jsonl"
    if suffix == ".json":
        return "spert_json"
    return _sniff_columns(text) or ("conll2002" if suffix in (".conll", ".iob", ".bio", ".tsv") else "text")


def _sniff_columns(text: str) -> str | None:
    """The column preset ``text`` looks like (every line a token then a B/I/O tag), or None."""
    lines = islice((line for line in text.split("\n") if line.strip()), _SNIFF_LINES)
    rows = [line.split("\t") if "\t" in line else line.split() for line in lines]
    rows = [row for row in rows if row[0].strip() != DOCSTART]
    if not rows or any(len(row) < 2 or not _TAG.fullmatch(row[-1].strip()) for row in rows):
        return None
    if all(re.match(r"[a-z]{2,3}:.", row[0]) for row in rows):
        return "wikiann"
    return "biobert_tsv" if any(row[-1].strip() in ("B", "I") for row in rows) else "conll2002"


# ------------------------------------------------------------------------------------- readers
def load_folder(
    folder: str | Path,
    *,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    lang: str = "en",
    name: str | None = None,
    check: Callable[[Path], Path] | None = None,
) -> tuple[Project, list[Unreadable]]:
    """A project of the text files under ``folder`` (recursively, one document each, named by
    their relative path), and the files left out with their reasons: one bad file never stops the
    others. ``check`` vets each file before it is read (:func:`ner.annotation.files.read_folder`).
    :class:`AnnotationError` only when no file can be used, with the reasons."""
    folder = Path(folder)
    found = read_folder(folder, max_bytes, check)
    if not found.docs:
        reasons = "; ".join(f"{u.name}: {u.reason}" for u in found.unreadable[:5])
        more = f" (and {len(found.unreadable) - 5} more)" if len(found.unreadable) > 5 else ""
        why = f" ({reasons}{more})" if reasons else ""
        raise AnnotationError(f"{folder.name}: no .txt files in the folder could be read{why}")
    return _project(found.docs, name or folder.stem, lang), found.unreadable


def _columns(path: Path, preset: str, entity_type: str | None) -> list[AnnotatedDoc]:
    overrides = {"entity_type": entity_type} if entity_type else {}
    try:
        documents = read_corpus(path, preset, **overrides)
    except ValueError as error:  # CorpusError names the file and line
        raise AnnotationError(str(error)) from None
    return [_gold_doc(doc, doc.id or f"{path.name}:{i}", path) for i, doc in enumerate(documents)]


def _spert_json(path: Path) -> list[AnnotatedDoc]:
    try:
        documents = read_spert_json(path)
    except json.JSONDecodeError as error:
        raise AnnotationError(
            f"{path.name}:{error.lineno}: not valid JSON (column {error.colno}: {error.msg})"
        ) from None
    except ValueError as error:  # CorpusError names the file and record
        raise AnnotationError(str(error)) from None
    except (OverflowError, TypeError, AttributeError, KeyError) as error:  # e.g. "start": Infinity
        raise AnnotationError(
            f"{path.name}: not SpERT JSON (a list of {{tokens, entities, relations}}): {error}"
        ) from None
    return [_gold_doc(doc, doc.id or f"{path.name}[{i}]", path) for i, doc in enumerate(documents)]


def _gold_doc(document: Document, doc_id: str, path: Path) -> AnnotatedDoc:
    """Gold word-span entities as accepted character spans."""
    spans = [Span(*document.char_span(e.start, e.end), e.label) for e in document.entities]
    links = [Link(r.head, r.tail, r.label) for r in document.relations]
    doc = AnnotatedDoc(doc_id, document.text, spans, links, source=str(path))
    _checked(doc, path.name)
    return doc


class _Entity(BaseModel):
    start: int
    end: int
    label: str
    score: float | None = None
    head: str | None = None
    text: str | None = None


class _Relation(BaseModel):
    head: int
    tail: int
    label: str
    score: float | None = None


class _Record(BaseModel):
    """The annotations of an extraction record (:func:`ner.batch.records.doc_record`)."""

    entities: list[_Entity] = []
    relations: list[_Relation] = []


def _jsonl(path: Path, text: str, text_field: str, lang: str) -> list[AnnotatedDoc]:
    """One document per line; its entities and relations become suggestions."""
    docs = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            where = f"{path.name}:{number}"
            try:
                docs.append(_record_doc(json.loads(line), text_field, where, lang))
            except json.JSONDecodeError as error:
                raise AnnotationError(
                    f"{where}: not valid JSON ({error.msg}, column {error.colno})"
                ) from None
            except AnnotationError as error:
                raise AnnotationError(f"{where}: {error}") from None
    return docs


def _record_doc(record: Any, text_field: str, where: str, lang: str) -> AnnotatedDoc:
    if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
        raise AnnotationError(f"expected a JSON object with a text field {text_field!r}")
    try:
        annotations = _Record.model_validate(record)
    except ValidationError as error:
        problem = error.errors()[0]
        raise AnnotationError(f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}") from None
    text = record[text_field]
    for i, entity in enumerate(annotations.entities):
        if entity.text is not None and text[entity.start : entity.end] != entity.text:
            raise AnnotationError(
                f"entity {i}: text {entity.text!r} is not what offsets {entity.start}-{entity.end} hold"
            )
    meta = {
        key: value for key, value in record.items() if key not in (text_field, "entities", "relations", "id")
    }
    source = record.get("source")
    doc = AnnotatedDoc(
        str(record.get("id") or where), text, source=source if isinstance(source, str) else None, meta=meta
    )
    _add_suggestions(doc, annotations, lang)
    _checked(doc, where)
    return doc


def _add_suggestions(
    doc: AnnotatedDoc, annotations: _Record, lang: str, ents: set[tuple[int, int, str]] | None = None
) -> None:
    """Add a model's entities and relations as suggestions, snapped to tokens. An entity equal to a
    span already there (an annotation, or another head's identical proposal) is not repeated: its
    relations point at the span already there. ``ents`` (the pipeline's ``doc.ents``, as
    ``(start, end, label)`` before snapping) marks each suggestion's :attr:`Span.ent`."""
    positions = [_suggest_span(doc, i, entity, lang, ents) for i, entity in enumerate(annotations.entities)]
    for i, relation in enumerate(annotations.relations):
        if not (0 <= relation.head < len(positions) and 0 <= relation.tail < len(positions)):
            raise AnnotationError(f"relation {i} points outside the {len(positions)} entities")
        head, tail = positions[relation.head], positions[relation.tail]
        if head != tail and doc.find_relation(head, tail, relation.label) is None:
            doc.relations.append(Link(head, tail, relation.label, relation.score, "suggested"))


def _suggest_span(
    doc: AnnotatedDoc, i: int, entity: _Entity, lang: str, ents: set[tuple[int, int, str]] | None
) -> int:
    """The index of the span for ``entity``: an identical span already there, or a new suggestion."""
    try:
        start, end = snap(doc.text, entity.start, entity.end, lang)
    except AnnotationError as error:
        raise AnnotationError(f"entity {i}: {error}") from None
    ent = None if ents is None else (entity.start, entity.end, entity.label) in ents
    existing = doc.find_span(start, end, entity.label)
    if existing is not None:
        if ent and doc.spans[existing].status == "suggested":  # another head's identical proposal
            doc.spans[existing].ent = True
        return existing
    doc.spans.append(Span(start, end, entity.label, entity.score, entity.head, "suggested", ent))
    return len(doc.spans) - 1


def _checked(doc: AnnotatedDoc, where: str) -> None:
    try:
        check_doc(doc)
    except AnnotationError as error:
        raise AnnotationError(f"{where}: {error}") from None


def _project(docs: list[AnnotatedDoc], name: str, lang: str) -> Project:
    project = Project(docs=docs, name=name, lang=lang)
    _collect_labels(project)
    return project


def _collect_labels(project: Project, entities: Iterable[str] = (), relations: Iterable[str] = ()) -> None:
    """Put the labels the documents use in the project's label lists, in an order that does not
    depend on which document came first: a pipeline's declared labels (``entities``,
    ``relations``: all of them, in its order), then every other label sorted (:func:`label_order`).
    Two projects with the same labels so store, and export to ``types.json``, the same order."""
    spans = [span.label for doc in project.docs for span in doc.spans]
    links = [link.label for doc in project.docs for link in doc.relations]
    project.entity_labels[:] = _ordered(entities, [*project.entity_labels, *spans])
    project.relation_labels[:] = _ordered(relations, [*project.relation_labels, *links])


def _ordered(declared: Iterable[str], others: Iterable[str]) -> list[str]:
    """``declared`` in its order, then the rest of ``others`` sorted, without repeats."""
    first = list(dict.fromkeys(declared))
    return first + [label for label in label_order(others) if label not in first]
