"""Training configuration: TOML files validated by pydantic, with clear messages for wrong values.

Data paths are relative to ``data.root``, which may use ``${VAR:-default}`` (by default
``${NER_DATA_DIR:-../../shared/data}``); a relative root is taken from the config file's folder,
so ``pipelines/conll04.toml`` finds ``../shared/data`` beside the repository.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ner.encoder import DEFAULT_ENCODER
from ner.heads.spert import SpertConfig


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
    freeze_word_embeddings: bool = False


class DataSettings(_Strict):
    root: str = "${NER_DATA_DIR:-../../shared/data}"
    train: str
    dev: str | None = None
    test: str | None = None
    types: str


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
    max_train_docs: int | None = Field(None, ge=1, description="use only the first N training documents")


class ExportSettings(_Strict):
    storage: Literal["full", "delta"] = "full"
    dtype: Literal["float16", "float32"] = "float16"
    pipeline_name: str = "conll04_spert"
    lang: str = "en"


class TrainConfig(_Strict):
    encoder: EncoderSettings = EncoderSettings()
    head: SpertConfig = SpertConfig()
    head_name: str = "spert"
    data: DataSettings
    training: TrainingSettings = TrainingSettings()
    export: ExportSettings = ExportSettings()
    output: str = "runs/model"

    def data_path(self, name: str, base: Path) -> Path | None:
        """Absolute path of a data file, or None when it is not configured."""
        relative = getattr(self.data, name)
        if relative is None:
            return None
        root = Path(expand_env(self.data.root))
        root = root if root.is_absolute() else base / root
        return (root / relative).resolve()


_ENV = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_env(value: str) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``."""
    return _ENV.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)


class ConfigError(ValueError):
    """A configuration file is missing, malformed, or names data that does not exist."""


def load_config(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """Read and validate a TOML training config; data files must exist."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigError(f"config file not found: {path}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    for dotted, value in (overrides or {}).items():
        *parents, key = dotted.split(".")
        target = data
        for part in parents:
            target = target.setdefault(part, {})
        target[key] = value
    try:
        config = TrainConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{path}: invalid configuration\n{error}") from error
    for name in ("train", "dev", "test", "types"):
        file = config.data_path(name, path.parent)
        if file is not None and not file.is_file():
            raise ConfigError(
                f"{path}: data.{name} = {file} does not exist "
                "(set NER_DATA_DIR or data.root to the corpora folder)"
            )
    return config
