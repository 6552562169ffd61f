"""Adding a head to a trained pipeline: what each ``training.add_head_strategy`` keeps and costs (issue 17).

    python benchmarks/add_head.py [--epochs 2] [--max-train-docs N] [--strategies fine_tune,distill,...]
        [--additions species_on_conll04,bio_head] [--bio-base DIR] [--work runs/add_head]
        [--output benchmarks/results/add_head.json]
    python benchmarks/add_head.py --quick          # smoke run: tiny limits, result under --work

Two additions, each with every strategy on the same settings and seed:

* ``species_on_conll04``: a LINNAEUS species tagger added to the shipped CoNLL04 SpERT pipeline;
* ``bio_head``: the ncbi_disease tagger added to a pipeline with the other bio heads of
  ``pipelines/bio.toml``, the shipped bio recipe (bc2gm, bc5cdr_chem, bc5cdr_disease), trained
  here first unless ``--bio-base`` names one.

Per run it records the old heads' test F1 before and after (SpERT: entities and typed relations),
the new head's test F1, the training time (``ner train``'s own: the epochs' training seconds and
the whole call, which here scores no test split), inference words/s through ``nlp.pipe`` on raw
test sentences of every head's task (best of ``--repeats``), and the pipeline's size. Baselines
on the same settings: ``fine_tune`` is the full fine-tune (the strategy ``init_from`` had
before), and ``single_task`` trains the new task alone on the base pipeline's encoder. Test
scores use the evaluator of ``ner evaluate``, under both protocols (``raw`` text, the headline,
and the corpus ``tokens``, the issue's figures), computed by this script once per pipeline: the
runs train without a test split, so ``ner train`` does not score it a second time (their
pipelines' task records then name no test file for the new head).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from common import DATA, process_usage, run_metadata, write_result  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from ner.config import TrainConfig, load_config  # noqa: E402
from ner.evaluation import PROTOCOLS, evaluate_pipeline, task_records  # noqa: E402
from ner.pipeline import DEFAULT_PIPELINE, extractor_model, load  # noqa: E402
from ner.tasks import TaskData, TaskSettings, read_split  # noqa: E402
from ner.training import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: the shipped bio pipeline's recipe (e5, 6 layers, its own tokenization): the bio addition grows that
BIO = ROOT / "pipelines" / "bio.toml"
STRATEGIES = ("fine_tune", "frozen_encoder", "rehearsal", "distill", "branch")
LINNAEUS = {
    "name": "linnaeus",
    "format": "biobert_tsv",
    "entity_type": "Species",
    "train": "linnaeus/train.tsv",
    "dev": "linnaeus/dev.tsv",
    "test": "linnaeus/test.tsv",
}
#: the training settings of an addition (``pipelines/bio.toml``'s, for a tagging head)
TRAINING = {"batch_size": 32, "learning_rate": 1e-4, "head_learning_rate": 1e-3, "warmup": 0.1, "seed": 42}


def bio_tasks() -> dict[str, dict]:
    """The tasks of ``pipelines/bio.toml`` as config tables, by name."""
    config = load_config(BIO)
    return {task.name: task.model_dump(mode="json", exclude_none=True) for task in config.tasks}


def with_test(task: TaskSettings) -> TaskSettings:
    """``task``, with the test file of the bio task of that name when its record names none (a
    base trained by :func:`bio_base`, which leaves test scoring to this script)."""
    if task.test is not None or task.name not in bio_tasks():
        return task
    return task.model_copy(update={"test": bio_tasks()[task.name]["test"]})


def base_settings(base: Path) -> dict:
    """The ``[encoder]`` and ``[export]`` tables the base pipeline was trained with (its
    ``metrics.json``), so additions and the single-task baseline run on the same encoder."""
    config = json.loads((base / "metrics.json").read_text())["config"]
    weights = json.loads((base / "ner_extractor" / "model.json").read_text())["weights"]
    export = {**config["export"], "storage": weights["storage"], "dtype": weights.get("dtype", "float16")}
    return {"encoder": config["encoder"], "export": export}


def run_config(task: dict, base: Path, strategy: str | None, output: Path, args) -> TrainConfig:
    """One run: ``task`` added to ``base`` under ``strategy``, or trained alone (``None``)."""
    settings = base_settings(base)
    training = {**TRAINING, "epochs": args.epochs, "max_train_docs": args.max_train_docs}
    training.update(max_dev_docs=args.max_dev_docs, threads=args.threads)
    if strategy is not None:
        training["add_head_strategy"] = strategy
    data = {
        "data_root": str(DATA),
        "tasks": [{k: v for k, v in task.items() if k != "test"}],  # scored here, once: test_scores
        "encoder": settings["encoder"],
        "training": {k: v for k, v in training.items() if v is not None},
        "export": settings["export"],
        "output": str(output),
        "init_from": None if strategy is None else str(base),
    }
    return TrainConfig.model_validate(data)


def test_scores(nlp, tasks: dict[str, TaskSettings], limit: int | None, batch_size: int) -> dict:
    """Micro F1 of each head on its task's test split (the first ``limit`` documents), per protocol:
    entities, and typed relations for SpERT heads."""
    model = extractor_model(nlp)
    result: dict = {}
    for head, task in tasks.items():
        data = TaskData(task, DATA, splits=("test",), schema=model.heads[head].schema)
        evaluation = evaluate_pipeline(nlp, data.test[:limit], head, PROTOCOLS, batch_size)
        for protocol, by_head in evaluation.scores.items():
            scores = by_head[head]
            figures = {"entities": round(scores["entities"].micro.f1, 2)}
            if "relations_with_types" in scores:
                figures["typed_relations"] = round(scores["relations_with_types"].micro.f1, 2)
            result.setdefault(head, {})[protocol] = figures
    return result


def speed(nlp, tasks: dict[str, TaskSettings], sentences: int, repeats: int, batch_size: int) -> dict:
    """Words/s of ``nlp.pipe`` on the first ``sentences`` raw test sentences of each head's task."""
    texts = [
        " ".join(doc.words) for task in tasks.values() for doc in read_split(task, "test", DATA)[:sentences]
    ]
    words = sum(len(text.split()) for text in texts)
    list(nlp.pipe(texts[:32], batch_size=batch_size))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in nlp.pipe(texts, batch_size=batch_size):
            pass
        best = min(best, time.perf_counter() - started)
    return {"sentences": len(texts), "words": words, "words_per_s": round(words / best)}


