"""Where annotation projects live, and opening a dataset as a project or continuing its saved one.

A dataset's project is saved beside it (``<dataset name>.annotations.json``), or, when the app was
started with ``--data-dir``, in that folder. Opening a dataset whose project exists continues that
project (its cursor included) instead of starting over: the annotator's work is never replaced by a
fresh load of the data.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from spacy.language import Language

from ner.annotation import AnnotationError, AnnotationStore, load_dataset, preannotate
from ner.annotation.store import SUFFIX
from ner.files import write_atomic
from ner.pipeline import extractor_model

ENV_DATA_DIR = "NER_APP_DATA_DIR"
DEFAULT_FOLDER = "annotations"  # under the working directory, when no --data-dir is given


def data_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """The ``--data-dir`` the app was started with, if any."""
    value = (os.environ if env is None else env).get(ENV_DATA_DIR, "").strip()
    return Path(value) if value else None


def work_folder(env: Mapping[str, str] | None = None) -> Path:
    """Where uploads and their projects go: ``--data-dir``, else ``./annotations``."""
    return data_dir(env) or Path.cwd() / DEFAULT_FOLDER


def project_path(dataset: Path, folder: Path | None) -> Path:
    """The project file of ``dataset``: beside it, or in ``folder`` under a name that also hashes
    the dataset's folder, so same-named files from different folders get different projects."""
    if folder is None:
        return AnnotationStore.path_for(dataset.parent, dataset.name)
    digest = hashlib.sha1(str(dataset.resolve().parent).encode("utf-8")).hexdigest()[:8]
    return AnnotationStore.path_for(folder, f"{dataset.name}-{digest}")


def open_dataset(
    dataset: Path,
    folder: Path | None,
    *,
    format: str = "auto",
    text_field: str = "text",
    lang: str = "en",
    nlp: Language | None = None,
) -> tuple[AnnotationStore, bool]:
    """``(store, continued)``: the saved project of ``dataset`` if there is one, else a new project
    from the dataset (pre-annotated by ``nlp`` when given), saved before it is returned."""
    path = project_path(dataset, folder)
    if path.exists():
        return AnnotationStore.open(path), True
    project = load_dataset(dataset, format, text_field=text_field, lang=nlp.lang if nlp else lang)
    if nlp is not None:
        preannotate(project, nlp)
        for head in extractor_model(nlp).heads.values():
            schema = head.schema
            _extend(project.entity_labels, schema.entity_labels)
            _extend(project.relation_labels, [r.label for r in schema.relation_types])
    path.parent.mkdir(parents=True, exist_ok=True)
    return AnnotationStore.create(path, project), False


def _extend(labels: list[str], more) -> None:
    labels.extend(label for label in more if label not in labels)


def save_upload(name: str, data: bytes, folder: Path) -> Path:
    """Keep an uploaded dataset in ``folder/uploads`` (its project needs a stable path beside it).
    The same file uploaded again is the same path; a different file with the same name gets its
    content hash in the name."""
    uploads = folder / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    path = uploads / Path(name).name
    if path.exists() and path.read_bytes() != data:
        digest = hashlib.sha1(data).hexdigest()[:8]
        path = uploads / f"{path.stem}-{digest}{path.suffix}"
    if not path.exists():
        write_atomic(path, data)
    return path


def saved_projects(folder: Path) -> list[Path]:
    """The project files in ``folder``, most recently saved first."""
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)


def resume(path: Path) -> AnnotationStore:
    """Open a saved project file; :class:`AnnotationError` when it is missing or unreadable."""
    if not path.is_file():
        raise AnnotationError(f"{path}: no such project file")
    return AnnotationStore.open(path)
