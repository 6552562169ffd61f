"""Training tasks: one dataset, one head. A task names its files, their format and its head.

Multi-task NER (MT-BioNER) is a list of tasks sharing one encoder; SpERT is a task like any other.
This module turns a task's settings into gold :class:`Document`s and the head's :class:`Schema`,
and checks that the labels in the files agree with each other and with the configuration, so a
typo in ``entity_type`` or a wrong split fails before the first training step, not after an hour.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ner.alignment import Tokenizer, retokenize_all
from ner.corpora import check_encoding, read_corpus, read_spert_json, read_spert_types
from ner.documents import Document, Schema
from ner.heads import HEAD_TYPES
from ner.heads.tagger import TaggerConfig

CorpusFormat = Literal["spert_json", "biobert_tsv", "crichton_iob", "conll2003", "conll2002", "wikiann"]
# Any registered head's config, chosen by its ``type`` (a new head type needs no change here).
HeadConfig = Annotated[Union[tuple(config for config, _ in HEAD_TYPES.values())], Field(discriminator="type")]  # noqa: UP007
SPLITS = ("train", "dev", "test")
logger = logging.getLogger(__name__)


class TaskError(ValueError):
    """A task's data disagrees with its configuration (labels, formats, files)."""


class TaskSettings(BaseModel):
    """One dataset and the head that learns from it; paths are relative to the config's ``data_root``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z][\w\-]*$", description="head name; also the doc.spans key")
    format: CorpusFormat
    train: str | list[str] = Field(
        description="a file, or several in the same format whose sentences are pooled "
        "(e.g. English + Spanish + Dutch for multilingual training)"
    )
    dev: str | None = None
    test: str | None = None
    types: str | None = Field(None, description="SpERT types.json (spert_json only)")
    entity_type: str | None = Field(
        None, description="the type of an untyped B/I/O corpus (biobert_tsv), e.g. 'Gene'"
    )
    labels: list[str] | None = Field(
        None, description="expected entity labels; the data may not hold others (default: the train set's)"
    )
    head: HeadConfig = Field(default_factory=TaggerConfig)
    batch_size: int | None = Field(None, ge=1, description="default: training.batch_size")
    encoding: str | None = Field(
        None,
        description="text encoding of the task's files, e.g. 'latin-1' for the original CoNLL-2002 files; "
        "default: UTF-8 (or the file's byte-order mark). Never guessed: a file that does not decode is "
        "refused with the byte offset",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str | None) -> str | None:
        return None if encoding is None else check_encoding(encoding)

    @model_validator(mode="after")
    def _format_needs(self) -> TaskSettings:
        if self.format == "spert_json" and self.types is None:
            raise ValueError(f"task {self.name!r}: format spert_json needs 'types' (the types.json file)")
        if self.format != "spert_json" and self.types is not None:
            raise ValueError(f"task {self.name!r}: 'types' is only for spert_json")
        if self.format == "biobert_tsv" and self.entity_type is None:
            raise ValueError(
                f"task {self.name!r}: biobert_tsv tags are untyped B/I/O; set entity_type (e.g. 'Disease')"
            )
        if self.format in ("spert_json",) and self.entity_type is not None:
            raise ValueError(f"task {self.name!r}: entity_type is only for untyped column formats")
        return self

    def files(self) -> list[tuple[str, str]]:
        """``(role, path)`` of every configured file; roles are ``train``, ``dev``, ``test``, ``types``."""
        train = [self.train] if isinstance(self.train, str) else self.train
        roles = [("train", path) for path in train]
        roles += [(role, getattr(self, role)) for role in ("dev", "test", "types") if getattr(self, role)]
        return roles


def read_split(task: TaskSettings, split: str, root: Path, schema: Schema | None = None) -> list[Document]:
    """Gold documents of one split (``[]`` when the task has none), on the corpus's own tokens."""
    return [doc for _, docs in read_files(task, split, root, schema) for doc in docs]


def read_files(
    task: TaskSettings, split: str, root: Path, schema: Schema | None = None
) -> list[tuple[str, list[Document]]]:
    """``(path, gold documents)`` of each file of one split, so what happens to each file's gold
    can be reported per file.

    A configured file that holds no documents is refused: an empty train file trains nothing, an
    empty dev file selects no epoch and an empty test file scores nothing, each of which would
    otherwise pass for a result.
    """
    relative = getattr(task, split)
    if relative is None:
        return []
    if task.format == "spert_json":
        schema = schema or read_spert_types(root / task.types, task.encoding)
    overrides = {"entity_type": task.entity_type} if task.entity_type else {}
    files = []
    for path in [relative] if isinstance(relative, str) else relative:
        if task.format == "spert_json":
            found = read_spert_json(root / path, schema, task.encoding)
        else:
            found = read_corpus(root / path, task.format, encoding=task.encoding, **overrides)
        if not found:
            raise TaskError(
                f"task {task.name!r}: the {split} file {root / path} holds no documents{_HINTS[split]}"
            )
        files.append((path, found))
    return files


def _first(files: list[tuple[str, list[Document]]], limit: int | None) -> list[tuple[str, list[Document]]]:
    """The files' first ``limit`` documents taken together, still grouped by file."""
    kept, left = [], limit
    for path, docs in files:
        if left is not None and left <= 0:
            break
        kept.append((path, docs if left is None else docs[:left]))
        left = None if left is None else left - len(docs)
    return kept


