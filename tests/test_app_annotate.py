"""The Annotate page under AppTest: open a dataset, review suggestions, edit spans and relations,
export, and continue after reopening; bad datasets give messages and never touch saved work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ner.annotation import AnnotationStore
from ner.pipeline import build_pipeline, save
from tests.conftest import tiny_model

MAIN = str(Path(__file__).parents[1] / "app" / "main.py")
RECORDS = [
    {
        "id": "a",
        "text": "Anna Meyer lives in Paris.",
        "entities": [
            {"start": 0, "end": 10, "label": "Peop", "score": 0.9, "head": "spert"},
            {"start": 20, "end": 25, "label": "Loc", "score": 0.8, "head": "spert"},
        ],
        "relations": [{"head": 0, "tail": 1, "label": "Live_In", "score": 0.7}],
    },
    {"id": "b", "text": "Bob works for IBM in Boston.", "entities": [], "relations": []},
]


@pytest.fixture()
def dataset(tmp_path) -> Path:
    path = tmp_path / "data" / "docs.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    return path


@pytest.fixture()
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty working directory (no runs/) and no data dir: projects are saved beside the data."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("NER_APP_DATA_DIR", raising=False)
    monkeypatch.delenv("NER_APP_PIPELINES", raising=False)
    return folder


def annotate_page() -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120).run()
    return at.switch_page("views/annotate.py").run()


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def open_path(at: AppTest, path: Path | str, pipeline: str | None = None) -> AppTest:
    next(t for t in at.text_input if t.label == "Dataset file or folder").input(str(path))
    if pipeline:
        at.selectbox(key="path_pipeline").select(pipeline)
    return button(at, "Open dataset").click().run()


def saved(path: Path) -> AnnotationStore:
    return AnnotationStore.open(path.parent / f"{path.name}.annotations.json")


def messages(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_open_review_and_save_after_every_change(dataset, workdir):
    at = open_path(annotate_page(), dataset)
    assert not at.exception and not at.error
    assert at.sidebar.get("progress")[0].proto.text == "0 of 2 documents done"
    assert [s.status for s in saved(dataset).project.docs[0].spans] == ["suggested", "suggested"]

    at.button(key="accept_span_0_0_0_10_Peop_suggested").click().run()
    assert [s.status for s in saved(dataset).project.docs[0].spans] == ["accepted", "suggested"]

    at.button(key="remove_span_0_1_20_25_Loc_suggested").click().run()  # reject Paris: its relation goes too
    doc = saved(dataset).project.docs[0]
    assert [(s.start, s.end) for s in doc.spans] == [(0, 10)] and doc.relations == []
    assert not at.exception and not at.error


def test_add_a_span_by_words_relabel_it_and_add_a_relation(dataset, workdir):
    at = open_path(annotate_page(), dataset)
    form = [s for s in at.selectbox if s.label in ("From word", "To word", "Label")]
    words = form[0].options
    assert words[:2] == ["1: Anna", "2: Meyer"]
    form[0].select_index(2)  # "lives"
    form[1].select_index(2)
    form[2].select("Peop")
    button(at, "Add span").click().run()
    doc = saved(dataset).project.docs[0]
    assert (doc.spans[-1].start, doc.spans[-1].end, doc.spans[-1].label, doc.spans[-1].status) == (
        11, 16, "Peop", "accepted"
    )  # fmt: skip

    at.selectbox(key="label_0_2_11_16_Peop_accepted").select("Loc").run()
    assert saved(dataset).project.docs[0].spans[2].label == "Loc"

    at.selectbox(key="relation_head_0").select(0)
    at.selectbox(key="relation_tail_0").select(2)
    at.selectbox(key="relation_label_0").select("Live_In").run()
    button(at, "Add relation").click().run()
    relations = saved(dataset).project.docs[0].relations
    assert [(r.head, r.tail, r.label, r.status) for r in relations][-1] == (0, 2, "Live_In", "accepted")
    assert saved(dataset).project.docs[0].spans[0].status == "accepted"  # linking accepts its spans
    assert not at.exception and not at.error


def test_refused_edit_is_a_message(dataset, workdir):
    at = open_path(annotate_page(), dataset)
    at.selectbox(key="relation_head_0").select(0)
    at.selectbox(key="relation_tail_0").select(1)
    at.selectbox(key="relation_label_0").select("Live_In").run()
    button(at, "Add relation").click().run()  # accepts the suggestion
    at.selectbox(key="relation_head_0").select(0)
    at.selectbox(key="relation_tail_0").select(1).run()
    button(at, "Add relation").click().run()  # now a duplicate
    assert not at.exception
    assert messages(at) == ["'Anna Meyer' Live_In 'Paris' already exists"]


def test_accept_all_done_next_and_progress(dataset, workdir):
    at = open_path(annotate_page(), dataset)
    button(at, "Accept all").click().run()
    doc = saved(dataset).project.docs[0]
    assert {s.status for s in [*doc.spans, *doc.relations]} == {"accepted"}
    button(at, "Done, next").click().run()
    project = saved(dataset).project
    assert project.cursor == 1 and project.docs[0].done
    assert at.sidebar.get("progress")[0].proto.text == "1 of 2 documents done"
    assert button(at, "Previous").proto.shortcut.upper() == "P" and button(at, "Next").disabled


def test_export_to_folder_writes_the_four_formats(dataset, workdir, tmp_path):
    at = open_path(annotate_page(), dataset)
    at.button(key="accept_span_0_0_0_10_Peop_suggested").click().run()
    target = tmp_path / "exports"
    next(t for t in at.sidebar.text_input if t.label.startswith("Or write")).input(str(target))
    button(at, "Export to folder").click().run()
    assert not at.exception and not at.error
    assert sorted(p.name for p in target.iterdir()) == [
        "docs.conll", "docs.jsonl", "docs.spacy", "docs.spert.json", "docs.types.json",
    ]  # fmt: skip
    records = [json.loads(line) for line in (target / "docs.jsonl").read_text().splitlines()]
    assert records[0]["entities"] == [
        {"start": 0, "end": 10, "text": "Anna Meyer", "label": "Peop", "score": 0.9, "head": "spert"}
    ]
    assert records[0]["relations"] == [] and records[1]["entities"] == []
    assert (target / "docs.conll").read_text().startswith("Anna\tB-Peop\nMeyer\tI-Peop\nlives\tO\n")
    assert [b.proto.label for b in at.sidebar.get("download_button")] == [
        "SpERT JSON", "CoNLL IOB2", "JSONL records", "spaCy DocBin",
    ]  # fmt: skip


def test_reopening_continues_where_the_annotator_stopped(dataset, workdir):
    at = open_path(annotate_page(), dataset)
    button(at, "Accept all").click().run()
    button(at, "Done, next").click().run()

    again = open_path(annotate_page(), dataset)  # a new session opens the same dataset
    assert not again.exception
    assert [t.value for t in again.toast] == ["Continuing docs.jsonl.annotations.json: 1 of 2 done"]
    assert again.markdown and any("Document 2 of 2" in m.value for m in again.markdown)

    reloaded = AppTest.from_file(MAIN, default_timeout=120)  # a browser reload: the URL names the project
    reloaded.query_params["project"] = str(dataset.parent / "docs.jsonl.annotations.json")
    reloaded.run().switch_page("views/annotate.py").run()
    assert any("Document 2 of 2" in m.value for m in reloaded.markdown)


def test_bad_datasets_give_messages_and_keep_saved_work(dataset, workdir):
    at = open_path(annotate_page(), dataset)
    button(at, "Accept all").click().run()
    project_file = dataset.parent / "docs.jsonl.annotations.json"
    before = project_file.read_bytes()
    button(at, "Close project").click().run()

    broken = dataset.parent / "broken.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": "oops"\n')
    for path, message in [
        ("", "Enter the path of a dataset file or folder."),
        (dataset.parent / "missing.jsonl", "Cannot open this dataset: "),
        (broken, "Cannot open this dataset: broken.jsonl:2: not valid JSON"),
    ]:
        open_path(at, path)
        assert not at.exception and messages(at)[0].startswith(message)
    assert project_file.read_bytes() == before

    project_file.write_text("{ not json")  # a damaged project file is reported, never overwritten
    open_path(at, dataset)
    assert not at.exception
    assert messages(at)[0].startswith("Cannot open this dataset: docs.jsonl.annotations.json")
    assert project_file.read_text() == "{ not json"


def test_uploads_are_checked_and_saved_in_the_data_dir(workdir, tmp_path, monkeypatch):
    monkeypatch.setenv("NER_APP_DATA_DIR", str(tmp_path / "projects"))
    at = annotate_page()
    at.file_uploader[0].set_value(("huge.jsonl", b" " * 5_000_001, "application/json"))
    [b for b in at.button if b.label == "Open dataset"][1].click().run()  # the upload form's
    assert not at.exception and messages(at)[0].startswith("huge.jsonl is 5.0 MB; uploads up to 5 MB")

    records = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()
    at.file_uploader[0].set_value(("docs.jsonl", records, "application/json"))
    [b for b in at.button if b.label == "Open dataset"][1].click().run()
    assert not at.exception and not at.error
    assert (tmp_path / "projects" / "uploads" / "docs.jsonl").is_file()
    assert len(list((tmp_path / "projects").glob("docs.jsonl-*.annotations.json"))) == 1


def test_preannotate_with_a_pipeline(tmp_path, workdir, monkeypatch):
    pipeline = tmp_path / "tiny"
    save(build_pipeline(tiny_model(bias_entities=3.0), name="tiny"), pipeline)
    monkeypatch.setenv("NER_APP_PIPELINES", str(pipeline))
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "one.txt").write_text("Leonardo works in Rome.")
    (texts / "two.txt").write_text("Kate met Bob.")
    at = open_path(annotate_page(), texts, pipeline="tiny")
    assert not at.exception and not at.error
    project = AnnotationStore.open(tmp_path / "texts.annotations.json").project
    assert len(project.docs) == 2 and set(project.entity_labels) == {"Peop", "Org", "Loc", "Other"}
    assert {s.head for s in project.docs[0].spans} == {"spert"}
    assert project.docs[0].spans[0].status == "suggested"


def test_a_pipeline_that_does_not_load_is_a_message(dataset, workdir, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.cfg").write_text('[nlp]\nlang = "en"\npipeline = ["nothing_here"]\n')
    (broken / "meta.json").write_text('{"name": "broken"}')
    monkeypatch.setenv("NER_APP_PIPELINES", str(broken))
    at = open_path(annotate_page(), dataset, pipeline="broken")
    assert not at.exception
    assert messages(at)[0].startswith("Cannot open docs.jsonl: ")
    assert not (dataset.parent / "docs.jsonl.annotations.json").exists()
