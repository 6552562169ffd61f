"""Reviewed annotations out, as training data ``ner train`` reads, or as extraction records.

Only accepted spans and relations are exported: an unreviewed suggestion is not training data.
Spans are aligned to spaCy's blank tokenizer of the project's language (the same snapping as
:func:`~ner.annotation.edits.add_span`, so this changes nothing for spans made in the tool);
spans that align to the same tokens with the same label become one entity.

Formats (:data:`FORMATS`):

* ``spert_json``: SpERT JSON, read by :func:`ner.corpora.read_spert_json` (one record per
  document, whitespace tokens left out); ``spert_types``: its ``types.json``;
* ``conll``: ``token<TAB>IOB2 tag``, a blank line after each document, read by
  ``read_corpus(path, "conll2002")``; overlapping entities cannot be written and are refused;
* ``jsonl``: the records of ``ner extract`` (:func:`ner.batch.records.doc_record`'s keys);
* ``docbin``: a spaCy ``DocBin`` with ``doc.ents`` (the longest of overlapping spans),
  ``doc.spans["annotations"]`` (all, with ``attrs["scores"]``) and ``doc._.relation_data`` as
  the ``ner_extractor`` component writes it.

:func:`problem` says why a format cannot hold a project without writing anything (the app shows
it beside the download), and :func:`export_folder` writes several formats all or nothing: into a
temporary folder beside the target, renamed into place only once every file is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Hashable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from spacy.tokens import DocBin
from spacy.util import filter_spans

from ner.annotation.model import AnnotatedDoc, AnnotationError, Link, Project, Span
from ner.annotation.tokens import snap, tokenize, word_bounds
from ner.batch.sources import SourceText
from ner.components import relation_record
from ner.corpora import write_conll, write_spert_json
from ner.corpora.conll import DOCSTART
from ner.documents import Document, Entity, Relation
from ner.files import write_atomic

FORMATS = ("spert_json", "spert_types", "conll", "jsonl", "docbin")
SPANS_KEY = "annotations"


def export(project: Project, format: str, path: str | Path, *, only_done: bool = False) -> None:
    """Write the export to ``path`` (atomically: an existing file is replaced only when complete)."""
    write_atomic(path, export_bytes(project, format, only_done=only_done))


def problem(project: Project, format: str, *, only_done: bool = False) -> str | None:
    """Why ``format`` cannot hold the project's accepted annotations, or None; nothing is written.

    Only CoNLL IOB2 has limits: overlapping entities (after alignment to tokens, as the export
    aligns them) and ``-DOCSTART-`` as a word. Documents are checked once per content (cached),
    so the app can ask again on every page run.
    """
    if format not in FORMATS:
        return f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}"
    if format != "conll":
        return None
    found = []
    for doc in project.docs:
        if doc.done or not only_done:
            spans = tuple((s.start, s.end, s.label) for s in doc.spans if s.status == "accepted")
            reason = _conll_problem(doc.id, doc.text, project.lang, spans)
            if reason:
                found.append(reason)
    if not found:
        return None
    more = f" (and {len(found) - 1} more documents)" if len(found) > 1 else ""
    return f"{found[0]}{more}"


@lru_cache(maxsize=4096)
def _conll_problem(doc_id: str, text: str, lang: str, spans: tuple[tuple[int, int, str], ...]) -> str | None:
    document = AnnotatedDoc(doc_id, text, [Span(*span) for span in spans])
    try:
        words = _without_overlaps(_document(document, lang)).words
    except AnnotationError as error:
        return str(error)
    if DOCSTART in words:
        return f"document {doc_id!r}: the word {DOCSTART} cannot be written as a CoNLL token"
    return None


def export_folder(
    project: Project, folder: str | Path, files: Mapping[str, str], *, only_done: bool = False
) -> None:
    """Write each ``format: file name`` of ``files`` into ``folder``, all or nothing.

    Every export is made in memory first (a format that cannot hold the data raises
    :class:`AnnotationError` before anything touches the disk); the files are then written into a
    new folder beside ``folder`` and renamed into place: the folder itself when it does not exist
    yet, else file by file, the files they replace kept aside until the last one is in and put
    back if any step fails. A failure leaves no partial export and no temporary files behind.
    """
    contents = {name: export_bytes(project, format, only_done=only_done) for format, name in files.items()}
    folder = Path(folder)
    created = _make_folders(folder.parent)
    try:
        staging = _new_folder(folder, "export")
        try:
            for name, data in contents.items():
                _write_file(staging / name, data)
            if os.path.lexists(folder):
                _replace_files(staging, folder, list(contents))
            else:
                os.rename(staging, folder)
            _fsync_folder(folder.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        for made in reversed(created):  # folders made for this export only, if still empty
            with contextlib.suppress(OSError):
                made.rmdir()
        raise


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; the ones created, outermost first."""
    missing = [path for path in [folder, *folder.parents] if not path.exists()][::-1]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _new_folder(beside: Path, what: str) -> Path:
    """A new hidden folder next to ``beside`` (same file system, so renames from it are atomic),
    with the mode a plain ``mkdir`` gives."""
    path = beside.parent / f".{beside.name}.{os.getpid()}.{secrets.token_hex(4)}.{what}"
    path.mkdir()
    return path


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "xb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _replace_files(staging: Path, folder: Path, names: list[str]) -> None:
    """Move ``names`` from ``staging`` into the existing ``folder``; on a failure, undo the moves
    (the files set aside are removed only once every new one is in place, or all are back)."""
    aside = _new_folder(folder, "replaced")
    moved: list[tuple[str, bool]] = []  # (name, whether an old file was set aside), in order
    placed: set[str] = set()
    try:
        for name in names:
            target = folder / name
            had = os.path.lexists(target)
            if had:
                os.replace(target, aside / name)
            moved.append((name, had))
            os.replace(staging / name, target)
            placed.add(name)
        _fsync_folder(folder)
    except BaseException:
        for name, had in reversed(moved):
            with contextlib.suppress(OSError):
                if name in placed:
                    (folder / name).unlink()
                if had:
                    os.replace(aside / name, folder / name)
        with contextlib.suppress(OSError):
            aside.rmdir()  # left in place (with what could not be put back) if not empty
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _fsync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable (not possible on every platform: skipped there)."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def export_bytes(project: Project, format: str, *, only_done: bool = False) -> bytes:
    """The export as bytes (for a download button); ``only_done`` keeps documents marked done."""
    docs = [doc for doc in project.docs if doc.done or not only_done]
    if format == "jsonl":
        return "".join(json.dumps(_record(doc), ensure_ascii=False) + "\n" for doc in docs).encode("utf-8")
    if format == "spert_types":
        return json.dumps(_types(project), ensure_ascii=False, indent=1).encode("utf-8")
    if format == "docbin":
        return _docbin(docs, project.lang)
    if format == "spert_json":
        return _written(write_spert_json, [_document(doc, project.lang) for doc in docs])
    if format == "conll":
        return _written(write_conll, [_without_overlaps(_document(doc, project.lang)) for doc in docs])
    raise AnnotationError(f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}")


