"""Batch-extraction benchmark: documents/s, words/s and peak memory per worker for ``ner extract``'s
engines, and the batch layer's overhead over a bare ``nlp.pipe`` loop on the same texts.

    python benchmarks/batch.py [--docs DIR] [--documents 2000] [--runs bare,local1,local2,ray2] \\
        [--repeats 1] [--pipeline DIR] [--output benchmarks/results/batch.json]

The result records the command, commit, machine and threads (``common.run_metadata``), which
pipeline and encoder were measured (the shipped default changes when it is retrained), and the
document folder by how it was generated, not by where it was written (a temporary path).

The folder comes from ``benchmarks/make_documents.py`` (deterministic; written if missing). Every
configuration runs in a fresh child process, so no model, cache or Ray instance carries over, and a
sampler in this process reads the resident memory of the child and of every process below it
(spawned workers, Ray's raylet and actors) from /proc every 0.2 s.

- ``bare``: the pipeline is loaded and warmed up on one sentence, the texts are read into memory
  (none of it timed), then
  ``for doc in nlp.pipe(texts, batch_size=B)`` is timed. This is what a user would write by hand.
- ``local1``: ``ner.batch.runner.run`` in the child process itself, with the pipeline loaded
  before the clock starts: it adds reading and decoding files, hashing, building records and
  appending them to the JSONL output (warmed up the same way). Its time over ``bare``'s is the
  batch layer's overhead.
- ``local2``: two spawned workers (one torch thread each); loading the pipeline in the workers is
  inside the timed run, as it is for a user.
- ``ray2``: Ray Data with two actors on a local Ray started by the run (start-up timed too).

With ``--repeats R`` each configuration runs R times, interleaved (bare, local1, ..., bare,
local1, ...), so that a slow phase of the machine does not fall on one configuration only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import describe_pipeline, run_metadata, write_result

RUNS = {
    "bare": {},
    "local1": {"workers": 1},
    "local2": {"workers": 2},
    "ray2": {"workers": 2, "engine": "ray"},
}


# ------------------------------------------------------------------ child side
def child(run: str, docs: Path, pipeline: str | None, batch_size: int, output: Path) -> dict:
    """Run one configuration in this process and return what it measured."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ner.batch.runner import _WORKER, RunOptions, _load_worker
    from ner.batch.runner import run as run_batch

    if run == "bare":
        return _bare(docs, pipeline, batch_size)
    options = RunOptions(pipeline=pipeline, batch_size=batch_size, **RUNS[run])
    if options.workers == 1 and options.engine == "local":
        _load_worker(pipeline, None)  # the model is loaded before the clock, as for ``bare``
        _warm_up(_WORKER["nlp"])
    summary = run_batch([docs], output, options, progress=False)
    fields = ("documents", "words", "seconds", "entities", "relations", "failures")
    return {name: getattr(summary, name) for name in fields}


def _bare(docs: Path, pipeline: str | None, batch_size: int) -> dict:
    from ner.batch.sources import SourceText, find_files, read_items
    from ner.pipeline import load

    nlp = load(pipeline)
    _warm_up(nlp)
    texts = [i.text for p in find_files([docs]) for i in read_items(p) if isinstance(i, SourceText)]
    started = time.perf_counter()
    entities = sum(len(doc.ents) for doc in nlp.pipe(texts, batch_size=batch_size))
    seconds = time.perf_counter() - started
    words = sum(len(t.split()) for t in texts)
    return {"documents": len(texts), "words": words, "seconds": seconds, "ents": entities}


def _warm_up(nlp) -> None:
    """One small call first, so one-off costs (allocator, lazy imports) fall outside the clock."""
    list(nlp.pipe(["John Smith works for Acme Corp in Boston."] * 4))


# ------------------------------------------------------------------ parent side
class MemorySampler(threading.Thread):
    """Peak resident memory of a process and all its descendants, per process, read from /proc."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peaks: dict[int, tuple[int, str]] = {}  # pid -> (peak RSS in kB, command line)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            for pid in self._tree():
                rss, command = _rss_kb(pid), _command(pid)
                if rss and rss > self.peaks.get(pid, (0, ""))[0]:
                    self.peaks[pid] = (rss, command or self.peaks.get(pid, (0, ""))[1])
            self.stopped.wait(self.interval)

    def _tree(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                parents.setdefault(parent, []).append(int(entry))
        tree, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += parents.get(pid, [])
        return tree

    def summary(self) -> dict:
        """Peak MB of the child itself, of each extraction worker, and of the other processes."""
        child = self.peaks.get(self.root, (0, ""))[0]
        workers = [kb for pid, (kb, cmd) in self.peaks.items() if pid != self.root and _is_worker(cmd)]
        others = [kb for pid, (kb, cmd) in self.peaks.items() if pid != self.root and not _is_worker(cmd)]
        return {
            "main_process_mb": round(child / 1024),
            "workers": len(workers),
            "peak_mb_per_worker": round(max(workers) / 1024) if workers else None,
            "other_processes_mb": round(sum(others) / 1024),
        }


def _is_worker(command: str) -> bool:
    return "spawn_main" in command or "RayExtractor" in command


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def measure(run: str, docs: Path, pipeline: str | None, batch_size: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, __file__, "--child", run, "--docs", str(docs), "--batch-size",
                   str(batch_size), "--child-output", str(Path(tmp) / "out.jsonl")]  # fmt: skip
        if pipeline:
            command += ["--pipeline", pipeline]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        sampler = MemorySampler(process.pid)
        sampler.start()
        out, _ = process.communicate()
        sampler.stopped.set()
        sampler.join()
        if process.returncode:
            raise SystemExit(f"{run} failed with exit code {process.returncode}")
        result = json.loads(out.strip().splitlines()[-1])
    result.update(command_seconds=round(time.perf_counter() - started, 1), **sampler.summary())
    result["docs_per_s"] = round(result["documents"] / result["seconds"], 1)
    result["words_per_s"] = round(result["words"] / result["seconds"])
    result["seconds"] = round(result["seconds"], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=Path, default=Path(tempfile.gettempdir()) / "ner_batch_docs")
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--runs", default="bare,local1,local2,ray2")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pipeline")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--child", choices=list(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--child-output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.docs, args.pipeline, args.batch_size, args.child_output)))
        return

    from make_documents import write_documents

    if not args.docs.exists():
        write_documents(args.docs, args.documents)
    runs = args.runs.split(",")
    measured: dict[str, list[dict]] = {run: [] for run in runs}
    for repeat in range(args.repeats):
        for run in runs:
            measured[run].append(measure(run, args.docs, args.pipeline, args.batch_size))
            print(f"[{repeat + 1}/{args.repeats}] {run}: {json.dumps(measured[run][-1])}", flush=True)
    results = {
        **run_metadata(),
        **describe_pipeline(args.pipeline),
        "folder": f"benchmarks/make_documents.py, {args.documents} documents, seed 0",
        "batch_size": args.batch_size,
        "runs": measured,
    }
    if "bare" in measured and "local1" in measured:
        ratios = [a["seconds"] / b["seconds"] for a, b in zip(measured["local1"], measured["bare"])]
        results["batch_layer_overhead"] = {
            "local1_over_bare_each_repeat": [round(r, 3) for r in ratios],
            "median_percent": round(100 * (statistics.median(ratios) - 1), 1),
        }
        print(f"batch-layer overhead (local1 / bare - 1): {results['batch_layer_overhead']}")
    write_result(results, args.output)


if __name__ == "__main__":
    main()