_HINTS = {
    "train": "; nothing to train on",
    "dev": "; no epoch can be selected on it (leave 'dev' out to keep the last epoch)",
    "test": "; nothing to score (leave 'test' out to skip the test scores)",
}


def labels_in(docs: Sequence[Document]) -> list[str]:
    """Entity labels of ``docs``, sorted, so a schema does not depend on sentence order."""
    return sorted({entity.label for doc in docs for entity in doc.entities})


def task_schema(task: TaskSettings, root: Path, train_docs: Sequence[Document]) -> Schema:
    """The head's label inventory: the types file, ``labels``, or the train set's labels."""
    if task.format == "spert_json":
        schema = read_spert_types(root / task.types, task.encoding)
        if task.labels is not None and sorted(task.labels) != sorted(schema.entity_labels):
            raise TaskError(
                f"task {task.name!r}: labels {task.labels} differ from {task.types}: "
                f"{list(schema.entity_labels)}"
            )
        return schema
    labels = task.labels if task.labels is not None else labels_in(train_docs)
    if not labels:
        raise TaskError(f"task {task.name!r}: {task.train} holds no entities")
    return Schema(entity_labels=tuple(labels), relation_types=())


def check_labels(head: str, path: str | Path, docs: Sequence[Document], schema: Schema) -> None:
    """Every entity label in ``docs`` (read from ``path``) must be one the head predicts."""
    unknown = sorted(set(labels_in(docs)) - set(schema.entity_labels))
    if unknown:
        raise TaskError(
            f"head {head!r}: {path} has labels {unknown} that the head does not predict "
            f"({list(schema.entity_labels)}); fix 'labels'/'entity_type' or the file"
        )


def check_learnable(task: TaskSettings, train: Sequence[Document], schema: Schema, limited: bool) -> None:
    """Refuse a train set without a single entity (the head would learn to predict nothing, and the
    run would still end with a pipeline and scores); warn about labels it never shows."""
    if not any(doc.entities for doc in train):
        limit = " (the first training.max_train_docs of them)" if limited else ""
        raise TaskError(
            f"task {task.name!r}: the {len(train)} training documents{limit} of {task.train} hold no "
            "entities; a head cannot learn from them"
        )
    unseen = sorted(set(schema.entity_labels) - set(labels_in(train)))
    if unseen:
        logger.warning(
            "task %r: no training entity of type %s; the head cannot learn them", task.name, unseen
        )
    relations = {relation.label for doc in train for relation in doc.relations}
    unseen = sorted(set(schema.relation_labels) - relations)
    if unseen:
        logger.warning(
            "task %r: no training relation of type %s; the head cannot learn them", task.name, unseen
        )


class TaskData:
    """A task's settings, schema and gold documents, loaded and checked once.

    ``schema`` is given when the head already exists (a pipeline being extended): the files must
    then fit the trained head's labels instead of defining them.

    With a ``tokenizer`` (the pipeline's own, see :func:`ner.pipeline.pipeline_tokenizer`) every
    split is moved onto its tokens (:mod:`ner.alignment`), and ``alignment`` says, per file, how many
    gold spans were normalised and how many could not be aligned; without one the documents keep
    the corpus's tokens (the papers' protocol).
    """

    def __init__(
        self,
        task: TaskSettings,
        root: Path,
        *,
        splits: Sequence[str] = SPLITS,
        schema: Schema | None = None,
        max_train_docs: int | None = None,
        max_dev_docs: int | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self.task = task
        self.name = task.name
        self.alignment: list[dict] = []
        train = read_files(task, "train", root, schema) if "train" in splits else []
        self.schema = schema or task_schema(task, root, [doc for _, docs in train for doc in docs])
        self.train = self._tokenized("train", _first(train, max_train_docs), tokenizer)
        dev = _first(read_files(task, "dev", root, self.schema), max_dev_docs) if "dev" in splits else []
        self.dev = self._tokenized("dev", dev, tokenizer)
        test = read_files(task, "test", root, self.schema) if "test" in splits else []
        self.test = self._tokenized("test", test, tokenizer)
        for split in splits:
            check_labels(task.name, getattr(task, split), getattr(self, split), self.schema)
        if "train" in splits:
            check_learnable(task, self.train, self.schema, limited=max_train_docs is not None)
        if self.dev and not any(doc.entities for doc in self.dev):
            logger.warning(
                "task %r: the dev set %s holds no entities, so its F1 is 0 at every epoch and cannot "
                "select one for this task",
                task.name,
                task.dev,
            )

    def _tokenized(
        self, split: str, files: list[tuple[str, list[Document]]], tokenizer: Tokenizer | None
    ) -> list[Document]:
        """The files' documents, on ``tokenizer``'s tokens when there is one; each file's alignment
        is logged (a warning when gold spans could not be aligned) and kept in ``alignment``."""
        if tokenizer is None:
            return [doc for _, docs in files for doc in docs]
        documents = []
        for path, docs in files:
            aligned, report = retokenize_all(docs, tokenizer)
            self.alignment.append({"split": split, "file": str(path), **asdict(report)})
            level = logging.WARNING if report.unaligned else logging.INFO
            logger.log(level, "task %r, %s file %s: %s", self.name, split, path, report.describe())
            documents += aligned
        return documents
