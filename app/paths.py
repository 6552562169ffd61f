"""The app's data folder, and the one check every path typed into the app goes through.

The app reads datasets and writes projects, uploads and exports only inside its data folder
(``ner app --data-dir``, else ``./annotations`` under the working directory). A path from a page
is resolved (symlinks included) before it is compared with the folder, so ``..``, an absolute
path elsewhere, or a symlink in the folder that points out of it are all refused with a message
the page shows. Callers use the resolved path this returns, never the string they were given.

This module imports nothing heavy: ``ner app`` uses it before Streamlit starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

ENV_DATA_DIR = "NER_APP_DATA_DIR"
DEFAULT_FOLDER = "annotations"  # under the working directory, when no --data-dir is given
MAX_PATH_BYTES = 4096  # PATH_MAX on Linux: longer paths cannot be opened anyway
MAX_NAME_BYTES = 255  # NAME_MAX: the longest file name one folder entry can have


class PathRefused(ValueError):
    """A path the app will not read or write; the message is for the person who typed it."""


def data_folder(env: Mapping[str, str] | None = None) -> Path:
    """The folder the app may read and write: ``$NER_APP_DATA_DIR`` (set by ``ner app``), else
    ``./annotations``; absolute and resolved, so comparisons with it are exact."""
    value = (os.environ if env is None else env).get(ENV_DATA_DIR, "").strip()
    return (Path(value) if value else Path.cwd() / DEFAULT_FOLDER).resolve()


def confine(raw: str | os.PathLike[str], root: Path) -> Path:
    """``raw`` resolved, when it lies in ``root`` (itself included); :class:`PathRefused` otherwise.

    A relative path is taken relative to ``root``, ``~`` is the server user's home, and every
    symlink is followed before the comparison, so what is returned is where a read or write would
    really go. The path does not have to exist (an export folder may be new).
    """
    text = _checked_text(raw)
    base = root.resolve()
    candidate = Path(os.path.expanduser(text)) if text.startswith("~") else Path(text)
    try:
        resolved = (base / candidate).resolve()
    except RuntimeError:  # Python < 3.13 on a symlink loop
        raise PathRefused(f"{text}: a symlink in it does not resolve (a loop?)") from None
    except (OSError, ValueError) as error:  # e.g. a folder on the way that cannot be read
        raise PathRefused(f"{text}: cannot be resolved ({error})") from None
    if not resolved.is_relative_to(base):
        if Path(os.path.normpath(base / candidate)).is_relative_to(base):
            raise PathRefused(f"{text} leads outside the data folder {base} (through a symlink): refused.")
        raise PathRefused(f"{text} is outside the data folder {base}: only paths in it can be used.")
    if _unresolved_link(resolved, base):
        raise PathRefused(f"{text}: a symlink in it does not resolve (a loop?)")
    return resolved


def confine_all(paths: Iterable[Path], root: Path) -> list[Path]:
    """Each of ``paths`` resolved and checked by :func:`confine`: for a folder whose files a
    reader will open one by one, so that a symlink among them cannot lead out of ``root``."""
    return [confine(path, root) for path in paths]


def file_name(name: str) -> str:
    """The last component of a client-supplied file name (an upload's), refused when nothing
    usable is left: empty, ``.``, ``..``, a NUL byte, characters a file name cannot hold, or
    longer than a folder entry can be."""
    base = Path(name.replace("\\", "/")).name if "\x00" not in name else ""
    try:
        too_long = len(os.fsencode(base)) > MAX_NAME_BYTES
    except UnicodeError:  # a lone surrogate
        too_long = True
    if base in ("", ".", "..") or too_long:
        raise PathRefused(f"{name!r} cannot be used as a file name.")
    return base


def _checked_text(raw: str | os.PathLike[str]) -> str:
    """``raw`` as a string the operating system can take, or the reason it cannot."""
    text = os.fspath(raw).strip()
    if not text:
        raise PathRefused("Enter a path.")
    if "\x00" in text:
        raise PathRefused("A path cannot contain a NUL byte.")
    try:
        encoded = os.fsencode(text)
    except UnicodeError:
        raise PathRefused(f"{text!r} is not a valid path (characters that cannot be encoded).") from None
    if len(encoded) > MAX_PATH_BYTES or any(len(part) > MAX_NAME_BYTES for part in encoded.split(b"/")):
        raise PathRefused(f"This path is too long ({len(encoded)} bytes).")
    return text


def _unresolved_link(resolved: Path, base: Path) -> bool:
    """Whether a component of ``resolved`` below ``base`` is still a symlink: ``resolve`` leaves
    links it cannot follow (loops) in place, and such a path could lead anywhere later."""
    for part in [resolved, *resolved.parents]:
        if part == base:
            return False
        try:
            if part.is_symlink():
                return True
        except OSError:
            continue
    return False
