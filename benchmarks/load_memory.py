"""Memory of loading a pipeline: peak RSS during ``spacy.load`` and RSS right after it, per setting.

    python benchmarks/load_memory.py [--pipeline DIR] [--configs NAME ...] [--repeats 1] \\
        [--output benchmarks/results/load_memory.json]

Each configuration (:data:`CONFIGS`: the ``ner_extractor`` settings ``embedding_dtype`` and
``vocab_rows``, torch backend) loads the pipeline (default: the shipped ner/pretrained/conll04_spert) in a
fresh subprocess, so that its figures are its own: the peak (``resource.getrusage``'s ``ru_maxrss``,
which after a bare load is the load's peak), the resident memory right after loading (``VmRSS`` from
/proc/self/status), the same after ``import spacy, torch, transformers, ner`` alone (what any pipeline
costs before its weights), and the bytes of the tensors the model holds. Memory figures do not depend
on the machine's load, so this needs no quiet window; it records no times.

Why it exists: memory freed while loading stays with the process (glibc keeps it for reuse), so the
load's peak sets the RSS a server keeps; this shows what each setting costs and whether loading itself
wastes memory beyond what the model keeps (issue 14: default peak RSS <= 600 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "ner" / "pretrained" / "conll04_spert"
#: name -> the ner_extractor settings the pipeline is loaded with
CONFIGS: dict[str, dict[str, str]] = {
    "fp32_all_rows": {"embedding_dtype": "float32", "vocab_rows": "all"},
    "fp16_all_rows": {"embedding_dtype": "float16", "vocab_rows": "all"},
    "int8_all_rows": {"embedding_dtype": "int8", "vocab_rows": "all"},
    "fp16_pipeline_rows": {"embedding_dtype": "float16", "vocab_rows": "pipeline"},
    "int8_pipeline_rows": {"embedding_dtype": "int8", "vocab_rows": "pipeline"},
}


def current_rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports ``ru_maxrss`` in KiB), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_once(spec: dict) -> dict:
    """Import, load the pipeline with ``spec["settings"]``, report memory: what one subprocess prints."""
    import spacy
    import torch
    import transformers  # noqa: F401  (imported by loading anyway: counted in the import baseline)

    import ner.components  # noqa: F401
    from ner.pipeline import extractor_model

    rss_imports = current_rss_mb()
    nlp = spacy.load(spec["pipeline"], config={"components": {"ner_extractor": spec["settings"]}})
    rss_after_load = current_rss_mb()
    peak = peak_rss_mb()
    model = extractor_model(nlp)
    held = {id(t): t for t in [*model.parameters(), *model.buffers()] if t.device.type == "cpu"}
    return {
        "rss_after_imports_mb": round(rss_imports),
        "rss_after_load_mb": round(rss_after_load),
        "peak_rss_mb": round(peak),
        "model_tensors_mb": round(sum(t.numel() * t.element_size() for t in held.values()) / 2**20),
        "encoder_layers": len(model.encoder.layers),
        "torch_threads": torch.get_num_threads(),
    }


def spawn(spec: dict) -> dict:
    """:func:`run_once` in a fresh Python process; its JSON result."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, __file__, "--worker", json.dumps(spec)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{spec['config']} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(args: argparse.Namespace) -> dict:
    """Every configuration ``--repeats`` times (interleaved), each in its own process; the lowest of
    the repeats per figure (memory only grows with what else happened in a process)."""
    import common
    from common import describe_pipeline

    runs: dict[str, list[dict]] = {name: [] for name in args.configs}
    for _ in range(args.repeats):
        for name in args.configs:
            spec = {"config": name, "pipeline": str(args.pipeline), "settings": CONFIGS[name]}
            runs[name].append(spawn(spec))
            print(f"{name}: {runs[name][-1]}", file=sys.stderr)
    figures = ("rss_after_imports_mb", "rss_after_load_mb", "peak_rss_mb", "model_tensors_mb")
    results = {
        name: {
            "settings": CONFIGS[name],
            **{figure: min(run[figure] for run in done) for figure in figures},
            "encoder_layers": done[0]["encoder_layers"],
            "runs": done,
        }
        for name, done in runs.items()
    }
    pipeline = None if args.pipeline.resolve() == SHIPPED.resolve() else args.pipeline
    return {
        **common.run_metadata(),
        **describe_pipeline(pipeline),
        "repeats": args.repeats,
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--pipeline", type=Path, default=SHIPPED)
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "load_memory.json")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_once(json.loads(args.worker))))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import write_result

    write_result(measure(args), args.output)


if __name__ == "__main__":
    main()
