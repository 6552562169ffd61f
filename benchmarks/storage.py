"""What each way of storing a fine-tuned pipeline costs in size and in CoNLL04 test F1.

    python benchmarks/storage.py runs/conll04 [--output results.json]

Compares, on the same trained fp32 pipeline: full fp32 weights; every weight rounded to fp16;
the ``delta`` storage in fp16, fp32 and int8 (only what differs from the installed base encoder).
Given a pipeline saved as a delta, the first row is that pipeline as loaded (its differences
rounded once already), not fp32.
Sizes are of the files actually written (fp16-everything is computed from the tensor sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from common import DATA, describe_pipeline, process_usage, run_metadata, write_result  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from ner.corpora import read_spert_json, read_spert_types  # noqa: E402
from ner.evaluation import evaluate_model  # noqa: E402
from ner.pipeline import build_pipeline, extractor_model, load  # noqa: E402


def directory_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 1)


def f1s(model, docs) -> dict:
    return {name: round(s.micro.f1, 2) for name, s in evaluate_model(model, docs).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(2)
    schema = read_spert_types(DATA / "conll04" / "types.json")
    docs = read_spert_json(DATA / "conll04" / "test.json", schema)
    trained = load(args.pipeline)
    model = extractor_model(trained)
    weights = json.loads((args.pipeline / "ner_extractor" / "model.json").read_text())["weights"]
    given = "fp32 full" if weights["storage"] == "full" else f"as given (delta {weights['dtype']})"
    results = {given: {"mb": directory_mb(args.pipeline), "f1": f1s(model, docs)}}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float16", "float32", "int8"):
            out = Path(tmp) / dtype
            build_pipeline(model, storage="delta", dtype=dtype).to_disk(out)
            results[f"delta {dtype}"] = {"mb": directory_mb(out), "f1": f1s(extractor_model(load(out)), docs)}
    params = sum(t.numel() for t in model.state_dict().values() if t.is_floating_point())
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    results["fp16 full (every weight rounded)"] = {"mb": round(params * 2 / 1e6, 1), "f1": f1s(model, docs)}
    # the rows stay top-level keys, as in the results recorded before the metadata was added
    write_result(
        {**run_metadata(), **describe_pipeline(args.pipeline), **results, **process_usage(started)},
        args.output,
    )


if __name__ == "__main__":
    main()
