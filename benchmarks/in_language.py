"""The shipped multilingual pipeline against in-language models: is pooling languages a loss?

    python benchmarks/in_language.py --runs runs/conll_{lang} [--languages en es nl] \\
        [--output benchmarks/results/multilingual_in_language.json]

Each in-language run is ``ner train benchmarks/configs/conll_LANG.toml``: the shipped recipe's
``conll`` head (pipelines/multilingual_ner.toml: e5, 6 layers, one epoch, the ``xx`` tokenizer) on
one language's CoNLL training set alone, scored by ``ner train`` on that language's test set under
both protocols (its ``metrics.json``). The pooled figures are the shipped pipeline's, from
``benchmarks/results/shipped_multilingual.json`` (benchmarks/shipped.py). One epoch of one language
is fewer steps than the pooled epoch over all of them: the training seconds say how many fewer. A run
with more epochs (``--set training.epochs=6``) matches the pooled run's training time; the best epoch
on the language's dev set is the one scored, and each epoch's dev F1 is recorded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import run_metadata, write_result

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "benchmarks" / "results" / "shipped_multilingual.json"
RESULT = ROOT / "benchmarks" / "results" / "multilingual_in_language.json"
#: language -> the shipped benchmark's name for its CoNLL test set
SETS = {"en": "conll2003_en", "es": "conll2002_es", "nl": "conll2002_nl"}
PROTOCOLS = {"raw": "test_raw_text", "tokens": "test"}


def in_language(run: Path) -> dict:
    """One in-language run's test F1 under both protocols, and its training time."""
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    scores = {p: round(metrics[key]["conll"]["entities"]["micro"]["f1"], 2) for p, key in PROTOCOLS.items()}
    return {
        "run": str(run),
        "command": metrics["run"]["command"],
        "git_commit": metrics["run"]["git_commit"],
        "f1": scores,
        "train_seconds": round(sum(epoch["train_seconds"] for epoch in metrics["epochs"]), 1),
        "epochs": len(metrics["epochs"]),
        "best_epoch": metrics["best_epoch"],
        "dev_f1_by_epoch": [round(epoch["dev_selection"][0], 2) for epoch in metrics["epochs"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", default="runs/conll_{lang}", help="pattern of the in-language runs")
    parser.add_argument("--languages", nargs="+", default=list(SETS), choices=sorted(SETS))
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    pooled_seconds = shipped["training"]["train_seconds"]
    languages = {}
    for lang in args.languages:
        alone = in_language(Path(args.runs.format(lang=lang)))
        pooled = {p: round(shipped["sets"][SETS[lang]][p]["entities"]["micro"]["f1"], 2) for p in PROTOCOLS}
        languages[lang] = {
            "test_set": SETS[lang],
            "in_language": alone,
            "pooled": pooled,
            "pooled_minus_in_language": {p: round(pooled[p] - alone["f1"][p], 2) for p in PROTOCOLS},
        }
    result = {**run_metadata(), "pooled_train_seconds": pooled_seconds, "languages": languages}
    write_result(result, args.output)
    for lang, row in languages.items():
        print(lang, row["in_language"]["f1"], row["pooled"], row["pooled_minus_in_language"])


if __name__ == "__main__":
    main()
