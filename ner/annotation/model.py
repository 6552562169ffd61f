"""What an annotation project holds: documents with character-offset spans and links between them.

Plain dataclasses, so the app and the edit functions work with ordinary attributes; pydantic
validates them only at the boundary, when a saved project is read back (:func:`project_from_dict`).
Offsets are character offsets into ``text`` (``end`` exclusive), the same convention as the
records of ``ner extract``, so a model's suggestions drop in without conversion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

Status = Literal["accepted", "suggested"]


class AnnotationError(ValueError):
    """An edit, a file or a dataset that cannot be used; the message is meant for the annotator."""


@dataclass
class Span:
    """An entity mention ``text[start:end]``. ``head`` names the model head that proposed it and
    ``status="suggested"`` marks a proposal nobody has reviewed yet (never exported).

    ``ent`` says whether the pipeline that suggested the span put it in its ``doc.ents`` (its own
    choice among overlapping variants), recorded by :func:`~ner.annotation.datasets.preannotate`;
    None where nobody recorded it: a span from a file or the annotator, or a project saved before
    it was recorded."""

    start: int
    end: int
    label: str
    score: float | None = None
    head: str | None = None
    status: Status = "accepted"
    ent: bool | None = None


@dataclass
class Link:
    """A directed relation between two spans of the same document (indices into its ``spans``)."""

    head: int
    tail: int
    label: str
    score: float | None = None
    status: Status = "accepted"


@dataclass
class AnnotatedDoc:
    """One document; ``done`` is the annotator's "finished" mark, ``source`` where it was loaded from,
    ``meta`` whatever else the source record said (kept so that exports can repeat it)."""

    id: str
    text: str
    spans: list[Span] = field(default_factory=list)
    relations: list[Link] = field(default_factory=list)
    done: bool = False
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def span_text(self, index: int) -> str:
        span = self.spans[index]
        return self.text[span.start : span.end]

    def find_span(self, start: int, end: int, label: str) -> int | None:
        """The index of the span with these offsets and label (whatever its status), or None."""
        key = (start, end, label)
        return next(
            (i for i, span in enumerate(self.spans) if (span.start, span.end, span.label) == key), None
        )

    def find_relation(self, head: int, tail: int, label: str) -> int | None:
        """The index of the relation ``head -label-> tail`` (whatever its status), or None."""
        key = (head, tail, label)
        return next(
            (i for i, link in enumerate(self.relations) if (link.head, link.tail, link.label) == key), None
        )


@dataclass
class Project:
    """The documents of one annotation job, where the annotator is (``cursor``), and the label sets
    offered to them. ``lang`` picks the spaCy tokenizer that spans snap to and exports use.

    ``overlaps`` says whether the project's entities may overlap: off (the default), "Accept all"
    leaves a suggestion that overlaps an entity as a suggestion, so that every export format,
    CoNLL IOB2 included, can hold the result; on, the project is meant for formats that hold
    nested and overlapping entities (SpERT JSON, JSONL, DocBin)."""

    docs: list[AnnotatedDoc] = field(default_factory=list)
    cursor: int = 0
    entity_labels: list[str] = field(default_factory=list)
    relation_labels: list[str] = field(default_factory=list)
    name: str = "annotations"
    lang: str = "en"
    overlaps: bool = False

    def progress(self) -> tuple[int, int]:
        """``(documents marked done, documents)``."""
        return sum(doc.done for doc in self.docs), len(self.docs)

    @property
    def current(self) -> AnnotatedDoc:
        """The document at the cursor."""
        if not self.docs:
            raise AnnotationError("the project has no documents")
        return self.docs[self.cursor]


def label_order(labels: Iterable[str]) -> list[str]:
    """The labels without repeats, in the order the app shows them and number keys pick them:
    alphabetical (case-insensitive), so that the same labels come in the same order in every
    project, whatever order the documents or the pipeline happened to introduce them in."""
    return sorted(dict.fromkeys(labels), key=lambda label: (label.casefold(), label))


def overlap(first: Span, second: Span) -> bool:
    """Whether two spans share a character (identical offsets with different labels count)."""
    return first.start < second.end and second.start < first.end


def check_label(label: object, what: str = "label") -> str:
    """A label must be a non-empty string without whitespace: CoNLL tags (``B-<label>``) could not
    hold it otherwise, and a training set with an unexportable label is no use."""
    if not isinstance(label, str) or not label or any(c.isspace() for c in label):
        raise AnnotationError(f"{what} {label!r} must be non-empty text without spaces")
    return label


def check_doc(doc: AnnotatedDoc) -> None:
    """Offsets inside the text, links between existing distinct spans, valid labels and text."""
    try:
        doc.text.encode("utf-8")
    except UnicodeEncodeError:
        raise AnnotationError(
            f"document {doc.id!r}: the text holds invalid Unicode (a lone surrogate)"
        ) from None
    for i, span in enumerate(doc.spans):
        if not 0 <= span.start < span.end <= len(doc.text):
            raise AnnotationError(
                f"document {doc.id!r}: span {i} ({span.start}, {span.end}) is outside the "
                f"{len(doc.text)} characters of the text"
            )
        check_label(span.label, f"document {doc.id!r}: span {i} label")
    for i, link in enumerate(doc.relations):
        if (
            not (0 <= link.head < len(doc.spans) and 0 <= link.tail < len(doc.spans))
            or link.head == link.tail
        ):
            raise AnnotationError(
                f"document {doc.id!r}: relation {i} ({link.head} -> {link.tail}) must join two "
                f"different spans among the {len(doc.spans)}"
            )
        check_label(link.label, f"document {doc.id!r}: relation {i} label")


def check_project(project: Project) -> None:
    """Every document consistent and the cursor on a document (or 0 in an empty project)."""
    for doc in project.docs:
        check_doc(doc)
    if not 0 <= project.cursor < max(len(project.docs), 1):
        raise AnnotationError(f"cursor {project.cursor} is outside the {len(project.docs)} documents")


_PROJECT = TypeAdapter(Project)


def project_to_dict(project: Project) -> dict[str, Any]:
    return asdict(project)


def project_from_dict(data: Any) -> Project:
    """Validate types with pydantic, then consistency with :func:`check_project`."""
    try:
        project = _PROJECT.validate_python(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'project'}: {e['msg']}" for e in error.errors()[:5]
        )
        more = f" (and {error.error_count() - 5} more)" if error.error_count() > 5 else ""
        raise AnnotationError(f"{problems}{more}") from None
    check_project(project)
    return project
