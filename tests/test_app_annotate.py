"""The Annotate page under AppTest: open a dataset, review suggestions, edit spans and relations,
export, and continue after reopening; bad datasets give messages and never touch saved work; a
path outside the data folder, in any field that takes one, is refused before anything is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import paths, projects
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
    """An empty working directory (no runs/); the data folder is ``tmp_path``, which holds the
    datasets of these tests, and their projects are saved there."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("NER_APP_DATA_DIR", str(tmp_path))
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


def project_file(dataset: Path) -> Path:
    """Where the project of ``dataset`` is saved: always in the data folder."""
    return projects.project_path(dataset, paths.data_folder())


def saved(dataset: Path) -> AnnotationStore:
    return AnnotationStore.open(project_file(dataset))


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
    assert [t.value for t in again.toast] == [f"Continuing {project_file(dataset).name}: 1 of 2 done"]
    assert again.markdown and any("Document 2 of 2" in m.value for m in again.markdown)

    reloaded = AppTest.from_file(MAIN, default_timeout=120)  # a browser reload: the URL names the project
    reloaded.query_params["project"] = str(project_file(dataset))
    reloaded.run().switch_page("views/annotate.py").run()
    assert any("Document 2 of 2" in m.value for m in reloaded.markdown)


def test_bad_datasets_give_messages_and_keep_saved_work(dataset, workdir):
    at = open_path(annotate_page(), dataset)
    button(at, "Accept all").click().run()
    saved_file = project_file(dataset)
    before = saved_file.read_bytes()
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
    assert saved_file.read_bytes() == before

    saved_file.write_text("{ not json")  # a damaged project file is reported, never overwritten
    open_path(at, dataset)
    assert not at.exception
    assert messages(at)[0].startswith(f"Cannot open this dataset: {saved_file.name}")
    assert saved_file.read_text() == "{ not json"


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
    assert (tmp_path / "projects" / "docs.annotations.json").is_file()  # a readable name


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
    project = saved(texts).project
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
    assert not project_file(dataset).exists()


@pytest.fixture()
def confined(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """``(data folder, a secret outside it)``: the data folder holds a dataset, a symlink to the
    secret and one to the folder above; nothing is read outside (``load_dataset`` records calls)."""
    root, secret = tmp_path / "data", tmp_path / "secret.jsonl"
    root.mkdir()
    secret.write_text(json.dumps({"text": "the secret"}) + "\n")
    (root / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    (root / "link.jsonl").symlink_to(secret)
    (root / "up").symlink_to(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NER_APP_DATA_DIR", str(root))
    monkeypatch.delenv("NER_APP_PIPELINES", raising=False)
    return root, secret


def everything(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` with its content (None for folders and links): what a
    refused path must leave exactly as it was."""
    return {
        str(p): None if p.is_dir() or p.is_symlink() else p.read_bytes() for p in sorted(folder.rglob("*"))
    }


HOSTILE = [
    ("/etc/passwd", "/etc/passwd is outside the data folder"),
    ("../secret.jsonl", "../secret.jsonl is outside the data folder"),
    ("link.jsonl", "link.jsonl leads outside the data folder"),
    ("up/secret.jsonl", "up/secret.jsonl leads outside the data folder"),
    ("docs.jsonl\x00", "A path cannot contain a NUL byte."),
]


def test_dataset_paths_outside_the_data_folder_are_refused(confined, tmp_path, monkeypatch):
    root, secret = confined
    read = []
    monkeypatch.setattr(projects, "load_dataset", lambda path, *a, **k: read.append(path))
    before = everything(tmp_path)
    at = annotate_page()
    for raw, message in HOSTILE:
        open_path(at, raw)
        assert not at.exception and messages(at)[0].startswith(message), (raw, messages(at))
        assert session_store(at) is None
    assert read == [] and everything(tmp_path) == before
    assert not any("root:" in m.value or "the secret" in m.value for m in at.markdown)


def session_store(at: AppTest):
    return at.session_state["annotate_store"] if "annotate_store" in at.session_state else None  # noqa: SIM401 (no .get)


def test_export_folders_outside_the_data_folder_are_refused(confined, tmp_path):
    root, _ = confined
    at = open_path(annotate_page(), "docs.jsonl")
    assert not at.error and session_store(at) is not None
    (tmp_path / "elsewhere").mkdir()
    (root / "exports_link").symlink_to(tmp_path / "elsewhere")
    before = everything(tmp_path)
    for raw, message in [
        ("/tmp", "/tmp is outside the data folder"),
        ("../exports", "../exports is outside the data folder"),
        (str(tmp_path / "elsewhere"), f"{tmp_path / 'elsewhere'} is outside the data folder"),
        ("exports_link", "exports_link leads outside the data folder"),
    ]:
        export_field(at).input(raw)
        button(at, "Export to folder").click().run()
        assert not at.exception and messages(at)[0].startswith(message), (raw, messages(at))
    assert everything(tmp_path) == before

    export_field(at).input("exports")  # inside: written
    button(at, "Export to folder").click().run()
    assert not at.error and len(list((root / "exports").iterdir())) == 5


def export_field(at: AppTest):
    return next(t for t in at.sidebar.text_input if t.label.startswith("Or write"))


def test_a_project_in_the_url_outside_the_data_folder_is_refused(confined, tmp_path):
    root, secret = confined
    outside = tmp_path / "other.annotations.json"
    outside.write_text("{ not a project }")
    for raw in ["/etc/passwd", str(outside), "../other.annotations.json", "up/other.annotations.json"]:
        at = AppTest.from_file(MAIN, default_timeout=120)
        at.query_params["project"] = raw
        at.run().switch_page("views/annotate.py").run()
        assert not at.exception and session_store(at) is None
        assert [w.value for w in at.warning] and "outside the data folder" in at.warning[0].value, raw


def test_without_a_data_dir_the_data_folder_is_annotations_in_the_working_directory(
    dataset, tmp_path, monkeypatch
):
    work = tmp_path / "work"
    (work / "annotations").mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.delenv("NER_APP_DATA_DIR", raising=False)
    monkeypatch.delenv("NER_APP_PIPELINES", raising=False)
    at = open_path(annotate_page(), dataset)  # tmp_path/data/docs.jsonl: not in ./annotations
    assert messages(at)[0].startswith(f"{dataset} is outside the data folder {work / 'annotations'}")
    assert sorted(p.name for p in dataset.parent.iterdir()) == ["docs.jsonl"]  # nothing beside it

    inside = work / "annotations" / "docs.jsonl"
    inside.write_bytes(dataset.read_bytes())
    at = open_path(annotate_page(), "docs.jsonl")
    assert not at.exception and not at.error
    assert projects.project_path(inside, work / "annotations").is_file()


def test_train_from_the_sidebar_opens_the_models_page_with_the_project_chosen(dataset, workdir):
    at = open_path(annotate_page(), dataset)
    assert not at.exception
    at = button(at, "Train a model on this project").click().run()
    assert not at.exception
    picked = at.selectbox(key="train_project_pick")
    assert Path(str(picked.value)) == project_file(dataset)