def size_mb(directory: Path) -> dict:
    files = [path for path in directory.rglob("*") if path.is_file() and path.name != "metrics.json"]
    weights = directory / "ner_extractor" / "weights.safetensors"
    return {
        "pipeline_mb": round(sum(path.stat().st_size for path in files) / 2**20, 2),
        "weights_mb": round(weights.stat().st_size / 2**20, 2),
    }


def measure_run(name: str, config: TrainConfig, old: dict[str, TaskSettings], new: dict, args) -> dict:
    """Train one run, then score and time the pipeline it saved."""
    output = Path(config.output)
    result = train(config, DATA, output, progress=not args.quiet)
    nlp = load(output)
    tasks = {**old, new["name"]: TaskSettings.model_validate(new)}
    scores = test_scores(nlp, tasks, args.max_test_docs, args.batch_size)
    return {
        "run": name,
        "pipeline": str(output),
        "old_heads_test_after": {head: scores[head] for head in old},
        "new_head_test": scores[new["name"]],
        "old_heads_dev_f1": result.get("old_heads_dev_f1", {}),
        "add_head": result.get("add_head"),
        "best_epoch": result["best_epoch"],
        "train_seconds": round(sum(epoch["train_seconds"] for epoch in result["epochs"]), 1),
        "wall_seconds": result["wall_seconds"],
        "inference": speed(nlp, tasks, args.speed_sentences, args.repeats, args.batch_size),
        **size_mb(output),
    }


