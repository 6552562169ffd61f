"""Word boundaries from spaCy's blank tokenizer, the one every export uses.

Spans snap to the tokens of the project's language, so that an exported span, aligned with
``doc.char_span(..., alignment_mode="expand")``, covers exactly the characters the annotator saw
highlighted: no silent widening between the screen and the training file.
"""

from __future__ import annotations

from functools import lru_cache

import spacy
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc

from ner.annotation.model import AnnotationError


@lru_cache(maxsize=8)
def tokenizer(lang: str) -> Tokenizer:
    """The blank ``lang`` pipeline's tokenizer (built once per language: building costs ~0.1 s)."""
    try:
        return spacy.blank(lang).tokenizer
    except (ImportError, KeyError, ValueError) as error:  # spaCy raises ImportError for unknown codes
        raise AnnotationError(f"unknown language code {lang!r} (spaCy has no tokenizer for it)") from error


def tokenize(text: str, lang: str) -> Doc:
    return tokenizer(lang)(text)


@lru_cache(maxsize=64)
def word_bounds(text: str, lang: str) -> tuple[tuple[int, int], ...]:
    """``(start, end)`` of every non-whitespace token, in order (cached: the app snaps repeatedly
    in the same document)."""
    return tuple((t.idx, t.idx + len(t)) for t in tokenize(text, lang) if not t.text.isspace())


def snap(text: str, start: int, end: int, lang: str) -> tuple[int, int]:
    """The smallest run of whole tokens holding every non-space character of ``text[start:end]``.

    Raises :class:`AnnotationError` for a range outside the text or one with only whitespace.
    """
    if not 0 <= start < end <= len(text):
        raise AnnotationError(f"selection ({start}, {end}) is empty or outside the text (0, {len(text)})")
    selected = text[start:end]
    if selected.isspace():
        raise AnnotationError("the selection holds only whitespace")
    start, end = start + len(selected) - len(selected.lstrip()), end - len(selected) + len(selected.rstrip())
    covered = [(a, b) for a, b in word_bounds(text, lang) if a < end and b > start]
    return covered[0][0], covered[-1][1]
