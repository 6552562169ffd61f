"""The internal document model every reader produces and every head consumes.

A document is a sequence of words with their character offsets in a source text.
Entities are word spans (``end`` exclusive, as in SpERT JSON); relations point at
entities by index. Plain frozen dataclasses: they are created by the million
during training, so they stay cheap, hashable and free of validation overhead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Entity:
    """A typed word span ``[start, end)``; ``score`` is None for gold annotations."""

    start: int
    end: int
    label: str
    score: float | None = None

    @property
    def width(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Relation:
    """A typed, directed link between two entities of the same document (indices into ``entities``)."""

    head: int
    tail: int
    label: str
    score: float | None = None


@dataclass(slots=True)
class Document:
    """Words with character offsets into ``text``, plus any annotations.

    ``offsets[i]`` is the ``(start_char, end_char)`` of ``words[i]`` in ``text``, so every
    span maps back to the exact source characters.
    """

    words: list[str]
    text: str
    offsets: list[tuple[int, int]]
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    id: str | None = None

    def __post_init__(self) -> None:
        if len(self.words) != len(self.offsets):
            raise ValueError(f"{len(self.words)} words but {len(self.offsets)} offsets")

    @classmethod
    def from_words(cls, words: Sequence[str], **annotations) -> Document:
        """Build a document from pre-split words, joining them with single spaces."""
        offsets, position = [], 0
        for word in words:
            offsets.append((position, position + len(word)))
            position += len(word) + 1
        return cls(words=list(words), text=" ".join(words), offsets=offsets, **annotations)

    def char_span(self, start: int, end: int) -> tuple[int, int]:
        """Character offsets of the word span ``[start, end)``."""
        return self.offsets[start][0], self.offsets[end - 1][1]

    def span_text(self, start: int, end: int) -> str:
        first, last = self.char_span(start, end)
        return self.text[first:last]


@dataclass(frozen=True, slots=True)
class RelationType:
    """A relation label and whether it is symmetric (``A r B`` equals ``B r A``)."""

    label: str
    symmetric: bool = False


@dataclass(frozen=True, slots=True)
class Schema:
    """The entity and relation labels of a dataset, in a fixed order."""

    entity_labels: tuple[str, ...]
    relation_types: tuple[RelationType, ...] = ()

    @property
    def relation_labels(self) -> tuple[str, ...]:
        return tuple(t.label for t in self.relation_types)

    @property
    def symmetric_relations(self) -> frozenset[str]:
        return frozenset(t.label for t in self.relation_types if t.symmetric)


def canonical_pair(head: Entity, tail: Entity, symmetric: bool) -> tuple[Entity, Entity]:
    """Order a symmetric relation's arguments by position, as SpERT does, so each is counted once."""
    if symmetric and (tail.start, tail.end) < (head.start, head.end):
        return tail, head
    return head, tail
