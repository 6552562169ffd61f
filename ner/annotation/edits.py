"""Every change an annotator can make to a document: validated first, then applied.

Each function checks everything before it mutates, so a refused edit (an
:class:`AnnotationError` with a message for the annotator) leaves the document untouched and
:meth:`AnnotationStore.apply <ner.annotation.store.AnnotationStore.apply>` can save after each
successful one. Span and relation indices are positions in ``doc.spans`` / ``doc.relations``;
deleting a span re-indexes the relations that remain.

Reviewing a model's suggestion (``status="suggested"``) is done by accepting or rejecting it; a
suggestion the annotator otherwise confirms (adds again, relabels, links with a relation) is
accepted on the way, since that is what the annotator said.

A model suggests every span it kept, overlapping variants included ("Chisholm", "Chisholm ,
Minn"); :func:`resolved` is the one of each overlapping group the pipeline itself put in
``doc.ents`` (as recorded at pre-annotation, else chosen again by its rule), which is what the app
shows (and "Accept all" accepts) unless asked for the rest.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Literal

from ner.annotation.model import AnnotatedDoc, AnnotationError, Link, Project, Span, check_label, overlap
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


def accept_all(
    doc: AnnotatedDoc, *, only: Collection[int] | None = None, overlaps: bool = False
) -> list[str]:
    """Accept the suggested spans (those of ``only``, span indices, when given: what the annotator
    sees), then the suggested relations whose two spans are accepted; returns what was left as a
    suggestion, and why, one line each.

    Unless ``overlaps``, a suggestion that overlaps an accepted span, or a better one accepted in
    the same pass (in the pipeline's order: score, then length), is left: CoNLL IOB2 could not
    hold both. A relation on a span left that way is left too.
    """
    todo = range(len(doc.spans)) if only is None else sorted(set(only))
    for index in todo:
        _check_index(doc, "span", index)
    suggested = [i for i in todo if doc.spans[i].status == "suggested"]
    accepted = [i for i, span in enumerate(doc.spans) if span.status == "accepted"]
    if overlaps:
        chosen, left = suggested, []
    else:
        chosen, left = _non_overlapping(doc, accepted, suggested)
    for index in chosen:
        doc.spans[index].status = "accepted"
    notes = [f"{_name(doc, i)} overlaps {_name(doc, j)}" for i, j in left]
    left_spans = {i for i, _ in left}
    seen = {*todo, *accepted}
    for link in doc.relations:
        if link.status != "suggested" or link.head not in seen or link.tail not in seen:
            continue
        if doc.spans[link.head].status == doc.spans[link.tail].status == "accepted":
            link.status = "accepted"
        elif {link.head, link.tail} & left_spans:
            notes.append(
                f"{_name(doc, link.head)} {link.label} {_name(doc, link.tail)}: "
                "one of its entities was left as a suggestion"
            )
    return notes


def resolved(doc: AnnotatedDoc) -> list[int]:
    """The indices of the accepted spans and of the suggestions the pipeline put in ``doc.ents``
    beside them. Where pre-annotation recorded that (:attr:`Span.ent`), it is followed; for
    suggestions without the record (read from a file, or a project saved before it was recorded)
    the choice is redone: of overlapping ones the best-scored (then the longest, then the first)
    wins, as the extractor's default ``ents_merge = "score"`` chooses. Either way a suggestion
    that overlaps an accepted span is a variant the annotator has already decided on."""
    accepted = [i for i, span in enumerate(doc.spans) if span.status == "accepted"]
    suggested = [i for i, span in enumerate(doc.spans) if span.status == "suggested"]
    recorded = [i for i in suggested if doc.spans[i].ent]
    kept, _ = _non_overlapping(doc, accepted, recorded)  # none overlap each other: only accepted ones
    unknown = [i for i in suggested if doc.spans[i].ent is None]
    chosen, _ = _non_overlapping(doc, [*accepted, *kept], unknown)
    return sorted({*accepted, *kept, *chosen})


def set_overlaps(project: Project, allowed: bool) -> None:
    """Say whether the project's entities may overlap (see :class:`Project`)."""
    project.overlaps = bool(allowed)


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


def _non_overlapping(
    doc: AnnotatedDoc, fixed: list[int], candidates: list[int]
) -> tuple[list[int], list[tuple[int, int]]]:
    """Greedily the ``candidates`` (best score, then longest, then first) that overlap neither a
    ``fixed`` span nor one taken before them; and ``(candidate, the span it overlaps)`` for the rest."""
    taken, chosen, left = list(fixed), [], []
    for index in sorted(candidates, key=lambda i: _rank(doc.spans[i])):
        blocker = next((j for j in taken if overlap(doc.spans[index], doc.spans[j])), None)
        if blocker is None:
            taken.append(index)
            chosen.append(index)
        else:
            left.append((index, blocker))
    return chosen, left


def _rank(span: Span) -> tuple[float, int, int]:
    return (-(span.score or 0.0), span.start - span.end, span.start)


def _name(doc: AnnotatedDoc, index: int) -> str:
    return f"{doc.span_text(index)!r} ({doc.spans[index].label})"


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
