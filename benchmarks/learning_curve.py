"""How many annotated documents it takes to beat the shipped model on its own labels.

Simulates the annotate → train loop: the CoNLL04 training documents, in a seeded order, are
"annotated" in chunks (the first 50, 100, 200, 400 of that order), each chunk saved as an
annotation project with its documents marked done, and trained with exactly what
``ner train --project`` does (its 80/20 split of the chunk: the annotator has no other dev set).
Each model, and the shipped one, is scored on the CoNLL04 test set under the raw-text protocol
(:mod:`ner.evaluation`: each document's text through ``nlp``, scored on character offsets).

The base is a fresh head on the shipped model's encoder with its recipe (continuing the shipped
model would start from a model that has seen every training document). Writes
``benchmarks/results/learning_curve.json`` (the Models page plots it) and
``docs/learning_curve.svg``.

    python benchmarks/learning_curve.py                 # the measurement (hours on CPU)
    python benchmarks/learning_curve.py --quick         # seconds: tiny random encoder, 1 epoch
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from common import DATA, run_metadata, write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ner.annotation import AnnotationStore, load_dataset  # noqa: E402
from ner.evaluation import evaluate_file  # noqa: E402
from ner.pipeline import DEFAULT_PIPELINE, load  # noqa: E402
from ner.project_training import HEAD, ProjectTraining, train_project  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "learning_curve.json"
FIGURE = ROOT / "docs" / "learning_curve.svg"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42, help="of the annotation order, the split, training")
    parser.add_argument("--base", default="multilingual-e5-small", help="encoder (or pipeline) to start from")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of each training")
    parser.add_argument("--max-test-docs", type=int, default=None, help="score on the first N test docs")
    parser.add_argument("--quick", action="store_true", help="tiny encoder, sizes 6 and 12, 1 epoch")
    parser.add_argument("--output", type=Path, default=None, help=f"result JSON (default {RESULT})")
    parser.add_argument("--figure", type=Path, default=None, help=f"SVG plot (default {FIGURE})")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    work = Path(tempfile.mkdtemp(prefix="learning-curve-"))
    if args.quick:
        args.sizes, args.epochs, args.max_test_docs = [6, 12], 1, args.max_test_docs or 20
        args.base = str(quick_encoder(work / "tiny-encoder"))
    output = args.output or (RESULT.with_name("learning_curve_quick.json") if args.quick else RESULT)
    figure = args.figure or (work / "learning_curve.svg" if args.quick else FIGURE)
    test = test_file(args.max_test_docs, work)
    order = annotation_order(args.seed)
    points = [train_point(order, size, args, work) for size in args.sizes]
    for point in points:
        point["test_raw"] = raw_scores(Path(point.pop("pipeline")), test)
    shipped = raw_scores(DEFAULT_PIPELINE, test)
    result = {
        "benchmark": "learning_curve",
        "protocol": "CoNLL04 test, raw text (ner.evaluation), micro F1 in percent",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "shipped": {"pipeline": str(DEFAULT_PIPELINE.relative_to(ROOT)), "test_raw": shipped},
        "points": points,
        "documents_to_beat_shipped": {
            kind: next((p["documents"] for p in points if p["test_raw"][kind] >= shipped[kind]), None)
            for kind in ("entities", "relations_with_types")
        },
        **run_metadata(),
    }
    write_result(result, output)
    figure.parent.mkdir(parents=True, exist_ok=True)
    figure.write_text(svg_plot(result), encoding="utf-8")
    print(f"plot: {figure}", file=sys.stderr)


def quick_encoder(folder: Path) -> Path:
    """A tiny random encoder saved as a model folder (with the offline MiniLM tokenizer)."""
    import torch

    from ner.encoder import DEFAULT_ENCODER, Encoder
    from ner.testing import TINY_BERT

    torch.manual_seed(0)
    encoder = Encoder.from_config(TINY_BERT, DEFAULT_ENCODER)
    encoder.transformer.save_pretrained(str(folder))
    encoder.tokenizer.save_pretrained(str(folder))
    return folder


def annotation_order(seed: int) -> list[int]:
    """The order the simulated annotator goes through the training documents in."""
    count = len(load_dataset(DATA / "conll04" / "train.json", "spert_json").docs)
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return order


def train_point(order: list[int], size: int, args: argparse.Namespace, work: Path) -> dict:
    """Annotate the first ``size`` documents of ``order`` (a project with them marked done) and
    train on it as ``ner train --project`` does."""
    project = load_dataset(DATA / "conll04" / "train.json", "spert_json", name=f"conll04-{size}")
    project.docs = [project.docs[i] for i in order[:size]]
    for doc in project.docs:
        doc.done = True
    path = work / f"conll04-{size}.annotations.json"
    AnnotationStore.create(path, project, overwrite=True)
    settings = ProjectTraining(base=args.base, epochs=args.epochs, seed=args.seed)
    overrides = {"training.threads": args.threads} if args.threads else {}
    started = time.perf_counter()
    result = train_project(path, settings, work / f"model-{size}", overrides)
    return {
        "documents": size,
        "train": len(result["project"]["train"]),
        "dev": len(result["project"]["dev"]),
        "best_epoch": result["best_epoch"],
        "continued": result["project"]["continued"],
        "train_wall_seconds": round(time.perf_counter() - started, 1),
        "pipeline": result["output"],
    }


def test_file(limit: int | None, work: Path) -> Path:
    """The CoNLL04 test file, or its first ``limit`` documents (with its types.json beside)."""
    source = DATA / "conll04"
    if limit is None:
        return source / "test.json"
    (work / "test").mkdir(exist_ok=True)
    documents = json.loads((source / "test.json").read_text(encoding="utf-8"))[:limit]
    (work / "test" / "test.json").write_text(json.dumps(documents), encoding="utf-8")
    (work / "test" / "types.json").write_text((source / "types.json").read_text(encoding="utf-8"))
    return work / "test" / "test.json"


def raw_scores(pipeline: Path, test: Path) -> dict[str, float]:
    """Entity and typed-relation micro F1 (percent) of ``pipeline`` on ``test``, raw text."""
    nlp = load(pipeline)
    scores = evaluate_file(nlp, test, HEAD, "spert_json", protocols=("raw",)).scores["raw"][HEAD]
    return {kind: round(scores[kind].micro.f1, 2) for kind in ("entities", "relations_with_types")}


def svg_plot(result: dict, width: int = 640, height: int = 400) -> str:
    """The learning curve as a self-contained SVG (no plotting library needed): F1 against
    annotated documents (log scale), with the shipped model's scores as dashed lines."""
    left, right, top, bottom = 60, 170, 30, 50
    sizes = [p["documents"] for p in result["points"]]
    low, high = min(sizes), max(sizes)
    span = max(high / low, 1.0001)

    def x(n: float) -> float:
        return left + (width - left - right) * (0.5 if high == low else math.log(n / low) / math.log(span))

    def y(f1: float) -> float:
        return height - bottom - (height - top - bottom) * f1 / 100

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="14">Learning curve: CoNLL04 test, raw text</text>',
    ]
    for f1 in range(0, 101, 20):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(f1)}" y2="{y(f1)}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{y(f1) + 4}" text-anchor="end">{f1}</text>')
    for n in sizes:
        parts.append(f'<text x="{x(n)}" y="{height - bottom + 18}" text-anchor="middle">{n}</text>')
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">'
        "annotated documents (log scale)</text>"
    )
    parts.append(
        f'<text transform="translate(16 {(top + height - bottom) / 2}) rotate(-90)" '
        'text-anchor="middle">micro F1 (%)</text>'
    )
    series = (("entities", "#1f77b4", "entities"), ("relations_with_types", "#d62728", "relations"))
    for row, (kind, colour, name) in enumerate(series):
        points = " ".join(f"{x(p['documents']):.1f},{y(p['test_raw'][kind]):.1f}" for p in result["points"])
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for p in result["points"]:
            cx, cy = x(p["documents"]), y(p["test_raw"][kind])
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{colour}"/>')
        shipped = y(result["shipped"]["test_raw"][kind])
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{shipped:.1f}" y2="{shipped:.1f}" '
            f'stroke="{colour}" stroke-dasharray="6 4"/>'
        )
        legend = top + 20 + 40 * row
        parts.append(f'<text x="{width - right + 12}" y="{legend}" fill="{colour}">{name}: trained</text>')
        parts.append(
            f'<text x="{width - right + 12}" y="{legend + 16}" fill="{colour}">- - shipped model</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    main()
