"""MT-BioNER benchmark: one multi-task model against one single-task model per dataset.

    python benchmarks/bioner.py [--config pipelines/bioner.toml] --multi runs/bioner \\
        --single runs/bioner_{task} [--sentences 500] [--threads 2] [--output benchmarks/results/bioner.json]

* Accuracy: each run's test scores from its ``metrics.json`` (written by ``ner train`` with the
  evaluator of ``ner evaluate``: seqeval strict, IOB2, on the full official test split).
* Training time: the sum of the epochs' training seconds, and the whole command's wall time
  (loading, dev evaluation, saving and test scoring included) as ``ner train`` measured it
  (``wall_seconds`` in ``metrics.json``; ``null`` for a run made before it recorded one).
  ``results/bioner.json``'s wall times were read from ``/usr/bin/time -v`` logs, which were not kept.
* Inference: the same raw sentences (the first ``--sentences`` of each test set, tokens joined by
  spaces) through ``nlp.pipe`` of the multi-task pipeline, and through the four single-task
  pipelines one after another; both measured in this process, best of ``--repeats``, so the ratio
  does not depend on the machine's speed that day.
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
from common import process_usage, run_metadata, write_result  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from ner.config import load_config  # noqa: E402
from ner.pipeline import load  # noqa: E402
from ner.tasks import read_split  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pipelines" / "bioner.toml"
#: Single-task BioBERT v1.1 test F1 (the MT-BioNER paper's baselines), for the gap we report.
REFERENCE = {"bc2gm": 84.72, "bc5cdr_chem": 93.47, "bc5cdr_disease": 87.15, "ncbi_disease": 89.71}


def test_f1(scores: dict) -> dict[str, float]:
    """Entity micro F1 per task of one ``metrics.json`` test block."""
    return {task: round(task_scores["entities"]["micro"]["f1"], 2) for task, task_scores in scores.items()}


def run_summary(directory: Path) -> dict:
    """A run's test F1 (corpus tokens, and raw text when ``ner train`` scored it) and its time."""
    metrics = json.loads((directory / "metrics.json").read_text())
    return {
        "test_f1": test_f1(metrics["test"]),
        "test_raw_text_f1": test_f1(metrics["test_raw_text"]) if "test_raw_text" in metrics else None,
        "epochs": len(metrics["epochs"]),
        "best_epoch": metrics["best_epoch"],
        "train_seconds": round(sum(e["train_seconds"] for e in metrics["epochs"]), 1),
        "wall_seconds": metrics.get("wall_seconds"),
    }


def pipe_seconds(nlp, texts: list[str], batch_size: int, repeats: int) -> float:
    list(nlp.pipe(texts[:64], batch_size=batch_size))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in nlp.pipe(texts, batch_size=batch_size):
            pass
        best = min(best, time.perf_counter() - started)
    return best


