"""Exports to a folder are all or nothing, and a format that cannot hold the data says why before
anything is written: a failure in the middle of the writing leaves the target as it was (absent,
or with its old files), with no temporary folder beside it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from ner.annotation import AnnotatedDoc, AnnotationError, Project, Span
from ner.annotation.export import export_folder, problem

export_module = importlib.import_module("ner.annotation.export")  # the package's ``export`` is a function

FILES = {"spert_json": "dev.spert.json", "spert_types": "dev.types.json", "conll": "dev.conll"}


def project(*, nested: bool = False) -> Project:
    """One document with "Composer Thomas" (and, if ``nested``, "Thomas" inside it) accepted."""
    doc = AnnotatedDoc("a", "Composer Thomas lives in Chisholm , Minn .")
    doc.spans = [Span(0, 15, "Peop"), Span(25, 33, "Loc")]
    if nested:
        doc.spans.append(Span(9, 15, "Peop"))
    return Project(docs=[doc], entity_labels=["Peop", "Loc"], name="dev")


def everything(folder: Path) -> dict[str, bytes | None]:
    return {str(p): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def failing_on_call(number: int, monkeypatch) -> None:
    """Make the ``number``-th file written by the export raise, as a full disk would."""
    real, calls = export_module._write_file, []

    def write(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == number:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(export_module, "_write_file", write)


def test_a_new_folder_appears_whole(tmp_path):
    export_folder(project(), tmp_path / "out" / "dev", FILES)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dev"]  # no temporary folder left
    assert sorted(p.name for p in (tmp_path / "out" / "dev").iterdir()) == sorted(FILES.values())
    assert (
        (tmp_path / "out" / "dev" / "dev.conll").read_text().startswith("Composer\tB-Peop\nThomas\tI-Peop\n")
    )


def test_a_failure_mid_write_leaves_no_folder(tmp_path, monkeypatch):
    failing_on_call(2, monkeypatch)  # dev.spert.json written, then dev.types.json fails
    with pytest.raises(OSError, match="No space left"):
        export_folder(project(), tmp_path / "out" / "dev", FILES)
    assert list(tmp_path.iterdir()) == []  # not even the parent made for it


def test_a_failure_mid_write_leaves_an_existing_folder_unchanged(tmp_path, monkeypatch):
    target = tmp_path / "dev"
    target.mkdir()
    (target / "dev.spert.json").write_text("the old export")
    (target / "notes.txt").write_text("not ours")
    before = everything(tmp_path)
    failing_on_call(3, monkeypatch)
    with pytest.raises(OSError):
        export_folder(project(), target, FILES)
    assert everything(tmp_path) == before


def test_a_failure_while_moving_files_into_an_existing_folder_puts_the_old_ones_back(tmp_path, monkeypatch):
    target = tmp_path / "dev"
    target.mkdir()
    (target / "dev.spert.json").write_text("the old export")
    (target / "dev.conll").write_text("old\tO\n\n")
    before = everything(tmp_path)
    real, moves = export_module.os.replace, []

    def replace(source, destination):
        moves.append(destination)
        if len(moves) == 5:  # old spert aside, new in, new types in, old conll aside, new conll: fails
            raise OSError(5, "Input/output error")
        real(source, destination)

    monkeypatch.setattr(export_module.os, "replace", replace)
    with pytest.raises(OSError, match="Input/output"):
        export_folder(project(), target, FILES)
    monkeypatch.undo()
    assert everything(tmp_path) == before


def test_an_existing_folder_gets_the_new_files_and_keeps_the_others(tmp_path):
    target = tmp_path / "dev"
    target.mkdir()
    (target / "dev.conll").write_text("old\tO\n\n")
    (target / "notes.txt").write_text("not ours")
    export_folder(project(), target, FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev"]
    assert sorted(p.name for p in target.iterdir()) == sorted([*FILES.values(), "notes.txt"])
    assert (target / "dev.conll").read_text().startswith("Composer\tB-Peop")


def test_a_format_that_cannot_hold_the_data_refuses_before_writing(tmp_path):
    nested = project(nested=True)
    reason = problem(nested, "conll")
    assert reason is not None and "'Composer Thomas' (Peop) and 'Thomas' (Peop) overlap" in reason
    assert problem(nested, "spert_json") is None and problem(project(), "conll") is None
    with pytest.raises(AnnotationError, match="CoNLL cannot hold nested entities"):
        export_folder(nested, tmp_path / "dev", FILES)
    assert list(tmp_path.iterdir()) == []


def test_problem_counts_the_documents_and_honours_only_done():
    nested = project(nested=True)
    nested.docs.append(AnnotatedDoc("b", nested.docs[0].text, list(nested.docs[0].spans), done=True))
    assert problem(nested, "conll").endswith("(and 1 more documents)")
    assert problem(nested, "conll", only_done=True).startswith("document 'b'")
    nested.docs[1].spans.pop()
    assert problem(nested, "conll", only_done=True) is None
    assert problem(nested, "nonsense").startswith("unknown export format")


def test_problem_names_a_docstart_word():
    doc = AnnotatedDoc("d", "-DOCSTART- Paris")
    assert problem(Project(docs=[doc]), "conll") == (
        "document 'd': the word -DOCSTART- cannot be written as a CoNLL token"
    )
