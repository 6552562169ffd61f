"""Which pipelines the app offers, what they are, and one loaded copy of each per server.

Offered: the shipped default (CoNLL04 SpERT), the folders in ``$NER_APP_PIPELINES`` (``ner app
--pipeline DIR`` puts its folders there), every ``runs/*/`` under the working directory that
holds a pipeline (training writes the biomedical and multilingual pipelines there), and the
pipelines trained in the app (``models/*/`` of its data folder). Describing a
pipeline reads only its JSON files, so the Models page and the selectors never load a model.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from spacy.language import Language

from app.paths import data_folder
from ner.files import read_json_object
from ner.pipeline import shipped_pipelines

ENV_PIPELINES = "NER_APP_PIPELINES"
MODELS = "models"  # the data folder's subfolder of pipelines trained in the app


@dataclass(frozen=True)
class Head:
    """One task head: its name (``doc.spans[name]``), type and labels."""

    name: str
    type: str
    entity_labels: tuple[str, ...]
    relation_labels: tuple[str, ...]


@dataclass(frozen=True)
class PipelineInfo:
    """What the app shows about a pipeline folder, from its meta.json and model.json."""

    path: Path
    name: str
    version: str
    lang: str
    description: str
    encoder: str
    heads: tuple[Head, ...]
    meta: dict
    title: str = ""  # unique display name, set by discover()

    @property
    def entity_labels(self) -> list[str]:
        return list(dict.fromkeys(label for head in self.heads for label in head.entity_labels))

    @property
    def relation_labels(self) -> list[str]:
        return list(dict.fromkeys(label for head in self.heads for label in head.relation_labels))

    @property
    def summary(self) -> str:
        """The meta description, or one said from the heads when the pipeline has none."""
        if self.description:
            return self.description
        kinds = sorted({head.type for head in self.heads})
        what = "entities and relations" if self.relation_labels else "entities"
        heads = f"{len(self.heads)} {'/'.join(kinds)} head{'s' if len(self.heads) != 1 else ''}"
        return f"{what.capitalize()} ({', '.join(self.entity_labels)}); {heads} on {self.encoder}"


def is_pipeline(path: Path) -> bool:
    return (path / "meta.json").is_file() and (path / "config.cfg").is_file()


def candidate_dirs(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> list[Path]:
    """The shipped pipelines (the default first), the ``$NER_APP_PIPELINES`` folders, ``runs/*/``,
    then those trained in the app (``models/*/`` of its data folder, latest last); no duplicates."""
    env = os.environ if env is None else env
    listed = [Path(p) for p in env.get(ENV_PIPELINES, "").split(os.pathsep) if p.strip()]
    runs = Path(cwd or Path.cwd()) / "runs"
    found = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
    unique: dict[Path, Path] = {}
    for path in [*shipped_pipelines().values(), *listed, *found, *trained_in_app()]:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def trained_in_app() -> list[Path]:
    """The pipelines the app's Train section wrote (``<data folder>/models/*/``; a run still
    writing is in a hidden folder there and not listed)."""
    folder = data_folder() / MODELS
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def describe(path: Path) -> PipelineInfo | None:
    """The pipeline in ``path``, or None when it is not one (or its meta.json is unreadable)."""
    if not is_pipeline(path):
        return None
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    model = read_json_object(path / "ner_extractor" / "model.json")
    heads = tuple(_head(name, spec) for name, spec in model.get("heads", {}).items())
    return PipelineInfo(
        path=path,
        name=str(meta.get("name") or path.name),
        version=str(meta.get("version", "")),
        lang=str(meta.get("lang", "")),
        description=str(meta.get("description") or ""),
        encoder=str(model.get("encoder", {}).get("name") or "unknown encoder"),
        heads=heads,
        meta=meta,
    )


def discover(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> list[PipelineInfo]:
    """Every offered pipeline, each with a unique title: its name, and where two share a name,
    where it comes from ("shipped" or its folder's name)."""
    infos = [info for info in map(describe, candidate_dirs(env, cwd)) if info is not None]
    names = Counter(info.name for info in infos)
    return [_titled(info, names[info.name] > 1) for info in infos]


def _titled(info: PipelineInfo, ambiguous: bool) -> PipelineInfo:
    shipped = {path.resolve() for path in shipped_pipelines().values()}
    origin = "shipped" if info.path.resolve() in shipped else info.path.name
    title = f"{info.name} ({origin})" if ambiguous else info.name
    return PipelineInfo(**{**info.__dict__, "title": title})


def _head(name: str, spec: dict) -> Head:
    schema = spec.get("schema", {})
    return Head(
        name=name,
        type=str(spec.get("config", {}).get("type", "?")),
        entity_labels=tuple(schema.get("entity_labels", ())),
        relation_labels=tuple(r["label"] for r in schema.get("relation_types", ())),
    )


@st.cache_resource(show_spinner="Loading the pipeline…", max_entries=4)
def load(path: str) -> Language:
    """One loaded copy of a pipeline per server process, shared by every session."""
    from ner.pipeline import load as load_pipeline

    return load_pipeline(path)
