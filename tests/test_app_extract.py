"""The Extract page under Streamlit's AppTest, with the tiny random pipeline: text in, entities,
relations and download out; bad input gives a message, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ner.pipeline import build_pipeline, save, shipped_pipelines
from tests.conftest import tiny_model

MAIN = str(Path(__file__).parents[1] / "app" / "main.py")
TEXT = "Leonardo DiCaprio works for Warner Bros in Los Angeles. Kate Winslet lives in London."


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory) -> Path:
    """A pipeline on the tiny random encoder that predicts many entities (and so some relations)."""
    path = tmp_path_factory.mktemp("pipelines") / "tiny"
    save(build_pipeline(tiny_model(bias_entities=3.0), name="tiny"), path)
    return path


@pytest.fixture()
def app(tiny_pipeline, tmp_path, monkeypatch) -> AppTest:
    """The app on the Extract page with the tiny pipeline chosen (no runs/ under the working dir)."""
    monkeypatch.setenv("NER_APP_PIPELINES", str(tiny_pipeline))
    monkeypatch.chdir(tmp_path)
    at = AppTest.from_file(MAIN, default_timeout=120).run()
    at.selectbox(key="extract_pipeline").select("tiny").run()
    return at


def submit(at: AppTest) -> AppTest:
    return next(b for b in at.button if b.label == "Extract").click().run()


def html(at: AppTest) -> str:
    return "".join(element.proto.body for element in at.get("html"))


def test_empty_page_says_what_to_do(app):
    assert not app.exception
    assert app.title[0].value == "Extract"
    assert app.info[0].value.startswith("Paste some text or upload a file")
    shipped = [json.loads((path / "meta.json").read_text())["name"] for path in shipped_pipelines().values()]
    assert shipped[0] == "conll04_spert"  # the default first, then the other shipped ones, then listed ones
    assert [p for p in app.selectbox(key="extract_pipeline").options] == [*shipped, "tiny"]


def test_extract_shows_entities_with_scores_heads_relations_and_download(app):
    app.text_area[0].input(TEXT)
    submit(app)
    assert not app.exception and not app.error
    body = html(app)
    assert body.count('<mark class="ner-mark"') >= 3 and "head spert" in body
    entities = app.dataframe[0].value
    assert list(entities.columns) == ["text", "label", "score", "head", "start", "end"]
    assert all(TEXT[row.start : row.end] == row.text for row in entities.itertuples())
    assert set(entities["head"]) == {"spert"} and entities["score"].min() >= 0.5
    assert [s.value for s in app.subheader] == ["Entities", "Relations"]
    assert app.get("download_button")[0].proto.label == "Download JSON"


def test_threshold_hides_what_scores_below_it(app):
    app.text_area[0].input(TEXT)
    submit(app)
    shown = len(app.dataframe[0].value)
    app.slider[0].set_value(1.0).run()
    assert not app.exception
    assert "No entity above the score threshold." in [i.value for i in app.info]
    app.slider[0].set_value(0.0).run()
    assert len(app.dataframe[0].value) >= shown


def test_empty_text_gives_a_message(app):
    app.text_area[0].input("   \n ")
    submit(app)
    assert not app.exception
    assert [e.value for e in app.error] == ["The text is empty: paste some text, then press Extract."]


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.button_group[0].set_value("Upload a file").run()
    at.file_uploader[0].set_value((name, data, "application/octet-stream"))
    return submit(at)


def test_uploaded_file_is_extracted(app):
    upload(app, "notes.md", TEXT.encode("utf-8"))
    assert not app.exception and not app.error
    assert '<mark class="ner-mark"' in html(app)


def test_jsonl_upload_offers_its_documents(app):
    upload(app, "docs.jsonl", b'{"text": "Anna lives in Paris."}\n{"text": "Bob works for IBM."}\n')
    assert not app.exception
    chooser = next(s for s in app.selectbox if s.label == "Document (2 in the file)")
    assert "Anna" in html(app) and "Bob" not in html(app)
    chooser.select_index(1).run()
    assert "Bob" in html(app) and "Anna" not in html(app)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("huge.txt", b"word " * 1_000_001, "huge.txt is 5.0 MB; files up to 5 MB can be used."),
        ("scan.pdf", b"%PDF-1.4 not really a pdf", "scan.pdf: corrupt or unreadable PDF"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", "image.txt: this is not a text file"),
        ("broken.jsonl", b'{"text": 1}\n{"text": \n', "broken.jsonl: line 1: field 'text' is a int"),
    ],
)
def test_bad_uploads_give_a_message_not_a_traceback(app, name, data, message):
    upload(app, name, data)
    assert not app.exception
    assert app.error and app.error[0].value.startswith(message)
    assert "<mark" not in html(app)


def test_no_file_chosen_gives_a_message(app):
    app.button_group[0].set_value("Upload a file").run()
    submit(app)
    assert [e.value for e in app.error] == ["No file chosen: upload a file, then press Extract."]


def test_a_pipeline_that_does_not_load_is_a_message(tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.cfg").write_text('[nlp]\nlang = "en"\npipeline = ["nothing_here"]\n')
    (broken / "meta.json").write_text('{"name": "broken"}')
    monkeypatch.setenv("NER_APP_PIPELINES", str(broken))
    monkeypatch.chdir(tmp_path)
    at = AppTest.from_file(MAIN, default_timeout=120).run()
    at.selectbox(key="extract_pipeline").select("broken").run()
    at.text_area[0].input(TEXT)
    submit(at)
    assert not at.exception
    assert at.error[0].value.startswith("The pipeline broken could not process this text: ")
