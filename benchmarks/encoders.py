"""Encoder speed, one against another, on the same sentences in one process.

    python benchmarks/encoders.py [--encoders all-MiniLM-L6-v2,multilingual-e5-small] [--repeats 3] \\
        [--output benchmarks/results/encoders.json]

Every head sits on the encoder's output, and the encoder dominates inference time, so the bare
forward pass answers "how much slower would every pipeline be on this encoder?" before anything is
trained on it. Sentences: CoNLL04 test (English news, raw words), length-batched as
``ExtractionModel.predict`` batches them and tokenised before the clock (as in
``benchmarks/conll04.py``); the encoders run interleaved, best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from common import DATA, encoder_pass_seconds, process_usage, run_metadata, write_result  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from ner.corpora import read_spert_json  # noqa: E402
from ner.encoder import Encoder  # noqa: E402
from ner.schedule import length_batches  # noqa: E402


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
    started = time.perf_counter()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)

    docs = read_spert_json(DATA / "conll04" / "test.json")
    groups = length_batches([len(d.words) for d in docs], args.batch_size, 8192)
    words = sum(len(d.words) for d in docs)
    encoders = {name: Encoder.from_pretrained(name).eval() for name in args.encoders.split(",")}
    prepared = {
        name: [encoder.tokenize([docs[i].words for i in group]) for group in groups]
        for name, encoder in encoders.items()
    }
    for name, encoder in encoders.items():
        encoder_pass_seconds(encoder, prepared[name][:2])  # warm-up
    best = dict.fromkeys(encoders, float("inf"))
    for _ in range(args.repeats):
        for name, encoder in encoders.items():
            best[name] = min(best[name], encoder_pass_seconds(encoder, prepared[name]))
    first = next(iter(encoders))
    result = {
        **run_metadata(),
        "data": f"conll04/test.json ({len(docs)} sentences, {words} words)",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.threads} threads",
        "encoders": {
            name: {
                "parameters": sum(p.numel() for p in encoder.parameters()),
                "seconds": round(best[name], 2),
                "words_per_s": round(words / best[name]),
                "pieces": sum(batch.num_pieces for batch in prepared[name]),
                "speed_vs_" + first: round(best[first] / best[name], 3),
            }
            for name, encoder in encoders.items()
        },
    }
    write_result({**result, **process_usage(started)}, args.output)


if __name__ == "__main__":
    main()
