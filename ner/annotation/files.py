"""Reading annotators' files defensively: every way a file can be unusable is a clear message.

(Writing is atomic, through :func:`ner.files.write_atomic`.)
"""

from __future__ import annotations

from pathlib import Path

from ner.annotation.model import AnnotationError


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
