"""Long text with no sentence boundary: time and peak memory of ``nlp(text)`` with the shipped pipeline.

    python benchmarks/long_text.py [--sizes 20000,200000] [--punctuated 20000] [--pipeline DIR] \\
        [--threads 2] [--max-segment-words N] [--output benchmarks/results/long_text.json]

Such a text is one segment for the extractor. Before issue 12, SpERT enumerated the spans and
pairs of the whole segment: 20,000 words took about two minutes and 12 GB. The extractor now cuts
a segment longer than ``max_segment_words`` into overlapping windows (ner/segments.py). This
script measures that bound.

The words are real: every CoNLL04 sentence (train, dev, test; ``$NER_DATA_DIR`` or
``../shared/data``) in order, with the punctuation removed. Tokens made only of punctuation are
dropped, and punctuation inside a token is deleted (``U.S.`` becomes ``US``). The words repeat
until the size is reached. Without the corpus, the words of ``data/examples`` are used, and the
JSON says which. Every text is one line, with no full stop, comma or line break. The baseline
(``--punctuated``) has the same words with a full stop after every 20th, so the sentencizer cuts it
into 20-word sentences.

Every text runs in a fresh child process. The child loads the pipeline with ``ner.pipeline.load``
(torch set to ``--threads`` threads) and warms it up on one sentence. Loading the shipped pipeline
peaks at about 1.7 GB (the int8 delta is applied to the base encoder), which would hide what the
text costs. So the child records that loading peak (``peak_rss_loading_mb``), then resets the
kernel's peak counter (``/proc/self/clear_refs``) and times one ``nlp(text)``. The parent reads
the child's ``ru_maxrss`` from ``os.wait4`` (``peak_rss_mb``). That is the peak while the text was
extracted, the loaded model included. If the reset is refused (``peak_reset: false``), the figure
also covers loading.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import string
import subprocess
import sys
import time
from pathlib import Path

from common import DATA, run_metadata, write_result

ROOT = Path(__file__).resolve().parents[1]
PUNCTUATION = set(string.punctuation) | set("“”‘’–—…")


# ------------------------------------------------------------------ the text
def corpus_words() -> tuple[list[str], str]:
    """Punctuation-free words of every CoNLL04 sentence, and where they came from."""
    files = [DATA / "conll04" / f"{split}.json" for split in ("train", "dev", "test")]
    if all(f.is_file() for f in files):
        tokens = [
            t for f in files for sentence in json.loads(f.read_text("utf-8")) for t in sentence["tokens"]
        ]
        source = f"CoNLL04 train+dev+test tokens ({DATA / 'conll04'}), punctuation removed"
    else:
        texts = sorted((ROOT / "data" / "examples").glob("*.txt"))
        tokens = [t for f in texts for t in f.read_text("utf-8").split()]
        source = "data/examples/*.txt words, punctuation removed (the corpus folder was not found)"
    words = ["".join(c for c in token if c not in PUNCTUATION) for token in tokens]
    return [w for w in words if w], source


def make_text(size: int, sentence_words: int | None) -> str:
    """``size`` corpus words on one line; a full stop after every ``sentence_words``-th when given."""
    words = list(itertools.islice(itertools.cycle(corpus_words()[0]), size))
    if sentence_words:
        words = [w + "." if (i + 1) % sentence_words == 0 else w for i, w in enumerate(words)]
    return " ".join(words)


# ------------------------------------------------------------------ child side
def child(
    size: int, sentence_words: int | None, pipeline: str | None, threads: int, bound: int | None
) -> dict:
    """Load the pipeline, time one ``nlp(text)``, and return what it found."""
    import resource

    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(threads)
    from ner.pipeline import load

    nlp = load(pipeline)
    component = nlp.get_pipe("ner_extractor")
    if bound:
        component.max_segment_words = bound
    nlp("John Smith works for Acme Corp in Boston.")  # one-off costs outside the clock
    text = make_text(size, sentence_words)
    loading_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before_kb = _status_kb("VmRSS")
    reset = _reset_peak()
    started = time.perf_counter()
    doc = nlp(text)
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 1),
        "characters": len(text),
        "tokens": len(doc),
        "sentences": sum(1 for _ in doc.sents),
        "entities": len(doc.ents),
        "spans": len(doc.spans["spert"]) if "spert" in doc.spans else None,
        "relations": len(doc._.relation_data or []),
        "peak_rss_loading_mb": round(loading_kb / 1024),
        "rss_before_text_mb": round(before_kb / 1024),
        "peak_reset": reset,
        "max_segment_words": component.max_segment_words,
        "segment_overlap_words": component.segment_overlap_words,
        "max_length": nlp.max_length,
        "torch_threads": torch.get_num_threads(),
    }


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset this process's peak resident memory (Linux >= 4.0), so ``ru_maxrss`` starts afresh."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# ------------------------------------------------------------------ parent side
def measure(size: int, sentence_words: int | None, args: argparse.Namespace) -> dict:
    """One text in a fresh child process; its peak RSS comes from ``os.wait4``."""
    command = [sys.executable, __file__, "--child", str(size), "--threads", str(args.threads)]
    if sentence_words:
        command += ["--child-sentence-words", str(sentence_words)]
    if args.pipeline:
        command += ["--pipeline", args.pipeline]
    if args.max_segment_words:
        command += ["--max-segment-words", str(args.max_segment_words)]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{size} words failed with exit code {os.waitstatus_to_exitcode(status)}")
    result = {"words": size, "text": "punctuated" if sentence_words else "unpunctuated"}
    result.update(json.loads(out.strip().splitlines()[-1]))
    result.update(
        peak_rss_mb=round(usage.ru_maxrss / 1024),
        words_per_s=round(size / result["seconds"]),
        command_seconds=round(time.perf_counter() - started, 1),
        load_average_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)],
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="20000,200000", help="unpunctuated texts, in words")
    parser.add_argument("--punctuated", type=int, default=20000, help="words of the baseline (0: none)")
    parser.add_argument("--sentence-words", type=int, default=20, help="words per sentence of the baseline")
    parser.add_argument("--pipeline", help="a pipeline directory (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-segment-words", type=int, help="override the pipeline's bound")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-sentence-words", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(
            args.child, args.child_sentence_words, args.pipeline, args.threads, args.max_segment_words
        )
        print(json.dumps(result))
        return
    runs = [(int(size), None) for size in args.sizes.split(",") if size]
    if args.punctuated:
        runs.append((args.punctuated, args.sentence_words))
    measured = []
    for size, sentence_words in runs:
        measured.append(measure(size, sentence_words, args))
        print(json.dumps(measured[-1]), flush=True)
    results = {
        **run_metadata(),
        "pipeline": args.pipeline or "shipped default (ner/pretrained/conll04_spert)",
        "words_source": corpus_words()[1],
        "runs": measured,
    }
    write_result(results, args.output)


if __name__ == "__main__":
    main()
