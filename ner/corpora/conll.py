"""Column (CoNLL-style) NER corpora: one token per line, a B/I/O tag in one column, blank-line sentences.

One reader covers the tagged corpora the library trains and evaluates on, which differ only in
columns, tag scheme and small quirks (see ``shared/data/README.md``):

* BioBERT TSV: ``token<TAB>B|I|O``, *untyped* tags, so the type comes from ``entity_type``;
* Crichton IOB TSV (``bc5cdr``): ``token<TAB>B-Chemical``;
* CoNLL-2003: ``token POS chunk NER``, space separated, IOB1, ``-DOCSTART-`` lines;
* CoNLL-2002: ``token NER`` (es) or ``token POS NER`` (nl, with ``-DOCSTART-`` lines not followed
  by a blank line), IOB2, but some es sentences start with ``I-``;
* WikiANN: ``nl:token<TAB>TAG``, IOB2, with a language prefix on every token.

Tags are turned into spans with conlleval's chunking rules: an ``I-X`` after ``O``, at the start
of a sentence or after another type starts a new entity. These rules decode IOB1 and IOB2 (and
IOB2 with the stray leading ``I-`` tags above) identically, which is how the published entity
counts were made, so ``scheme`` does not change decoding: it is validated and records what the
file claims to be. Writing always produces IOB2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from ner.corpora.text import CorpusError, read_text
from ner.documents import Document, Entity

Scheme = Literal["iob1", "iob2"]
SCHEMES = ("iob1", "iob2")
DOCSTART = "-DOCSTART-"
_LANGUAGE_PREFIX = re.compile(r"[a-z]{2,3}:(?=.)", re.DOTALL)

#: Keyword arguments of :func:`read_conll` for each corpus family, so callers need not remember columns.
#: BioBERT TSV tags are untyped; its ``entity_type`` is a generic placeholder, override it with the
#: dataset's type (``read_corpus(path, "biobert_tsv", entity_type="Disease")``).
FORMATS: dict[str, dict[str, Any]] = {
    "biobert_tsv": {"scheme": "iob2", "entity_type": "ENTITY", "token_column": 0, "tag_column": -1},
    "crichton_iob": {"scheme": "iob2", "token_column": 0, "tag_column": -1},
    "conll2003": {"scheme": "iob1", "token_column": 0, "tag_column": -1},
    "conll2002": {"scheme": "iob2", "token_column": 0, "tag_column": -1},
    "wikiann": {"scheme": "iob2", "token_column": 0, "tag_column": -1, "strip_prefix": True},
}


class TagError(ValueError):
    """A tag that is not ``O``, ``B``/``I`` or ``B-X``/``I-X``; ``index`` is its position in the sequence."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"tag {index}: {message}")
        self.index = index
        self.reason = message


@lru_cache(maxsize=4096)
def _parse_tag(tag: str, entity_type: str | None) -> tuple[str, str | None]:
    """``(prefix, type)`` of one tag; cached because a corpus has only a handful of distinct tags."""
    if tag == "O":
        return "O", None
    prefix, dash, label = tag.partition("-")
    if prefix not in ("B", "I"):
        raise ValueError(f"unknown tag {tag!r}: expected O, B, I, B-<type> or I-<type>")
    if dash:
        if not label:
            raise ValueError(f"tag {tag!r} has an empty type")
        return prefix, label
    if entity_type is None:
        raise ValueError(f"untyped tag {tag!r} needs entity_type (e.g. entity_type='Disease')")
    return prefix, entity_type


def tags_to_spans(tags: Sequence[str], entity_type: str | None = None) -> list[tuple[int, int, str]]:
    """Typed ``(start, end, label)`` spans (end exclusive) from B/I/O tags, with conlleval chunking.

    A chunk starts at every ``B``, and at an ``I`` that follows ``O``, the sentence start or a
    different type; so IOB1, IOB2 and sloppy IOB2 all decode the way conlleval scores them.
    Untyped ``B``/``I`` tags take ``entity_type``. Raises :class:`TagError` (a ``ValueError``)
    on a malformed tag, with its index.
    """
    spans: list[tuple[int, int, str]] = []
    start: int | None = None
    current: str | None = None
    for index, tag in enumerate(tags):
        try:
            prefix, label = _parse_tag(tag, entity_type)
        except ValueError as error:
            raise TagError(index, str(error)) from None
        if prefix == "O":
            if start is not None:
                spans.append((start, index, current))
                start = None
        elif prefix == "B" or start is None or label != current:
            if start is not None:
                spans.append((start, index, current))
            start, current = index, label
    if start is not None:
        spans.append((start, len(tags), current))
    return spans


