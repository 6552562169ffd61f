"""The same extraction on Ray Data, so one command scales from a laptop to a Ray cluster.

The driver reads the inputs and skips documents already in the output, exactly as the local
engine does; the documents to extract become a Ray dataset whose ``map_batches`` runs
:class:`RayExtractor` actors (each loads the pipeline once). Results stream back in input order
(``preserve_order``) and the driver appends them to the same resumable JSONL, so a Ray run and a
local run write identical records, and a killed Ray run resumes like a local one.

Limit: the driver holds the texts of the documents still to do (Ray Data needs them as a
dataset); for folders larger than the driver's memory, run per sub-folder or ``--glob``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict

import numpy as np

from ner.batch.sources import Skipped, SourceText
from ner.batch.worker import WORKER, LoadFailed, extract_chunk, start_worker


class RayExtractor:
    """A Ray Data actor: the pipeline is loaded once per actor, then every batch reuses it.

    A pipeline that does not load is kept as the reason (:func:`start_worker`) and sent back as a
    row of its own, which the driver raises as :class:`LoadFailed`: raised here, it would reach the
    driver only as the text of Ray's traceback."""

    def __init__(self, pipeline: str | None, threads: int) -> None:
        start_worker(pipeline, threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "load_error" in WORKER:
            rows = [{"load_failed": WORKER["load_error"]}] * len(batch["item"])
        else:
            items = [SourceText(**json.loads(value)) for value in batch["item"]]
            rows = [_row(record) for record in extract_chunk(items)]
        return {"record": np.array([json.dumps(row, ensure_ascii=False) for row in rows], dtype=object)}


def _row(record: dict | Skipped) -> dict:
    """A record, or a document that failed, as JSON (Skipped marked so that it comes back as one)."""
    return {"skipped": asdict(record)} if isinstance(record, Skipped) else record


def _from_row(row: dict) -> dict | Skipped:
    """The record or failure a row holds; raises :class:`LoadFailed` for an actor without a pipeline."""
    if set(row) == {"load_failed"}:
        raise LoadFailed(row["load_failed"])
    return Skipped(**row["skipped"]) if set(row) == {"skipped"} else row


def ray_extracted(
    chunks: Iterator[list[SourceText]],
    pipeline: str | None,
    batch_size: int,
    actors: int,
    address: str | None,
) -> Iterator[list[dict | Skipped]]:
    """Records of every pending document, in input order, computed by ``actors`` Ray actors."""
    import ray

    if not ray.is_initialized():
        local = {"num_cpus": actors} if address is None else {}
        ray.init(address=address, include_dashboard=False, log_to_driver=False, **local)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    rows = [{"item": json.dumps(asdict(item), ensure_ascii=False)} for chunk in chunks for item in chunk]
    if not rows:
        return
    dataset = ray.data.from_items(rows).map_batches(
        RayExtractor,
        fn_constructor_args=(pipeline, 1),
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=actors,
        num_cpus=1,
    )
    for batch in dataset.iter_batches(batch_size=batch_size, batch_format="numpy"):
        yield [_from_row(json.loads(record)) for record in batch["record"]]