def _accepted(doc: AnnotatedDoc, key: Callable[[Span], Hashable]) -> tuple[list[Span], list[Link]]:
    """The accepted spans, one per distinct ``key``, and the accepted relations between them
    (re-indexed, without duplicates or relations of a span with itself)."""
    spans: list[Span] = []
    first: dict[Hashable, int] = {}
    position: dict[int, int] = {}
    for index, span in enumerate(doc.spans):
        if span.status == "accepted":
            identity = key(span)
            if identity not in first:
                first[identity] = len(spans)
                spans.append(span)
            position[index] = first[identity]
    links: dict[tuple[int, int, str], Link] = {}
    for link in doc.relations:
        if link.status == "accepted" and link.head in position and link.tail in position:
            head, tail = position[link.head], position[link.tail]
            if head != tail:
                links.setdefault((head, tail, link.label), Link(head, tail, link.label, link.score))
    return spans, list(links.values())


def _aligned(doc: AnnotatedDoc, span: Span, lang: str) -> tuple[int, int, str]:
    """``(start, end, label)`` with the offsets on token boundaries."""
    try:
        return (*snap(doc.text, span.start, span.end, lang), span.label)
    except AnnotationError as error:
        raise AnnotationError(f"document {doc.id!r}: span ({span.start}, {span.end}): {error}") from None