def spans_to_bio(length: int, spans: Iterable[tuple[int, int, str] | Entity]) -> list[str]:
    """IOB2 tags for ``length`` tokens; the inverse of :func:`tags_to_spans` for non-overlapping spans.

    Overlapping (nested) spans cannot be expressed in one tag sequence, so they raise ``ValueError``
    rather than silently losing an entity.
    """
    tags = ["O"] * length
    for span in spans:
        start, end, label = (span.start, span.end, span.label) if isinstance(span, Entity) else span
        if not 0 <= start < end <= length:
            raise ValueError(f"span {(start, end, label)} outside the {length} tokens")
        if not label or any(character.isspace() for character in label):
            raise ValueError(f"span {(start, end, label)}: a type must be non-empty without whitespace")
        if any(tag != "O" for tag in tags[start:end]):
            raise ValueError(f"span {(start, end, label)} overlaps another span; BIO tags cannot nest")
        tags[start] = f"B-{label}"
        tags[start + 1 : end] = [f"I-{label}"] * (end - start - 1)
    return tags


def read_conll(
    path: str | Path,
    *,
    scheme: Scheme = "iob2",
    entity_type: str | None = None,
    token_column: int = 0,
    tag_column: int = -1,
    strip_prefix: bool = False,
    encoding: str | None = None,
) -> list[Document]:
    """Read a column-format NER file into one :class:`Document` per sentence.

    Sentences end at blank lines and at ``-DOCSTART-`` lines, which are skipped (CoNLL-2002 nl has
    no blank line after them). Columns are split on tabs when the line has one (tokens may then
    contain spaces), else on whitespace. Every token line must have as many columns as the file's
    first one. ``strip_prefix`` removes a leading ``xx:`` language code from tokens (WikiANN).
    Document ids are ``"<file name>:<line of the sentence's first token>"``. Malformed lines raise
    :class:`CorpusError` naming the file and the 1-based line number; so does a file that is not
    UTF-8 (or ``encoding``; see :mod:`ner.corpora.text`), missing or unreadable.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    path = Path(path)
    # split("\n"): a token may hold characters that str.splitlines() treats as breaks.
    lines = read_text(path, encoding).split("\n")

    documents: list[Document] = []
    words: list[str] = []
    tags: list[str] = []
    line_numbers: list[int] = []
    width: int | None = None

    def flush() -> None:
        if not words:
            return
        try:
            spans = tags_to_spans(tags, entity_type)
        except TagError as error:
            raise CorpusError(f"{path}:{line_numbers[error.index]}: {error.reason}") from None
        entities = [Entity(start, end, label) for start, end, label in spans]
        documents.append(Document.from_words(words, entities=entities, id=f"{path.name}:{line_numbers[0]}"))
        words.clear()
        tags.clear()
        line_numbers.clear()

    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            flush()
            continue
        columns = line.split("\t") if "\t" in line else line.split()
        if columns[0].strip() == DOCSTART:
            flush()
            continue
        if width is None:
            width = len(columns)
        if len(columns) != width:
            raise CorpusError(f"{path}:{number}: expected {width} columns, found {len(columns)}: {line!r}")
        try:
            token, tag = columns[token_column], columns[tag_column].strip()
        except IndexError:
            raise CorpusError(
                f"{path}:{number}: no token column {token_column} or tag column {tag_column} "
                f"in {len(columns)} columns: {line!r}"
            ) from None
        if strip_prefix:
            token = _LANGUAGE_PREFIX.sub("", token, count=1)
        if not token:
            raise CorpusError(f"{path}:{number}: empty token: {line!r}")
        words.append(token)
        tags.append(tag)
        line_numbers.append(number)
    flush()
    return documents


def read_corpus(path: str | Path, format: str, **overrides: Any) -> list[Document]:
    """Read ``path`` with the named preset from :data:`FORMATS`; ``overrides`` replace its keywords."""
    try:
        preset = FORMATS[format]
    except KeyError:
        raise ValueError(f"unknown corpus format {format!r}; known formats: {', '.join(FORMATS)}") from None
    return read_conll(path, **{**preset, **overrides})


def write_conll(documents: Iterable[Document], path: str | Path) -> None:
    """Write ``token<TAB>IOB2-tag`` lines, a blank line after each sentence.

    The inverse of :func:`read_conll` for non-overlapping entities. Words that would not read
    back (empty, holding a tab or line break, or ``-DOCSTART-``) raise ``ValueError``; documents
    without words have no lines and so are not written.
    """
    chunks: list[str] = []
    for doc in documents:
        if not doc.words:
            continue
        tags = spans_to_bio(len(doc.words), doc.entities)
        for word, tag in zip(doc.words, tags):
            if not word or any(c in word for c in "\t\n\r") or word.strip() in ("", DOCSTART):
                raise ValueError(f"document {doc.id}: word {word!r} cannot be written as a CoNLL token")
            chunks.append(f"{word}\t{tag}\n")
        chunks.append("\n")
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("".join(chunks))
