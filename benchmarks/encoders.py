"""Encoder speed, one against another, on the same sentences in one process.

    python benchmarks/encoders.py [--encoders all-MiniLM-L6-v2,multilingual-e5-small] [--repeats 3] \\
        [--output benchmarks/results/encoders.json]

Every head sits on the encoder's output, and the encoder dominates inference time, so the bare
forward pass answers "how much slower would every pipeline be on this encoder?" before anything is
trained on it. Sentences: CoNLL04 test (English news, raw words), length-batched as
``ExtractionModel.predict`` batches them; the encoders run interleaved, best of ``--repeats``.
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
from transformers.utils import logging as hf_logging  # noqa: E402

from ner.corpora import read_spert_json  # noqa: E402
from ner.encoder import Encoder  # noqa: E402
from ner.model import length_batches  # noqa: E402

DATA = Path(os.environ.get("NER_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def forward_seconds(encoder: Encoder, batches: list[list[list[str]]]) -> tuple[float, int]:
    """Seconds for one pass over ``batches`` (tokenisation included) and the word pieces seen."""
    started, pieces = time.perf_counter(), 0
    with torch.inference_mode():
        for words in batches:
            batch = encoder.tokenize(words)
            pieces += batch.num_pieces
            encoder(batch)
    return time.perf_counter() - started, pieces


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--encoders", default="all-MiniLM-L6-v2,multilingual-e5-small")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)

    docs = read_spert_json(DATA / "conll04" / "test.json")
    groups = length_batches([len(d.words) for d in docs], args.batch_size, 8192)
    batches = [[docs[i].words for i in group] for group in groups]
    words = sum(len(d.words) for d in docs)
    encoders = {name: Encoder.from_pretrained(name).eval() for name in args.encoders.split(",")}
    for encoder in encoders.values():
        forward_seconds(encoder, batches[:2])  # warm-up
    best = {name: (float("inf"), 0) for name in encoders}
    for _ in range(args.repeats):
        for name, encoder in encoders.items():
            seconds, pieces = forward_seconds(encoder, batches)
            best[name] = min(best[name], (seconds, pieces))
    first = next(iter(encoders))
    result = {
        "data": f"conll04/test.json ({len(docs)} sentences, {words} words)",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.threads} threads",
        "encoders": {
            name: {
                "parameters": sum(p.numel() for p in encoder.parameters()),
                "seconds": round(best[name][0], 2),
                "words_per_s": round(words / best[name][0]),
                "pieces": best[name][1],
                "speed_vs_" + first: round(best[first][0] / best[name][0], 3),
            }
            for name, encoder in encoders.items()
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
