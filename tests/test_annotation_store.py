"""The project file: atomic saves after every change, resume, validation of what is opened."""

from __future__ import annotations

import json
import os

import pytest

from ner.annotation import AnnotatedDoc, AnnotationError, AnnotationStore, Project, add_span, delete_span
from ner.annotation.store import FORMAT, VERSION


def project() -> Project:
    docs = [
        AnnotatedDoc(f"doc{i}", f"Angela Merkel visited Paris {i} times.", source="t.txt") for i in range(3)
    ]
    return Project(docs=docs, entity_labels=["Peop", "Loc"], name="demo")


@pytest.fixture()
def store(tmp_path) -> AnnotationStore:
    return AnnotationStore.create(AnnotationStore.path_for(tmp_path, "demo"), project())


def test_path_for_uses_a_safe_file_name(tmp_path):
    assert AnnotationStore.path_for(tmp_path, "demo").name == "demo.annotations.json"
    assert AnnotationStore.path_for(tmp_path, "../my project/ü").name == "my_project_ü.annotations.json"
    assert AnnotationStore.path_for(tmp_path, "..").name == "annotations.annotations.json"


def test_every_change_is_saved_and_reopening_resumes(store):
    doc = store.project.docs[1]
    assert store.apply(add_span, doc, 0, 10, "Peop") == 0
    store.apply(add_span, doc, 22, 27, "Loc", lang="en")
    store.next()
    store.next()
    store.next()  # stays on the last document
    reopened = AnnotationStore.open(store.path)
    assert reopened.project == store.project
    assert reopened.project.cursor == 2
    assert [reopened.project.docs[1].span_text(i) for i in range(2)] == ["Angela Merkel", "Paris"]
    reopened.previous()
    assert AnnotationStore.open(store.path).project.cursor == 1
    reopened.goto(0)
    reopened.previous()  # stays on the first document
    assert AnnotationStore.open(store.path).project.cursor == 0
    with pytest.raises(AnnotationError, match="no document 3"):
        reopened.goto(3)


def test_a_refused_edit_changes_and_saves_nothing(store):
    before = store.path.read_bytes()
    with pytest.raises(AnnotationError):
        store.apply(delete_span, store.project.docs[0], 0)
    assert store.path.read_bytes() == before


def test_the_file_has_a_format_and_version(store):
    data = json.loads(store.path.read_text(encoding="utf-8"))
    assert (data["format"], data["version"]) == (FORMAT, VERSION) == ("ner-annotations", 1)
    assert data["project"]["name"] == "demo"


def test_create_refuses_to_overwrite(store):
    store.apply(add_span, store.project.docs[0], 0, 6, "Peop")
    with pytest.raises(AnnotationError, match="already exists"):
        AnnotationStore.create(store.path, project())
    assert AnnotationStore.open(store.path).project.docs[0].spans
    AnnotationStore.create(store.path, project(), overwrite=True)
    assert not AnnotationStore.open(store.path).project.docs[0].spans


def test_a_crash_while_saving_leaves_the_previous_file(store, monkeypatch):
    store.apply(add_span, store.project.docs[0], 0, 6, "Peop")
    before = store.path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.apply(add_span, store.project.docs[0], 22, 27, "Loc")
    assert store.path.read_bytes() == before
    assert [p.name for p in store.path.parent.iterdir()] == [store.path.name], "no temporary file left"
    monkeypatch.undo()
    store.save()  # the in-memory edit is saved once the disk works again
    assert len(AnnotationStore.open(store.path).project.docs[0].spans) == 2


def test_a_crash_while_writing_leaves_the_previous_file(store, monkeypatch):
    before = store.path.read_bytes()

    def crash(descriptor):
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="I/O error"):
        store.next()
    assert store.path.read_bytes() == before
    assert len(list(store.path.parent.iterdir())) == 1


def test_create_refuses_an_inconsistent_project(tmp_path):
    bad = project()
    bad.cursor = 7
    with pytest.raises(AnnotationError, match="cursor 7"):
        AnnotationStore.create(tmp_path / "x.annotations.json", bad)
    assert not (tmp_path / "x.annotations.json").exists()


def saved(tmp_path, content: str | bytes):
    path = tmp_path / "broken.annotations.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def wrapped(project_data) -> str:
    return json.dumps({"format": FORMAT, "version": VERSION, "project": project_data})


GOOD_DOC = {"id": "a", "text": "Hello world", "spans": [{"start": 0, "end": 5, "label": "X"}]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "ner-annotations", "version": 1, "project": {', "not valid JSON \\(line 1, column"),
        (b"\xff\xfe\x00binary", "not a UTF-8 JSON file"),
        ("[1, 2]", "not an annotation project"),
        ('{"format": "ner-annotations", "version": 99, "project": {}}', "version 99 is not supported"),
        ('{"format": "ner-annotations", "version": 1}', 'no "project"'),
        (wrapped({"docs": [{"id": "a"}]}), "docs.0.text: Field required"),
        (
            wrapped({"docs": [{**GOOD_DOC, "spans": [{"start": 0, "end": 50, "label": "X"}]}]}),
            "outside the 11",
        ),
        (
            wrapped({"docs": [{**GOOD_DOC, "relations": [{"head": 0, "tail": 3, "label": "R"}]}]}),
            "relation 0",
        ),
        (
            wrapped({"docs": [{**GOOD_DOC, "spans": [{"start": 0, "end": 5, "label": "X", "status": "?"}]}]}),
            "status",
        ),
        (wrapped({"docs": [GOOD_DOC], "cursor": 1}), "cursor 1 is outside"),
    ],
)
def test_malformed_files_are_reported_by_name_and_left_alone(tmp_path, content, message):
    path = saved(tmp_path, content)
    before = path.read_bytes()
    with pytest.raises(AnnotationError, match=message) as error:
        AnnotationStore.open(path)
    assert "broken.annotations.json" in str(error.value)
    assert path.read_bytes() == before


def test_a_valid_hand_written_file_opens(tmp_path):
    store = AnnotationStore.open(saved(tmp_path, wrapped({"docs": [GOOD_DOC]})))
    assert store.project.docs[0].span_text(0) == "Hello"


def test_opening_a_missing_file_is_an_annotation_error(tmp_path):
    with pytest.raises(AnnotationError, match="cannot read"):
        AnnotationStore.open(tmp_path / "nothing.annotations.json")
