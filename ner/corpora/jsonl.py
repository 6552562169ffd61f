"""JSONL output of extraction results: one self-contained record per document.

Offsets are character offsets into the record's ``text``, and each entity's ``text`` is cut from
the record's ``text`` at those offsets, so ``text[start:end] == entity["text"]`` holds by construction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from ner.documents import Document


def extraction_record(doc: Document, source: str | None = None, head: str = "spert") -> dict[str, Any]:
    """The JSON-ready record of one document's predictions."""
    entities = []
    for entity in doc.entities:
        start, end = doc.char_span(entity.start, entity.end)
        entities.append(
            {
                "start": start,
                "end": end,
                "text": doc.text[start:end],
                "label": entity.label,
                "score": _rounded(entity.score),
                "head": head,
            }
        )
    relations = [
        {"head": r.head, "tail": r.tail, "label": r.label, "score": _rounded(r.score)} for r in doc.relations
    ]
    record: dict[str, Any] = {"source": source if source is not None else doc.id, "text": doc.text}
    record.update(entities=entities, relations=relations)
    return record


def write_jsonl(records: Iterable[dict[str, Any]], path_or_file: str | Path | IO[str]) -> int:
    """Write records as JSON lines (UTF-8, one per line); returns how many were written."""
    if isinstance(path_or_file, (str, Path)):
        with open(path_or_file, "w", encoding="utf-8") as handle:
            return write_jsonl(records, handle)
    count = 0
    for record in records:
        path_or_file.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def _rounded(score: float | None) -> float | None:
    return None if score is None else round(float(score), 4)
