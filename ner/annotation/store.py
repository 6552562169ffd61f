"""A project on disk: one JSON file, rewritten atomically after every change.

The file is ``{"format": "ner-annotations", "version": 1, "dataset": {...}, "project": {...}}``; the
version lets a later format migrate old files instead of rejecting them. ``dataset`` (optional, so
files without it still open) says which dataset the project was made from and which of its files
were left out, with why: :meth:`AnnotationStore.path_for_dataset` uses it to give a project a
readable name (``docs.annotations.json``) and tell it from another dataset's of the same name.

Opening validates everything (types with pydantic, offsets and indices with
:func:`~ner.annotation.model.check_project`) and a file that cannot be read is reported, never
overwritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ner.annotation.files import Unreadable
from ner.annotation.model import AnnotationError, Project, check_project, project_from_dict, project_to_dict
from ner.batch.sources import source_name
from ner.files import write_atomic

FORMAT = "ner-annotations"
VERSION = 1
SUFFIX = ".annotations.json"
T = TypeVar("T")
logger = logging.getLogger(__name__)


class _Unreadable(BaseModel):
    name: str
    reason: str


class _Dataset(BaseModel):
    """The file's ``dataset`` section, validated when it is read."""

    path: str
    unreadable: list[_Unreadable] = []


class AnnotationStore:
    """A :class:`Project` bound to its file. Use :meth:`create` or :meth:`open`, then change the
    project only through :meth:`apply` and the cursor methods, which save."""

    def __init__(
        self,
        path: str | Path,
        project: Project,
        dataset: str | Path | None = None,
        unreadable: Iterable[Unreadable] = (),
    ) -> None:
        self.path = Path(path)
        self.project = project
        # the dataset's path, when the project was made from one (as text that JSON can hold)
        self.dataset = source_name(dataset) if isinstance(dataset, Path) else dataset
        self.unreadable = list(unreadable)  # the dataset's files left out, with why

    @staticmethod
    def path_for(folder: str | Path, name: str) -> Path:
        """``<folder>/<name>.annotations.json``, the name reduced to characters safe in file names."""
        safe = re.sub(r"[^\w.-]+", "_", name).strip("._") or "annotations"
        return Path(folder) / f"{safe}{SUFFIX}"

    @classmethod
    def path_for_dataset(cls, folder: str | Path, dataset: Path) -> Path:
        """Where the project of ``dataset`` (a resolved path) lives in ``folder``.

        A project saved under the old name (``docs.jsonl-<hash of its folder>``) keeps it, so it
        still opens; otherwise the readable ``<stem>.annotations.json``, unless that file belongs
        to another dataset, and only then ``<stem>-<hash of the dataset's path>``. A readable-named
        file that cannot be read is returned as it is: opening it reports the problem, rather than
        starting a new project beside the annotator's damaged one."""
        legacy = hashlib.sha1(str(dataset.parent).encode("utf-8", "surrogateescape")).hexdigest()[:8]
        old = cls.path_for(folder, f"{dataset.name}-{legacy}")
        readable = cls.path_for(folder, dataset.stem or dataset.name)
        if old.exists() or not readable.exists():
            return old if old.exists() else readable
        try:
            if cls.dataset_of(readable) == source_name(dataset):
                return readable
        except AnnotationError:
            return readable
        digest = hashlib.sha1(str(dataset).encode("utf-8", "surrogateescape")).hexdigest()[:8]
        return cls.path_for(folder, f"{dataset.stem or dataset.name}-{digest}")

    @staticmethod
    def dataset_of(path: str | Path) -> str | None:
        """The dataset path a project file records (None if it records none); :class:`AnnotationError`
        when the file cannot be read."""
        data = _read_json(Path(path))
        section = data.get("dataset") if isinstance(data, dict) else None
        return section.get("path") if isinstance(section, dict) else None

    @classmethod
    def create(
        cls,
        path: str | Path,
        project: Project,
        *,
        overwrite: bool = False,
        dataset: str | Path | None = None,
        unreadable: Iterable[Unreadable] = (),
    ) -> AnnotationStore:
        """Save ``project`` as a new file; an existing file is kept unless ``overwrite``. ``dataset``
        and ``unreadable`` record where the project came from and which files were left out."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise AnnotationError(f"{path.name} already exists: open it to continue, or choose another name")
        check_project(project)
        store = cls(path, project, dataset, unreadable)
        store.save()
        return store

    @classmethod
    def open(cls, path: str | Path) -> AnnotationStore:
        """Load and validate a saved project; :class:`AnnotationError` naming the file otherwise."""
        path = Path(path)
        data = _read_json(path)
        try:
            project = project_from_dict(_current_format(data))
        except AnnotationError as error:
            raise AnnotationError(f"{path.name}: {error}") from None
        dataset = _dataset_section(data, path)
        if dataset is None:
            return cls(path, project)
        unreadable = [Unreadable(u.name, u.reason) for u in dataset.unreadable]
        return cls(path, project, dataset.path, unreadable)

    def save(self) -> None:
        data: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        if self.dataset is not None:
            unreadable = [{"name": u.name, "reason": u.reason} for u in self.unreadable]
            data["dataset"] = {"path": self.dataset, "unreadable": unreadable}
        data["project"] = project_to_dict(self.project)
        write_atomic(self.path, json.dumps(data, ensure_ascii=False).encode("utf-8"))

    def apply(self, edit: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run an edit (e.g. ``store.apply(add_span, doc, 0, 5, "Peop")``) and save if it succeeds.

        Edits validate before they mutate, so a refused one raises with nothing changed or saved.
        """
        result = edit(*args, **kwargs)
        self.save()
        return result

    def goto(self, index: int) -> int:
        """Move the cursor to document ``index`` and save; returns the cursor."""
        if not 0 <= index < len(self.project.docs):
            raise AnnotationError(f"no document {index}: the project has {len(self.project.docs)}")
        self.project.cursor = index
        self.save()
        return index

    def next(self) -> int:
        """The following document (staying on the last one)."""
        return self.goto(min(self.project.cursor + 1, len(self.project.docs) - 1))

    def previous(self) -> int:
        """The preceding document (staying on the first one)."""
        return self.goto(max(self.project.cursor - 1, 0))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AnnotationError(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise AnnotationError(f"{path.name}: not a UTF-8 JSON file") from None
    except json.JSONDecodeError as error:
        raise AnnotationError(
            f"{path.name}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None


def _dataset_section(data: dict, path: Path) -> _Dataset | None:
    """The ``dataset`` section, or None when there is none or it is malformed: it only describes
    the project's origin, so a damaged one is logged and never keeps the annotations from opening."""
    if data.get("dataset") is None:
        return None
    try:
        return _Dataset.model_validate(data["dataset"])
    except ValidationError as error:
        logger.warning("%s: the dataset section is ignored: %s", path.name, error.errors()[0]["msg"])
        return None


def _current_format(data: Any) -> Any:
    """The ``project`` of a file in today's format. Migrations from older versions go here."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AnnotationError(f'not an annotation project (no "format": "{FORMAT}")')
    version = data.get("version")
    if version != VERSION:
        raise AnnotationError(f"format version {version!r} is not supported (this program reads {VERSION})")
    if "project" not in data:
        raise AnnotationError('no "project" in the file')
    return data["project"]