def markdown(result: dict) -> str:
    """The BENCHMARKS.md tables of a result."""
    acc, training, inference = result["accuracy"], result["training"], result["inference"]
    single, multi, ref = acc["single_task"], acc["multi_task"], acc["biobert_reference"]
    raw = acc.get("raw_text")
    rows = []
    if raw:
        rows += [
            "| test set | single-task, raw text | multi-task, raw text | multi − single, raw text |",
            "|---|---|---|---|",
        ]
        for task in [*REFERENCE, "mean"]:
            name = "**mean**" if task == "mean" else task
            one, many = raw["single_task"][task], raw["multi_task"][task]
            rows.append(f"| {name} | {one:.2f} | {many:.2f} | {many - one:+.2f} |")
        rows.append("")
    rows += [
        "| test set | single-task | multi-task | multi − single | BioBERT (single-task) | multi-task gap |",
        "|---|---|---|---|---|---|",
    ]
    for task in [*REFERENCE, "mean"]:
        name = "**mean**" if task == "mean" else task
        rows.append(
            f"| {name} | {single[task]:.2f} | {multi[task]:.2f} | {multi[task] - single[task]:+.2f} "
            f"| {ref[task]:.2f} | {multi[task] - ref[task]:+.2f} |"
        )
    rows += ["", "| training run | epochs | training steps (s) | whole command (s) |", "|---|---|---|---|"]
    for task, run in training["single_task"].items():
        steps, wall = run["train_seconds"], run["wall_seconds"]
        rows.append(f"| single-task {task} | {run['epochs']} | {steps:,.0f} | {wall:,.0f} |")
    rows.append(
        f"| **four single-task runs** | | {training['single_task_total_train_seconds']:,.0f} "
        f"| {training['single_task_total_wall_seconds']:,.0f} |"
    )
    run = training["multi_task"]
    rows.append(
        f"| **multi-task run** | {run['epochs']} | {run['train_seconds']:,.0f} | {run['wall_seconds']:,.0f} |"
    )
    singles_seconds = sum(inference["single_tasks_seconds"].values())
    rows += [
        "",
        "| inference on the same sentences | seconds | words/s |",
        "|---|---|---|",
        f"| four single-task pipelines, one after another | {singles_seconds:.2f} "
        f"| {inference['single_tasks_sequential_words_per_s']:,} |",
        f"| the multi-task pipeline | {inference['multi_task_seconds']:.2f} "
        f"| {inference['multi_task_words_per_s']:,} |",
        f"| ratio (multi / four singles) | {inference['multi_over_singles_time']:.3f} | |",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=CONFIG, help="the runs' recipe (its tasks and data)")
    parser.add_argument("--multi", type=Path, default=Path("runs/bioner"))
    parser.add_argument("--single", default="runs/bioner_{task}", help="pattern of the single-task runs")
    parser.add_argument("--sentences", type=int, default=500, help="test sentences per dataset for speed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--markdown", type=Path, help="only print the tables of this earlier result JSON")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)

    config = load_config(args.config)
    root = config.root(args.config.parent)
    tasks = [task.name for task in config.tasks]
    singles = {task: Path(args.single.format(task=task)) for task in tasks}
    multi = run_summary(args.multi)
    single = {task: run_summary(path) for task, path in singles.items()}
    single_f1 = {task: single[task]["test_f1"][task] for task in tasks}
    mean = lambda values: round(sum(values) / len(values), 2)  # noqa: E731
    accuracy = {
        "multi_task": {**multi["test_f1"], "mean": mean(multi["test_f1"].values())},
        "single_task": {**single_f1, "mean": mean(single_f1.values())},
        "biobert_reference": {**REFERENCE, "mean": mean(REFERENCE.values())},
    }
    if multi["test_raw_text_f1"] and all(run["test_raw_text_f1"] for run in single.values()):
        raw_single = {task: single[task]["test_raw_text_f1"][task] for task in tasks}
        raw_multi = multi["test_raw_text_f1"]
        accuracy["raw_text"] = {  # the headline protocol (issue 13); the tables above are corpus tokens
            "multi_task": {**raw_multi, "mean": mean(raw_multi.values())},
            "single_task": {**raw_single, "mean": mean(raw_single.values())},
        }

    texts = []
    for task in config.tasks:
        docs = read_split(task, "test", root)[: args.sentences]
        texts += [" ".join(doc.words) for doc in docs]
    words = sum(len(text.split()) for text in texts)
    multi_nlp = load(args.multi)
    multi_seconds = pipe_seconds(multi_nlp, texts, args.batch_size, args.repeats)
    single_seconds = {}
    for task, path in singles.items():
        single_seconds[task] = pipe_seconds(load(path), texts, args.batch_size, args.repeats)
    total_single = sum(single_seconds.values())

    result = {
        **run_metadata(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.threads} threads",
        "encoder": config.encoder.name,
        "config": str(args.config.resolve().relative_to(ROOT)),
        "accuracy": accuracy,
        "training": {
            "multi_task": multi,
            "single_task": single,
            "single_task_total_train_seconds": round(sum(s["train_seconds"] for s in single.values()), 1),
            "single_task_total_wall_seconds": round(sum(s["wall_seconds"] or 0 for s in single.values()), 1),
        },
        "inference": {
            "texts": f"first {args.sentences} test sentences of each of {tasks}: {len(texts)} sentences, "
            f"{words} words",
            "multi_task_seconds": round(multi_seconds, 2),
            "multi_task_words_per_s": round(words / multi_seconds),
            "single_tasks_seconds": {task: round(s, 2) for task, s in single_seconds.items()},
            "single_tasks_sequential_words_per_s": round(words / total_single),
            "multi_over_singles_time": round(multi_seconds / total_single, 3),
        },
        **process_usage(started),
    }
    write_result(result, args.output)
    print(markdown(result))


if __name__ == "__main__":
    main()
