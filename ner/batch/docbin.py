"""A spaCy ``DocBin`` of an extraction run, rebuilt from its JSONL records.

The JSONL output is the record of truth: it is appended per document and survives kills, where a
``DocBin`` can only be written whole. So ``ner extract --docbin`` writes the DocBin once the run
is complete, from every record of the output (this run's and earlier ones'), and replaces the
file atomically. The Docs are what the pipeline itself would produce: the pipeline's tokenizer
(the same tokens the predictions were made on, so every entity aligns exactly), each head's spans
in ``doc.spans[head]`` with ``attrs["scores"]``, ``doc._.relation_data`` as the component writes
it, and ``doc.ents`` chosen by the pipeline's own ``ents_merge`` rule. No model is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import spacy
from spacy.tokens import Doc, DocBin, Span

from ner.components import Extractor, relation_record
from ner.documents import Relation
from ner.files import write_atomic
from ner.model import CONFIG_FILE
from ner.pipeline import DEFAULT_PIPELINE

COMPONENT = "ner_extractor"


def write_docbin(records_path: Path, docbin_path: Path, pipeline: str | Path | None = None) -> int:
    """Write every record of ``records_path`` as a Doc to ``docbin_path``; returns the number of Docs."""
    pipeline = Path(pipeline or DEFAULT_PIPELINE)
    nlp, merger = _tokenizer_and_merger(pipeline)
    heads = list(json.loads((pipeline / COMPONENT / CONFIG_FILE).read_text(encoding="utf-8"))["heads"])
    collection = DocBin(store_user_data=True)
    for record in _records(records_path):
        collection.add(record_to_doc(record, nlp, merger, heads))
    write_atomic(docbin_path, collection.to_bytes())
    return len(collection)


def record_to_doc(record: dict, nlp: spacy.Language, merger: Extractor, heads: list[str]) -> Doc:
    """The Doc of one extraction record (see :func:`ner.batch.records.doc_record`); ``heads`` are
    the model's heads in order, each of which gets its ``doc.spans`` group, empty or not."""
    doc = nlp.make_doc(record["text"])
    spans: list[Span] = []
    members: dict[str, list[int]] = {name: [] for name in heads}  # head -> indices into spans
    for entity in record["entities"]:
        span = doc.char_span(entity["start"], entity["end"], label=entity["label"])
        if span is None:
            raise ValueError(
                f"{record['source']}: entity {entity['text']!r} at {entity['start']}-{entity['end']} "
                "does not fall on token boundaries of this pipeline's tokenizer (another pipeline?)"
            )
        members.setdefault(entity["head"], []).append(len(spans))
        spans.append(span)
    for name, indices in members.items():
        doc.spans[name] = [spans[i] for i in indices]
        doc.spans[name].attrs["scores"] = [record["entities"][i]["score"] for i in indices]
    doc._.relation_data = [
        relation_record(spans, Relation(r["head"], r["tail"], r["label"], r["score"]), _head_of(record, r))
        for r in record["relations"]
    ]
    merger.merge_ents(doc, list(members))
    return doc


def _head_of(record: dict, relation: dict) -> str:
    """The model head that predicted ``relation``: the one that predicted its arguments."""
    return record["entities"][relation["head"]]["head"]


def _tokenizer_and_merger(pipeline: Path) -> tuple[spacy.Language, Extractor]:
    """The pipeline without its model (tokenizer only), and a model-less extractor with its merge
    settings, read from the pipeline's config.cfg."""
    settings = spacy.util.load_config(pipeline / "config.cfg")["components"][COMPONENT]
    nlp = spacy.load(pipeline, exclude=[COMPONENT])
    return nlp, Extractor(ents_merge=settings["ents_merge"], ents_heads=settings["ents_heads"])


def _records(path: Path) -> Iterable[dict]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
