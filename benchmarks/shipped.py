"""Accuracy of a shipped pipeline on every test set of its mode, raw text first, in one run.

    python benchmarks/shipped.py NAME [--max-docs N] [--threads 2] \\
        [--output benchmarks/results/shipped_NAME.json]

NAME is a shipped pipeline's short name (``bio``, ``multilingual``, ``news``, ``conll04``) or, with
``--sets NAME``, any pipeline directory scored on that mode's sets (``--sets all``: every mode's, for
a pipeline with every head, with the other modes' labels its ``doc.ents`` shows counted). Each set
is scored under both protocols of ``ner evaluate`` (ner/evaluation.py): raw text (the document's text through
``nlp.pipe``, scored on character offsets: what users get) and the corpus's tokens (the papers'
protocol). Speed is measured elsewhere, all pipelines in one quiet run (benchmarks/pipeline_speed.py).

The sets are the official test splits in ``$NER_DATA_DIR`` (or ``../shared/data``). WikiANN has
no MISC: a head that predicts MISC is scored there with MISC left out of gold and predictions
(the explicit label mapping, as ``ner evaluate --ignore-label MISC`` does).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import DATA, process_usage, run_metadata, start_run, write_result  # noqa: E402

from ner.evaluation import evaluate_pipeline, read_gold_file  # noqa: E402
from ner.pipeline import extractor_model, load, resolve  # noqa: E402

_BIO = ("bc2gm", "bc5cdr_chem", "bc5cdr_disease", "ncbi_disease")
#: per mode: set name -> (test file, head, reader format, labels left out, what the set is)
SETS: dict[str, dict[str, tuple[str, str, str, tuple[str, ...], str]]] = {
    "conll04": {"conll04": ("conll04/test.json", "spert", "spert_json", (), "in-domain")},
    "news": {
        "conll04": ("conll04/test.json", "spert", "spert_json", (), "in-domain (rehearsed)"),
        "conll2003_en": ("conll2003_en/test.txt", "conll2003", "conll2003", (), "in-domain"),
    },
    "bio": {task: (f"{task}/test.tsv", task, "biobert_tsv", (), "in-domain") for task in _BIO},
    "multilingual": {
        "conll2003_en": ("conll2003_en/test.txt", "conll", "conll2003", (), "trained language"),
        "conll2002_es": ("conll2002_es/test.txt", "conll", "conll2002", (), "trained language"),
        "conll2002_nl": ("conll2002_nl/test.txt", "conll", "conll2002", (), "trained language"),
        "wikiann_en": ("wikiann_en/test.tsv", "wikiann", "wikiann", (), "trained language"),
        "wikiann_nl": ("wikiann_nl/test.tsv", "wikiann", "wikiann", (), "trained language"),
        "wikiann_de": ("wikiann_de/test.tsv", "wikiann", "wikiann", (), "trained language"),
        "wikiann_de_by_conll_head": (
            "wikiann_de/test.tsv",
            "conll",
            "wikiann",
            ("MISC",),
            "German labels trained the other head only",
        ),
    },
}
#: the one pipeline with every head: each mode's sets, scored with the head that serves them there
#: (its PER/ORG/LOC/MISC head is the news pipeline's "conll2003", continued on es/nl)
SETS["all"] = {
    **SETS["news"],
    **SETS["bio"],
    **{
        name: (file, "conll2003" if head == "conll" else head, *rest)
        for name, (file, head, *rest) in SETS["multilingual"].items()
    },
}

_NEWS_LABELS, _BIO_LABELS = ("PER", "ORG", "LOC", "MISC"), ("Gene", "Chemical", "Disease")
#: per mode with several modes' heads: set -> the other modes' labels counted in its doc.ents
FOREIGN = {"all": {"conll2003_en": _BIO_LABELS, "ncbi_disease": _NEWS_LABELS, "bc5cdr_chem": _NEWS_LABELS}}


def rounded(scores: dict) -> dict:
    """Micro P/R/F1 and per-type F1 of each evaluation (already in points), with 2 decimals."""
    result = {}
    for evaluation, value in scores.items():
        if evaluation == "gold_alignment":
            result[evaluation] = value
            continue
        micro = {k: round(v, 2) for k, v in value["micro"].items() if k in ("precision", "recall", "f1")}
        per_type = {t: round(s["f1"], 2) for t, s in value.get("per_type", {}).items()}
        result[evaluation] = {"micro": micro, "per_type_f1": per_type}
    return result


def score_set(nlp, spec: tuple, max_docs: int | None) -> dict:
    """Both protocols of one head on one test set."""
    relative, head, format, ignored, role = spec
    docs = read_gold_file(nlp, DATA / relative, head, format, ignore_labels=ignored)[:max_docs]
    evaluation = evaluate_pipeline(nlp, docs, head, ignore_labels=ignored).as_dict()
    return {
        "file": relative,
        "documents": len(docs),
        "head": head,
        "role": role,
        "ignored_labels": list(ignored),
        **{protocol: rounded(evaluation[protocol][head]) for protocol in ("raw", "tokens")},
    }


def foreign_ents(nlp, spec: tuple, labels: tuple[str, ...], max_docs: int | None) -> dict:
    """What a user of one mode sees from the other modes' heads in ``doc.ents``: on the set's raw
    texts, the entities with one of those heads' ``labels``, by label, and per 1,000 words.

    Why: a pipeline with every head feeds ``doc.ents`` from several of them, and a per-head F1 says
    nothing about a bio head tagging news (or a news head tagging abstracts)."""
    relative, head, format, ignored, _ = spec
    docs = read_gold_file(nlp, DATA / relative, head, format, ignore_labels=ignored)[:max_docs]
    counts: dict[str, int] = {}
    for doc in nlp.pipe([d.text for d in docs], batch_size=64):
        for ent in doc.ents:
            if ent.label_ in labels:
                counts[ent.label_] = counts.get(ent.label_, 0) + 1
    words = sum(len(d.text.split()) for d in docs)
    return {
        "file": relative,
        "words": words,
        "foreign_ents": dict(sorted(counts.items())),
        "per_1000_words": round(1000 * sum(counts.values()) / max(words, 1), 2),
    }


def training_record(path: Path) -> dict | None:
    """Epochs, best epoch and time of the run the pipeline comes from, from its metrics.json."""
    metrics = path / "metrics.json"
    if not metrics.is_file():
        return None
    record = json.loads(metrics.read_text(encoding="utf-8"))
    return {
        "epochs": len(record["epochs"]),
        "best_epoch": record["best_epoch"],
        "train_seconds": round(sum(e["train_seconds"] for e in record["epochs"]), 1),
        "wall_seconds": record.get("wall_seconds"),
        "run": record.get("run"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pipeline", help="shipped name or pipeline directory")
    parser.add_argument("--sets", choices=sorted(SETS), help="whose test sets (default: the pipeline's name)")
    parser.add_argument("--max-docs", type=int, help="only the first N documents of each set (a quick check)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    started = start_run(args.threads)
    mode = args.sets or args.pipeline
    if mode not in SETS:
        parser.error(f"which sets? --sets one of {sorted(SETS)}")
    path = resolve(args.pipeline)
    nlp = load(path)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    result = {
        **run_metadata(),
        "pipeline": args.pipeline,
        "pipeline_mb": round(size / 1e6, 1),
        "encoder": extractor_model(nlp).encoder_name,
        "heads": list(extractor_model(nlp).heads),
        "ents_heads": nlp.get_pipe("ner_extractor").ents_heads,
        "training": training_record(path),
        "sets": {name: score_set(nlp, spec, args.max_docs) for name, spec in SETS[mode].items()},
    }
    if mode in FOREIGN:
        result["foreign_ents"] = {
            name: foreign_ents(nlp, SETS[mode][name], labels, args.max_docs)
            for name, labels in FOREIGN[mode].items()
        }
    write_result({**result, **process_usage(started)}, args.output)


if __name__ == "__main__":
    main()
