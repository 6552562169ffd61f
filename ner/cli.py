"""The ``ner`` command line: each command parses its arguments and calls the library."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
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
    config: Annotated[
        Path | None, typer.Argument(help="training config (TOML), e.g. pipelines/conll04.toml")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="pipeline directory to write")] = None,
    overrides: Annotated[
        list[str], typer.Option("--set", help="override a config value: training.epochs=3")
    ] = [],  # noqa: B006
    tasks: Annotated[
        list[str], typer.Option("--task", help="train only this task of the config (repeatable)")
    ] = [],  # noqa: B006
    init_from: Annotated[
        Path | None, typer.Option(help="continue from this trained pipeline, adding heads for new tasks")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    project: Annotated[
        Path | None,
        typer.Option(help="train on this annotation project's accepted annotations instead of a CONFIG"),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(help="--project: pipeline to continue (default: the shipped one) or encoder name"),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="--project: training epochs")] = 20,
    dev_fraction: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="--project: share of the documents held out for dev")
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="--project: seed of the train/dev split and the training")] = 42,
    all_documents: Annotated[
        bool, typer.Option(help="--project: every document's accepted annotations, not only those done")
    ] = False,
    progress_file: Annotated[
        Path | None, typer.Option(help="--project: append progress as JSON lines to this file")
    ] = None,
) -> None:
    """Train a model and write the best epoch as a spaCy pipeline, with metrics.json.

    With --project, train on an annotation project instead: its documents marked done (or all,
    with --all-documents) are split into train and dev by a seeded hash (stated in the log and in
    metrics.json), and the pipeline is written to --output (default runs/<project name>) only
    once training has finished; --set applies to the generated config."""
    _quiet_transformers()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if project is not None or config is None:
        settings = {"epochs": epochs, "dev_fraction": dev_fraction, "seed": seed}
        settings |= {"documents": "all" if all_documents else "done", **({"base": base} if base else {})}
        given = (("CONFIG", config), ("--task", tasks), ("--init-from", init_from))
        refused = [name for name, value in given if value]
        _train_project(project, output, settings, overrides, refused, progress_file, quiet)
        return
    from ner.config import ConfigError, load_config
    from ner.corpora import CorpusError
    from ner.tasks import TaskError
    from ner.training import train as run_training

    try:
        extra = {"init_from": str(init_from)} if init_from else {}
        settings = load_config(config, {**_parse_overrides(overrides), **extra}, only_tasks=tasks)
    except ConfigError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from error
    try:
        result = run_training(settings, config.parent, output, progress=not quiet)
    except (TaskError, CorpusError, ConfigError) as error:  # data or encoder disagree with the config
        typer.echo(f"{config}: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"best epoch {result['best_epoch']}; pipeline in {output or settings.output}")
    for name, change in result.get("old_heads_dev_f1", {}).items():
        before, after, delta = change["before"], change["after"], change["change"]
        typer.echo(f"old head {name}: dev F1 {before:.2f} -> {after:.2f} ({delta:+.2f})")
    given = f"{settings.training.tokenization} tokens"  # the tokens the test documents were given as
    for key, protocol in (("test_raw_text", "raw text"), ("test", given)):
        for task, scores in result.get(key, {}).items():
            figures = ", ".join(f"{k} {v['micro']['f1']:.2f}" for k, v in scores.items() if "micro" in v)
            typer.echo(f"{task} test micro F1 ({protocol}): {figures}")


def _train_project(
    project: Path | None,
    output: Path | None,
    settings: dict,
    overrides: list[str],
    refused: list[str],
    progress_file: Path | None,
    quiet: bool,
) -> None:
    """``ner train --project``: the library call, and its refusals as messages (exit status 2)."""
    from ner.annotation import AnnotationError
    from ner.config import ConfigError
    from ner.corpora import CorpusError
    from ner.project_training import ProjectTraining, train_project
    from ner.tasks import TaskError

    if project is None:
        typer.echo("error: give a training CONFIG or --project FILE", err=True)
        raise typer.Exit(2)
    if refused:
        typer.echo(f"error: --project makes its own config: {', '.join(refused)} cannot be used", err=True)
        raise typer.Exit(2)
    try:
        result = train_project(
            project,
            ProjectTraining(**settings),
            output,
            _parse_overrides(overrides),
            progress_file,
            not quiet,
        )
    except (AnnotationError, TaskError, CorpusError, ConfigError) as error:
        typer.echo(f"error: {project}: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"best epoch {result['best_epoch']}; pipeline in {result['output']}")


@app.command()
def evaluate(
    pipeline: Annotated[str, typer.Argument(help="pipeline directory or shipped name (bio, news, ...)")],
    data: Annotated[
        Path | None,
        typer.Argument(help="gold file; default: every head's own --split, from the pipeline's task records"),
    ] = None,
    head: Annotated[str | None, typer.Option(help="head to evaluate (default: the first)")] = None,
    format: Annotated[
        str | None, typer.Option(help="format of DATA (default: the head's training format, or by suffix)")
    ] = None,
    entity_type: Annotated[str | None, typer.Option(help="type of an untyped B/I/O file")] = None,
    types: Annotated[Path | None, typer.Option(help="SpERT types.json (default: beside DATA)")] = None,
    lang: Annotated[
        str | None,
        typer.Option(help="language of DATA: picks the CoNLL-2002 (es, nl) or 2003 (en, de) format"),
    ] = None,
    ignore_labels: Annotated[
        list[str],
        typer.Option("--ignore-label", help="leave this type out of gold and predictions (WikiANN: MISC)"),
    ] = [],  # noqa: B006
    split: Annotated[str, typer.Option(help="split to score when DATA is not given")] = "test",
    data_root: Annotated[
        Path | None, typer.Option(help="corpora folder (default: $NER_DATA_DIR or ../shared/data)")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the scores as JSON")] = None,
    batch_size: int = 64,
    encoding: Annotated[
        str | None,
        typer.Option(help="text encoding of DATA and --types, e.g. latin-1 (default: UTF-8; never guessed)"),
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            help="raw: each document's text through nlp.pipe, scored on character offsets (what users "
            "get); tokens: the model given the corpus's tokens (the papers' protocol); both: raw first"
        ),
    ] = "both",
) -> None:
    """Score a pipeline on gold data: strict entity matching for tagging heads (seqeval strict IOB2
    on corpus tokens), SpERT's protocol for SpERT heads (micro and macro P/R/F1, per type), on raw
    text and on the corpus's tokens. Gold spans the pipeline's tokenizer cannot align are misses
    on raw text. The JSON of -o is keyed by protocol ("raw", "tokens"), then by head."""
    _quiet_transformers()
    from ner.evaluation import (
        PROTOCOL_TITLES,
        PROTOCOLS,
        describe_raw_gold,
        evaluate_file,
        evaluate_recorded_tasks,
    )
    from ner.metrics import format_scores
    from ner.pipeline import extractor_model, load
    from ner.tasks import TaskError

    try:
        nlp = load(pipeline)
        head = head or next(iter(extractor_model(nlp).heads), None)
    except (OSError, ValueError, RuntimeError) as error:
        typer.echo(f"error: cannot load the pipeline {pipeline}: {error}", err=True)
        raise typer.Exit(2) from error
    if head is None:
        typer.echo(f"error: the pipeline {pipeline} has no heads to evaluate", err=True)
        raise typer.Exit(2)
    if protocol not in ("both", *PROTOCOLS):
        typer.echo(f"error: --protocol must be raw, tokens or both, not {protocol!r}", err=True)
        raise typer.Exit(2)
    protocols = PROTOCOLS if protocol == "both" else (protocol,)
    try:
        if data is None:
            root = data_root or Path(os.environ.get("NER_DATA_DIR") or "../shared/data")
            results = evaluate_recorded_tasks(nlp, root, split, batch_size, protocols)
        else:
            results = evaluate_file(
                nlp,
                data,
                head,
                format,
                entity_type,
                types,
                batch_size,
                lang,
                ignore_labels,
                encoding,
                protocols,
            )
    except (TaskError, ValueError, KeyError, OSError) as error:  # CorpusError is a ValueError
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from error
    for name, heads in results.scores.items():
        typer.echo(f"##### {PROTOCOL_TITLES[name]} #####")
        for head_name, scores in heads.items():
            typer.echo(f"===== {head_name} =====")
            if name == "raw":
                typer.echo(describe_raw_gold(results.alignment[head_name]))
            typer.echo(format_scores(scores))
    if output:
        payload = results.as_dict()
        try:
            output.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        except OSError as error:
            typer.echo(f"error: cannot write the scores to {output}: {error.strerror or error}", err=True)
            raise typer.Exit(2) from error


@app.command()
def extract(
    inputs: Annotated[list[Path], typer.Argument(help="files or folders of documents")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file (appended; resumable)")] = Path(
        "extractions.jsonl"
    ),
    pipeline: Annotated[
        str | None,
        typer.Option(help="pipeline directory or shipped name: conll04 (default), news, bio, multilingual"),
    ] = None,
    glob: Annotated[
        str | None, typer.Option(help="files to take under folders, e.g. '**/*.txt' (default: all supported)")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="worker processes (or Ray actors), each with its own model")
    ] = 1,
    engine: Annotated[str, typer.Option(help="local, or ray (Ray Data actors; same records)")] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address, e.g. auto (default: start a local Ray)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="documents per pipeline call")] = 32,
    text_field: Annotated[str, typer.Option(help="the text field of .jsonl/.json records")] = "text",
    max_bytes: Annotated[int, typer.Option(help="skip files larger than this")] = 50_000_000,
    read_timeout: Annotated[
        float, typer.Option(help="seconds to read one file before skipping it (0: no limit)")
    ] = 20.0,
    fsync: Annotated[bool, typer.Option(help="fsync after every record (survives power loss)")] = False,
    docbin: Annotated[
        Path | None, typer.Option(help="also write every record of the output as a spaCy DocBin here")
    ] = None,
    show: Annotated[bool, typer.Option(help="print each document's entities and relations")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Extract entities and relations from documents (.txt, .md, .html, .jsonl, .json, .pdf) into JSONL.

    A run that is stopped, even by kill -9, resumes when started again with the same arguments:
    documents already in the output are skipped. Unreadable inputs are listed with the reason in
    <output>.errors.jsonl and the run goes on. --docbin writes the complete output as a spaCy
    DocBin once the run has finished.

    Exit status: 0 when every document was extracted; 1 when the run finished but some inputs
    were skipped (each listed with its reason in <output>.errors.jsonl); 2 when nothing could
    run or the output could not be written (a missing input, an output another run is writing,
    an unwritable --output or --docbin, a full disk), with the reason.
    """
    _quiet_transformers()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    from ner.batch.output import OutputLocked
    from ner.batch.runner import InputError, RunOptions, check_inputs, errors_path, run
    from ner.pipeline import resolve

    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"--engine must be local or ray, not {engine!r}")
    if output.is_dir() or not output.suffix:  # a folder: the records go to <folder>/extractions.jsonl
        output = output / "extractions.jsonl"
    try:
        check_inputs(inputs)
        if docbin:
            _check_writable(docbin)
        folder = resolve(pipeline)
    except (InputError, OSError) as error:
        _refuse(error)
    options = RunOptions(  # by keyword: a field added in the middle must not shift the others
        pipeline=str(folder),
        batch_size=batch_size,
        workers=workers,
        pattern=glob,
        text_field=text_field,
        max_bytes=max_bytes,
        read_seconds=read_timeout or None,
        fsync=fsync,
        engine=engine,
        address=address,
    )
    before = _line_count(output)
    try:
        summary = run(inputs, output, options, progress=not quiet)
    except (InputError, OutputLocked) as error:
        _refuse(error)
    except OSError as error:  # the output cannot be written: what is there is kept, a rerun resumes
        _refuse(error, f"; the records written so far are kept in {output}, and a rerun resumes")
    if show:
        with open(output, encoding="utf-8") as handle:
            for number, line in enumerate(handle):
                if number >= before:
                    typer.echo(_describe(json.loads(line)))
    typer.echo(f"{summary.describe()} -> {output}")
    if docbin:
        from ner.batch.docbin import write_docbin

        try:
            typer.echo(f"{write_docbin(output, docbin, folder)} documents -> {docbin}")
        except (OSError, ValueError) as error:
            _refuse(error, f"; the records are in {output}")
    if summary.failures:
        typer.echo(f"reasons for the {summary.failures} failures: {errors_path(output)}", err=True)
        raise typer.Exit(1)


