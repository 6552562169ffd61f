"""Content hashes (SHA-256) of saved files, recorded when they are written and checked when read.

Why: a weights file with random bytes after a valid safetensors header, or a model config with an
edited layer count, loads without complaint and gives wrong results. A recorded hash turns that into
an :class:`IntegrityError` that names the file.

What this guards against, and what not: corruption (disk, copy, truncated download) and accidental
or well-meant edits. The hashes sit beside the files they cover (in a manifest that is itself
hashed), so someone who deliberately edits a file and recomputes the hashes is not stopped; trust
in a pipeline's origin needs a signature or a trusted channel, which this is not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

CHUNK = 1 << 20  # bytes read at a time: files are streamed, never held whole in memory
MISSING = "missing"


class IntegrityError(ValueError):
    """A file whose content is not what was recorded when it was saved, or that is missing, or that
    was added (``expected`` empty); ``path``, ``expected`` and ``actual`` say which and how."""

    def __init__(self, path: Path, expected: str, actual: str, message: str | None = None) -> None:
        self.path, self.expected, self.actual = Path(path), expected, actual
        if message is None:
            if actual == MISSING:
                found = f"the file is missing (recorded sha256 {expected})"
            elif not expected:
                found = f"a file not recorded when it was saved (sha256 {actual})"
            else:
                found = f"sha256 {actual} differs from the recorded sha256 {expected}"
            message = (
                f"{path}: {found}. It was damaged or edited after saving: "
                "restore it from the original, or save the pipeline again."
            )
        super().__init__(message)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(directory: Path, names: Iterable[str]) -> dict[str, str]:
    """``{name: sha256}`` for files given relative to ``directory`` (``/``-separated)."""
    return {name: sha256_file(Path(directory) / name) for name in sorted(names)}


def first_mismatch(directory: Path, recorded: Mapping[str, str]) -> IntegrityError | None:
    """The first recorded file whose content (or existence) differs, as an error; None when all match."""
    for name, expected in sorted(recorded.items()):
        path = Path(directory) / name
        if Path(name).is_absolute() or ".." in Path(name).parts:  # a manifest only covers its folder
            return IntegrityError(path, expected, "", message=f"{path}: recorded outside {directory}")
        actual = sha256_file(path) if path.is_file() else MISSING
        if actual != expected:
            return IntegrityError(path, expected, actual)
    return None


def check_files(directory: Path, recorded: Mapping[str, str]) -> None:
    """Raise :class:`IntegrityError` for the first file that does not match ``recorded``."""
    error = first_mismatch(directory, recorded)
    if error is not None:
        raise error


def files_under(directory: Path, folder: str) -> list[str]:
    """Every file below ``directory / folder``, as ``/``-separated names relative to ``directory``."""
    root = Path(directory)
    return sorted(p.relative_to(root).as_posix() for p in (root / folder).rglob("*") if p.is_file())


def json_sha256(value: object) -> str:
    """The SHA-256 of a JSON value in canonical form (sorted keys, no spaces, ASCII): re-indenting
    or reordering a JSON file keeps its hash, changing any value does not."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()