def _document(doc: AnnotatedDoc, lang: str) -> Document:
    """The document as words (non-whitespace tokens) with word-span entities."""
    spans, links = _accepted(doc, lambda span: _aligned(doc, span, lang))
    bounds = word_bounds(doc.text, lang)
    first_word = {start: i for i, (start, _) in enumerate(bounds)}
    last_word = {end: i for i, (_, end) in enumerate(bounds)}
    entities = []
    for span in spans:
        start, end, label = _aligned(doc, span, lang)
        entities.append(Entity(first_word[start], last_word[end] + 1, label))
    return Document(
        words=[doc.text[start:end] for start, end in bounds],
        text=doc.text,
        offsets=list(bounds),
        entities=entities,
        relations=[Relation(link.head, link.tail, link.label) for link in links],
        id=doc.id,
    )


def _without_overlaps(document: Document) -> Document:
    """``document``, or an error naming it if two entities share a token (IOB tags cannot nest)."""
    ordered = sorted(document.entities, key=lambda e: (e.start, e.end))
    for before, after in zip(ordered, ordered[1:]):
        if after.start < before.end:
            first, second = (f"{document.span_text(e.start, e.end)!r} ({e.label})" for e in (before, after))
            raise AnnotationError(
                f"document {document.id!r}: {first} and {second} overlap; CoNLL cannot hold nested "
                "entities: delete one of them or export SpERT JSON"
            )
    return document


def _written(writer: Callable[[list[Document], Path], None], documents: list[Document]) -> bytes:
    """What one of :mod:`ner.corpora`'s file writers writes, as bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export"
        try:
            writer(documents, path)
        except ValueError as error:  # a word the format cannot hold, e.g. "-DOCSTART-" in CoNLL
            raise AnnotationError(str(error)) from None
        return path.read_bytes()


def _record(doc: AnnotatedDoc) -> dict[str, Any]:
    """An extraction record (the keys of :func:`ner.batch.records.doc_record`) of the accepted spans."""
    spans, links = _accepted(doc, lambda span: (span.start, span.end, span.label))
    entities = [
        {
            "start": span.start,
            "end": span.end,
            "text": doc.text[span.start : span.end],
            "label": span.label,
            "score": span.score,
            "head": span.head,
        }
        for span in spans
    ]
    return {
        "source": doc.source,
        "line": doc.meta.get("line"),
        "item": doc.meta.get("item"),
        "sha256": SourceText(doc.source or doc.id, doc.text).sha256,
        "pipeline": doc.meta.get("pipeline"),
        "encoding": doc.meta.get("encoding"),
        "text": doc.text,
        "entities": entities,
        "relations": [
            {"head": link.head, "tail": link.tail, "label": link.label, "score": link.score} for link in links
        ],
    }


def _types(project: Project) -> dict[str, Any]:
    """A SpERT ``types.json`` of the project's labels and any others its documents use."""
    entity_labels = dict.fromkeys([*project.entity_labels, *(s.label for d in project.docs for s in d.spans)])
    relation_labels = dict.fromkeys(
        [*project.relation_labels, *(r.label for d in project.docs for r in d.relations)]
    )
    return {
        "entities": {label: {"short": label, "verbose": label} for label in entity_labels},
        "relations": {
            label: {"short": label, "verbose": label, "symmetric": False} for label in relation_labels
        },
    }


def _docbin(docs: list[AnnotatedDoc], lang: str) -> bytes:
    collection = DocBin(store_user_data=True)
    for doc in docs:
        parsed = tokenize(doc.text, lang)
        spans, links = _accepted(doc, lambda span, doc=doc: _aligned(doc, span, lang))
        chosen = []
        for span in spans:
            start, end, label = _aligned(doc, span, lang)
            chosen.append(parsed.char_span(start, end, label=label, alignment_mode="expand"))
        parsed.spans[SPANS_KEY] = chosen
        parsed.spans[SPANS_KEY].attrs["scores"] = [span.score for span in spans]
        parsed.ents = filter_spans(chosen)
        parsed._.relation_data = [relation_record(chosen, link, SPANS_KEY) for link in links]
        collection.add(parsed)
    return collection.to_bytes()
