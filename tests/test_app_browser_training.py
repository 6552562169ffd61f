"""The model in the loop, in a real browser (Debian's chromium, Playwright): annotate → train →
pre-annotate.

A small project (four documents marked done with gold annotations, two unfinished) is in the
app's data folder with a tiny random encoder. From the Models page's Train section a short
training on that encoder starts in the background; its progress (the epoch and step, then the
dev F1 chart) is seen on the page while it runs, and a screenshot taken then. When it ends, the
new pipeline is in the pipeline list with the project it was trained on, and one click
pre-annotates the unfinished documents with it: the project file holds its suggestions, with
what the pipeline put in ``doc.ents`` recorded, and the Annotate page shows exactly those.

The server and the browser are those of tests/test_app_browser.py (its fixtures, which also fail
the test on any request that leaves the app's server), and so is its screenshot folder.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from ner.annotation import AnnotatedDoc, AnnotationStore, load_dataset
from ner.project_training import ProjectTraining, split_documents
from tests.conftest import DATA
from tests.test_app_browser import (  # noqa: F401 (page, screenshots, server: fixtures)
    expect,
    page,
    screenshot,
    screenshots,
    server,
    settle,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

EPOCHS = 10  # long enough for the page to show a few epochs, a few seconds with the tiny encoder
TRAINING = 600_000  # ms a tiny run may take on a loaded 2-core machine (not a timing assertion)


def small_project(data: Path) -> Path:
    """Four gold documents marked done, then two unfinished ones with the texts of two it trains
    on (a model that has learnt its training documents has something to suggest on them)."""
    project = load_dataset(DATA / "toy_train.json", name="toy")
    project.docs = project.docs[:4]
    for doc in project.docs:
        doc.done = True
    train = split_documents(project, ProjectTraining()).train  # the page's defaults: 20%, seed 42
    project.docs += [AnnotatedDoc(f"again-{doc.id}", doc.text) for doc in train[:2]]
    path = AnnotationStore.path_for(data, "toy")
    AnnotationStore.create(path, project)
    return path


def test_train_watch_it_then_preannotate_with_it_in_a_real_browser(server, page, tiny_encoder_dir):  # noqa: F811
    url, work = server
    data = work / "projects"  # the server's --data-dir
    data.mkdir(exist_ok=True)
    shutil.copytree(tiny_encoder_dir, data / "encoder")  # an encoder is taken only from the data folder
    path = small_project(data)

    page.goto(f"{url}/models")
    page.get_by_role("button", name=re.compile(r"Train$")).wait_for(timeout=240_000)  # a cold start
    page.get_by_role("spinbutton", name="Epochs").fill(str(EPOCHS))
    page.get_by_text("More settings").click()
    page.get_by_role("textbox", name="Or start from an encoder").fill("encoder")
    page.get_by_role("button", name=re.compile(r"Train$")).click()

    page.get_by_text(re.compile(rf"^Epoch \d+ of {EPOCHS} · step \d+ of \d+")).wait_for(timeout=TRAINING)
    page.get_by_text("Dev F1 per epoch").wait_for(timeout=TRAINING)  # the chart, once an epoch is done
    page.get_by_text("3 documents to train on, 1 for dev").wait_for()  # the split it states
    expect(page.get_by_role("button", name=re.compile("Cancel training"))).to_be_visible()
    screenshot(page, "train-progress")

    page.get_by_text(re.compile(r"^Trained toy-\S+: it is in the pipeline list")).wait_for(timeout=TRAINING)
    expect(page.get_by_text(re.compile(rf"^Epoch {EPOCHS} of {EPOCHS} · step"))).to_be_visible()
    settle(page)
    page.get_by_role("combobox", name="Pipeline").click()  # the new pipeline is in the list
    page.get_by_role("option", name="toy", exact=True).click()
    card = re.compile(r"^Trained on the project \S+: 3 documents marked done to train on, 1 for dev")
    page.get_by_text(card).wait_for()  # the new pipeline's card
    screenshot(page, "train-done")

    settle(page)
    page.get_by_role("button", name=re.compile("Pre-annotate the unfinished documents")).click()
    page.get_by_text("suggested again on 2 unfinished documents of toy.annotations.json").wait_for()
    docs = json.loads(path.read_text(encoding="utf-8"))["project"]["docs"]
    assert [doc["meta"].get("pipeline", {}).get("name") for doc in docs] == [None] * 4 + ["toy"] * 2
    unfinished = docs[4:]
    suggested = [span for doc in unfinished for span in doc["spans"] if span["status"] == "suggested"]
    assert suggested, "the new pipeline suggested nothing on the unfinished documents"
    assert all(span["ent"] is not None for span in suggested), "which ones are in doc.ents is recorded"
    assert all(span["status"] == "accepted" for doc in docs[:4] for span in doc["spans"])  # done: untouched

    page.goto(f"{url}/annotate?project={path.name}")  # the first unfinished document, as the page shows it
    number = page.get_by_role("spinbutton", name="Document (of 6)")
    number.wait_for(timeout=120_000)
    number.fill("5")
    number.press("Enter")
    page.get_by_text("Document 5 of 6").wait_for()
    chosen = [span for span in unfinished[0]["spans"] if span["ent"]]
    expect(page.locator(".ner-selector mark.ner-suggested")).to_have_count(len(chosen))  # doc.ents exactly
    screenshot(page, "annotate-preannotated")
