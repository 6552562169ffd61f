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
from ner.batch.worker import extract_chunk, load_worker


class RayExtractor:
    """A Ray Data actor: the pipeline is loaded once per actor, then every batch reuses it."""

    def __init__(self, pipeline: str | None, threads: int) -> None:
        load_worker(pipeline, threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [SourceText(**json.loads(value)) for value in batch["item"]]
        records = [json.dumps(_row(record), ensure_ascii=False) for record in extract_chunk(items)]
        return {"record": np.array(records, dtype=object)}


def _row(record: dict | Skipped) -> dict:
    """A record, or a document that failed, as JSON (Skipped marked so that it comes back as one)."""
    return {"skipped": asdict(record)} if isinstance(record, Skipped) else record


def _from_row(row: dict) -> dict | Skipped:
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
