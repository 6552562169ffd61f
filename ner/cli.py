"""The ``ner`` command line: each command parses its arguments and calls the library."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _quiet_transformers() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _parse_overrides(pairs: list[str]) -> dict:
    """``key.sub=value`` pairs; values are parsed as JSON when possible (numbers, true, null)."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="training config (TOML), e.g. pipelines/conll04.toml")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="pipeline directory to write")] = None,
    overrides: Annotated[
        list[str], typer.Option("--set", help="override a config value: training.epochs=3")
    ] = [],  # noqa: B006
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Train a model and write the best epoch as a spaCy pipeline, with metrics.json."""
    _quiet_transformers()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ner.config import ConfigError, load_config
    from ner.training import train as run_training

    try:
        settings = load_config(config, _parse_overrides(overrides))
    except ConfigError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from error
    result = run_training(settings, config.parent, output, progress=not quiet)
    typer.echo(f"best epoch {result['best_epoch']}; pipeline in {output or settings.output}")
    if "test" in result:
        typer.echo(json.dumps({k: v["micro"] for k, v in result["test"].items()}, indent=2))


@app.command()
def evaluate(
    pipeline: Annotated[Path, typer.Argument(help="pipeline directory")],
    data: Annotated[Path, typer.Argument(help="SpERT JSON file")],
    types: Annotated[Path | None, typer.Option(help="types.json (default: beside DATA)")] = None,
    head: Annotated[str | None, typer.Option(help="head to evaluate (default: the first)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the scores as JSON")] = None,
    batch_size: int = 64,
) -> None:
    """Score a pipeline on gold data with SpERT's strict protocol (micro and macro P/R/F1)."""
    _quiet_transformers()
    from ner.corpora import read_spert_json, read_spert_types
    from ner.evaluation import evaluate_model
    from ner.metrics import format_scores
    from ner.pipeline import extractor_model, load

    types = types or data.parent / "types.json"
    schema = read_spert_types(types) if types.is_file() else None
    model = extractor_model(load(pipeline))
    scores = evaluate_model(model, read_spert_json(data, schema), head, batch_size)
    typer.echo(format_scores(scores))
    if output:
        output.write_text(json.dumps({k: v.as_dict() for k, v in scores.items()}, indent=2), encoding="utf-8")


@app.command()
def extract(
    inputs: Annotated[list[Path], typer.Argument(help="text files or folders (*.txt, *.md, recursively)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write")] = Path(
        "extractions.jsonl"
    ),
    pipeline: Annotated[
        Path | None, typer.Option(help="pipeline directory (default: the shipped one)")
    ] = None,
    batch_size: int = 32,
    max_bytes: Annotated[int, typer.Option(help="skip files larger than this")] = 20_000_000,
    show: Annotated[bool, typer.Option(help="print entities and relations")] = True,
) -> None:
    """Extract entities and relations from documents into JSONL."""
    _quiet_transformers()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    from ner.extraction import extract_files, find_inputs
    from ner.pipeline import extractor_model, load

    nlp = load(pipeline)
    head = next(iter(extractor_model(nlp).heads))
    summary, records = extract_files(nlp, find_inputs(inputs), output, head, batch_size, max_bytes)
    if show:
        for record in records:
            typer.echo(_describe(record))
    typer.echo(
        f"{summary.documents} documents, {summary.entities} entities, {summary.relations} relations "
        f"-> {output}; {len(summary.skipped)} skipped"
    )
    for source, reason in summary.skipped:
        typer.echo(f"  skipped {source}: {reason}", err=True)


def _describe(record: dict) -> str:
    lines = [f"== {record['source']}"]
    entities = record["entities"]
    for e in entities:
        lines.append(f"  {e['label']:<8} {e['text']!r} [{e['start']}:{e['end']}] {e['score']:.2f}")
    for r in record["relations"]:
        head, tail = entities[r["head"]], entities[r["tail"]]
        lines.append(f"  {head['text']!r} --{r['label']}--> {tail['text']!r} {r['score']:.2f}")
    return "\n".join(lines)


@app.command()
def compact(
    pipeline: Annotated[Path, typer.Argument(help="trained pipeline directory")],
    output: Annotated[Path, typer.Argument(help="where to write the compact copy")],
    storage: Annotated[str, typer.Option(help="delta (vs the installed base encoder) or full")] = "delta",
    dtype: Annotated[str, typer.Option(help="float16 or float32")] = "float16",
) -> None:
    """Re-save a pipeline storing only what differs from its base encoder, in half precision."""
    _quiet_transformers()
    from ner.pipeline import build_pipeline, extractor_model, load, save

    if storage not in {"delta", "full"} or dtype not in {"float16", "float32"}:
        raise typer.BadParameter("storage must be delta or full, dtype float16 or float32")
    trained = load(pipeline)
    nlp = build_pipeline(
        extractor_model(trained), trained.lang, trained.meta["name"], storage, dtype, meta=trained.meta
    )
    save(nlp, output)
    if (pipeline / "metrics.json").is_file():  # keep the training record with the model
        shutil.copy(pipeline / "metrics.json", output / "metrics.json")
    size = sum(f.stat().st_size for f in output.rglob("*") if f.is_file())
    typer.echo(f"wrote {output} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    app()