def addition(name: str, base: Path, task: dict, args) -> dict:
    """Every requested strategy, and the single-task baseline, for adding ``task`` to ``base``."""
    work = args.work / name
    base_nlp = load(base)
    records = task_records(base_nlp)
    old = {head: with_test(records[head]) for head in extractor_model(base_nlp).heads}
    runs = {}
    for strategy in args.strategies:
        config = run_config(task, base, strategy, work / strategy, args)
        runs[strategy] = measure_run(strategy, config, old, task, args)
    if not args.skip_single_task:
        config = run_config(task, base, None, work / "single_task", args)
        runs["single_task"] = measure_run("single_task", config, {}, task, args)
    return {
        "base": str(base),
        "new_task": task,
        "old_heads": list(old),
        "old_heads_test_before": test_scores(base_nlp, old, args.max_test_docs, args.batch_size),
        "base_inference": speed(base_nlp, old, args.speed_sentences, args.repeats, args.batch_size),
        "base_size": size_mb(base),
        "runs": runs,
    }


def bio_base(args) -> Path:
    """``--bio-base``, or a pipeline of the bio heads other than ncbi_disease trained here with the
    benchmark's limits (``pipelines/bio.toml``'s settings otherwise)."""
    if args.bio_base is not None:
        return args.bio_base
    output = args.work / "bio_base"
    overrides = {"training.epochs": args.epochs, "output": str(output)}
    for key, value in (("max_train_docs", args.max_train_docs), ("max_dev_docs", args.max_dev_docs)):
        if value is not None:
            overrides[f"training.{key}"] = value
    if args.threads:
        overrides["training.threads"] = args.threads
    config = load_config(BIO, overrides, only_tasks=["bc2gm", "bc5cdr_chem", "bc5cdr_disease"])
    for task in config.tasks:  # scored by this script (test_scores), not a second time by train
        task.test = None
    train(config, BIO.parent, output, progress=not args.quiet)
    return output


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each addition (the issue's: 2)")
    parser.add_argument("--max-train-docs", type=int, help="training documents per task (default: all)")
    parser.add_argument("--max-dev-docs", type=int, default=500, help="dev documents per task and epoch")
    parser.add_argument("--max-test-docs", type=int, help="test documents per head (default: all)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated")
    parser.add_argument("--additions", default="species_on_conll04,bio_head", help="comma-separated")
    parser.add_argument("--skip-single-task", action="store_true", help="no single-task baseline")
    parser.add_argument("--bio-base", type=Path, help="pipeline with bc2gm, bc5cdr_chem, bc5cdr_disease")
    parser.add_argument("--speed-sentences", type=int, default=500, help="test sentences per head, for speed")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--work", type=Path, default=Path("runs/add_head"), help="where pipelines go")
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/add_head.json")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 epoch, tiny limits")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    args.strategies = [s for s in args.strategies.split(",") if s]
    unknown = sorted(set(args.strategies) - set(STRATEGIES))
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    args.additions = [a for a in args.additions.split(",") if a]
    if args.quick:  # a smoke test of the whole script, never a measurement
        args.epochs, args.max_train_docs, args.max_dev_docs, args.max_test_docs = 1, 16, 16, 16
        args.speed_sentences, args.repeats = 8, 1
        args.output = args.output or args.work / "add_head_quick.json"
    args.output = args.output or ROOT / "benchmarks" / "results" / "add_head.json"
    return args


def main() -> None:
    args = arguments()
    started = time.perf_counter()
    hf_logging.set_verbosity_error()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    builders = {
        "species_on_conll04": lambda: addition("species_on_conll04", DEFAULT_PIPELINE, LINNAEUS, args),
        "bio_head": lambda: addition("bio_head", bio_base(args), bio_tasks()["ncbi_disease"], args),
    }
    result = {
        **run_metadata(),
        "quick": args.quick,
        "settings": {
            key: getattr(args, key)
            for key in ("epochs", "max_train_docs", "max_dev_docs", "max_test_docs", "speed_sentences")
        },
        "training": TRAINING,
        "additions": {name: builders[name]() for name in args.additions},
        **process_usage(started),
    }
    write_result(result, args.output)


if __name__ == "__main__":
    main()
