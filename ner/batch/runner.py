"""Running a pipeline over folders of documents: in-process, N spawned workers, or Ray actors.

The run is a stream: files are read lazily, documents already in the output (same source,
position and content hash) are skipped, the rest go to the pipeline in chunks, and every record
is appended to the output as soon as its chunk is done, in input order. Killing the run loses at
most the chunks in flight; starting it again with the same arguments resumes where it stopped.
Workers are spawned processes (never forked: torch and tokenizers threads do not survive a
fork), each loading the pipeline once and using its share of the CPU cores.

No document can stop the run or take others with it: a chunk the pipeline fails on is retried
one document at a time, and a document that still fails is listed in the errors file with the
exception, like an unreadable file. Only the output itself failing (disk full, permissions), or
the pipeline (it does not load, here or in a worker, or a worker process dies) stops the run, with
the reason, because then nothing more could be recorded or extracted; what was written is kept.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from ner.batch.budget import DEFAULT_READ_SECONDS
from ner.batch.output import JsonlLog, record_key
from ner.batch.ray_engine import ray_extracted
from ner.batch.sources import (
    DEFAULT_MAX_BYTES,
    Skipped,
    SourceText,
    count_items,
    find_files,
    printable,
    read_items,
    source_name,
)
from ner.batch.worker import (
    WORKER,
    LoadFailed,
    describe,
    extract_chunk,
    extract_in_worker,
    load_worker,
    start_worker,
)

logger = logging.getLogger(__name__)

# The worker's names as this module has long exported them (tests and benchmarks/batch.py use them).
_WORKER, _load_worker = WORKER, load_worker


@dataclass(frozen=True)
class RunOptions:
    pipeline: str | None = None  # a pipeline directory; None: the shipped default
    batch_size: int = 32
    workers: int = 1
    pattern: str | None = None  # glob under folders; default: every supported suffix
    text_field: str = "text"  # JSON/JSONL field holding the text
    max_bytes: int = DEFAULT_MAX_BYTES
    read_seconds: float | None = DEFAULT_READ_SECONDS  # time budget to read one file; None: none
    fsync: bool = False  # fsync after every record (slower; survives power loss, not just kills)
    engine: Literal["local", "ray"] = "local"  # ray: Ray Data actors, ``workers`` of them
    address: str | None = None  # Ray cluster address ("auto" for a running cluster); None: start a local one


@dataclass
class RunSummary:
    documents: int = 0  # extracted by this run
    already_done: int = 0  # found in the output and skipped
    failures: int = 0  # skipped with a reason (see the errors file)
    entities: int = 0
    relations: int = 0
    words: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        rate = self.words / self.seconds if self.seconds else 0.0
        return (
            f"{self.documents} documents extracted ({self.already_done} already done), {self.entities} "
            f"entities, {self.relations} relations, {self.failures} failures, {self.seconds:.1f} s "
            f"({rate:,.0f} words/s)"
        )


def errors_path(output: Path) -> Path:
    """Where the reasons for skipped inputs go: ``<output>.errors.jsonl``."""
    return output.with_name(output.name + ".errors.jsonl")


class InputError(ValueError):
    """The inputs named cannot be used at all (a path that does not exist)."""


def check_inputs(inputs: list[Path]) -> None:
    """Refuse, before anything runs, input paths that do not exist (a typo would otherwise
    "succeed" with nothing extracted)."""
    missing = [source_name(path) for path in inputs if not os.path.lexists(path)]
    if missing:
        raise InputError(f"no such file or folder: {', '.join(map(printable, missing))}")


#: the end of every message that stops a run part-way
KEPT = "; the records written so far are kept, and a rerun resumes"


class PipelineUnavailable(InputError):
    """No document can be extracted: the pipeline does not load (in this process or in a worker
    process), or a worker process died. The run stops with the reason rather than listing every
    document as failed, or waiting forever for workers that cannot start."""


def run(inputs: list[Path], output: Path, options: RunOptions, progress: bool = True) -> RunSummary:
    """Extract every document under ``inputs`` into ``output`` (JSONL, appended, resumable).

    Raises :class:`InputError` for missing inputs, :class:`PipelineUnavailable` when the pipeline
    cannot extract (the records written before are kept), :class:`ner.batch.output.OutputLocked` when
    another process writes ``output``, and ``OSError`` when the output cannot be written."""
    started = time.perf_counter()
    check_inputs(inputs)
    files = find_files(inputs, options.pattern)
    summary = RunSummary()
    total = sum(count_items(p, options.max_bytes) for p in files) if progress else None
    bar = tqdm(total=total, unit="doc", disable=not progress, smoothing=0.1)
    with JsonlLog(output, options.fsync) as log, JsonlLog(errors_path(output)) as errors:
        todo = _pending(files, options, log, errors, summary, bar.update)
        for records in _extracted(_chunks(todo, options.batch_size), options):
            for record in records:
                if isinstance(record, Skipped):
                    summary.failures += 1
                    _log_failure(record, errors)
                    continue
                log.append(record)
                summary.documents += 1
                summary.entities += len(record["entities"])
                summary.relations += len(record["relations"])
                summary.words += len(record["text"].split())
            bar.update(len(records))
            bar.set_postfix(words_per_s=f"{summary.words / max(1e-9, time.perf_counter() - started):,.0f}")
    bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _pending(
    files: list[Path],
    options: RunOptions,
    log: JsonlLog,
    errors: JsonlLog,
    summary: RunSummary,
    advance: Callable[[int], object],
) -> Iterator[SourceText]:
    """The documents still to extract; failures are logged (once across runs) and counted."""
    for path in files:
        for item in read_items(path, options.text_field, options.max_bytes, options.read_seconds):
            if isinstance(item, Skipped):
                summary.failures += 1
                advance(1)
                _log_failure(item, errors)
            elif (item.source, item.line, item.item, item.sha256) in log:
                summary.already_done += 1
                advance(1)
            else:
                yield item


def _log_failure(item: Skipped, errors: JsonlLog) -> None:
    """List ``item`` in the errors file, once across runs (a rerun meets the same bad inputs)."""
    record = {"source": item.source, "line": item.line, "item": item.item, "reason": item.reason}
    if record_key(record) not in errors:
        where = f":{item.line}" if item.line else f"[{item.item}]" if item.item is not None else ""
        logger.warning("skipped %s%s: %s", printable(item.source), where, printable(item.reason))
        errors.append(record)


def _chunks(items: Iterable[SourceText], size: int) -> Iterator[list[SourceText]]:
    chunk: list[SourceText] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _extracted(chunks: Iterator[list[SourceText]], options: RunOptions) -> Iterator[list[dict]]:
    """Records of each chunk, in order: in this process, or from ``options.workers`` processes with
    at most two chunks per worker in flight (so reading never runs far ahead of extraction)."""
    if options.engine == "ray":
        yield from _from_ray(chunks, options)
        return
    if options.workers == 1:
        _load_here(options.pipeline)
        yield from map(extract_chunk, chunks)
        return
    yield from _from_workers(chunks, options)


def _load_here(pipeline: str | None) -> None:
    """Load the pipeline in this process; one that does not load is a reason to stop, not a traceback."""
    try:
        load_worker(pipeline, None)
    except Exception as error:  # noqa: BLE001 - whatever the cause, the run cannot go on
        raise PipelineUnavailable(f"{_named(pipeline)} cannot be loaded: {describe(error)}") from error


def _from_ray(chunks: Iterator[list[SourceText]], options: RunOptions) -> Iterator[list[dict]]:
    """Records of each chunk from Ray actors, in order; actors whose pipeline does not load stop
    the run with the reason, as worker processes do."""
    try:
        yield from ray_extracted(
            chunks, options.pipeline, options.batch_size, options.workers, options.address
        )
    except LoadFailed as error:
        message = f"{_named(options.pipeline)} cannot be loaded in a Ray actor: {error}{KEPT}"
        raise PipelineUnavailable(message) from error


def _from_workers(chunks: Iterator[list[SourceText]], options: RunOptions) -> Iterator[list[dict]]:
    """Records of each chunk from ``options.workers`` spawned processes, in order.

    ``ProcessPoolExecutor``, not ``multiprocessing.Pool``: when a worker dies (killed for lack of
    memory, say) the executor fails its chunks, where the pool waits for them forever; and a worker
    whose pipeline does not load says why with its first chunk (:func:`start_worker`)."""
    threads = max(1, (os.cpu_count() or 1) // options.workers)
    pool = ProcessPoolExecutor(
        options.workers,
        multiprocessing.get_context("spawn"),
        initializer=start_worker,
        initargs=(options.pipeline, threads),
    )
    try:
        yield from _in_order(pool, chunks, 2 * options.workers)
    except LoadFailed as error:
        message = f"{_named(options.pipeline)} cannot be loaded in a worker process: {error}{KEPT}"
        raise PipelineUnavailable(message) from error
    except BrokenProcessPool as error:
        message = (
            f"a worker process stopped abruptly (killed, e.g. for lack of memory, or crashed) while loading "
            f"or running {_named(options.pipeline)}; try fewer --workers{KEPT}"
        )
        raise PipelineUnavailable(message) from error
    finally:  # on any stop, chunks not yet started are dropped: only those running are waited for
        pool.shutdown(cancel_futures=True)


def _in_order(
    pool: ProcessPoolExecutor, chunks: Iterator[list[SourceText]], ahead: int
) -> Iterator[list[dict]]:
    """The records of each chunk in input order, at most ``ahead`` chunks in flight (so that reading
    never runs far ahead of extraction)."""
    in_flight: deque[Future] = deque()
    for chunk in chunks:
        in_flight.append(pool.submit(extract_in_worker, chunk))
        if len(in_flight) >= ahead:
            yield in_flight.popleft().result()
    while in_flight:
        yield in_flight.popleft().result()


def _named(pipeline: str | None) -> str:
    return "the default pipeline" if pipeline is None else f"the pipeline {printable(pipeline)}"
