"""Opening datasets on the Annotate page (issue 16, points 4, 7 and 8).

A folder is read recursively, one bad file never stops the others (each is listed with its
reason), and text is decoded exactly as ``ner extract`` and the Extract page decode it. A project
has a readable file name, old hash-named ones still open, and a reload finds the open project even
after a visit to another page. The Extract page names its download after the input and keeps, at
threshold 1.00, what it shows as "1.00".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import projects
from app.extraction import above_threshold, download_name, read_upload
from ner.annotation import AnnotationError, AnnotationStore, load_dataset
from ner.annotation.datasets import load_folder
from ner.annotation.store import FORMAT, VERSION
from ner.batch.sources import SourceText, read_items

MAIN = str(Path(__file__).parents[1] / "app" / "main.py")
LATIN = "Zoë à Paris, café crème.".encode("cp1252")


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


@pytest.fixture()
def mixed(tmp_path) -> Path:
    """A folder as annotators have them: good files at two depths, a Windows-1252 one, and one
    of every kind of bad file (binary, empty, too big, another format, hidden, hostile names)."""
    folder = tmp_path / "data" / "texts"
    write(folder / "one.txt", "Anna lives in Paris.")
    write(folder / "sub" / "nested.txt", "Bob works for Acme.")
    write(folder / "sub" / "deeper" / "notes.md", "Kate met Bob.")
    write(folder / "latin.txt", LATIN)
    write(folder / "binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(folder / "empty.txt", b" \n")
    write(folder / "big.txt", "word " * 300)
    write(folder / "image.png", b"\x89PNG")
    write(folder / ".git" / "config", "[core]")
    write(folder / "two\nlines.txt", "A name with a newline.")
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.txt"), "wb") as file:  # not a UTF-8 name
        file.write(b"A name that is not UTF-8.")
    return folder


def test_a_folder_is_read_recursively_and_each_bad_file_is_listed(mixed):
    project, unreadable = load_folder(mixed, max_bytes=1000)
    assert [d.id for d in project.docs] == [
        "caf\\xe9.txt", "latin.txt", "one.txt", "sub/deeper/notes.md", "sub/nested.txt", "two\\nlines.txt",
    ]  # fmt: skip
    reasons = {u.name: u.reason for u in unreadable}
    assert list(reasons) == [".git", "big.txt", "binary.txt", "empty.txt", "image.png"]
    assert "binary content" in reasons["binary.txt"] and "empty" in reasons["empty.txt"]
    assert "1500 bytes is over the limit of 1000" in reasons["big.txt"]
    assert "not a .md or .txt file" in reasons["image.png"] and "hidden" in reasons[".git"]
    assert json.dumps([d.source for d in project.docs], ensure_ascii=False).encode("utf-8")  # valid text


def test_load_dataset_reads_a_folder_with_a_bad_file(mixed):
    assert len(load_dataset(mixed, max_bytes=1000).docs) == 6  # the bad files are logged, not fatal


def test_text_is_decoded_as_ner_extract_and_the_extract_page_decode_it(mixed):
    [extracted] = read_items(mixed / "latin.txt")  # ner extract's reader
    uploaded = read_upload("latin.txt", LATIN).documents[0]  # the Extract page's
    from_folder = next(d for d in load_folder(mixed)[0].docs if d.id == "latin.txt")
    alone = load_dataset(mixed / "latin.txt").docs[0]  # one file, not a folder
    assert from_folder.text == alone.text == extracted.text == uploaded.text == "Zoë à Paris, café crème."


def test_a_folder_with_nothing_readable_says_why(tmp_path):
    write(tmp_path / "texts" / "binary.txt", b"\x00\x01")
    with pytest.raises(AnnotationError, match="no .txt files in the folder could be read.*binary.txt"):
        load_folder(tmp_path / "texts")


def test_a_file_the_check_refuses_is_listed_and_never_read(tmp_path):
    write(tmp_path / "texts" / "one.txt", "Anna lives in Paris.")
    write(tmp_path / "texts" / "two.txt", "secret")

    def check(path: Path) -> Path:
        if path.name == "two.txt":
            raise ValueError("two.txt leads outside the data folder")
        return path

    project, unreadable = load_folder(tmp_path / "texts", check=check)
    assert [d.text for d in project.docs] == ["Anna lives in Paris."]
    assert [(u.name, u.reason) for u in unreadable] == [("two.txt", "two.txt leads outside the data folder")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_a_file_without_read_permission_is_listed(tmp_path):
    write(tmp_path / "texts" / "one.txt", "Anna lives in Paris.")
    locked = write(tmp_path / "texts" / "locked.txt", "hidden")
    locked.chmod(0)
    _, unreadable = load_folder(tmp_path / "texts")
    assert [(u.name, "Permission denied" in u.reason) for u in unreadable] == [("locked.txt", True)]


# ------------------------------------------------------------------------------ project files
def test_projects_have_readable_names_and_a_hash_only_on_a_clash(tmp_path):
    root = tmp_path / "data"
    write(root / "docs.jsonl", '{"text": "Anna lives in Paris."}\n')
    write(root / "other" / "docs.jsonl", '{"text": "Bob works for Acme."}\n')
    first, _ = projects.open_dataset("docs.jsonl", root)
    second, _ = projects.open_dataset("other/docs.jsonl", root)
    assert first.path.name == "docs.annotations.json"
    assert second.path.name.startswith("docs-") and second.path != first.path
    again, continued = projects.open_dataset("other/docs.jsonl", root)
    assert continued and again.path == second.path and again.project.docs[0].text == "Bob works for Acme."
    assert AnnotationStore.dataset_of(first.path) == str((root / "docs.jsonl").resolve())


def test_an_old_hash_named_project_still_opens_and_continues(tmp_path):
    import hashlib

    root = tmp_path / "data"
    dataset = write(root / "dev.json", '{"text": "unused"}').resolve()
    digest = hashlib.sha1(str(dataset.parent).encode("utf-8")).hexdigest()[:8]
    old = write(
        root / f"dev.json-{digest}.annotations.json",  # as the app named projects before
        json.dumps(
            {"format": FORMAT, "version": VERSION, "project": {"docs": [{"id": "a", "text": "Old."}]}}
        ),
    )
    store, continued = projects.open_dataset("dev.json", root)
    assert continued and store.path == old.resolve() and store.project.docs[0].text == "Old."
    assert projects.resume(old.name, root).project.docs[0].text == "Old."


def test_a_damaged_project_under_the_readable_name_is_reported_never_replaced(tmp_path):
    root = tmp_path / "data"
    write(root / "docs.jsonl", '{"text": "Anna lives in Paris."}\n')
    damaged = write(root / "docs.annotations.json", "{ not json")
    with pytest.raises(AnnotationError, match="docs.annotations.json: not valid JSON"):
        projects.open_dataset("docs.jsonl", root)
    assert damaged.read_text() == "{ not json" and sorted(p.name for p in root.iterdir()) == [
        "docs.annotations.json", "docs.jsonl",
    ]  # fmt: skip


def test_the_files_left_out_are_kept_with_the_project(mixed, tmp_path):
    store, _ = projects.open_dataset("texts", tmp_path / "data")
    reopened = AnnotationStore.open(store.path)
    assert reopened.dataset == str(mixed.resolve()) and reopened.unreadable == store.unreadable
    assert "binary.txt" in [u.name for u in reopened.unreadable]
    data = json.loads(store.path.read_text())
    data["dataset"] = {"path": 3}  # a damaged origin is ignored: the annotations still open
    store.path.write_text(json.dumps(data))
    assert AnnotationStore.open(store.path).dataset is None


# ------------------------------------------------------------------------------- the page
@pytest.fixture()
def workdir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("NER_APP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("NER_APP_PIPELINES", raising=False)
    return folder


def open_folder(path: str) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120).run().switch_page("views/annotate.py").run()
    next(t for t in at.text_input if t.label == "Dataset file or folder").input(path)
    return next(b for b in at.button if b.label == "Open dataset").click().run()


def test_the_page_opens_a_folder_with_bad_files_and_lists_them(mixed, workdir):
    at = open_folder("texts")
    assert not at.exception and not at.error
    assert any("Document 1 of 7" in m.value for m in at.markdown)  # big.txt is under the app's limit
    assert at.warning[0].value.startswith("4 files were left out of texts: the other 7 opened.")
    table = at.table[0].value
    assert list(table["file"]) == [".git", "binary.txt", "empty.txt", "image.png"]
    assert "this is not a text file (binary content)" in list(table["reason"])


def test_a_reload_after_another_page_reopens_the_project(mixed, workdir):
    at = open_folder("texts")
    assert at.query_params["project"] == "texts.annotations.json"  # readable, relative to the data folder
    at.query_params.clear()  # the browser drops the query when another page is chosen
    at.switch_page("views/models.py").run()
    at.switch_page("views/annotate.py").run()
    assert at.query_params.get("project") == "texts.annotations.json"  # back in the URL

    reloaded = AppTest.from_file(MAIN, default_timeout=120)  # a reload: a new session, the same URL
    reloaded.query_params["project"] = at.query_params["project"]
    reloaded.run().switch_page("views/annotate.py").run()
    assert not reloaded.exception and any("Document 1 of 7" in m.value for m in reloaded.markdown)
    assert "binary.txt" in list(reloaded.table[0].value["file"])  # still listed after the reload


# ------------------------------------------------------------------------------- Extract
def test_the_download_is_named_after_the_input():
    assert download_name(SourceText("pasted text", "x")) == "pasted-text.extraction.jsonl"
    assert download_name(SourceText("Report 2024 (final).pdf", "x")) == "Report-2024-final.extraction.jsonl"
    assert download_name(SourceText("records.jsonl", "x", line=3)) == "records-line-3.extraction.jsonl"
    assert download_name(SourceText("a.json", "x", item=0)) == "a-item-0.extraction.jsonl"
    assert download_name(SourceText("../..", "x")) == "text.extraction.jsonl"
    assert download_name(SourceText("Zürich\n.txt", "x")) == "Zürich.extraction.jsonl"


def test_the_threshold_compares_scores_as_they_are_shown():
    record = {
        "entities": [
            {"label": "Peop", "score": 0.996},  # shown as 1.00
            {"label": "Loc", "score": 0.994},  # shown as 0.99
            {"label": "Org", "score": 0.15},
        ],
        "relations": [{"head": 0, "tail": 2, "label": "Work_For", "score": 0.997}],
    }
    top = above_threshold(record, 1.0)
    assert [e["label"] for e in top["entities"]] == ["Peop"] and top["relations"] == []
    step = 0.05 * 3  # the slider's value at its fourth step: 0.15000000000000002
    kept = above_threshold(record, step)
    assert [e["label"] for e in kept["entities"]] == ["Peop", "Loc", "Org"]
    assert kept["relations"] == [{"head": 0, "tail": 2, "label": "Work_For", "score": 0.997}]
