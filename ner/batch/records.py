"""The output record of one document: where it came from, what it said, and every head's results.

Offsets are character offsets into the record's ``text`` (for HTML and PDF, the extracted text),
and each entity's ``text`` is cut from it, so ``text[start:end] == entity["text"]`` by construction.
"""

from __future__ import annotations

from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

from ner.batch.sources import SourceText


def pipeline_info(nlp: Language) -> dict[str, str]:
    return {"name": str(nlp.meta.get("name", "")), "version": str(nlp.meta.get("version", ""))}


def doc_record(doc: Doc, item: SourceText, heads: list[str], pipeline: dict[str, str]) -> dict[str, Any]:
    """Every head's entities (``doc.spans[head]``, each tagged with its head) and relations (whose
    ``head``/``tail`` index the record's entities)."""
    entities, index = [], {}
    for name in heads:
        group = doc.spans.get(name, [])
        scores = group.attrs.get("scores", [None] * len(group)) if group else []
        for span, score in zip(group, scores):
            index[(name, span.start, span.end, span.label_)] = len(entities)
            entities.append(
                {
                    "start": span.start_char,
                    "end": span.end_char,
                    "text": span.text,
                    "label": span.label_,
                    "score": _rounded(score),
                    "head": name,
                }
            )
    relations = []
    for r in doc._.relation_data or []:
        name = r.get("model_head", heads[0] if heads else "")
        head, tail = index.get((name, *r["head"])), index.get((name, *r["tail"]))
        if head is not None and tail is not None:
            relations.append({"head": head, "tail": tail, "label": r["label"], "score": _rounded(r["score"])})
    return {
        "source": item.source,
        "line": item.line,
        "item": item.item,
        "sha256": item.sha256,
        "pipeline": pipeline,
        "encoding": item.encoding,
        "text": item.text,
        "entities": entities,
        "relations": relations,
    }


def _rounded(score: float | None) -> float | None:
    return None if score is None else round(float(score), 4)
