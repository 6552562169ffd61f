"""Reading annotators' files defensively: every way a file can be unusable is a clear message.

Text is decoded by :func:`ner.batch.sources.decode`, the decoder of ``ner extract`` and the Extract
page (a byte-order mark, else UTF-8, else charset-normalizer's guess), so a Windows-1252 file opens
here as it does there. A folder is read file by file with ``ner extract``'s own reader
(:func:`ner.batch.sources.read_items`): one unusable file is listed with its reason
(:class:`Unreadable`) and the others open.

(Writing is atomic, through :func:`ner.files.write_atomic`.)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ner.annotation.model import AnnotatedDoc, AnnotationError
from ner.batch.sources import DEFAULT_MAX_BYTES, SUFFIX_FORMATS, SourceText, decode, printable, read_items
from ner.batch.sources import source_name as _source_name

#: The suffixes read from a folder: those ``ner extract`` reads as plain text (``.txt``, ``.md``).
FOLDER_SUFFIXES = tuple(sorted(suffix for suffix, kind in SUFFIX_FORMATS.items() if kind == "text"))


def read_text(path: str | Path, max_bytes: int | None = None) -> str:
    """The text of ``path``, decoded as ``ner extract`` decodes it; :class:`AnnotationError` naming
    the file if it is too large, unreadable, binary, undecodable or empty."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise AnnotationError(f"{path.name}: {size:,} bytes is over the limit of {max_bytes:,} bytes")
        data = path.read_bytes()
    except OSError as error:
        raise AnnotationError(f"{path}: cannot read: {error.strerror or error}") from None
    if not data.strip():
        raise AnnotationError(f"{path.name}: the file is empty")
    try:
        text, _ = decode(data)
    except ValueError as error:
        raise AnnotationError(f"{path.name}: {error}") from None
    if not text.strip():
        raise AnnotationError(f"{path.name}: the file is empty")
    return text


@dataclass(frozen=True)
class Unreadable:
    """A file (or hidden folder) of a dataset folder that was not opened, and why; ``name`` is its
    path relative to the folder, printable (odd bytes and control characters escaped)."""

    name: str
    reason: str


@dataclass(frozen=True)
class FolderDocs:
    """What a folder gave: one document per readable text file, and every file left out with its reason."""

    docs: list[AnnotatedDoc]
    unreadable: list[Unreadable]


def read_folder(
    folder: str | Path,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    check: Callable[[Path], Path] | None = None,
) -> FolderDocs:
    """The ``.txt`` and ``.md`` files under ``folder``, recursively, in path order, as documents
    named by their relative path; never raises for a file's content.

    ``check`` is called on each file before it is read and returns the path to read (the app
    resolves it inside its data folder); a ``ValueError`` it raises leaves the file out with that
    message. Hidden entries (``.git``) and links to folders are listed, not entered: a link loop
    or a repository's internals must not flood the project."""
    folder = Path(folder)
    docs: list[AnnotatedDoc] = []
    unreadable: list[Unreadable] = []
    for path, reason in _walk(folder):
        name = printable(_source_name(path.relative_to(folder)))
        if reason is None:
            reason, doc = _read_one(path, name, max_bytes, check)
            if doc is not None:
                docs.append(doc)
        if reason is not None:
            unreadable.append(Unreadable(name, reason))
    return FolderDocs(docs, unreadable)


def _walk(folder: Path) -> list[tuple[Path, str | None]]:
    """Every entry to report under ``folder``, sorted: ``(path, None)`` for a text file to read,
    ``(path, reason)`` for one that will not be. Folders that cannot be listed are reasons too."""
    found: list[tuple[Path, str | None]] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: os.fsencode(entry.name))
    except OSError as error:
        return [(folder, f"cannot list the folder: {error.strerror or error}")]
    for entry in entries:
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_link_to_dir = entry.is_symlink() and path.is_dir()
        except OSError as error:
            found.append((path, f"cannot read: {error.strerror or error}"))
            continue
        if entry.name.startswith("."):
            found.append((path, "hidden (its name starts with a dot): not read"))
        elif is_link_to_dir:
            found.append((path, "a link to a folder: not followed"))
        elif is_dir:
            found += _walk(path)
        elif path.suffix.lower() not in FOLDER_SUFFIXES:
            found.append((path, f"not a {' or '.join(FOLDER_SUFFIXES)} file: not read"))
        else:
            found.append((path, None))
    return found


def _read_one(
    path: Path, name: str, max_bytes: int | None, check: Callable[[Path], Path] | None
) -> tuple[str | None, AnnotatedDoc | None]:
    """``(None, document)``, or ``(reason, None)`` when the file cannot be used."""
    try:
        readable = check(path) if check is not None else path
    except ValueError as error:
        return printable(str(error)), None
    items = list(read_items(readable, max_bytes=max_bytes or DEFAULT_MAX_BYTES))
    item = items[0] if len(items) == 1 else None
    if not isinstance(item, SourceText):
        return "; ".join(printable(getattr(i, "reason", "unreadable")) for i in items) or "no text", None
    return None, AnnotatedDoc(name, item.text, source=_source_name(path))
