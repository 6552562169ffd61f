"""Training configuration: TOML files validated by pydantic, with clear messages for wrong values.

A config is a list of ``[[tasks]]`` (one dataset and one head each, see :mod:`ner.tasks`) on one
shared ``[encoder]``. Data paths are relative to ``data_root``, which may use ``${VAR:-default}``
(by default ``${NER_DATA_DIR:-../../shared/data}``); a relative root is taken from the config
file's folder, so ``pipelines/conll04.toml`` finds ``../shared/data`` beside the repository.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ner.corpora import CorpusError, read_text
from ner.encoder import DEFAULT_ENCODER
from ner.model import DeltaDtype
from ner.tasks import TaskSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EncoderSettings(_Strict):
    name: str = Field(
        DEFAULT_ENCODER, description="offline alias, Hugging Face model name or local directory"
    )
    window: int | None = Field(None, ge=16, description="pieces per window; default: the model's limit")
    overlap: int | None = Field(
        None, ge=0, description="pieces shared by neighbouring windows; default min(128, window/4)"
    )
    num_layers: int | None = Field(
        None, ge=1, description="keep only the encoder's bottom N layers (faster); default: all"
    )
    freeze_word_embeddings: bool = False
    freeze_layers: int = Field(
        0, ge=0, description="train without the embeddings and this many bottom transformer layers"
    )


#: How ``init_from`` adds heads to a trained pipeline (see ``TrainingSettings.add_head_strategy``); the
#: default is chosen by measurement (BENCHMARKS.md), so changing it is this one line.
DEFAULT_ADD_HEAD_STRATEGY = "rehearsal"
AddHeadStrategy = Literal["fine_tune", "frozen_encoder", "rehearsal", "distill", "branch"]


class TrainingSettings(_Strict):
    """Optimisation settings; the defaults are SpERT's."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(2, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    head_learning_rate: float | None = Field(
        None, gt=0, description="learning rate of the freshly initialised heads; default: learning_rate"
    )
    warmup: float = Field(0.1, ge=0, le=1, description="fraction of all steps with a linear warm-up")
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    seed: int = 42
    threads: int | None = Field(None, ge=1, description="torch CPU threads; default: torch's choice")
    eval_batch_size: int = Field(64, ge=1)
    max_train_docs: int | None = Field(
        None, ge=1, description="use only the first N training documents of each task"
    )
    max_batch_words: int | None = Field(
        4096,
        ge=1,
        description="cap on a training batch's padded words (size x longest); long documents travel in "
        "smaller batches instead of exhausting memory; null: batch_size alone",
    )
    max_dev_docs: int | None = Field(
        None, ge=1, description="evaluate each epoch on the first N dev documents of each task"
    )
    sampling: Literal["shuffle", "proportional", "temperature", "round_robin"] = Field(
        "shuffle",
        description="how batches of different tasks are ordered: 'shuffle' (MT-DNN: every batch of every "
        "task once per epoch, in random order), 'proportional'/'temperature' (draw a task per step with "
        "probability ~ size or size^(1/T)), 'round_robin' (tasks in turn)",
    )
    temperature: float = Field(2.0, ge=1.0, description="T of 'temperature' sampling")
    tokenization: Literal["pipeline", "corpus"] = Field(
        "pipeline",
        description="the words training, dev selection and test scores see: 'pipeline' cuts each "
        "document's text with the tokenizer of the pipeline being trained (export.lang) and aligns the "
        "gold spans to its tokens, so the model learns on what nlp(text) gives it (ner.alignment); "
        "'corpus' keeps the corpus's own tokens (the papers' protocol, to reproduce earlier runs)",
    )
    add_head_strategy: AddHeadStrategy = Field(
        DEFAULT_ADD_HEAD_STRATEGY,
        description="with init_from, how new heads are added without damaging the pipeline's other heads "
        "(those this run does not train): 'fine_tune' (the shared encoder learns the new task; the "
        "old heads' weights stay but the features they read move), 'frozen_encoder' (only the new "
        "heads train: the old heads' outputs stay exactly the same), 'rehearsal' (the old heads keep "
        "training on their own data, from the files the pipeline's task records name; heads whose "
        "files are missing are distilled instead), 'distill' (learning without forgetting: the old "
        "heads' outputs on the new data are kept close to a frozen copy's by a distillation loss; no "
        "old data needed), 'branch' (each new head gets its own copy of the top branch_layers encoder "
        "layers; the shared encoder is frozen, so old heads' outputs stay exactly the same; inference "
        "costs one shared pass plus branch_layers layers per new head). Ignored without init_from",
    )
    distill_weight: float = Field(
        1.0, ge=0, description="weight of the distillation loss against the new task's loss ('distill')"
    )
    distill_temperature: float = Field(
        2.0, gt=0, description="softmax temperature of the distillation loss ('distill')"
    )
    branch_layers: int = Field(
        2, ge=1, description="top encoder layers each new head gets its own copy of ('branch')"
    )


