"""CoNLL04 benchmark of a SpERT pipeline: SpERT-protocol accuracy, inference speed and memory.

    python benchmarks/conll04.py [--pipeline DIR]... [--threads 2] [--output results.json]

Accuracy comes from the same evaluator as ``ner evaluate``. Speed is measured end to end through
``nlp.pipe`` on the raw test sentences (tokens joined by spaces, re-tokenised by spaCy), and
compared with the bare encoder forward pass over the same word pieces in the same run, so the
ratio (the cost of heads + spaCy layer) does not depend on the machine's speed that day.
Training time per epoch is read from the pipeline's ``metrics.json`` when it has one.

With several ``--pipeline`` (e.g. the same head on two encoders), each is measured the same way,
their timing repeats interleaved so a busy moment of the machine does not favour one, and the
result adds each pipeline's speed relative to the first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from common import DATA, encoder_pass_seconds, process_usage, run_metadata, write_result  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from ner.corpora import read_spert_json, read_spert_types  # noqa: E402
from ner.evaluation import evaluate_model  # noqa: E402
from ner.pipeline import DEFAULT_PIPELINE, extractor_model, load  # noqa: E402
from ner.schedule import length_batches  # noqa: E402


def accuracy(model, docs) -> dict:
    scores = evaluate_model(model, docs)
    return {
        name: {"micro_f1": round(s.micro.f1, 2), "macro_f1": round(s.macro.f1, 2), "micro": vars(s.micro)}
        for name, s in scores.items()
    }


def pipe_seconds(nlp, texts: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    return time.perf_counter() - started


def pipe_speed(best: float, texts: list[str]) -> dict:
    words = sum(len(text.split()) for text in texts)
    return {
        "seconds": round(best, 2),
        "sentences_per_s": round(len(texts) / best, 1),
        "words_per_s": round(words / best),
    }


def encoder_speed(model, docs, batch_size: int, repeats: int) -> dict:
    """The bare transformer on the same sentences, length-batched as ``predict`` does (no heads, no spaCy)."""
    groups = length_batches([len(d.words) for d in docs], batch_size, 8192)
    prepared = [model.encoder.tokenize([docs[i].words for i in group]) for group in groups]
    pieces = sum(p.num_pieces for p in prepared)
    best = min(encoder_pass_seconds(model.encoder, prepared) for _ in range(repeats))
    words = sum(len(d.words) for d in docs)
    return {
        "seconds": round(best, 2),
        "pieces_per_s": round(pieces / best),
        "words_per_s": round(words / best),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipeline", type=Path, action="append", help="repeatable; default: the shipped one")
    parser.add_argument("--split", default="test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)

    schema = read_spert_types(DATA / "conll04" / "types.json")
    docs = read_spert_json(DATA / "conll04" / f"{args.split}.json", schema)
    texts = [d.text for d in docs]
    paths = args.pipeline or [DEFAULT_PIPELINE]
    pipelines = [load(path) for path in paths]
    best = [float("inf")] * len(pipelines)
    for nlp in pipelines:
        list(nlp.pipe(texts[:64], batch_size=args.batch_size))  # warm-up
    for _ in range(args.repeats):  # interleaved: every pipeline sees the same moments of the machine
        for index, nlp in enumerate(pipelines):
            best[index] = min(best[index], pipe_seconds(nlp, texts, args.batch_size))
    results = [measure(path, nlp, docs, seconds, args) for path, nlp, seconds in zip(paths, pipelines, best)]
    for result in results:
        result["speed_vs_first"] = round(best[0] / result["nlp_pipe"]["seconds"], 2)
    result = {**run_metadata(), **(results[0] if len(results) == 1 else {"pipelines": results})}
    write_result({**result, **process_usage(started)}, args.output)


def measure(path: Path, nlp, docs, pipe_best: float, args) -> dict:
    """Accuracy, speed and size of one pipeline, and its training time from ``metrics.json``."""
    model = extractor_model(nlp)
    size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    result = {
        "pipeline": str(path),
        "encoder": model.encoder_name,
        "pipeline_mb": round(size / 1e6, 1),
        "data": f"conll04/{args.split}.json ({len(docs)} sentences)",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.threads} threads",
        "accuracy": accuracy(model, docs),
        "nlp_pipe": pipe_speed(pipe_best, [d.text for d in docs]),
        "encoder_only": encoder_speed(model, docs, args.batch_size, args.repeats),
    }
    result["pipe_vs_encoder_time"] = round(
        result["nlp_pipe"]["seconds"] / result["encoder_only"]["seconds"], 2
    )
    metrics = Path(path) / "metrics.json"
    if metrics.is_file():
        epochs = json.loads(metrics.read_text())["epochs"]
        seconds = sorted(e["train_seconds"] for e in epochs)
        result["train_seconds_per_epoch"] = {
            "median": seconds[len(seconds) // 2],
            "all": [e["train_seconds"] for e in epochs],
        }
    return result


if __name__ == "__main__":
    main()
