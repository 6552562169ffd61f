"""One extraction worker's state: the pipeline loaded once per process, and a chunk of documents
turned into records with failures isolated per document.

Both engines use it: the local runner (in-process or in spawned processes, :mod:`ner.batch.runner`)
and the Ray actors (:mod:`ner.batch.ray_engine`). It sits below both so that neither imports the
other: the runner chooses an engine, and an engine only needs a worker.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from ner.batch.records import doc_record, pipeline_info
from ner.batch.sources import Skipped, SourceText, printable

logger = logging.getLogger(__name__)

#: this process's pipeline: ``pipeline`` (its path, None for the default), ``nlp``, ``heads``, ``info``
WORKER: dict = {}


def load_worker(pipeline: str | None, threads: int | None) -> None:
    """Load the pipeline once per process (workers are spawned, so nothing is inherited)."""
    import torch

    from ner.pipeline import extractor_model, load

    if threads:
        torch.set_num_threads(threads)
    if WORKER.get("pipeline") != pipeline or "nlp" not in WORKER:
        nlp = load(pipeline)
        WORKER.update(
            pipeline=pipeline, nlp=nlp, heads=list(extractor_model(nlp).heads), info=pipeline_info(nlp)
        )


class LoadFailed(RuntimeError):
    """This worker process has no pipeline: loading it failed, for the reason in the message (a
    string, since the original exception may not survive pickling back to the parent)."""


def start_worker(pipeline: str | None, threads: int | None) -> None:
    """The initializer of worker processes: :func:`load_worker`, keeping a failure instead of raising it.

    An initializer that raises ends its process, and the pool then respawns it forever
    (``multiprocessing.Pool``) or breaks without saying why (``ProcessPoolExecutor``): the run hangs
    or fails silently. Kept here, the reason goes back to the parent with the first chunk this worker
    is given (:func:`extract_in_worker`), and the parent stops the run with it."""
    WORKER.pop("load_error", None)
    try:
        load_worker(pipeline, threads)
    except Exception as error:  # noqa: BLE001 - any failure to load is reported to the parent
        logger.debug("the pipeline failed to load in this worker", exc_info=error)
        WORKER.clear()
        WORKER["load_error"] = describe(error)


def extract_in_worker(items: list[SourceText]) -> list[dict | Skipped]:
    """:func:`extract_chunk` in a worker started by :func:`start_worker`; raises :class:`LoadFailed` when
    its pipeline did not load (checked here, outside :func:`extract_chunk`, whose per-document isolation
    would otherwise list every document as failed when none could be tried)."""
    if "load_error" in WORKER:
        raise LoadFailed(WORKER["load_error"])
    return extract_chunk(items)


def extract_chunk(items: list[SourceText]) -> list[dict | Skipped]:
    """The records of ``items``, in order; when the chunk fails, each document is tried alone and
    those that still fail become :class:`Skipped` with the error (the others are not lost)."""
    try:
        return _records_of(items)
    except Exception as error:  # noqa: BLE001 - one document's failure is isolated below
        if len(items) == 1:
            return [_failure(items[0], error)]
    return [record for item in items for record in extract_chunk([item])]


def _records_of(items: list[SourceText]) -> list[dict]:
    nlp, heads, info = WORKER["nlp"], WORKER["heads"], WORKER["info"]
    docs = nlp.pipe([item.text for item in items], batch_size=len(items))
    return [doc_record(doc, item, heads, info) for item, doc in zip(items, docs)]


def _failure(item: SourceText, error: Exception) -> Skipped:
    """The reason a document could not be extracted, with where it failed (for a bug report)."""
    logger.debug("extraction failed for %s", printable(item.source), exc_info=error)
    return Skipped(item.source, f"extraction failed: {describe(error)}", item.line, item.item)


def describe(error: BaseException) -> str:
    """``error`` in one line for a user: its type, message and where it was raised (for a bug report)."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {str(error)[:1000]}{where}"
