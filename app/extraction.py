"""Text in, extraction record out, for the Extract page; uploads read by the batch readers.

The record is exactly ``ner extract``'s (``ner.batch.records.doc_record``), so what an annotator
downloads here is what the batch command writes, and the Annotate page can open it.
"""

from __future__ import annotations

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


def extract(nlp: Language, text: str, source: str = "pasted text") -> dict:
    """Every head's entities and the relations found in ``text``, as an extraction record.
    Long texts are fine: the pipeline splits sentences and windows them itself."""
    heads = list(extractor_model(nlp).heads)
    return doc_record(nlp(text), SourceText(source, text), heads, pipeline_info(nlp))


def above_threshold(record: dict, threshold: float) -> dict:
    """The record without entities and relations scored below ``threshold``; relations keep
    pointing at the right entities (their indices are renumbered)."""
    kept = [i for i, e in enumerate(record["entities"]) if _passes(e.get("score"), threshold)]
    new_index = {old: new for new, old in enumerate(kept)}
    relations = [
        {**r, "head": new_index[r["head"]], "tail": new_index[r["tail"]]}
        for r in record["relations"]
        if r["head"] in new_index and r["tail"] in new_index and _passes(r.get("score"), threshold)
    ]
    return {**record, "entities": [record["entities"][i] for i in kept], "relations": relations}


def _passes(score: float | None, threshold: float) -> bool:
    return score is None or score >= threshold


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
            problems.append(f"{name}: {_plain(item.reason)}")
    return Upload(documents, problems)


_REASONS = {
    "empty (no text)": "the file holds no text",
    "binary content (NUL bytes)": "this is not a text file (binary content)",
    "binary content or an unknown text encoding": "this is not a text file, or its encoding is unknown",
}


def _plain(reason: str) -> str:
    """The batch reader's reason, said for a person rather than for a log."""
    for raw, plain in _REASONS.items():
        if reason.endswith(raw):
            return reason[: -len(raw)] + plain
    return reason
