"""``nlp.pipe`` speed of several pipelines on the same raw texts, measured in one run.

    python benchmarks/pipeline_speed.py --pipeline NAME=DIR [--pipeline NAME=DIR+DIR+... ...] \\
        [--data FILE] [--threads 2] [--repeats 5] [--output benchmarks/results/X.json]

A figure such as "the new default is as fast as the old one" is only worth something when both
were timed on the same machine under the same load. So every pipeline is loaded once, warmed up,
and the timed passes are interleaved (A, B, A, B, ...): a burst of load from elsewhere hits both
alike, and the best pass of each counts. Words are whitespace-separated words of the texts, so
pipelines with different tokenizers are compared on the same count.

``NAME=DIR1+DIR2+...`` times several pipelines run one after another on the same texts, as a user
who needs each of their heads would run them (one ``nlp.pipe`` pass of each per timed pass): the
cost that one pipeline with every head saves. A DIR is a folder or a shipped short name.

The texts are the gold file's documents as raw text (ner/raw_text.py's rebuilding, the same texts
``ner evaluate --protocol raw`` scores); the default is CoNLL04 test.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from common import DATA, run_metadata, write_result  # noqa: E402
from raw_text import pipe_seconds  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from ner.evaluation import read_gold_file  # noqa: E402
from ner.pipeline import extractor_model, load  # noqa: E402


def named_pipeline(value: str) -> tuple[str, str]:
    """``NAME=DIR`` from the command line, as ``(name, dir)``."""
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {value!r}")
    return name, path


def interleaved_passes(pipelines: dict[str, list], texts: list[str], batch_size: int, repeats: int) -> dict:
    """Seconds of each timed pass per entry (the sum over its pipelines, run one after another),
    the passes of all entries taken in turn."""
    seconds: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(repeats):
        for name, chain in pipelines.items():
            seconds[name].append(sum(pipe_seconds(nlp, texts, batch_size) for nlp in chain))
    return seconds


def speed_record(passes: list[float], texts: list[str]) -> dict:
    """The best pass as texts/s and words/s, with every pass kept."""
    best, words = min(passes), sum(len(text.split()) for text in texts)
    return {
        "seconds_per_pass": [round(s, 3) for s in passes],
        "best_seconds": round(best, 3),
        "texts_per_s": round(len(texts) / best, 1),
        "words": words,
        "words_per_s": round(words / best),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipeline", type=named_pipeline, action="append", required=True)
    parser.add_argument("--data", type=Path, default=DATA / "conll04" / "test.json", help="gold file")
    parser.add_argument("--head", help="the head the gold file is for (default: the first pipeline's first)")
    parser.add_argument("--format", help="the gold file's reader (default: from the file and the head)")
    parser.add_argument("--max-docs", type=int, help="only the first N documents (a quick check)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per pipeline (best counts)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    pipelines = {name: [load(part) for part in path.split("+")] for name, path in args.pipeline}
    first = next(iter(pipelines.values()))[0]
    head = args.head or next(iter(extractor_model(first).heads))
    docs = read_gold_file(first, args.data, head, args.format, None)[: args.max_docs]
    texts = [doc.text for doc in docs]
    for nlp in (nlp for chain in pipelines.values() for nlp in chain):  # one-off costs off the clock
        pipe_seconds(nlp, texts[: args.batch_size], args.batch_size)
    started = time.perf_counter()
    passes = interleaved_passes(pipelines, texts, args.batch_size, args.repeats)
    result = {
        **run_metadata(),
        "pipelines": dict(args.pipeline),
        "data": str(args.data),
        "documents": len(texts),
        "timed_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb_all_pipelines_loaded": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "nlp_pipe": {name: speed_record(p, texts) for name, p in passes.items()},
    }
    write_result(result, args.output)


if __name__ == "__main__":
    main()
