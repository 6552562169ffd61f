"""Reading corpus, types and config files as text, with errors that name the file.

Corpora are gold data: their characters become training targets and their offsets scores, so they
are decoded strictly and never guessed. A file is UTF-8 unless it starts with a byte-order mark
(UTF-8, UTF-16 or UTF-32, which is unambiguous) or the caller names another encoding (a task's
``encoding``, ``ner evaluate --encoding``). A file that does not decode is refused with its
name, the byte offset, line and column of the first bad byte and how to fix it.

``ner extract`` guesses instead (:func:`ner.batch.sources.decode`), because there a guess that is
slightly off costs one document's accuracy while a refusal loses the document. For training and
scoring a wrong guess is worse than a refusal: Windows-1252, Latin-1 and Latin-2 all decode the same
bytes to different letters, so a guess silently changes the gold, may change with the version of
the detector, and hides files that mix two encodings.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def bom_encoding(data: bytes) -> str | None:
    """The encoding a byte-order mark at the start of ``data`` declares, or None (no mark)."""
    return next((name for bom, name in _BOMS if data.startswith(bom)), None)


#: How to fix a corpus that does not decode; TOML configs, which must be UTF-8, say only the first half.
CORPUS_HINT = (
    "convert it (e.g. iconv -f latin1 -t utf-8 FILE > NEW) or declare its encoding "
    '(a task\'s encoding = "latin-1", ner evaluate --encoding latin-1)'
)


class CorpusError(ValueError):
    """A corpus file does not follow its format; the message names the file and the record."""


def check_encoding(name: str) -> str:
    """``name`` if Python knows this text encoding; ``ValueError`` naming it otherwise."""
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(f"unknown text encoding {name!r} (e.g. utf-8, latin-1, cp1252)") from None
    return name


def read_bytes(path: str | Path, kind: str = "corpus file") -> bytes:
    """The bytes of ``path``; a missing file, a folder or an unreadable file is a :class:`CorpusError`."""
    path = Path(path)
    if path.is_dir():
        raise CorpusError(f"{path}: is a folder, not a {kind}")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such {kind}") from None
    except OSError as error:  # permission denied, I/O error, a name too long...
        raise CorpusError(f"{path}: cannot read the {kind}: {error.strerror or error}") from None


def decode_text(
    data: bytes,
    path: str | Path,
    encoding: str | None = None,
    kind: str = "corpus file",
    hint: str = CORPUS_HINT,
) -> str:
    """``data`` decoded with ``encoding``, or by its byte-order mark, else as UTF-8 (see the module);
    ``hint`` ends the message of a file that does not decode."""
    if encoding is None:
        encoding = bom_encoding(data) or "utf-8"
    try:
        check_encoding(encoding)
    except ValueError as error:
        raise CorpusError(f"{path}: {error}") from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        raise CorpusError(f"{_undecodable(path, data, error, kind)}; {hint}") from None
    return text.removeprefix("\ufeff")  # a byte-order mark decoded by a plain "utf-8" is not content


def _undecodable(path: str | Path, data: bytes, error: UnicodeDecodeError, kind: str) -> str:
    line = data.count(b"\n", 0, error.start) + 1
    column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
    bad = data[error.start : error.end].hex(" ")
    return (
        f"{path}:{line}:{column}: this {kind} is not {error.encoding} "
        f"(byte offset {error.start}: {bad}, {error.reason})"
    )


def read_text(
    path: str | Path, encoding: str | None = None, kind: str = "corpus file", hint: str = CORPUS_HINT
) -> str:
    """The text of ``path``, decoded strictly (see the module); every failure names the file."""
    return decode_text(read_bytes(path, kind), path, encoding, kind, hint)


def read_json(path: str | Path, encoding: str | None = None, kind: str = "JSON file") -> Any:
    """Parse ``path`` as JSON; an empty file, invalid JSON or absurd nesting is a :class:`CorpusError`."""
    text = read_text(path, encoding, kind)
    if not text.strip():
        raise CorpusError(f"{path}: the {kind} is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CorpusError(
            f"{path}:{error.lineno}: not valid JSON (column {error.colno}: {error.msg})"
        ) from None
    except RecursionError:
        raise CorpusError(f"{path}: JSON nested too deeply to be a {kind}") from None
