"""Every change an annotator can make to a document: validated first, then applied.

Each function checks everything before it mutates, so a refused edit (an
:class:`AnnotationError` with a message for the annotator) leaves the document untouched and
:meth:`AnnotationStore.apply <ner.annotation.store.AnnotationStore.apply>` can save after each
successful one. Span and relation indices are positions in ``doc.spans`` / ``doc.relations``;
deleting a span re-indexes the relations that remain.

Reviewing a model's suggestion (``status="suggested"``) is done by accepting or rejecting it; a
suggestion the annotator otherwise confirms (adds again, relabels, links with a relation) is
accepted on the way, since that is what the annotator said.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from ner.annotation.model import AnnotatedDoc, AnnotationError, Link, Project, Span, check_label
from ner.annotation.tokens import snap

Kind = Literal["span", "relation"]


def add_span(doc: AnnotatedDoc, start: int, end: int, label: str, *, lang: str = "en") -> int:
    """Add an accepted span over the selection ``[start, end)`` snapped outward to whole tokens of
    spaCy's ``lang`` tokenizer (pass the project's ``lang``); returns its index.

    Overlapping spans are allowed (nested entities); an identical accepted span is refused, and an
    identical suggestion is accepted instead of duplicated.
    """
    check_label(label)
    start, end = snap(doc.text, start, end, lang)
    index = doc.find_span(start, end, label)
    if index is None:
        doc.spans.append(Span(start, end, label))
        return len(doc.spans) - 1
    if doc.spans[index].status == "accepted":
        raise AnnotationError(f"{doc.text[start:end]!r} is already annotated as {label}")
    doc.spans[index].status = "accepted"
    return index


def delete_span(doc: AnnotatedDoc, index: int) -> None:
    """Remove a span and every relation that involves it."""
    _check_index(doc, "span", index)
    _remove_spans(doc, {index})


def relabel_span(doc: AnnotatedDoc, index: int, label: str) -> None:
    """Give a span another label (accepting it if it was a suggestion; its score, which was for the
    old label, is dropped)."""
    _check_index(doc, "span", index)
    check_label(label)
    span = doc.spans[index]
    if doc.find_span(span.start, span.end, label) not in (None, index):
        raise AnnotationError(f"{doc.span_text(index)!r} is already annotated as {label}")
    span.label, span.score, span.status = label, None, "accepted"


def add_relation(doc: AnnotatedDoc, head: int, tail: int, label: str) -> int:
    """Add an accepted relation from span ``head`` to span ``tail``; returns its index. Its two spans
    are accepted too; an identical suggested relation is accepted rather than duplicated."""
    _check_index(doc, "span", head)
    _check_index(doc, "span", tail)
    check_label(label)
    if head == tail:
        raise AnnotationError("a relation needs two different spans")
    existing = doc.find_relation(head, tail, label)
    if existing is not None and doc.relations[existing].status == "accepted":
        raise AnnotationError(f"{doc.span_text(head)!r} {label} {doc.span_text(tail)!r} already exists")
    if existing is None:
        doc.relations.append(Link(head, tail, label))
        existing = len(doc.relations) - 1
    accept(doc, "relation", existing)
    return existing


def delete_relation(doc: AnnotatedDoc, index: int) -> None:
    _check_index(doc, "relation", index)
    del doc.relations[index]


def accept(doc: AnnotatedDoc, kind: Kind, index: int) -> None:
    """Mark a suggestion as correct; accepting a relation also accepts its two spans."""
    _check_index(doc, kind, index)
    if kind == "span":
        doc.spans[index].status = "accepted"
        return
    link = doc.relations[index]
    link.status = doc.spans[link.head].status = doc.spans[link.tail].status = "accepted"


def reject(doc: AnnotatedDoc, kind: Kind, index: int) -> None:
    """Discard a suggestion (a rejected span takes its relations with it). Accepted annotations are
    deleted with :func:`delete_span` / :func:`delete_relation`, not rejected."""
    _check_index(doc, kind, index)
    items = doc.spans if kind == "span" else doc.relations
    if items[index].status != "suggested":
        raise AnnotationError(f"{kind} {index} is not a suggestion: delete it instead")
    if kind == "span":
        _remove_spans(doc, {index})
    else:
        del doc.relations[index]


def accept_all(doc: AnnotatedDoc) -> None:
    for item in [*doc.spans, *doc.relations]:
        item.status = "accepted"


def reject_all(doc: AnnotatedDoc) -> None:
    """Discard every suggested relation and every suggested span (with the relations on it)."""
    doc.relations[:] = [link for link in doc.relations if link.status == "accepted"]
    _remove_spans(doc, {i for i, span in enumerate(doc.spans) if span.status == "suggested"})


def set_done(doc: AnnotatedDoc, done: bool = True) -> None:
    doc.done = bool(done)


def add_label(project: Project, kind: Kind, label: str) -> None:
    """Offer a new entity (``kind="span"``) or relation label to the annotators."""
    check_label(label)
    labels = project.entity_labels if kind == "span" else project.relation_labels
    if label in labels:
        raise AnnotationError(f"{label!r} is already a label")
    labels.append(label)


def _check_index(doc: AnnotatedDoc, kind: Kind, index: int) -> None:
    if kind not in ("span", "relation"):
        raise AnnotationError(f"kind must be 'span' or 'relation', not {kind!r}")
    count = len(doc.spans if kind == "span" else doc.relations)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise AnnotationError(f"no {kind} {index!r} in document {doc.id!r} (it has {count})")


def _remove_spans(doc: AnnotatedDoc, doomed: set[int]) -> None:
    """Remove spans and the relations touching them; re-index the remaining relations."""
    kept = [i for i in range(len(doc.spans)) if i not in doomed]
    position = {old: new for new, old in enumerate(kept)}
    doc.relations[:] = [
        replace(link, head=position[link.head], tail=position[link.tail])
        for link in doc.relations
        if link.head in position and link.tail in position
    ]
    doc.spans[:] = [span for i, span in enumerate(doc.spans) if i not in doomed]
