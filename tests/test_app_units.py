"""The app's helper modules, without Streamlit running: rendering, thresholds, uploads, pipeline
discovery, model cards and project files."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app import model_cards, projects
from app.extraction import MAX_UPLOAD_BYTES, above_threshold, read_upload
from app.palette import color
from app.pipelines import ENV_PIPELINES, describe, discover
from app.rendering import Mark, highlight_html, relation_graph, relation_rows
from ner.annotation import AnnotationStore, add_span
from ner.pipeline import DEFAULT_PIPELINE, shipped_pipelines


class _Runs(HTMLParser):
    """The ``(data-o, text)`` of every text run, and the text outside runs (labels)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.runs: list[tuple[int, str]] = []
        self.current: int | None = None

    def handle_starttag(self, tag, attrs):
        self.current = int(dict(attrs)["data-o"]) if "data-o" in dict(attrs) else None

    def handle_endtag(self, tag):
        self.current = None

    def handle_data(self, data):
        if self.current is not None:
            self.runs.append((self.current, data))


def runs(fragment: str) -> list[tuple[int, str]]:
    parser = _Runs()
    parser.feed(fragment)
    return parser.runs


@pytest.mark.parametrize(
    "marks",
    [
        [],
        [Mark(0, 4, "Peop"), Mark(9, 13, "Loc")],
        [Mark(0, 13, "Org"), Mark(5, 8, "Peop"), Mark(5, 8, "Loc")],  # nested, same span twice
        [Mark(0, 8, "Org"), Mark(5, 13, "Peop")],  # crossing
    ],
)
def test_runs_carry_their_python_offsets_and_cover_the_text(marks):
    text = "Anna 🙂 X\r\nParis"
    parsed = runs(highlight_html(text, marks))
    assert "".join(piece for _, piece in parsed) == text  # every character, once
    position = 0
    for offset, piece in parsed:
        assert offset == position and text[offset : offset + len(piece)] == piece
        position += len(piece)
    assert all("\r" not in piece[:-1] for _, piece in parsed)  # a CR only ends a run (CR LF would merge)


def test_marks_show_label_score_and_head():
    fragment = highlight_html("John Smith", [Mark(0, 10, "Peop", 0.9876, "spert", index=3)], show_heads=True)
    assert 'data-span="3"' in fragment and f"--ner-color:{color('Peop')}" in fragment
    assert "0.99" in fragment and 'class="ner-head">spert' in fragment
    assert 'title="Peop · score 0.99 · head spert"' in fragment


def test_crossing_spans_are_split_with_one_label_each():
    fragment = highlight_html("abcdefghij", [Mark(0, 6, "A"), Mark(3, 9, "B")])
    assert fragment.count('class="ner-label">A') == 1 and fragment.count('class="ner-label">B') == 1
    assert fragment.count('data-start="3" data-end="6"') == 1 and fragment.count('data-start="6"') == 1


def test_text_is_escaped():
    fragment = highlight_html("<b>x</b> & y", [Mark(0, 8, "Tag<")])
    assert "<b>" not in fragment and "&lt;b&gt;" in fragment and "Tag&lt;" in fragment


RECORD = {
    "text": "John works for Acme in Boston",
    "entities": [
        {"start": 0, "end": 4, "text": "John", "label": "Peop", "score": 0.95, "head": "spert"},
        {"start": 15, "end": 19, "text": "Acme", "label": "Org", "score": 0.4, "head": "spert"},
        {"start": 23, "end": 29, "text": "Boston", "label": "Loc", "score": 0.99, "head": "spert"},
    ],
    "relations": [
        {"head": 0, "tail": 1, "label": "Work_For", "score": 0.9},
        {"head": 0, "tail": 2, "label": "Live_In", "score": 0.8},
        {"head": 2, "tail": 0, "label": "Kill", "score": 0.3},
    ],
}


