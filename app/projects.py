"""Where annotation projects live, and opening a dataset as a project or continuing its saved one.

Everything here stays inside the app's data folder (:mod:`app.paths`): a dataset is read only
from it, and its project is saved in it under a readable name (``docs.annotations.json``, with a
short hash only when another dataset has that name; older projects keep their hashed names), never
beside a file elsewhere. The files of a dataset folder are each checked before they are read: one
that leads outside the folder is left out, with its reason, like one that cannot be decoded.
Opening a dataset whose project exists continues that project (its cursor included) instead of
starting over: the annotator's work is never replaced by a fresh load of the data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from spacy.language import Language

from app.paths import PathRefused, confine, file_name
from ner.annotation import AnnotationError, AnnotationStore, load_dataset, preannotate
from ner.annotation.datasets import load_folder
from ner.annotation.files import Unreadable
from ner.annotation.store import SUFFIX
from ner.files import write_atomic


def project_path(dataset: Path, folder: Path) -> Path:
    """The project file of ``dataset`` in ``folder`` (:meth:`AnnotationStore.path_for_dataset`)."""
    return AnnotationStore.path_for_dataset(folder, dataset.resolve())


def dataset_path(raw: str | os.PathLike[str], folder: Path) -> Path:
    """The dataset ``raw`` names, resolved; :class:`PathRefused` when it lies outside ``folder``.
    (The files of a folder are checked one by one as they are read, in :func:`open_dataset`.)"""
    path = confine(raw, folder)
    if path.exists() and not path.is_dir() and not path.is_file():
        raise PathRefused(f"{os.fspath(raw)} is neither a file nor a folder.")
    return path


def open_dataset(
    dataset: str | os.PathLike[str],
    folder: Path,
    *,
    format: str = "auto",
    text_field: str = "text",
    lang: str = "en",
    nlp: Language | None = None,
) -> tuple[AnnotationStore, bool]:
    """``(store, continued)``: the saved project of ``dataset`` if there is one, else a new project
    from the dataset (pre-annotated by ``nlp`` when given), saved before it is returned.
    :class:`PathRefused` when ``dataset`` is not in ``folder``, before anything is read."""
    dataset = dataset_path(dataset, folder)
    path = confine(project_path(dataset, folder), folder)
    if path.exists():
        return AnnotationStore.open(path), True
    lang = nlp.lang if nlp else lang
    unreadable: list[Unreadable] = []
    if dataset.is_dir() and format in ("auto", "text"):  # each file confined, the bad ones listed
        project, unreadable = load_folder(dataset, lang=lang, check=lambda file: confine(file, folder))
    else:
        project = load_dataset(dataset, format, text_field=text_field, lang=lang)
    if nlp is not None:
        preannotate(project, nlp)  # which also offers the pipeline's labels, in its order
    path.parent.mkdir(parents=True, exist_ok=True)
    return AnnotationStore.create(path, project, dataset=dataset, unreadable=unreadable), False


def save_upload(name: str, data: bytes, folder: Path) -> Path:
    """Keep an uploaded dataset in ``folder/uploads`` (its project needs a stable path to it).
    The same file uploaded again is the same path; a different file with the same name gets its
    content hash in the name. The client's file name is reduced to its last part; one that
    leaves nothing usable, or an ``uploads`` that leads out of ``folder``, is :class:`PathRefused`."""
    uploads = confine("uploads", folder)
    uploads.mkdir(parents=True, exist_ok=True)
    path = confine(uploads / file_name(name), folder)
    if path.exists() and (not path.is_file() or path.read_bytes() != data):
        digest = hashlib.sha1(data).hexdigest()[:8]
        path = confine(uploads / f"{path.stem}-{digest}{path.suffix}", folder)
    if not path.exists():
        write_atomic(path, data)
    return path


def saved_projects(folder: Path) -> list[Path]:
    """The project files in ``folder``, most recently saved first (a symlink that leads out of
    the folder is left out: it could not be opened)."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob(f"*{SUFFIX}"):
        try:
            found.append(confine(path, folder))
        except PathRefused:
            continue
    return sorted((p for p in found if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)


def resume(path: str | os.PathLike[str], folder: Path) -> AnnotationStore:
    """Open a saved project file of ``folder``; :class:`PathRefused` when ``path`` is not in it,
    :class:`AnnotationError` when it is missing or unreadable."""
    path = confine(path, folder)
    if not path.is_file():
        raise AnnotationError(f"{path}: no such project file")
    return AnnotationStore.open(path)
