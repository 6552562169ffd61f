"""Extraction over text files: read safely, run the pipeline in batches, write JSONL.

Bad inputs never stop a run and are never dropped silently: empty files, binary files, invalid
UTF-8 and files over the size limit are skipped with a logged reason and reported in the
summary (and in ``<output>.errors.jsonl``), while every readable document gets a record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc

from ner.corpora.jsonl import extraction_record, write_jsonl
from ner.documents import Document, Entity, Relation

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md")
DEFAULT_MAX_BYTES = 20_000_000


@dataclass
class Summary:
    documents: int = 0
    entities: int = 0
    relations: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def find_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Files named directly, plus the text files under named directories (sorted, recursive)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        else:
            found.append(path)
    return found


def read_text(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The file's text; raises ``ValueError`` with the reason when it cannot be used."""
    data = path.read_bytes()
    if len(data) > max_bytes:
        raise ValueError(f"{len(data)} bytes is over the limit of {max_bytes} (--max-bytes)")
    if b"\x00" in data:
        raise ValueError("binary content (NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"not valid UTF-8 at byte {error.start}") from error
    if not text.strip():
        raise ValueError("empty (no text)")
    return text


def doc_to_document(doc: Doc, head: str) -> Document:
    """One head's predictions on a spaCy Doc as a :class:`Document` (tokens as words, exact offsets)."""
    words = [t.text for t in doc]
    offsets = [(t.idx, t.idx + len(t.text)) for t in doc]
    spans = list(doc.spans[head]) if head in doc.spans else []
    scores = doc.spans[head].attrs.get("scores", [None] * len(spans)) if spans else []
    entities = [Entity(s.start, s.end, s.label_, score) for s, score in zip(spans, scores)]
    index = {(e.start, e.end, e.label): i for i, e in enumerate(entities)}
    relations = [
        Relation(index[tuple(r["head"])], index[tuple(r["tail"])], r["label"], r["score"])
        for r in doc._.relation_data or []
        if tuple(r["head"]) in index and tuple(r["tail"]) in index
    ]
    return Document(words, doc.text, offsets, entities=entities, relations=relations)


def extract_texts(
    nlp: Language, items: Sequence[tuple[str, str]], head: str, batch_size: int = 32
) -> Iterator[dict]:
    """Records for ``(source, text)`` items, in order."""
    docs = nlp.pipe((text for _, text in items), batch_size=batch_size)
    for (source, _), doc in zip(items, docs):
        yield extraction_record(doc_to_document(doc, head), source=source, head=head)


def extract_files(
    nlp: Language,
    paths: Sequence[Path],
    output: Path,
    head: str,
    batch_size: int = 32,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[Summary, list[dict]]:
    """Extract from every readable file into ``output`` (JSONL); returns the summary and the records."""
    summary, items = Summary(), []
    for path in paths:
        try:
            items.append((str(path), read_text(path, max_bytes)))
        except (OSError, ValueError) as error:
            logger.warning("skipped %s: %s", path, error)
            summary.skipped.append((str(path), str(error)))
    records = list(extract_texts(nlp, items, head, batch_size))
    output.parent.mkdir(parents=True, exist_ok=True)
    summary.documents = write_jsonl(records, output)
    summary.entities = sum(len(r["entities"]) for r in records)
    summary.relations = sum(len(r["relations"]) for r in records)
    errors = output.with_name(output.name + ".errors.jsonl")
    if summary.skipped:
        write_jsonl(({"source": s, "reason": r} for s, r in summary.skipped), errors)
    elif errors.exists():
        errors.unlink()
    return summary, records