def test_threshold_drops_entities_and_renumbers_relations():
    shown = above_threshold(RECORD, 0.5)
    assert [e["text"] for e in shown["entities"]] == ["John", "Boston"]
    assert shown["relations"] == [{"head": 0, "tail": 1, "label": "Live_In", "score": 0.8}]
    assert above_threshold(RECORD, 0.0) == RECORD


def test_relations_as_rows_and_graph():
    assert relation_rows(RECORD)[0] == {
        "head": "John", "head label": "Peop", "relation": "Work_For",
        "tail": "Acme", "tail label": "Org", "score": 0.9,
    }  # fmt: skip
    quoted = {**RECORD["entities"][2], "text": 'B"x'}
    dot = relation_graph({**RECORD, "entities": [*RECORD["entities"][:2], quoted]})
    assert dot.startswith("digraph") and 'e0 -> e1 [label="Work_For 0.90"]' in dot and 'B\\"x' in dot


def test_uploads_are_read_by_the_batch_readers():
    page = read_upload("page.html", b"<html><body><p>Anna lives in Paris.</p><script>x()</script></body>")
    assert [d.text for d in page.documents] == ["Anna lives in Paris."] and not page.problems
    lines = read_upload("docs.jsonl", b'{"text": "one"}\n{"body": "two"}\n{"text": "three"}\n')
    assert [(d.line, d.text) for d in lines.documents] == [(1, "one"), (3, "three")]
    assert lines.problems == ["docs.jsonl: line 2: no 'text' field (fields: body)"]
    assert read_upload("latin.txt", "Zoë à Paris".encode("cp1252")).documents[0].text == "Zoë à Paris"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("big.txt", b"a" * (MAX_UPLOAD_BYTES + 1), "big.txt is 5.0 MB; files up to 5 MB can be used."),
        ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.txt: this is not a text file (binary"),
        ("empty.md", b"  \n", "empty.md: the file holds no text"),
        ("bad.json", b"[{", "bad.json: invalid JSON: "),
    ],
)
def test_bad_uploads_become_messages(name, data, message):
    upload = read_upload(name, data)
    assert upload.documents == [] and upload.problems[0].startswith(message)


def write_pipeline(folder: Path, name: str, description: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "config.cfg").write_text("[nlp]\n")
    meta = {"name": name, "version": "1.2", "description": description}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def test_discovery_offers_shipped_listed_and_runs(tmp_path):
    listed = write_pipeline(tmp_path / "elsewhere" / "mine", "mine", "My own model")
    write_pipeline(tmp_path / "runs" / "conll04", "conll04_spert")
    (tmp_path / "runs" / "not_a_pipeline").mkdir()
    infos = discover({ENV_PIPELINES: f"{listed}:{listed}"}, tmp_path)
    shipped = [describe(path).name for path in list(shipped_pipelines().values())[1:]]
    assert [i.title for i in infos] == [
        "conll04_spert (shipped)",  # the default first; its name is also a run's, so both say where from
        *shipped,
        "mine",
        "conll04_spert (conll04)",
    ]
    assert infos[1 + len(shipped)].summary == "My own model"
    assert describe(tmp_path / "runs" / "not_a_pipeline") is None


def test_shipped_pipeline_is_described_from_its_files():
    info = describe(DEFAULT_PIPELINE)
    assert info.encoder == "multilingual-e5-small" and [h.name for h in info.heads] == ["spert"]
    assert info.entity_labels == ["Loc", "Org", "Peop", "Other"] and "Work_For" in info.relation_labels
    assert info.summary.startswith("Entities and relations (Loc, Org, Peop, Other); 1 spert head")


