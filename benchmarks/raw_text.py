"""Raw text against corpus tokens: both evaluation protocols and ``nlp.pipe`` speed, in one run.

    python benchmarks/raw_text.py [--pipeline DIR] [--data FILE] [--head NAME] [--format FORMAT] \\
        [--max-docs N] [--threads 2] [--repeats 3] [--output benchmarks/results/raw_text.json]

Users give ``nlp()`` text, so the headline figure is the raw-text protocol: each gold document's
text (the corpus's tokens joined by single spaces) through ``nlp.pipe``, scored on character
offsets, the gold moved onto the pipeline's tokens by ner/alignment.py's rule (gold spans it
cannot align are misses). The corpus-token protocol (the papers') is computed beside it, by the
same evaluator as ``ner evaluate`` (ner/evaluation.py).

Speed is ``nlp.pipe`` over the same raw texts, the whole pipeline as a user runs it, with torch
on ``--threads`` threads: the best of ``--repeats`` passes after a warm-up, in words per second
(words: whitespace-separated, i.e. the corpus's tokens, so that pipelines with different
tokenizers are compared on the same count).

The data defaults to CoNLL04 test (``$NER_DATA_DIR`` or ``../shared/data``); any file ``ner
evaluate`` reads works (SpERT JSON, CoNLL, BioBERT TSV), its format chosen the same way.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from common import DATA, run_metadata, write_result  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from ner.evaluation import alignment_counts, evaluate_pipeline, read_gold_file  # noqa: E402
from ner.pipeline import extractor_model, load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pipe_seconds(nlp, texts: list[str], batch_size: int) -> float:
    """Seconds for one ``nlp.pipe`` pass over ``texts``."""
    started = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    return time.perf_counter() - started


def speed(nlp, texts: list[str], batch_size: int, repeats: int) -> dict:
    """Words per second of ``nlp.pipe`` on ``texts``: the best of ``repeats`` passes, after a warm-up."""
    pipe_seconds(nlp, texts[: min(len(texts), batch_size)], batch_size)  # one-off costs off the clock
    passes = [pipe_seconds(nlp, texts, batch_size) for _ in range(repeats)]
    best, words = min(passes), sum(len(text.split()) for text in texts)
    return {
        "seconds_per_pass": [round(s, 2) for s in passes],
        "best_seconds": round(best, 2),
        "texts_per_s": round(len(texts) / best, 1),
        "words": words,
        "words_per_s": round(words / best),
    }


def summary(scores: dict, head: str) -> dict:
    """``head``'s micro P/R/F1 per protocol and evaluation, rounded: the figures BENCHMARKS.md quotes."""
    return {
        protocol: {
            name: {k: round(v, 2) for k, v in vars(s.micro).items()} for name, s in heads[head].items()
        }
        for protocol, heads in scores.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipeline", help="a pipeline directory (default: the shipped one)")
    parser.add_argument("--data", type=Path, default=DATA / "conll04" / "test.json", help="gold file")
    parser.add_argument("--head", help="head to score (default: the first)")
    parser.add_argument("--format", help="format of --data (default: as ner evaluate chooses it)")
    parser.add_argument("--entity-type", help="type of an untyped B/I/O file")
    parser.add_argument("--max-docs", type=int, help="only the first N documents (a quick check)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed nlp.pipe passes (the best counts)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    nlp = load(args.pipeline)
    head = args.head or next(iter(extractor_model(nlp).heads))
    docs = read_gold_file(nlp, args.data, head, args.format, args.entity_type)[: args.max_docs]
    started = time.perf_counter()
    evaluation = evaluate_pipeline(nlp, docs, head, batch_size=args.batch_size)
    evaluation_seconds = time.perf_counter() - started
    results = {
        **run_metadata(),
        "pipeline": args.pipeline or "shipped default (ner/pretrained/conll04_spert)",
        "data": str(args.data),
        "documents": len(docs),
        "head": head,
        "micro": summary(evaluation.scores, head),
        "raw_gold_alignment": alignment_counts(evaluation.alignment[head]),
        "unaligned_examples": evaluation.alignment[head].examples,
        "evaluation_seconds": round(evaluation_seconds, 1),
        "nlp_pipe": speed(nlp, [doc.text for doc in docs], args.batch_size, args.repeats),
        "scores": evaluation.as_dict(),
    }
    write_result(results, args.output)


if __name__ == "__main__":
    main()
