"""Documents from files: every supported format becomes texts to extract from, or reasons to skip.

Batch extraction must never stop on a bad file nor drop one silently, so reading never raises for
a file's content: each file yields :class:`SourceText` items (one per document; a JSONL file holds
many) and :class:`Skipped` items that say why something could not be used (binary, empty,
undecodable, corrupt PDF, permission denied, malformed JSON line...).

Formats, by suffix: ``.txt``/``.md`` (and any other suffix) as text; ``.html``/``.htm`` with the
markup dropped; ``.jsonl`` and ``.json`` with the text in a configurable field; ``.pdf`` through
pypdf. Text files that are not UTF-8 are decoded with the encoding charset-normalizer detects.
For HTML and PDF the offsets of entities refer to the extracted text, which is therefore kept in
the output record.

Hostile content is contained here: JSON nested deeper than the parser can follow is a reason, not
a ``RecursionError``; lone surrogates (``"\\ud800"`` is valid JSON, but not Unicode text) become
U+FFFD, one character for one, so offsets are unchanged and the output stays valid UTF-8; file
names that are not UTF-8 are named with their odd bytes escaped (``bad\\xffname.txt``); and
each file is read within a time budget (:mod:`ner.batch.budget`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from ner.batch.budget import DEFAULT_READ_SECONDS, OverBudget, check, time_budget
from ner.corpora.text import bom_encoding

SUFFIX_FORMATS = {
    ".txt": "text",
    ".md": "text",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".json": "json",
    ".pdf": "pdf",
}
DEFAULT_MAX_BYTES = 50_000_000


@dataclass(frozen=True)
class SourceText:
    """One document to extract from. ``line`` is the 1-based line of a JSONL record, ``item`` the
    0-based index of a record in a JSON array; ``encoding`` is how the file was decoded."""

    source: str
    text: str
    line: int | None = None
    item: int | None = None
    encoding: str | None = None

    @property
    def sha256(self) -> str:
        """The content hash that identifies a document across runs (with its source and position)."""
        return hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Skipped:
    """Something that could not be used, and why."""

    source: str
    reason: str
    line: int | None = None
    item: int | None = None


Item = SourceText | Skipped


def find_files(roots: list[Path], pattern: str | None = None) -> list[Path]:
    """Files named directly, plus the files under named folders: those matching ``pattern`` (a glob
    relative to the folder, e.g. ``**/*.txt``), or by default every file with a supported suffix.
    Sorted, so runs are reproducible and resumable."""
    found: list[Path] = []
    for root in roots:
        if not root.is_dir():
            found.append(root)
        elif pattern:
            found += sorted(p for p in root.glob(pattern) if p.is_file())
        else:
            found += sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIX_FORMATS)
    return found


def source_name(path: Path) -> str:
    """``path`` as a valid Unicode string for records and logs: bytes of a file name that are not
    UTF-8 are written as ``\\xNN`` (the same name on every run, so resuming still works)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def printable(text: str) -> str:
    """``text`` with control characters (a newline in a file name) and lone surrogates escaped, so
    that one name cannot forge lines in a listing or a log."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode(), text)


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def read_items(
    path: Path,
    text_field: str = "text",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_seconds: float | None = DEFAULT_READ_SECONDS,
) -> Iterator[Item]:
    """Every document of ``path``, or the reasons they cannot be used; never raises for bad content.

    The file is read and parsed within ``max_seconds`` (None: no limit); over it, it is skipped."""
    try:
        with time_budget(max_seconds):
            items = list(_read_items(path, text_field, max_bytes))
    except OverBudget:
        items = [Skipped(source_name(path), f"reading took over {max_seconds:g} s (--read-timeout)")]
    yield from items


def _read_items(path: Path, text_field: str, max_bytes: int) -> Iterator[Item]:
    source = source_name(path)
    kind = SUFFIX_FORMATS.get(path.suffix.lower(), "text")
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO would block, /dev/zero never ends
            yield Skipped(source, "not a regular file (a device, pipe or socket)")
            return
        if status.st_size > max_bytes:
            yield Skipped(source, f"{status.st_size} bytes is over the limit of {max_bytes} (--max-bytes)")
            return
        if kind == "pdf":
            yield _pdf_item(path)
            return
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since stat
        if len(data) > max_bytes:
            yield Skipped(source, f"over the limit of {max_bytes} bytes (--max-bytes)")
            return
    except OSError as error:
        yield Skipped(source, f"cannot read: {error.strerror or error}")
        return
    try:
        text, encoding = decode(data)
    except ValueError as error:
        yield Skipped(source, str(error))
        return
    if kind == "jsonl":
        yield from _jsonl_items(source, text, text_field)
    elif kind == "json":
        yield from _json_items(source, text, text_field)
    else:
        yield _checked(SourceText(source, html_to_text(text) if kind == "html" else text, encoding=encoding))


def count_items(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """How many items :func:`read_items` will yield for ``path``, for a progress bar's total.

    One for single-document formats and unreadable files; for JSONL the non-blank lines and for a
    JSON array its length, which costs a second read of those files (cheap next to extraction).
    """
    kind = SUFFIX_FORMATS.get(path.suffix.lower(), "text")
    if kind not in ("jsonl", "json"):
        return 1
    try:
        if path.stat().st_size > max_bytes:
            return 1
        data = path.read_bytes()
    except OSError:
        return 1
    if kind == "jsonl":
        return max(1, sum(1 for line in data.split(b"\n") if line.strip()))
    try:
        value = _parse_json(data)
    except ValueError:
        return 1
    return len(value) if isinstance(value, list) else 1


def decode(data: bytes) -> tuple[str, str]:
    """``(text, encoding)``: a byte-order mark, else UTF-8, else charset-normalizer's best guess.
    Raises ``ValueError`` for binary data and for bytes no encoding explains."""
    if not data.strip():
        raise ValueError("empty (no text)")
    encoding = bom_encoding(data)
    if encoding:
        return data.decode(encoding), encoding
    if b"\x00" in data[:65536]:
        raise ValueError("binary content (NUL bytes)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise ValueError("binary content or an unknown text encoding")
    best = _preferred(matches)
    return str(best), best.encoding


#: When several single-byte encodings explain the bytes equally well (a short French text reads as
#: cp1252 and cp1250 alike), the bytes cannot tell; take the most common legacy encoding first.
_TIE_BREAK = ("cp1252", "latin_1", "iso8859_15")


def _preferred(matches: list):
    """charset-normalizer's best match, unless a more common encoding ties with it."""
    top = (matches[0].chaos, -matches[0].coherence)
    tied = {m.encoding: m for m in matches if (m.chaos, -m.coherence) <= top}
    return next((tied[name] for name in _TIE_BREAK if name in tied), matches[0])


def _checked(item: SourceText) -> Item:
    if not item.text.strip():
        return Skipped(item.source, "empty (no text)", item.line, item.item)
    if _SURROGATES.search(item.text):
        text = _SURROGATES.sub("\ufffd", item.text)
        return SourceText(item.source, text, item.line, item.item, item.encoding)
    return item


def _parse_json(text: str | bytes) -> object:
    """``json.loads``, with nesting too deep for the parser reported as a ``ValueError``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None


def _record_text(record: object, text_field: str) -> str:
    if not isinstance(record, dict):
        raise ValueError(f"a JSON {type(record).__name__}, not an object with a {text_field!r} field")
    if text_field not in record:
        raise ValueError(f"no {text_field!r} field (fields: {', '.join(map(str, list(record)[:8]))})")
    if not isinstance(record[text_field], str):
        raise ValueError(f"field {text_field!r} is a {type(record[text_field]).__name__}, not a string")
    return record[text_field]


def _jsonl_items(source: str, text: str, text_field: str) -> Iterator[Item]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = _record_text(_parse_json(line), text_field)
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            yield Skipped(source, f"line {number}: {error}", line=number)
            continue
        yield _checked(SourceText(source, value, line=number, encoding="utf-8"))


def _json_items(source: str, text: str, text_field: str) -> Iterator[Item]:
    try:
        value = _parse_json(text)
    except ValueError as error:
        yield Skipped(source, f"invalid JSON: {error}")
        return
    records = value if isinstance(value, list) else [value]
    for index, record in enumerate(records):
        item = index if isinstance(value, list) else None
        try:
            yield _checked(SourceText(source, _record_text(record, text_field), item=item, encoding="utf-8"))
        except ValueError as error:
            where = f"item {index}: " if item is not None else ""
            yield Skipped(source, f"{where}{error}", item=item)


def _pdf_item(path: Path) -> Item:
    """The text of every page, pages separated by a blank line."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    source = source_name(path)
    try:
        reader = PdfReader(path)
        pages = []
        for page in reader.pages:
            check()  # the cooperative time budget, where no alarm signal can interrupt us
            pages.append((page.extract_text() or "").strip())
        text = "\n\n".join(pages)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as error:
        return Skipped(source, f"corrupt or unreadable PDF: {type(error).__name__}: {error}")
    if not text.strip():
        return Skipped(source, "no extractable text in the PDF (a scan? OCR is not supported)")
    return _checked(SourceText(source, text, encoding="pdf"))


# ------------------------------------------------------------------------------------------ HTML
_BLOCKS = {
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "footer",
    "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
    "section", "table", "td", "th", "tr", "ul",
}  # fmt: skip
_SPACES = re.compile(r"\s+")
_HIDDEN = {"script", "style", "head", "template", "noscript", "svg"}


class _TextExtractor(HTMLParser):
    """Visible text; block elements start new lines, so words of different paragraphs never merge."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:  # line breaks in the source are spaces in HTML: only blocks break lines
            self.parts.append(_SPACES.sub(" ", data))


def html_to_text(html: str) -> str:
    """The visible text of an HTML page: one line per block, spaces collapsed, blank lines squeezed."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    paragraphs, blank = [], False
    for line in lines:
        if line:
            paragraphs.append(line)
            blank = False
        elif not blank and paragraphs:
            paragraphs.append("")
            blank = True
    return "\n".join(paragraphs).strip()
