"""The app's path confinement (``app.paths``): every path a page takes is resolved, symlinks
included, and refused unless it lies in the data folder; hostile strings get a message, never an
exception of another kind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import paths, projects
from app.extraction import read_upload
from app.paths import PathRefused, confine, file_name


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, Path]:
    """``(data folder, a folder outside it)``; the data folder holds symlinks of every kind."""
    base = tmp_path_factory.mktemp("confine")
    root, outside = base / "data", base / "outside"
    (root / "sub" / "deep").mkdir(parents=True)
    outside.mkdir()
    (root / "docs.jsonl").write_text('{"text": "inside"}\n')
    (outside / "secret.jsonl").write_text('{"text": "secret"}\n')
    links = {
        "to_outside": outside,
        "to_secret.jsonl": outside / "secret.jsonl",
        "to_etc": Path("/etc"),
        "to_sub": root / "sub",
        "relative_up": Path("../outside"),
        "dangling_out": outside / "missing",
        "dangling_in": root / "sub" / "new.jsonl",
        "loop": root / "loop",
    }
    for name, target in links.items():
        (root / name).symlink_to(target)
    (root / "sub" / "back_out").symlink_to(Path("../../outside"))
    return root, outside


@pytest.mark.parametrize(
    "raw",
    [
        "/etc/passwd",
        "../outside/secret.jsonl",
        "sub/../../outside",
        "sub/deep/../../../outside/secret.jsonl",
        "to_outside/secret.jsonl",
        "to_secret.jsonl",
        "to_etc/passwd",
        "relative_up",
        "dangling_out",
        "sub/back_out/secret.jsonl",
        "loop",
        "loop/x",
        "~/.bashrc",
        "/",
        "..",
        "docs.jsonl\x00.txt",
        "\ud800.jsonl",
        "a" * 256,
        "a/" * 2100,
        "",
        "   ",
    ],
)
def test_paths_outside_the_data_folder_are_refused(tree, raw):
    root, _ = tree
    with pytest.raises(PathRefused) as refused:
        confine(raw, root)
    assert str(refused.value)  # a message for the page


def test_a_symlink_leading_out_is_named_as_such(tree):
    root, _ = tree
    with pytest.raises(PathRefused, match="through a symlink"):
        confine("to_secret.jsonl", root)
    with pytest.raises(PathRefused, match="outside the data folder"):
        confine("/etc/passwd", root)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("docs.jsonl", "docs.jsonl"),
        ("./sub/../docs.jsonl", "docs.jsonl"),
        ("to_sub/deep", "sub/deep"),
        ("dangling_in", "sub/new.jsonl"),
        ("new/folder", "new/folder"),
        (".", ""),
        ("  docs.jsonl  ", "docs.jsonl"),
    ],
)
def test_paths_inside_are_resolved(tree, raw, expected):
    root, _ = tree
    assert confine(raw, root) == (root / expected).resolve()
    assert confine(root / raw.strip(), root) == (root / expected).resolve()  # absolute works too


PIECES = st.sampled_from(
    ["..", ".", "", "sub", "deep", "docs.jsonl", "to_outside", "to_etc", "to_sub", "relative_up", "loop"]
    + ["dangling_out", "dangling_in", "back_out", "~", "etc", "passwd", "\x00", "\ud800", "a" * 300, " "]
)


@settings(deadline=None, max_examples=400)
@given(st.lists(PIECES, max_size=12), st.booleans(), st.text(max_size=20))
def test_hostile_paths_never_lead_out(tree, pieces, absolute, noise):
    """Whatever the string, confine either refuses it or returns a path whose every symlink is
    already resolved and which lies in the data folder: where a read or write would really go."""
    root, _ = tree
    raw = ("/" if absolute else "") + "/".join(pieces) + noise
    try:
        resolved = confine(raw, root)
    except PathRefused as refused:
        assert str(refused)
        return
    assert resolved.is_relative_to(root.resolve())
    assert os.path.realpath(resolved) == str(resolved)


@settings(deadline=None, max_examples=200)
@given(
    st.text(st.characters(codec=None, categories=None), max_size=300)
    | st.lists(st.sampled_from(["..", ".", "/", "\\", "\x00", "\ud800", "é", "a" * 200, "name.txt"])).map(
        "".join
    )
)
def test_upload_names_stay_a_single_file_name(name):
    try:
        safe = file_name(name)
    except PathRefused:
        return
    assert safe not in ("", ".", "..") and "/" not in safe and "\x00" not in safe
    assert len(os.fsencode(safe)) <= paths.MAX_NAME_BYTES


def test_the_data_folder_defaults_to_annotations_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.data_folder({}) == (tmp_path / "annotations").resolve()
    assert paths.data_folder({"NER_APP_DATA_DIR": str(tmp_path / "mine")}) == (tmp_path / "mine").resolve()


def test_projects_refuse_paths_outside_before_reading_or_writing(tree, tmp_path):
    root, outside = tree
    before = sorted(p.name for p in outside.iterdir())
    for raw in ["../outside/secret.jsonl", "to_secret.jsonl", str(outside / "secret.jsonl")]:
        with pytest.raises(PathRefused):
            projects.open_dataset(raw, root)
        with pytest.raises(PathRefused):
            projects.resume(raw, root)
    assert sorted(p.name for p in outside.iterdir()) == before
    assert not list(root.glob("*.annotations.json"))


def test_a_folder_dataset_with_a_file_linking_out_leaves_it_out(tmp_path):
    root = tmp_path / "data"
    (root / "texts").mkdir(parents=True)
    (root / "texts" / "one.txt").write_text("Anna lives in Paris.")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "texts" / "two.txt").symlink_to(tmp_path / "secret.txt")
    store, _ = projects.open_dataset("texts", root)  # the rest opens; the link is listed, never read
    assert [(d.id, d.text) for d in store.project.docs] == [("one.txt", "Anna lives in Paris.")]
    [left_out] = store.unreadable
    assert left_out.name == "two.txt" and "leads outside the data folder" in left_out.reason
    assert "secret" not in store.path.read_text()


def test_uploads_cannot_name_a_path_out_of_the_uploads_folder(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    assert projects.save_upload("../../evil.jsonl", b"x", root) == (root / "uploads" / "evil.jsonl").resolve()
    for name in ["..", ".", "", "a\x00b"]:
        with pytest.raises(PathRefused):
            projects.save_upload(name, b"x", root)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data", "evil.jsonl", "uploads"]


def test_uploads_folder_that_is_a_symlink_out_is_refused(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "uploads").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PathRefused):
        projects.save_upload("docs.jsonl", b"x", root)
    assert not list((tmp_path / "elsewhere").iterdir())


def test_saved_projects_leave_out_links_that_lead_out(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "mine.annotations.json").write_text("{}")
    (tmp_path / "other.annotations.json").write_text("{}")
    (root / "theirs.annotations.json").symlink_to(tmp_path / "other.annotations.json")
    assert projects.saved_projects(root) == [(root / "mine.annotations.json").resolve()]


@pytest.mark.parametrize("name", ["..", ".", "", "a\x00b", "\ud800.txt", "a" * 256 + ".txt"])
def test_an_upload_name_that_is_no_file_name_is_a_problem_not_an_exception(name):
    upload = read_upload(name, b"Anna lives in Paris.")
    assert upload.documents == [] and upload.problems == [f"{name!r} cannot be used as a file name."]
