"""A project on disk: one JSON file, rewritten atomically after every change.

The file is ``{"format": "ner-annotations", "version": 1, "project": {...}}``; the version lets a
later format migrate old files instead of rejecting them. Opening validates everything (types
with pydantic, offsets and indices with :func:`~ner.annotation.model.check_project`) and a file
that cannot be read is reported, never overwritten.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ner.annotation.model import AnnotationError, Project, check_project, project_from_dict, project_to_dict
from ner.files import write_atomic

FORMAT = "ner-annotations"
VERSION = 1
SUFFIX = ".annotations.json"
T = TypeVar("T")


class AnnotationStore:
    """A :class:`Project` bound to its file. Use :meth:`create` or :meth:`open`, then change the
    project only through :meth:`apply` and the cursor methods, which save."""

    def __init__(self, path: str | Path, project: Project) -> None:
        self.path = Path(path)
        self.project = project

    @staticmethod
    def path_for(folder: str | Path, name: str) -> Path:
        """``<folder>/<name>.annotations.json``, the name reduced to characters safe in file names."""
        safe = re.sub(r"[^\w.-]+", "_", name).strip("._") or "annotations"
        return Path(folder) / f"{safe}{SUFFIX}"

    @classmethod
    def create(cls, path: str | Path, project: Project, *, overwrite: bool = False) -> AnnotationStore:
        """Save ``project`` as a new file; an existing file is kept unless ``overwrite``."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise AnnotationError(f"{path.name} already exists: open it to continue, or choose another name")
        check_project(project)
        store = cls(path, project)
        store.save()
        return store

    @classmethod
    def open(cls, path: str | Path) -> AnnotationStore:
        """Load and validate a saved project; :class:`AnnotationError` naming the file otherwise."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise AnnotationError(f"{path}: cannot read: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise AnnotationError(f"{path.name}: not a UTF-8 JSON file") from None
        except json.JSONDecodeError as error:
            raise AnnotationError(
                f"{path.name}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
            ) from None
        try:
            return cls(path, project_from_dict(_current_format(data)))
        except AnnotationError as error:
            raise AnnotationError(f"{path.name}: {error}") from None

    def save(self) -> None:
        data = {"format": FORMAT, "version": VERSION, "project": project_to_dict(self.project)}
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
