"""Zero-shot multilingual NER, each language held out in turn, against the shipped pipeline.

    python benchmarks/holdout.py --pipelines "runs/multilingual_holdout_{lang}_compact" \\
        [--languages de es nl] [--threads 2] [--output benchmarks/results/multilingual_holdout.json]

Each hold-out pipeline is the shipped recipe (pipelines/multilingual_ner.toml) trained without one
language (``benchmarks/configs/multilingual_holdout_LANG.toml``) and compacted as the shipped one is
(int8, ``--ents-head conll``). It is scored on that language's test sets under both protocols, as
benchmarks/shipped.py scores the shipped pipeline, which had the language in training; the shipped
figures come from ``benchmarks/results/shipped_multilingual.json``. So each row says what a language's
own labels are worth, and how far zero-shot transfer gets without them. The reference is mBERT
trained on English alone (Lingua Franca NER's comparison; its German figure is CoNLL-2003 German, a
corpus we do not have).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import process_usage, run_metadata, start_run, write_result
from shipped import SETS, score_set, training_record

from ner.pipeline import load

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "benchmarks" / "results" / "shipped_multilingual.json"
RESULT = ROOT / "benchmarks" / "results" / "multilingual_holdout.json"
#: language -> the shipped benchmark's sets in that language
HELD_OUT = {
    "de": ("wikiann_de", "wikiann_de_by_conll_head"),
    "es": ("conll2002_es",),
    "nl": ("conll2002_nl", "wikiann_nl"),
}
#: mBERT fine-tuned on English CoNLL-2003 alone, zero-shot (arXiv 1912.01389's baseline)
MBERT_ENGLISH_ONLY = {"de": 69.56, "es": 74.96, "nl": 77.57}
PROTOCOLS = ("raw", "tokens")


def micro_f1(scores: dict) -> dict:
    """A set's entity micro-F1 under both protocols."""
    return {p: scores[p]["entities"]["micro"]["f1"] for p in PROTOCOLS}


def held_out(lang: str, path: Path, max_docs: int | None) -> dict:
    """One hold-out pipeline's scores on its language's sets."""
    nlp = load(path)
    sets = {
        name: {
            **score_set(nlp, SETS["multilingual"][name], max_docs),
            "role": "zero-shot: held out of training",
        }
        for name in HELD_OUT[lang]
    }
    return {"pipeline": str(path), "training": training_record(path), "sets": sets}


def beside_shipped(row: dict, shipped: dict) -> dict:
    """A hold-out row's sets with the shipped pipeline's figures (the language in training) beside."""
    sets = {}
    for name, zero_shot in row["sets"].items():
        trained = micro_f1(shipped["sets"][name])
        sets[name] = {
            "zero_shot": zero_shot,
            "in_training": trained,
            "zero_shot_minus_in_training": {
                p: round(micro_f1(zero_shot)[p] - trained[p], 2) for p in PROTOCOLS
            },
        }
    return {**row, "sets": sets}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pipelines",
        default="runs/multilingual_holdout_{lang}_compact",
        help="pattern of the hold-out pipelines' directories",
    )
    parser.add_argument("--languages", nargs="+", default=list(HELD_OUT), choices=sorted(HELD_OUT))
    parser.add_argument("--max-docs", type=int, help="only the first N documents of each set (a quick check)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    started = start_run(args.threads)
    scores = {
        lang: held_out(lang, Path(args.pipelines.format(lang=lang)), args.max_docs) for lang in args.languages
    }
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    languages = {lang: beside_shipped(row, shipped) for lang, row in scores.items()}
    result = {
        **run_metadata(),
        "shipped": {"pipeline": shipped["pipeline"], "git_commit": shipped["git_commit"]},
        "mbert_english_only": MBERT_ENGLISH_ONLY,
        "languages": languages,
    }
    write_result({**result, **process_usage(started)}, args.output)
    for lang, row in languages.items():
        for name, figures in row["sets"].items():
            print(lang, name, micro_f1(figures["zero_shot"]), figures["in_training"])


if __name__ == "__main__":
    main()
