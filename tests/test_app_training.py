"""Training from the app: a background ``ner train --project`` whose state is files (start, progress,
cancel, failure), and the Models page's Train section under AppTest, from the click to the new
pipeline's suggestions in the project."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import model_cards
from app.annotate import training_job
from ner.annotation import AnnotationError, AnnotationStore, load_dataset
from ner.project_training import ProjectTraining, partial_folder
from tests.conftest import DATA

MAIN = str(Path(__file__).parents[1] / "app" / "main.py")
WAIT = 300  # seconds a tiny run may take on a loaded 2-core machine (not a timing assertion)


def project_file(folder: Path, done: int | None = None) -> Path:
    project = load_dataset(DATA / "toy_train.json", name="toy")
    for doc in project.docs[:done]:
        doc.done = True
    path = AnnotationStore.path_for(folder, "toy")
    AnnotationStore.create(path, project)
    return path


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {WAIT} s")
        time.sleep(0.5)


def test_seconds_left_come_from_the_steps_so_far():
    events = [
        {"event": "split", "time": 100.0, "epochs": 2, "train": 8, "dev": 2, "base": "b"},
        {"event": "step", "time": 110.0, "epochs": 2, "epoch": 1, "step": 1, "done": 1, "total": 9},
        {"event": "step", "time": 120.0, "epochs": 2, "epoch": 1, "step": 3, "done": 3, "total": 9},
    ]
    progress = training_job.summarise(events, "running", now=122.0)
    assert progress.seconds_left == 5 * 6 - 2  # 5 s a step, 6 steps to go, 2 s since the last report
    assert (progress.epoch, progress.epochs, progress.fraction) == (1, 2, 3 / 9)
    assert progress.split == {"train": 8, "dev": 2, "base": "b"}
    assert training_job.summarise(events[:2], "running", now=111.0).seconds_left is None


def test_a_run_is_files_and_cancel_stops_its_whole_process_group(tmp_path, tiny_encoder_dir):
    path = project_file(tmp_path)
    before = path.read_bytes()
    job = training_job.start(path, tmp_path, ProjectTraining(base=str(tiny_encoder_dir), epochs=500))
    pid = job.info["pid"]
    assert job.state() == "running"
    assert (job.folder / training_job.SNAPSHOT / path.name).read_bytes() == before
    wait_for(lambda: job.progress().done > 0, "the first training step")
    reloaded = training_job.latest(tmp_path, path)  # what a page reload finds
    assert reloaded.id == job.id and reloaded.progress().state == "running"
    assert reloaded.progress().total >= 500 * 5 // 2
    training_job.cancel(reloaded)
    assert reloaded.state() == "cancelled" and training_job.jobs(tmp_path)[0].state() == "cancelled"
    assert running_in_group(pid) == [], "nothing of the group runs on"
    assert path.read_bytes() == before, "the project file is never written"
    assert not job.output.exists() and not partial_folder(job.output).exists()


def test_a_failed_run_says_why_and_too_few_documents_start_nothing(tmp_path):
    path = project_file(tmp_path)
    job = training_job.start(path, tmp_path, ProjectTraining(base="no-such-encoder", epochs=1))
    wait_for(lambda: job.state() != "running", "the run to fail")
    progress = job.progress()
    assert progress.state == "failed" and "'no-such-encoder' cannot be loaded" in progress.message
    (tmp_path / "few").mkdir()
    few = project_file(tmp_path / "few", done=1)
    with pytest.raises(AnnotationError, match="training needs at least 2"):
        training_job.start(few, tmp_path / "few", ProjectTraining())
    assert not (tmp_path / "few" / training_job.JOBS).exists()


def running_in_group(group: int) -> list[int]:
    """The processes of process group ``group`` that still run (zombies, ended, left out)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(element.value) for element in at.get(kind)]


def test_train_from_the_models_page_watch_it_then_preannotate_with_it(
    tmp_path, monkeypatch, tiny_encoder_dir
):
    data = tmp_path / "data"
    shutil.copytree(tiny_encoder_dir, data / "encoder")
    path = project_file(data, done=4)
    monkeypatch.setenv("NER_APP_DATA_DIR", str(data))
    monkeypatch.delenv("NER_APP_PIPELINES", raising=False)
    monkeypatch.chdir(tmp_path)
    at = AppTest.from_file(MAIN, default_timeout=120).run()
    at = at.switch_page("views/models.py").run()
    assert not at.exception
    at.number_input(key="train_epochs").set_value(3)
    at.text_input(key="train_encoder").set_value("encoder")
    next(b for b in at.button if b.label == "Train").click().run()
    assert not at.exception and not texts(at, "error")
    seen: list[str] = []
    deadline = time.monotonic() + WAIT
    while not any(t.startswith("Trained") for t in texts(at, "success")):
        assert time.monotonic() < deadline, f"no result after {WAIT} s; progress seen: {seen}"
        assert not texts(at, "error"), texts(at, "error")
        seen += [p.proto.text for p in at.get("progress")]
        time.sleep(1)
        at.run()
    assert any(t.startswith(("Epoch", "Preparing")) for t in seen), "the progress bar was shown while it ran"
    assert [p.proto.text for p in at.get("progress")] == [
        "Epoch 3 of 3 · step 6 of 6"
    ]  # 3 train docs, 2 a batch
    job = training_job.jobs(data)[0]
    assert job.output.parent == data / "models" and "toy" in list(at.dataframe[0].value["pipeline"])
    record = json.loads((job.output / "metrics.json").read_text())["project"]
    assert Path(record["file"]).name == path.name, "the card names the project, not the job's copy"
    next(b for b in at.button if b.label.startswith("Pre-annotate")).click().run()
    assert "suggested again on 2 unfinished documents" in " ".join(texts(at, "success"))
    saved = json.loads(path.read_text())["project"]["docs"]
    assert [doc["meta"].get("pipeline", {}).get("name") for doc in saved] == [None] * 4 + ["toy"] * 2


def test_the_learning_curve_and_a_project_runs_provenance_for_the_models_page(tmp_path):
    result = {
        "shipped": {"test_raw": {"entities": 88.2, "relations_with_types": 62.5}},
        "points": [
            {"documents": n, "test_raw": {"entities": f1, "relations_with_types": f1 / 2}}
            for n, f1 in ((50, 40.0), (100, 60.0))
        ],
    }
    (tmp_path / "curve.json").write_text(json.dumps(result))
    points, shipped = model_cards.learning_curve(tmp_path / "curve.json")
    assert list(points["F1"]) == [40.0, 20.0, 60.0, 30.0] and list(shipped["F1"]) == [88.2, 62.5]
    assert model_cards.learning_curve_chart(points, shipped).to_dict()["layer"][1]["mark"]["type"] == "rule"
    assert model_cards.learning_curve(tmp_path / "missing.json") is None
    note = model_cards.project_note(
        {"project": {"file": "/d/toy.annotations.json", "documents": "done", "seed": 42, "train": ["a", "b"]}}
    )
    assert note.startswith(
        "Trained on the project `toy.annotations.json`: 2 documents marked done to train on"
    )
    assert model_cards.project_note({}) == ""
