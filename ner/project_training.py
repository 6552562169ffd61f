"""Training straight from an annotation project (``ner train --project FILE``), with no export step.

The project's reviewed documents (those marked done, or with ``documents="all"`` every document)
are split into train and dev by a seeded hash of each document, so the split is the same on every
run and mostly stable as the project grows; only accepted annotations are used, as in every export.
The split is written as SpERT JSON into ``<pipeline>/training_data`` (what the model learnt from
stays beside it) and trained with :func:`ner.training.train`.

The base is a trained pipeline (default: the shipped one) or an encoder. A pipeline whose SpERT
head already predicts every label of the project is continued; otherwise a fresh head is trained
on the pipeline's base encoder, with the pipeline's recorded recipe (layers kept, learning rates).

The pipeline is written to a hidden sibling folder and renamed into place only when training has
finished, so a folder of that name is always a finished pipeline. Progress goes, one JSON object a
line, to an optional file (:class:`ProgressLog`) that the app reads while the run goes on.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import math
import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ner.annotation import AnnotatedDoc, AnnotationError, AnnotationStore, Project, export
from ner.config import ConfigError, TrainConfig, set_dotted
from ner.encoder import resolve_encoder
from ner.files import read_json_object, write_atomic
from ner.pipeline import DEFAULT_PIPELINE
from ner.training import train

logger = logging.getLogger(__name__)
HEAD = "spert"  # the head a project trains: SpERT holds nested entities and relations
MIN_DOCUMENTS = 2  # one to learn from, one to choose the best epoch on
DATA_FOLDER = "training_data"
#: training settings taken from the base pipeline's recorded config (the shipped one's otherwise)
RECIPE_KEYS = (
    "batch_size",
    "learning_rate",
    "head_learning_rate",
    "warmup",
    "weight_decay",
    "grad_clip",
    "max_batch_words",
)
ENCODER_KEYS = ("name", "window", "overlap", "num_layers", "freeze_word_embeddings", "freeze_layers")


class ProjectTraining(BaseModel):
    """What ``ner train --project`` needs besides the project: the base and a few settings."""

    model_config = ConfigDict(extra="forbid")

    base: str = Field(
        str(DEFAULT_PIPELINE),
        description="a trained pipeline folder (continued when its SpERT head has every label of the "
        "project, else its base encoder gets a fresh head), or an encoder name or folder",
    )
    epochs: int = Field(20, ge=1, description="training epochs; the best on dev is kept")
    dev_fraction: float = Field(0.2, gt=0, lt=1, description="share of the documents held out for dev")
    seed: int = Field(42, description="seeds the train/dev split and the training")
    documents: Literal["done", "all"] = Field(
        "done",
        description="'done': the documents marked done; 'all': every document's accepted annotations "
        "(a project made from gold data)",
    )
    name: str | None = Field(None, description="the pipeline's name (default: the project's)")


@dataclass(frozen=True)
class Split:
    """The documents each side of the train/dev split, and how they were chosen."""

    train: list[AnnotatedDoc]
    dev: list[AnnotatedDoc]
    seed: int
    dev_fraction: float
    documents: str

    def describe(self) -> str:
        which = "documents marked done" if self.documents == "done" else "documents"
        return (
            f"{len(self.train) + len(self.dev)} {which}: {len(self.train)} to train on, {len(self.dev)} "
            f"for dev ({self.dev_fraction:.0%} by a hash of each document seeded with {self.seed})"
        )

    def record(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "seed": self.seed,
            "dev_fraction": self.dev_fraction,
            "train": [doc.id for doc in self.train],
            "dev": [doc.id for doc in self.dev],
        }


# ------------------------------------------------------------------------------------- the split
def chosen_documents(project: Project, documents: str) -> list[AnnotatedDoc]:
    """The documents to learn from: those marked done, or all of them."""
    return [doc for doc in project.docs if doc.done or documents == "all"]


def split_documents(project: Project, settings: ProjectTraining) -> Split:
    """Train and dev documents: the ``dev_fraction`` (at least one) with the smallest seeded hash
    of their id and text go to dev. Too few documents is an :class:`AnnotationError` saying so."""
    docs = chosen_documents(project, settings.documents)
    if len(docs) < MIN_DOCUMENTS:
        which = "marked done" if settings.documents == "done" else "in it"
        hint = (
            "; mark more documents done (or use every document's accepted annotations: --all-documents)"
            if settings.documents == "done"
            else ""
        )
        raise AnnotationError(
            f"the project {project.name!r} has {len(docs)} document{'s' * (len(docs) != 1)} {which}: "
            f"training needs at least {MIN_DOCUMENTS} (one to learn from, one to choose the best "
            f"epoch on){hint}"
        )
    ranked = sorted(range(len(docs)), key=lambda i: _rank(docs[i], settings.seed, i))
    size = min(len(docs) - 1, max(1, round(settings.dev_fraction * len(docs))))
    held_out = set(ranked[:size])
    return Split(
        train=[d for i, d in enumerate(docs) if i not in held_out],
        dev=[d for i, d in enumerate(docs) if i in held_out],
        seed=settings.seed,
        dev_fraction=settings.dev_fraction,
        documents=settings.documents,
    )


def _rank(doc: AnnotatedDoc, seed: int, index: int) -> tuple[str, int]:
    digest = hashlib.sha256(f"{seed}\0{doc.id}\0{doc.text}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest(), index


def write_split(project: Project, split: Split, folder: Path) -> None:
    """``train.json``, ``dev.json`` (SpERT JSON of the accepted annotations) and ``types.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    export(replace(project, docs=split.train), "spert_json", folder / "train.json")
    export(replace(project, docs=split.dev), "spert_json", folder / "dev.json")
    export(project, "spert_types", folder / "types.json")


