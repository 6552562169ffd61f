"""Text in, extraction record out, for the Extract page; uploads read by the batch readers.

The record is exactly ``ner extract``'s (``ner.batch.records.doc_record``), so what an annotator
downloads here is what the batch command writes, and the Annotate page can open it.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from spacy.language import Language

from app.paths import PathRefused, file_name
from app.serving import MAX_UPLOAD_BYTES
from ner.batch.records import doc_record, pipeline_info
from ner.batch.sources import SUFFIX_FORMATS, SourceText, read_items
from ner.pipeline import extractor_model

UPLOAD_TYPES = sorted(suffix.lstrip(".") for suffix in SUFFIX_FORMATS)


PASTED = "pasted text"  # the source of text pasted on the Extract page


def extract(nlp: Language, text: str, source: str = PASTED) -> dict:
    """Every head's entities and the relations found in ``text``, as an extraction record.
    Long texts are fine: the pipeline splits sentences and windows them itself."""
    heads = list(extractor_model(nlp).heads)
    return doc_record(nlp(text), SourceText(source, text), heads, pipeline_info(nlp))


def above_threshold(record: dict, threshold: float) -> dict:
    """The record without entities and relations scored below ``threshold``; relations keep
    pointing at the right entities (their indices are renumbered). Scores are compared as the page
    shows them, to two decimals: at 1.00 an entity shown as "1.00" (0.996) is kept."""
    kept = [i for i, e in enumerate(record["entities"]) if _passes(e.get("score"), threshold)]
    new_index = {old: new for new, old in enumerate(kept)}
    relations = [
        {**r, "head": new_index[r["head"]], "tail": new_index[r["tail"]]}
        for r in record["relations"]
        if r["head"] in new_index and r["tail"] in new_index and _passes(r.get("score"), threshold)
    ]
    return {**record, "entities": [record["entities"][i] for i in kept], "relations": relations}


def _passes(score: float | None, threshold: float) -> bool:
    return score is None or shown(score) >= shown(threshold)


def shown(score: float) -> float:
    """``score`` rounded as the page writes it (``f"{score:.2f}"``); the slider's steps are
    rounded the same way, so 0.15 is 0.15 and not 0.15000000000000002."""
    return float(f"{score:.2f}")


def download_name(doc: SourceText) -> str:
    """``<source stem>[-line-N|-item-N].extraction.jsonl``, in characters safe in a file name
    on every system (letters, digits, ``_``, ``-``, ``.``); pasted text is ``pasted-text``."""
    stem = _SAFE.sub("-", Path(doc.source).stem).strip("-.")[:80].strip("-.") or "text"
    where = f"-line-{doc.line}" if doc.line else f"-item-{doc.item}" if doc.item is not None else ""
    return f"{stem}{where}.extraction.jsonl"


_SAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class Upload:
    """What an uploaded file gave: its documents, and a message for each part that was unusable."""

    documents: list[SourceText]
    problems: list[str]


def read_upload(name: str, data: bytes, text_field: str = "text") -> Upload:
    """The documents of an uploaded file, read by the batch readers (encoding detection, HTML
    text, JSON/JSONL records, PDF pages). Never raises for bad content: problems are messages."""
    if len(data) > MAX_UPLOAD_BYTES:
        size = f"{len(data) / 1e6:.1f} MB"
        return Upload([], [f"{name} is {size}; files up to {MAX_UPLOAD_BYTES // 1_000_000} MB can be used."])
    try:
        name = file_name(name)  # the client's name: never a path out of the temporary folder
    except PathRefused as error:
        return Upload([], [str(error)])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        items = list(read_items(path, text_field=text_field))
    documents, problems = [], []
    for item in items:
        if isinstance(item, SourceText):
            documents.append(SourceText(name, item.text, item.line, item.item, item.encoding))
        else:
            problems.append(f"{name}: {plain_reason(item.reason)}")
    return Upload(documents, problems)


_REASONS = {
    "empty (no text)": "the file holds no text",
    "binary content (NUL bytes)": "this is not a text file (binary content)",
    "binary content or an unknown text encoding": "this is not a text file, or its encoding is unknown",
}


def plain_reason(reason: str) -> str:
    """The batch reader's reason, said for a person rather than for a log (the Extract page's
    upload problems, the Annotate page's files left out of a folder)."""
    reason = reason.replace(" (--max-bytes)", "").replace(" (--read-timeout)", "")
    for raw, plain in _REASONS.items():
        if reason.endswith(raw):
            return reason[: -len(raw)] + plain
    return reason
