"""What the benchmark scripts share: where the corpora are, timing an encoder pass, writing results.

The scripts are run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path`` and they
import this module as ``common``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

_ROOT = Path(__file__).resolve().parents[1]
#: the corpora folder: ``$NER_DATA_DIR``, else ``../shared/data`` beside the checkout
DATA = Path(os.environ.get("NER_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def encoder_pass_seconds(encoder, batches: list) -> float:
    """Seconds for one forward pass of ``encoder`` over already tokenised ``batches`` (no heads)."""
    started = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            encoder(batch)
    return time.perf_counter() - started


def run_metadata() -> dict:
    """What a result must say about how it was made: the command, the commit (and whether the
    tree had uncommitted changes to tracked files), the machine and its load, torch's threads."""
    return {
        "command": " ".join(["python", *sys.argv]),
        "git_commit": _git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1min": round(os.getloadavg()[0], 2),
        },
        "torch_threads": torch.get_num_threads(),
    }


def start_run(threads: int) -> float:
    """What every measuring script does first: torch on ``threads`` threads, transformers' loading
    chatter off; returns the start time that :func:`process_usage` takes."""
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(threads)
    hf_logging.set_verbosity_error()
    return time.perf_counter()


def process_usage(started: float) -> dict:
    """This process's own wall time since ``started`` (a ``time.perf_counter()``) and its peak
    resident memory, so a result never depends on a ``/usr/bin/time`` log kept elsewhere."""
    return {
        "wall_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def describe_pipeline(path: str | Path | None) -> dict:
    """Which pipeline a result is about, read from its files without loading it: its directory
    (``None``: the shipped default, whose encoder changes when it is retrained) and its encoder."""
    from ner.pipeline import DEFAULT_PIPELINE

    directory = Path(path) if path else DEFAULT_PIPELINE
    encoder = json.loads((directory / "ner_extractor" / "model.json").read_text())["encoder"]
    return {
        "pipeline": str(path) if path else f"shipped default ({DEFAULT_PIPELINE.relative_to(_ROOT)})",
        "encoder": encoder["name"],
        "encoder_layers": encoder["config"].get("num_hidden_layers"),
    }


def _git(*arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=_ROOT, capture_output=True, text=True).stdout.strip()


def write_result(result: dict, output: Path | None) -> None:
    """Print ``result`` as JSON and, with ``output``, write it there (folders created)."""
    text = json.dumps(result, indent=2)
    print(text)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf-8")
