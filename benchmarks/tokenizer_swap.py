"""Does the tokenizer explain a zero-shot figure? One pipeline scored on raw text with its own
tokenizer and with another pipeline's, the model unchanged.

    python benchmarks/tokenizer_swap.py --pipeline multilingual --tokenizer-from DIR \\
        [--data wikiann_de/test.tsv] [--format wikiann] [--threads 2] \\
        [--output benchmarks/results/tokenizer_swap_de.json]

Why: the pipeline with every head (``pipelines/all.toml``) cuts text with the English tokenizer,
and its German zero-shot F1 is 2.4 points below the multilingual pipeline's, which uses ``xx``.
Scoring the multilingual pipeline's own model behind each tokenizer separates the tokenizer's
share from the training's. Each head is scored with the raw-text protocol of ``ner evaluate``
(the texts through ``nlp.pipe``, matched on character offsets); a head that predicts MISC is
scored on WikiANN with MISC left out, as ``benchmarks/shipped.py`` does.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import DATA, process_usage, run_metadata, start_run, write_result  # noqa: E402

from ner.evaluation import evaluate_pipeline, read_gold_file  # noqa: E402
from ner.pipeline import extractor_model, load  # noqa: E402


def raw_f1(nlp, path: Path, format: str, head: str) -> float:
    """Raw-text micro F1 of ``head`` on the gold file, MISC left out for a head that predicts it on
    a set without it (WikiANN)."""
    labels = set(extractor_model(nlp).heads[head].schema.entity_labels)
    ignored = ("MISC",) if "MISC" in labels and format == "wikiann" else ()
    docs = read_gold_file(nlp, path, head, format, ignore_labels=ignored)
    scores = evaluate_pipeline(nlp, docs, head, protocols=("raw",), ignore_labels=ignored).as_dict()
    return round(scores["raw"][head]["entities"]["micro"]["f1"], 2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipeline", default="multilingual", help="the model scored (name or folder)")
    parser.add_argument("--tokenizer-from", required=True, help="the pipeline whose tokenizer is swapped in")
    parser.add_argument("--data", default="wikiann_de/test.tsv", help="gold file, under the data folder")
    parser.add_argument("--format", default="wikiann")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    started = start_run(args.threads)
    nlp = load(args.pipeline)
    heads = list(extractor_model(nlp).heads)
    own = {head: raw_f1(nlp, DATA / args.data, args.format, head) for head in heads}
    own_lang = nlp.lang
    other = load(args.tokenizer_from)
    nlp.tokenizer = other.tokenizer
    swapped = {head: raw_f1(nlp, DATA / args.data, args.format, head) for head in heads}
    result = {
        **run_metadata(),
        "pipeline": args.pipeline,
        "data": args.data,
        "own_tokenizer": {"lang": own_lang, "raw_f1": own},
        "swapped_tokenizer": {"from": args.tokenizer_from, "lang": other.lang, "raw_f1": swapped},
        "swapped_minus_own": {head: round(swapped[head] - own[head], 2) for head in heads},
    }
    write_result({**result, **process_usage(started)}, args.output)


if __name__ == "__main__":
    main()