# -------------------------------------------------------------------------------------- the base
@dataclass(frozen=True)
class Base:
    """How training starts: ``continued`` from a pipeline, or a fresh head on ``encoder``."""

    continued: bool
    encoder: dict[str, Any]
    head: dict[str, Any]
    recipe: dict[str, Any]
    export: dict[str, Any]
    reason: str

    def describe(self) -> str:
        return self.reason


def project_labels(project: Project) -> tuple[set[str], set[str]]:
    """The entity and relation labels the project offers or uses."""
    spans = {span.label for doc in project.docs for span in doc.spans}
    links = {link.label for doc in project.docs for link in doc.relations}
    return set(project.entity_labels) | spans, set(project.relation_labels) | links


def choose_base(base: str, project: Project) -> Base:
    """Continue ``base`` when it is a pipeline whose SpERT head predicts every label of the
    project; otherwise a fresh head on the pipeline's encoder, or on ``base`` as an encoder."""
    folder = Path(base)
    if not (folder / "meta.json").is_file():
        shipped = _recorded_config(DEFAULT_PIPELINE)
        recipe = shipped.get("training", {})
        recorded = _pick(shipped.get("encoder", {}), ENCODER_KEYS)  # the shipped recipe for its encoder
        encoder = recorded if recorded.get("name") == base else {"name": base}
        reason = f"a fresh {HEAD!r} head on the encoder {base!r}"
        return Base(False, encoder, {"type": "spert"}, _pick(recipe, RECIPE_KEYS), _export_for(base), reason)
    model = read_json_object(folder / "ner_extractor" / "model.json")
    config = _recorded_config(folder) or _recorded_config(DEFAULT_PIPELINE)
    recipe = _pick(config.get("training", {}), RECIPE_KEYS)
    spec = model.get("heads", {}).get(HEAD)
    encoder = _pick(config.get("encoder", {}), ENCODER_KEYS)
    name = model.get("encoder", {}).get("name")
    if name and encoder.get("name") != name:  # the recorded config was another encoder's
        layers = model.get("encoder", {}).get("config", {}).get("num_hidden_layers")
        encoder = {"name": name, **({"num_layers": layers} if layers else {})}
    export_settings = _pick(config.get("export", {}), ("storage", "dtype")) or _export_for(encoder["name"])
    entities, relations = project_labels(project)
    if spec is not None and spec.get("config", {}).get("type") == "spert":
        schema = spec.get("schema", {})
        has_entities = set(schema.get("entity_labels", []))
        has_relations = {r["label"] for r in schema.get("relation_types", [])}
        missing = sorted((entities - has_entities) | (relations - has_relations))
        if not missing:
            reason = f"continuing {folder}: its {HEAD!r} head has every label of the project"
            return Base(True, encoder, spec["config"], recipe, export_settings, reason)
        why = f"its {HEAD!r} head lacks the project's labels {missing}"
    else:
        why = f"it has no SpERT head named {HEAD!r}"
    head = spec["config"] if spec and spec.get("config", {}).get("type") == "spert" else {"type": "spert"}
    reason = f"a fresh head on {folder}'s base encoder {encoder['name']!r}: {why}"
    return Base(False, encoder, head, recipe, export_settings, reason)