class ExportSettings(_Strict):
    storage: Literal["full", "delta"] = "full"
    dtype: DeltaDtype = Field("float16", description="of the stored differences (delta storage only)")
    pipeline_name: str = "extractor"
    lang: str = "en"


class TrainConfig(_Strict):
    encoder: EncoderSettings = EncoderSettings()
    data_root: str = "${NER_DATA_DIR:-../../shared/data}"
    tasks: list[TaskSettings] = Field(min_length=1)
    init_from: str | None = Field(
        None,
        description="a trained pipeline directory to continue from (relative to the working directory): "
        "its encoder and heads are kept, tasks with new names add heads",
    )
    training: TrainingSettings = TrainingSettings()
    export: ExportSettings = ExportSettings()
    output: str = "runs/model"

    @field_validator("tasks")
    @classmethod
    def _unique_names(cls, tasks: list[TaskSettings]) -> list[TaskSettings]:
        names = [task.name for task in tasks]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"task names must be unique (they name the heads); repeated: {repeated}")
        return tasks

    def root(self, base: Path) -> Path:
        """The data folder, with environment variables expanded; relative roots start at ``base``."""
        root = Path(expand_env(self.data_root))
        return (root if root.is_absolute() else base / root).resolve()


_ENV = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_env(value: str) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``."""
    return _ENV.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)


class ConfigError(ValueError):
    """A configuration file is missing, malformed, or names data that does not exist."""


def _read_toml(path: Path) -> dict:
    """The TOML table of ``path``; a missing, unreadable, undecodable or malformed file is a
    :class:`ConfigError` naming it (TOML is UTF-8 by definition, so no other encoding is tried)."""
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        return tomllib.loads(read_text(path, "utf-8", "TOML config file", "TOML is UTF-8: convert it"))
    except CorpusError as error:
        raise ConfigError(str(error)) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def set_dotted(data: dict, dotted: str, value: object, path: Path) -> None:
    """Set ``data[a][b][c] = value`` for ``dotted = "a.b.c"``, creating missing tables: how a
    ``--set`` override reaches a config (``path`` names the source in the error when a key below
    a value is not a table)."""
    *parents, key = dotted.split(".")
    target = data
    for depth, part in enumerate(parents):
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            where = ".".join(parents[: depth + 1])
            raise ConfigError(f"{path}: cannot set {dotted}: {where} = {target!r} is not a table")
    target[key] = value


def load_config(
    path: str | Path, overrides: dict | None = None, only_tasks: Sequence[str] = ()
) -> TrainConfig:
    """Read and validate a TOML training config; data files must exist. ``only_tasks`` keeps the
    named tasks only (single-task baselines from a multi-task config)."""
    path = Path(path)
    data = _read_toml(path)
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value, path)
    if only_tasks:
        if not isinstance(data.get("tasks"), list) or not all(isinstance(t, dict) for t in data["tasks"]):
            raise ConfigError(f"{path}: 'tasks' must be a list of [[tasks]] tables")
        known = [task.get("name") for task in data.get("tasks", [])]
        missing = sorted(set(only_tasks) - set(known))
        if missing:
            raise ConfigError(f"{path}: no task named {missing}; tasks: {known}")
        data["tasks"] = [task for task in data["tasks"] if task.get("name") in only_tasks]
    try:
        config = TrainConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{path}: invalid configuration\n{error}") from error
    root = config.root(path.parent)
    for index, task in enumerate(config.tasks):
        for role, relative in task.files():
            if not (root / relative).is_file():
                raise ConfigError(
                    f"{path}: tasks[{index}] ({task.name}).{role} = {root / relative} does not exist "
                    "(set NER_DATA_DIR or data_root to the corpora folder)"
                )
    if config.init_from is not None:
        init = Path(config.init_from)  # like ``output``: relative to the working directory
        if not (init / "meta.json").is_file():
            raise ConfigError(f"{path}: init_from = {init} is not a saved pipeline (no meta.json)")
    return config
