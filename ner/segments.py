"""Overlong segments cut into overlapping windows, and the windows' predictions merged back.

SpERT classifies every span of up to ``max_span_width`` words of a segment, and pairs every two
spans it keeps, so its pairs grow with the square of the segment. A text with no sentence
boundary is a single segment: 20,000 unpunctuated words once took 12 GB and two minutes. The
extractor therefore never gives the model more than ``size`` words at once. A longer segment is
cut into windows that overlap by ``overlap`` words. Each window ends at the strongest weak
boundary in its last quarter: a full stop or line break, then ``;`` or ``:``, then a comma, else
anywhere. The encoder, the span and pair enumeration and the SpERT filtering then work on one
window at a time, so memory and time per window are bounded and grow linearly with the text.

Merging is deterministic. The midpoints of the overlaps split the segment into parts, one per
window. A window keeps the entities that *start* in its part, so an entity found by two windows
is kept once. It is kept from the window that sees it with at least ``overlap // 2`` words of
context before it. An entity also needs ``overlap // 2`` words of room after its start: the
extractor's default overlap of 64 leaves 32, well above SpERT's 10-word span limit. A relation
is kept when both of its arguments are among the kept entities. They are matched by their words,
and by their label where it matches too. A window near its edge may label a span differently
from the window that owns it. SpERT's pair classifier does not read the labels, so the relation
stands, and it points at the owner's entity. If two windows find the same relation, it is kept
once, with the higher score. Relations are sought within a window only: two entities further
apart than a window never form a pair.

A segment of at most ``size`` words is one window, and its predictions pass through untouched.

Before any of this, a blank line is a hard boundary (:func:`paragraph_segments`): two paragraphs are
never one segment, so no entity and no relation crosses from one to the other, even in a text with
no full stop ("Hello World" over "Amazon is based in Seattle." as two HTML blocks). A single line
break is not a boundary: wrapped text breaks lines in the middle of sentences and of names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from spacy.tokens import Doc, Span

from ner.documents import Entity, Relation
from ner.model import HeadOutput

# How good a place to cut after a word is: a sentence end or a line break, then a clause break.
_CUT_AFTER = {".": 3, "!": 3, "?": 3, ";": 2, ":": 2, ",": 1}
_LINE_BREAK = 3
# Line boundaries as ``str.splitlines`` knows them (\r\n counts once); two in one gap make a blank line.
_LINE_BOUNDARY = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_PARAGRAPH_SEPARATOR = "\u2029"


def is_paragraph_break(gap: str) -> bool:
    """Whether the whitespace ``gap`` between two words holds a blank line (two line boundaries, such
    as ``"\\n\\n"``, ``"\\n  \\n"`` or ``"\\r\\n\\r\\n"``) or Unicode's paragraph separator."""
    return _PARAGRAPH_SEPARATOR in gap or len(_LINE_BOUNDARY.findall(gap)) >= 2


def paragraph_segments(span: Span) -> list[list[int]]:
    """The token indices of ``span``'s words, whitespace tokens left out, cut wherever the whitespace
    between two consecutive words holds a paragraph break (:func:`is_paragraph_break`)."""
    segments: list[list[int]] = []
    gap = ""
    for token in span:
        if token.is_space:
            gap += token.text_with_ws
            continue
        if not segments or is_paragraph_break(gap):
            segments.append([])
        segments[-1].append(token.i)
        gap = token.whitespace_
    return segments


class Window(NamedTuple):
    """Words ``[start, end)`` of a segment are given to the model; the window keeps the entities that
    start in ``[own_start, own_end)``."""

    start: int
    end: int
    own_start: int
    own_end: int


def plan_windows(cut_strengths: Sequence[int], size: int, overlap: int) -> list[Window]:
    """Windows of at most ``size`` words over a segment of ``len(cut_strengths)`` words.

    ``cut_strengths[i]`` says how good a cut after word ``i`` is (0: no boundary). Consecutive windows
    overlap by exactly ``overlap`` words. Needs ``0 <= overlap <= size // 2``, so that every window
    advances by at least a quarter of ``size``.
    """
    if not 0 <= overlap <= size // 2:
        raise ValueError(f"the overlap must be between 0 and half the window ({size // 2}), not {overlap}")
    n = len(cut_strengths)
    ranges: list[tuple[int, int]] = []
    start = 0
    while start + size < n:
        end = _best_cut(cut_strengths, start + size - size // 4, start + size)
        ranges.append((start, end))
        start = end - overlap
    ranges.append((start, n))
    bounds = [0] + [end - overlap // 2 for _, end in ranges[:-1]] + [n]
    return [Window(s, e, bounds[i], bounds[i + 1]) for i, (s, e) in enumerate(ranges)]


def _best_cut(cut_strengths: Sequence[int], low: int, high: int) -> int:
    """The end in ``[low, high]`` after the strongest boundary, the latest one on ties."""
    return max(range(low, high + 1), key=lambda end: (cut_strengths[end - 1], end))


def cut_strengths(doc: Doc, tokens: Sequence[int]) -> list[int]:
    """For each word (a token index of ``doc``) of a segment, how good a cut after it is."""
    text = doc.text  # built anew on every access
    strengths = [_CUT_AFTER.get(doc[i].text, 0) for i in tokens]
    for position, (i, following) in enumerate(zip(tokens, tokens[1:])):
        if "\n" in text[doc[i].idx + len(doc[i]) : doc[following].idx]:
            strengths[position] = max(strengths[position], _LINE_BREAK)
    return strengths


def merge_windows(windows: Sequence[Window], outputs: Sequence[HeadOutput]) -> HeadOutput:
    """One head's predictions for a segment from its windows' (in window word offsets)."""
    if len(windows) == 1:
        return outputs[0]
    entities: list[Entity] = []
    index: dict[tuple, int] = {}  # (start, end, label) and (start, end) -> position in entities
    for window, (window_entities, _) in zip(windows, outputs):
        for entity in window_entities:
            shifted = _shift(entity, window.start)
            key = (shifted.start, shifted.end, shifted.label)
            if window.own_start <= shifted.start < window.own_end and key not in index:
                index[key] = len(entities)
                index.setdefault(key[:2], len(entities))
                entities.append(shifted)
    relations: dict[tuple[int, int, str], Relation] = {}  # insertion order: first found first
    for window, (window_entities, window_relations) in zip(windows, outputs):
        for relation in window_relations:
            head = _find(index, window_entities[relation.head], window.start)
            tail = _find(index, window_entities[relation.tail], window.start)
            if head is None or tail is None:
                continue
            key = (head, tail, relation.label)
            if key not in relations or (relation.score or 0.0) > (relations[key].score or 0.0):
                relations[key] = Relation(head, tail, relation.label, relation.score)
    return entities, list(relations.values())


def _shift(entity: Entity, offset: int) -> Entity:
    return Entity(entity.start + offset, entity.end + offset, entity.label, entity.score)


def _find(index: dict[tuple, int], entity: Entity, offset: int) -> int | None:
    """The kept entity with ``entity``'s words and label, else the one with its words."""
    key = (entity.start + offset, entity.end + offset, entity.label)
    found = index.get(key)
    return index.get(key[:2]) if found is None else found
