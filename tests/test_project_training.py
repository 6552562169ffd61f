"""``ner train --project``: the train/dev split of a project, the choice of base, the progress
file and its parser (on the training's own log lines), and suggestions again from the new model."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ner.annotation import AnnotatedDoc, AnnotationError, AnnotationStore, Project, Span, load_dataset
from ner.annotation.refresh import refresh_suggestions
from ner.cli import app
from ner.pipeline import DEFAULT_PIPELINE, load
from ner.project_training import (
    ProjectTraining,
    choose_base,
    parse_epoch_line,
    partial_folder,
    split_documents,
)
from tests.conftest import DATA

# Lines of a real run's log (tiny encoder, toy project), as ner.training writes them.
REAL_LOG = """\
project toy.annotations.json: 6 documents marked done: 5 to train on, 1 for dev (20% by a hash of each document seeded with 42)
base: a fresh 'spert' head on the encoder '/tmp/pt/enc'
task 'spert', train file train.json: 12 gold spans, 0 with a trailing mark stripped, 0 not aligned to the pipeline's tokens
epoch 1: {'epoch': 1, 'loss': 4.912849426269531, 'train_seconds': 0.6, 'train_words_per_second': 56.0, 'dev_selection': (0.0, 6.249999999999999)}
epoch 1/2:  40%|████      | 2/5 [00:01<00:02,  1.20batch/s, loss=4.120, task=spert]
epoch 2: {'epoch': 2, 'loss': 4.337224960327148, 'train_seconds': 2.3, 'train_words_per_second': 15.0, 'dev_selection': (0.0, 6.666666666666667)}
best epoch 2; pipeline in /tmp/pt/out
"""  # noqa: E501


def toy_project(done: int | None = None) -> Project:
    project = load_dataset(DATA / "toy_train.json", name="toy")
    for doc in project.docs[:done]:
        doc.done = True
    return project


def many_docs(count: int) -> Project:
    return Project(docs=[AnnotatedDoc(f"d{i}", f"Text number {i} .", done=True) for i in range(count)])


def test_the_split_is_seeded_states_its_sizes_and_keeps_a_dev_document():
    settings = ProjectTraining()
    first, again = split_documents(many_docs(20), settings), split_documents(many_docs(20), settings)
    assert [d.id for d in first.dev] == [d.id for d in again.dev] and len(first.dev) == 4
    assert {d.id for d in first.train} | {d.id for d in first.dev} == {f"d{i}" for i in range(20)}
    other = split_documents(many_docs(20), ProjectTraining(seed=7))
    assert {d.id for d in other.dev} != {d.id for d in first.dev}
    assert len(split_documents(many_docs(2), settings).dev) == 1  # never none, never all
    assert (
        "2 documents marked done: 1 to train on, 1 for dev (20%"
        in split_documents(many_docs(2), settings).describe()
    )
    grown = split_documents(many_docs(21), settings)  # stable as the project grows
    assert len({d.id for d in grown.dev} & {d.id for d in first.dev}) >= 3


def test_too_few_documents_is_refused_with_what_to_do():
    project = toy_project(done=1)
    with pytest.raises(AnnotationError, match="has 1 document marked done: training needs at least 2.*mark"):
        split_documents(project, ProjectTraining())
    assert len(split_documents(project, ProjectTraining(documents="all")).train) == 5  # gold: use all


def test_the_shipped_pipeline_is_continued_only_when_it_has_every_label():
    project = toy_project()  # CoNLL04's labels
    same = choose_base(str(DEFAULT_PIPELINE), project)
    assert same.continued and "every label" in same.reason
    project.entity_labels.append("Drug")
    fresh = choose_base(str(DEFAULT_PIPELINE), project)
    assert not fresh.continued and "lacks the project's labels ['Drug']" in fresh.reason
    assert fresh.encoder["name"] == "multilingual-e5-small" and fresh.encoder["num_layers"] == 6
    assert fresh.recipe["head_learning_rate"] == 1e-3  # the shipped recipe, not the paper's defaults


def test_the_parser_reads_the_epoch_lines_of_a_real_log_and_nothing_else():
    parsed = [parse_epoch_line(line) for line in REAL_LOG.splitlines()]
    found = [p for p in parsed if p is not None]
    assert found == [
        {
            "epoch": 1,
            "loss": 4.912849426269531,
            "seconds": 0.6,
            "dev_primary": 0.0,
            "dev_entity_f1": 6.249999999999999,
        },
        {
            "epoch": 2,
            "loss": 4.337224960327148,
            "seconds": 2.3,
            "dev_primary": 0.0,
            "dev_entity_f1": 6.666666666666667,
        },
    ]
    odd = "epoch 3: {'epoch': 3, 'loss': nan, 'train_seconds': 1.0, 'dev_selection': (12.5, 40.0)}"
    diverged = parse_epoch_line(odd)  # not a Python literal: read key by key
    assert math.isnan(diverged.pop("loss"))
    assert diverged == {"epoch": 3, "seconds": 1.0, "dev_primary": 12.5, "dev_entity_f1": 40.0}
    assert parse_epoch_line("epoch 1/2:  40%|████| 2/5") is None


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_encoder_dir) -> tuple[Path, Path, str]:
    """``ner train --project`` on the toy project with the tiny encoder: (pipeline, project file, log)."""
    folder = tmp_path_factory.mktemp("project-training")
    path = folder / "toy.annotations.json"
    AnnotationStore.create(path, toy_project())
    before = path.read_bytes()
    handler, logger = _Lines(), logging.getLogger("ner")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # as the CLI's basicConfig does outside pytest
    try:
        result = CliRunner().invoke(
            app,
            ["train", "--project", str(path), "--base", str(tiny_encoder_dir), "--epochs", "2", "--quiet"]
            + ["--output", str(folder / "model"), "--progress-file", str(folder / "progress.jsonl")],
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == before, "the project file is only read"
    return folder / "model", path, "\n".join(handler.lines)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_train_project_writes_a_pipeline_with_the_split_in_metrics_and_the_log(trained):
    pipeline, path, log = trained
    metrics = json.loads((pipeline / "metrics.json").read_text())
    project = metrics["project"]
    assert len(project["train"]) == 5 and len(project["dev"]) == 1 and project["seed"] == 42
    assert project["file"] == str(path) and project["continued"] is False
    assert "6 documents marked done: 5 to train on, 1 for dev" in log
    assert {p.name for p in (pipeline / "training_data").iterdir()} == {
        "train.json",
        "dev.json",
        "types.json",
    }
    assert not partial_folder(pipeline).exists()
    nlp = load(pipeline)
    assert nlp("Leonardo works for Warner Bros in Los Angeles .").text
    parsed = [p for p in map(parse_epoch_line, log.splitlines()) if p]
    assert [p["loss"] for p in parsed] == [e["loss"] for e in metrics["epochs"]]


def test_the_progress_file_has_the_split_steps_epochs_and_the_end(trained):
    pipeline, _, _ = trained
    events = [json.loads(line) for line in (pipeline.parent / "progress.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "split" and kinds[-1] == "done" and "step" in kinds
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[-1]["done"] == epochs[-1]["total"]
    assert all(e["dev_entity_f1"] >= 0 for e in epochs) and events[-1]["best_epoch"] in (1, 2)


def test_a_second_run_continues_the_first_and_replaces_its_folder(trained, tmp_path):
    pipeline, path, _ = trained
    output = tmp_path / "again"
    output.mkdir()
    (output / "stale.txt").write_text("not a pipeline")
    args = [
        "train",
        "--project",
        str(path),
        "--base",
        str(pipeline),
        "--epochs",
        "1",
        "--quiet",
        "-o",
        str(output),
    ]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "exists and is not a pipeline folder" in refused.output
    (output / "stale.txt").unlink()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((output / "metrics.json").read_text())["project"]["continued"] is True


def test_refusals_are_messages(trained, tmp_path):
    _, path, _ = trained
    few = tmp_path / "few.annotations.json"
    AnnotationStore.create(few, toy_project(done=1))
    result = CliRunner().invoke(app, ["train", "--project", str(few), "--quiet", "-o", str(tmp_path / "m")])
    assert result.exit_code == 2 and "training needs at least 2" in result.output
    assert not (tmp_path / "m").exists() and not partial_folder(tmp_path / "m").exists()
    both = CliRunner().invoke(app, ["train", str(DATA / "toy.toml"), "--project", str(path)])
    assert both.exit_code == 2 and "CONFIG cannot be used" in both.output
    neither = CliRunner().invoke(app, ["train"])
    assert neither.exit_code == 2 and "give a training CONFIG or --project" in neither.output


def test_refresh_suggestions_replaces_only_unreviewed_suggestions_of_unfinished_documents(trained):
    pipeline, _, _ = trained
    project = toy_project(done=1)
    finished, open_doc = project.docs[0], project.docs[1]
    finished.spans.append(Span(0, 3, "Stale", status="suggested"))
    open_doc.spans.append(Span(0, 3, "Stale", status="suggested"))
    open_doc.meta["pipeline"] = {"name": "older"}
    kept = [s for s in open_doc.spans if s.status == "accepted"]
    count = refresh_suggestions(project, load(pipeline))
    assert count == len(project.docs) - 1
    assert all(s.label != "Stale" for s in open_doc.spans) and open_doc.meta["pipeline"]["name"] != "older"
    assert [s for s in open_doc.spans if s.status == "accepted"] == kept
    assert any(s.label == "Stale" for s in finished.spans), "a finished document is left alone"