def _export_for(encoder: str) -> dict[str, str]:
    """Delta storage (only what training changed, lossless) when the base encoder is installed as
    a folder it can be computed against; full weights otherwise (a hub name in the cache)."""
    try:
        installed = Path(resolve_encoder(encoder)).is_dir()
    except Exception:  # noqa: BLE001 (an alias whose package is missing: the training will say so)
        installed = False
    return {"storage": "delta", "dtype": "float32"} if installed else {"storage": "full"}


def _recorded_config(pipeline: Path) -> dict:
    config = read_json_object(pipeline / "metrics.json").get("config", {})
    return config if isinstance(config, dict) else {}


def _pick(values: dict, keys: tuple[str, ...]) -> dict:
    return {key: values[key] for key in keys if key in values}


# -------------------------------------------------------------------------------------- config
def build_config(
    project: Project,
    settings: ProjectTraining,
    base: Base,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """The training config of a project run: one SpERT task on ``training_data/`` of the output."""
    task = {
        "name": HEAD,
        "format": "spert_json",
        "train": "train.json",
        "dev": "dev.json",
        "types": "types.json",
        "head": base.head,
    }
    data: dict[str, Any] = {
        "encoder": base.encoder,
        "data_root": DATA_FOLDER,
        "tasks": [task],
        "training": {**base.recipe, "epochs": settings.epochs, "seed": settings.seed},
        "export": {
            **base.export,
            "pipeline_name": pipeline_name(settings.name or project.name),
            "lang": project.lang,
        },
    }
    if base.continued:
        data["init_from"] = settings.base
    where = Path("--set")
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value, where)
    try:
        return TrainConfig.model_validate(data)
    except ValueError as error:
        raise ConfigError(f"invalid settings for training on the project:\n{error}") from error


def pipeline_name(name: str) -> str:
    """``name`` reduced to letters, digits and underscores (a pipeline name, a folder name)."""
    return re.sub(r"[^\w]+", "_", name).strip("_") or "annotations"


# -------------------------------------------------------------------------------------- running
def partial_folder(output: Path) -> Path:
    """Where a run writes before its pipeline is complete (hidden, beside ``output``)."""
    return output.parent / f".{output.name}.partial"


def default_output(project: Project) -> Path:
    return Path("runs") / pipeline_name(project.name)


def train_project(
    path: Path,
    settings: ProjectTraining,
    output: Path | None = None,
    overrides: dict[str, Any] | None = None,
    progress_file: Path | None = None,
    progress_bar: bool = False,
) -> dict:
    """Train on the project saved in ``path`` and write the pipeline to ``output`` (whole or not
    at all); returns :func:`ner.training.train`'s result with the split and the base added."""
    project = AnnotationStore.open(path).project
    output = Path(output or default_output(project))
    _check_output(output)
    split = split_documents(project, settings)
    base = choose_base(settings.base, project)
    config = build_config(project, settings, base, overrides)
    staging = partial_folder(output)
    shutil.rmtree(staging, ignore_errors=True)
    write_split(project, split, staging / DATA_FOLDER)
    logger.info("project %s: %s", path, split.describe())
    logger.info("base: %s", base.describe())
    steps = math.ceil(len(split.train) / config.training.batch_size)
    with ProgressLog(progress_file, config.training.epochs, steps) as log:
        log.event("split", train=len(split.train), dev=len(split.dev), base=base.describe())
        try:
            result = train(config, staging, staging, progress=progress_bar, on_step=log.step)
        except BaseException as error:  # Ctrl-C too: no half-trained pipeline is left behind
            log.event("error", message=str(error) or type(error).__name__)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        record = {"file": str(path), **split.record(), "base": settings.base, "continued": base.continued}
        _add_to_metrics(staging, {"project": record})
        _move_into_place(staging, output)
        log.event("done", output=str(output), best_epoch=result["best_epoch"])
    return {**result, "project": record, "output": str(output)}


def _check_output(output: Path) -> None:
    """Refuse to replace a folder that is not a pipeline (a typo could name a folder of data)."""
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not _is_pipeline(output))):
        raise ConfigError(f"output {output} exists and is not a pipeline folder: choose another --output")


def _is_pipeline(folder: Path) -> bool:
    return (folder / "meta.json").is_file() and (folder / "config.cfg").is_file()


def _add_to_metrics(folder: Path, extra: dict) -> None:
    metrics = read_json_object(folder / "metrics.json")
    write_atomic(folder / "metrics.json", json.dumps({**metrics, **extra}, indent=2).encode("utf-8"))