def _refuse(error: Exception, after: str = "") -> None:
    """Print why the command cannot go on and exit with status 2 (no traceback)."""
    from ner.batch.sources import printable

    if isinstance(error, OSError) and error.strerror and error.filename:
        message = f"{printable(os.fsdecode(error.filename))}: {error.strerror}"
    else:
        message = str(error)
    typer.echo(f"error: {printable(message)}{after}", err=True)
    raise typer.Exit(2) from error


def _check_writable(path: Path) -> None:
    """Fail now, not after the whole extraction, if ``path`` cannot be written."""
    import tempfile

    if path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a file", str(path))
    with tempfile.TemporaryFile(dir=path.parent or "."):
        pass


def _line_count(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def _describe(record: dict) -> str:
    """A record for a terminal: one line per entity and relation; names and texts escaped, so a
    newline in a file name cannot forge a line."""
    from ner.batch.sources import printable

    where = f":{record['line']}" if record.get("line") else ""
    lines = [f"== {printable(record['source'])}{where}"]
    entities = record["entities"]
    for e in entities:
        lines.append(
            f"  {printable(e['label']):<10} {printable(repr(e['text']))} [{e['start']}:{e['end']}] "
            f"{e['score']:.2f} ({printable(e['head'])})"
        )
    for r in record["relations"]:
        head, tail = (
            printable(repr(entities[r["head"]]["text"])),
            printable(repr(entities[r["tail"]]["text"])),
        )
        lines.append(f"  {head} --{printable(r['label'])}--> {tail} {r['score']:.2f}")
    return "\n".join(lines)


@app.command()
def compact(
    pipeline: Annotated[str, typer.Argument(help="trained pipeline directory (or a shipped one's name)")],
    output: Annotated[Path, typer.Argument(help="where to write the compact copy")],
    storage: Annotated[str, typer.Option(help="delta (vs the installed base encoder) or full")] = "delta",
    dtype: Annotated[
        str, typer.Option(help="of the stored differences: float16, float32 or int8")
    ] = "float16",
    name: Annotated[str | None, typer.Option(help="a new pipeline name (default: keep it)")] = None,
    ents_heads: Annotated[
        list[str] | None,
        typer.Option("--ents-head", help="a head that feeds doc.ents (repeat; default: keep the pipeline's)"),
    ] = None,
    embedding_dtype: Annotated[
        str | None,
        typer.Option(
            help="how the loaded pipeline holds its word embeddings: float32, float16 or int8 "
            "(default: keep the pipeline's; the stored weights are the same either way)"
        ),
    ] = None,
) -> None:
    """Re-save a pipeline storing only what differs from its base encoder, in half precision or int8.
    The component's other settings (which heads feed doc.ents, segments, embeddings) are kept."""
    _quiet_transformers()
    from ner.pipeline import build_pipeline, extractor_model, extractor_settings, load, resolve, save
    from ner.provenance import provenance

    dtypes = {"float16", "float32", "int8"}
    if storage not in {"delta", "full"} or dtype not in dtypes or embedding_dtype not in dtypes | {None}:
        raise typer.BadParameter(
            "storage must be delta or full; dtype and embedding dtype float16, float32 or int8"
        )
    folder = resolve(pipeline)
    trained = load(folder, whole=True)
    model = extractor_model(trained)
    settings = extractor_settings(folder)
    if ents_heads:
        unknown = sorted(set(ents_heads) - set(model.heads))
        if unknown:
            raise typer.BadParameter(f"--ents-head {unknown}: not heads of the pipeline: {list(model.heads)}")
        settings["ents_heads"] = list(ents_heads)
    if embedding_dtype:
        settings["embedding_dtype"] = embedding_dtype
    meta = {**trained.meta, "name": name or trained.meta["name"], "compacted_by": provenance()}
    nlp = build_pipeline(model, trained.lang, meta["name"], storage, dtype, meta=meta, settings=settings)
    save(nlp, output)
    if (folder / "metrics.json").is_file():  # keep the training record with the model
        shutil.copy(folder / "metrics.json", output / "metrics.json")
    size = sum(f.stat().st_size for f in output.rglob("*") if f.is_file())
    typer.echo(f"wrote {output} ({size / 1e6:.1f} MB)")


@app.command("app")
def serve_app(
    port: Annotated[int, typer.Option(help="port to serve on")] = 8501,
    host: Annotated[
        str, typer.Option(help="address to listen on; 0.0.0.0 serves other machines too")
    ] = "localhost",
    pipelines: Annotated[
        list[Path],
        typer.Option(
            "--pipeline", exists=True, file_okay=False, help="also offer this pipeline (repeatable)"
        ),
    ] = [],  # noqa: B006
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="the only folder the app reads datasets from and writes projects, uploads and exports "
            "to (default: ./annotations, created if missing)"
        ),
    ] = None,
    allowed_hosts: Annotated[
        list[str],
        typer.Option(
            "--allowed-host",
            help="also answer requests for this host name, e.g. behind a proxy (repeatable); "
            "localhost, 127.0.0.1, ::1 and --host always are",
        ),
    ] = [],  # noqa: B006
) -> None:
    """Start the annotators' app (Streamlit): extract, annotate and export, model scores.

    Pipelines offered: the shipped one, each --pipeline, $NER_APP_PIPELINES and those in ./runs/.
    The app reads and writes only inside its data folder, and answers only requests whose Host
    header names an allowed host (DNS rebinding).
    """
    import importlib.util

    if importlib.util.find_spec("streamlit") is None:
        typer.echo("the app needs streamlit: pip install 'ner[app]'", err=True)
        raise typer.Exit(2)
    from app import serving

    try:
        folder = serving.prepare_data_folder(data_dir)
    except OSError as error:
        where = error.filename or data_dir or serving.DEFAULT_FOLDER
        typer.echo(f"cannot use {where} as the data folder: {error.strerror or error}", err=True)
        raise typer.Exit(2) from None
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    listed = [str(p.resolve()) for p in pipelines] + [env.get("NER_APP_PIPELINES", "")]
    env["NER_APP_PIPELINES"] = os.pathsep.join(p for p in listed if p)
    env[serving.ENV_DATA_DIR] = str(folder)
    env[serving.ENV_ALLOWED_HOSTS] = ",".join(serving.allowed_hosts(host, allowed_hosts))
    typer.echo(f"ner app on http://{host}:{port}, data folder {folder}")
    command = [sys.executable, "-m", "streamlit", "run", str(serving.SERVER_SCRIPT)]
    command += serving.streamlit_options(port, host)
    # exec, not a child process: ``ner app`` becomes the server, so Ctrl-C, SIGTERM from a service
    # manager or a test's terminate() stop the server itself instead of orphaning it.
    sys.stdout.flush()
    os.execve(sys.executable, command, env)


if __name__ == "__main__":
    app()
