"""Reading user files defensively and writing ours atomically.

An annotator's work must survive a crash at any moment, so files are replaced whole: written to
a temporary file beside the target, flushed to disk, then renamed over it (``os.replace`` is
atomic on POSIX and Windows). A reader sees the old file or the new one, never half of each.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ner.annotation.model import AnnotationError


def write_atomic(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, all or nothing (the temporary file is removed on failure)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not every platform can open a directory, which is harmless."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def read_text(path: str | Path, max_bytes: int | None = None) -> str:
    """The UTF-8 text of ``path``; :class:`AnnotationError` naming the file if it is too large,
    unreadable, binary, not UTF-8 or empty."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise AnnotationError(f"{path.name}: {size:,} bytes is over the limit of {max_bytes:,} bytes")
        data = path.read_bytes()
    except OSError as error:
        raise AnnotationError(f"{path}: cannot read: {error.strerror or error}") from None
    if b"\x00" in data:
        raise AnnotationError(f"{path.name}: a binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise AnnotationError(
            f"{path.name}:{line}: not UTF-8 text (byte {data[error.start]:#04x}); save it as UTF-8"
        ) from None
    if not text.strip():
        raise AnnotationError(f"{path.name}: the file is empty")
    return text