def _move_into_place(staging: Path, output: Path) -> None:
    """Rename the finished pipeline to ``output``; an older pipeline there is replaced."""
    output.parent.mkdir(parents=True, exist_ok=True)
    old = output.parent / f".{output.name}.old"
    if output.exists():
        shutil.rmtree(old, ignore_errors=True)
        output.rename(old)
    staging.rename(output)
    shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------- progress
_EPOCH_LINE = re.compile(r"\bepoch (\d+): (\{.*\})\s*$")
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"


def parse_epoch_line(line: str) -> dict[str, Any] | None:
    """The figures of one ``epoch N: {...}`` line of :mod:`ner.training`'s log, or None for any
    other line: ``epoch``, ``loss``, ``seconds`` and, when dev was scored, ``dev_primary`` (typed
    relation F1 for SpERT) and ``dev_entity_f1`` (percent). The dict is read as a Python literal,
    and, should that fail (a value without a literal form), key by key."""
    match = _EPOCH_LINE.search(line)
    if match is None:
        return None
    try:
        values = ast.literal_eval(match.group(2))
    except (ValueError, SyntaxError):
        values = _key_values(match.group(2))
    if not isinstance(values, dict):
        return None
    found: dict[str, Any] = {"epoch": int(match.group(1))}
    for key, name in (("loss", "loss"), ("train_seconds", "seconds")):
        if isinstance(values.get(key), int | float):
            found[name] = float(values[key])
    selection = values.get("dev_selection")
    if isinstance(selection, list | tuple) and len(selection) == 2:
        found["dev_primary"], found["dev_entity_f1"] = (float(v) for v in selection)
    return found


def _key_values(text: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in ("loss", "train_seconds"):
        match = re.search(rf"'{key}': {_NUMBER}", text)
        if match:
            values[key] = float(match.group(1))
    match = re.search(rf"'dev_selection': [(\[]{_NUMBER}, {_NUMBER}[)\]]", text)
    if match:
        values["dev_selection"] = (float(match.group(1)), float(match.group(2)))
    return values


class ProgressLog(logging.Handler):
    """Progress as JSON lines: ``split``, ``step`` (at most one a second), ``epoch`` (from the
    training log's epoch lines), then ``done`` or ``error``; each with ``time`` (Unix seconds).

    Steps are counted by :func:`ner.training.train`'s ``on_step`` hook; ``total`` is the steps of
    the whole run, estimated from the training documents until the first epoch has counted them.
    Without a file it does nothing.
    """

    def __init__(self, path: Path | None, epochs: int, steps_per_epoch: int) -> None:
        super().__init__(logging.INFO)
        self.path, self.epochs, self.per_epoch = path, epochs, max(1, steps_per_epoch)
        self.done_steps, self.epoch_steps, self.epoch, self.last = 0, 0, 1, 0.0
        self.stream = None  # not ``handle``: logging.Handler.handle is a method
        self.level_before: int | None = None

    def __enter__(self) -> ProgressLog:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in __exit__)
            source = logging.getLogger("ner.training")
            source.addHandler(self)
            if not source.isEnabledFor(logging.INFO):  # the epoch lines are INFO: not to be filtered out
                self.level_before = source.level
                source.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        source = logging.getLogger("ner.training")
        source.removeHandler(self)
        if self.level_before is not None:
            source.setLevel(self.level_before)
        if self.stream is not None:
            self.stream.close()

    def event(self, name: str, **fields: Any) -> None:
        if self.stream is not None:
            record = {"event": name, "time": round(time.time(), 3), "epochs": self.epochs, **fields}
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()

    def step(self, task: str, model: object) -> None:
        """``on_step`` hook: one more training batch."""
        self.done_steps += 1
        self.epoch_steps += 1
        now = time.time()
        if now - self.last >= 1.0 or self.epoch_steps == 1:
            self.last = now
            self.event("step", **self._position())

    def _position(self) -> dict[str, int]:
        left = self.epochs - self.epoch
        total = self.done_steps + max(0, self.per_epoch - self.epoch_steps) + left * self.per_epoch
        return {"epoch": self.epoch, "step": self.epoch_steps, "done": self.done_steps, "total": total}

    def emit(self, record: logging.LogRecord) -> None:
        """An epoch line of the training log becomes an ``epoch`` event (a failure here is
        reported by logging and never stops the training)."""
        try:
            figures = parse_epoch_line(record.getMessage())
            if figures is None:
                return
            self.per_epoch = max(1, self.epoch_steps)  # now counted, not estimated
            self.event("epoch", **{**self._position(), **figures})
            self.epoch, self.epoch_steps = figures["epoch"] + 1, 0
        except Exception:  # noqa: BLE001
            self.handleError(record)
