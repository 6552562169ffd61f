"""What the issue-13 segment rules change on CoNLL04 test, with the shipped pipeline.

    python benchmarks/segments.py [--pipeline DIR] [--threads 2] \\
        [--output benchmarks/results/segments_conll04.json]

Three rules, each measured before/after on the same loaded pipeline, under both protocols of
``ner evaluate`` (ner/evaluation.py): ``tokens`` (the papers': the corpus's own tokens given to the
model) and ``raw`` (each sentence's text through ``nlp.pipe``, scored on character offsets).

* ``overlap filter``: SpERT no longer classifies a pair of spans that share a word
  (ner/heads/spert.py ``disjoint``). "Before" puts every pair back.
* ``abbreviations``: English tokenizers keep ``ner.tokenizer.ENGLISH_ABBREVIATIONS`` ("Lt.",
  "Capt.", "Wyo." ...) whole, so the sentencizer no longer ends a sentence after them. A saved
  pipeline keeps the exceptions it was saved with, so "after" adds them to the loaded tokenizer
  (only the raw-text protocol sees tokenizer and sentencizer; corpus tokens are given as they are).
* ``blank lines`` end segments: a CoNLL04 text is one line, so nothing changes; the count of texts
  with a blank line is recorded to show it.

CoNLL04 is read from ``$NER_DATA_DIR`` or ``../shared/data``. A run takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from common import run_metadata, write_result

import ner.heads.spert as spert
from ner.corpora import read_spert_json, read_spert_types
from ner.evaluation import evaluate_model, evaluate_raw
from ner.pipeline import extractor_model, load
from ner.segments import is_paragraph_break
from ner.tokenizer import ENGLISH_ABBREVIATIONS

ROOT = Path(__file__).parents[1]
OUTPUT = ROOT / "benchmarks" / "results" / "segments_conll04.json"
DATA = Path(os.environ.get("NER_DATA_DIR", ROOT.parent / "shared" / "data"))


@contextmanager
def overlapping_pairs_allowed():
    """The head as it was before: every pair of kept spans is classified, overlapping or not."""
    original = spert.disjoint
    spert.disjoint = lambda head, tail, start, end: torch.ones_like(head, dtype=torch.bool)
    try:
        yield
    finally:
        spert.disjoint = original


def _figures(scores) -> dict:
    return {name: round(s.micro.f1, 2) for name, s in scores.items()}


def measure(pipeline: str | None) -> dict:
    nlp = load(pipeline)
    model = extractor_model(nlp)
    docs = read_spert_json(DATA / "conll04" / "test.json", read_spert_types(DATA / "conll04" / "types.json"))
    result: dict = {"documents": len(docs)}
    with overlapping_pairs_allowed():
        result["tokens_before"] = _figures(evaluate_model(model, docs))
        result["raw_before"] = _figures(evaluate_raw(nlp, docs)[0])
    result["tokens_overlap_filter"] = _figures(evaluate_model(model, docs))
    result["raw_overlap_filter"] = _figures(evaluate_raw(nlp, docs)[0])
    result["sentences_split_before"] = _split_texts(nlp, docs)
    added = [a for a in ENGLISH_ABBREVIATIONS if a not in nlp.tokenizer.rules]
    for abbreviation in added:
        nlp.tokenizer.add_special_case(abbreviation, [{"ORTH": abbreviation}])
    result["abbreviations_added_to_the_loaded_tokenizer"] = len(added)
    result["sentences_split_after"] = _split_texts(nlp, docs)
    result["raw_overlap_filter_and_abbreviations"] = _figures(evaluate_raw(nlp, docs)[0])
    result["texts_with_a_blank_line"] = sum(
        any(is_paragraph_break(doc.text[a[1] : b[0]]) for a, b in zip(doc.offsets, doc.offsets[1:]))
        for doc in docs
    )
    return result


def _split_texts(nlp, docs) -> int:
    """How many one-sentence CoNLL04 texts the pipeline cuts into more than one sentence."""
    return sum(len(list(doc.sents)) > 1 for doc in nlp.pipe(d.text for d in docs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default=None, help="a pipeline directory (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    result = {**run_metadata(), "pipeline": args.pipeline or "shipped default", **measure(args.pipeline)}
    result["seconds"] = round(time.perf_counter() - started, 1)
    write_result(result, args.output)


if __name__ == "__main__":
    main()