def test_model_cards_read_single_and_multi_task_metrics():
    metrics = model_cards.read_metrics(DEFAULT_PIPELINE)
    test = model_cards.split_scores(metrics, "test", "spert")
    assert list(test) == ["spert"] and set(test["spert"]) == {"entities", "relations", "relations_with_types"}
    table = model_cards.per_type_table(test, "entities")
    assert list(table["name"]) == ["Loc", "Org", "Other", "Peop"] and table["support"].sum() == 1079
    assert list(model_cards.summary_table(test, "relations")["average"]) == ["micro", "macro"]
    dev = {"a": {"entities": {"micro": {}}}}
    multi = {"best_epoch": 2, "epochs": [{"epoch": 1}, {"epoch": 2, "dev": dev}]}
    assert model_cards.split_scores(multi, "dev", "x") == dev
    assert model_cards.available_splits(multi, "x") == ["dev"]
    two = {name: {"entities": {"per_type": {"Gene": {"f1": 70.0}}}} for name in ("a", "b")}
    assert list(model_cards.per_type_table(two, "entities")["name"]) == ["Gene (a)", "Gene (b)"]


def test_model_cards_headline_raw_text():
    """Raw text is the benchmark (issue 13): the overview and the first choice of the scores are the
    test set through nlp.pipe, not the corpus's tokens (the page used to show only those)."""
    metrics = model_cards.read_metrics(DEFAULT_PIPELINE)
    assert model_cards.available_splits(metrics, "spert") == ["test_raw_text", "test", "dev"]
    raw = model_cards.split_scores(metrics, "test_raw_text", "spert")
    assert raw["spert"] == metrics["test_raw_text"]["spert"] != metrics["test"]["spert"]
    row = model_cards.overview_row(describe(DEFAULT_PIPELINE), metrics)
    f1 = {k: f"{raw['spert'][k]['micro']['f1']:.2f}" for k in ("entities", "relations_with_types")}
    assert row["scored on"] == "test, raw text" and row["entity F1"] == f1["entities"]
    assert row["relation F1"] == f1["relations_with_types"]


def test_projects_live_in_the_data_folder(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "docs.jsonl").write_text('{"text": "Anna lives in Paris."}\n')
    store, _ = projects.open_dataset("a/docs.jsonl", tmp_path / "data")
    other = projects.project_path(tmp_path / "data" / "b" / "docs.jsonl", tmp_path / "data")
    assert store.path.parent == other.parent == tmp_path / "data" and other != store.path
    assert store.path.name == "docs.annotations.json"  # readable; a hash only for the second "docs"
    assert re.fullmatch(r"docs-[0-9a-f]{8}\.annotations\.json", other.name)


def test_opening_a_dataset_again_continues_its_project(tmp_path):
    dataset = tmp_path / "docs.jsonl"
    dataset.write_text('{"id": "a", "text": "Anna lives in Paris."}\n{"id": "b", "text": "Bob too."}\n')
    store, continued = projects.open_dataset("docs.jsonl", tmp_path)
    assert not continued and store.path.is_file() and store.path.parent == tmp_path
    store.apply(add_span, store.project.docs[0], 0, 4, "Peop")
    store.next()
    again, continued = projects.open_dataset(dataset, tmp_path)
    assert continued and again.project.cursor == 1 and again.project.docs[0].spans[0].label == "Peop"
    assert projects.saved_projects(tmp_path) == [store.path]
    resumed = projects.resume(store.path.name, tmp_path)
    assert isinstance(resumed, AnnotationStore) and resumed.path == store.path
    assert resumed.project.cursor == 1 and resumed.project.docs[0].spans[0].label == "Peop"


def test_uploads_are_kept_under_stable_names(tmp_path):
    first = projects.save_upload("docs.jsonl", b"one", tmp_path)
    assert projects.save_upload("docs.jsonl", b"one", tmp_path) == first
    second = projects.save_upload("../docs.jsonl", b"two", tmp_path)
    assert second.parent == first.parent and second != first and second.read_bytes() == b"two"


def test_label_colours_are_stable_and_shared():
    assert color("Peop") == color("PEOP") == "#aa9cfc"
    assert color("SomethingNew") == color("somethingnew") and color("SomethingNew").startswith("#")
