"""The document editor: navigation, the text with its spans, and the span and relation tables.

Widget keys carry the document's position and the item's content, so that a widget never shows
the state of another document, or of a span that an edit has moved to another index.

Of a model's overlapping suggestions only the one the pipeline resolved (what its ``doc.ents``
holds, :func:`~ner.annotation.edits.resolved`) is shown, unless the annotator asks for the rest;
"Accept all" accepts what is shown, and says which suggestions it left, and why.
"""

from __future__ import annotations

import html
from collections import Counter

import streamlit as st

from app.annotate import session
from app.rendering import Mark, chip_html
from app.span_selector import span_selector
from ner.annotation import (
    AnnotatedDoc,
    AnnotationStore,
    Link,
    Project,
    accept,
    accept_all,
    add_relation,
    delete_relation,
    delete_span,
    reject,
    reject_all,
    relabel_span,
    set_done,
)
from ner.annotation.edits import resolved
from ner.annotation.model import label_order

MAX_ROWS = 60
SHOW_ALL = "annotate_show_all_suggestions"


def shown_spans(doc: AnnotatedDoc) -> list[int]:
    """The spans on screen: all of them, or the accepted ones and the resolved suggestions."""
    return list(range(len(doc.spans))) if st.session_state.get(SHOW_ALL) else resolved(doc)


def shown_relations(doc: AnnotatedDoc, spans: list[int]) -> list[int]:
    """The relations between spans on screen."""
    on_screen = set(spans)
    return [i for i, link in enumerate(doc.relations) if link.head in on_screen and link.tail in on_screen]


def span_places(doc: AnnotatedDoc, spans: list[int]) -> dict[int, str]:
    """``@start–end`` for each span whose text and label another of ``spans`` has too, else "":
    two rows that look alike must still say which words they mean."""
    key = lambda i: (doc.span_text(i), doc.spans[i].label)  # noqa: E731
    repeated = Counter(key(i) for i in spans)
    return {i: f"@{doc.spans[i].start}–{doc.spans[i].end}" if repeated[key(i)] > 1 else "" for i in spans}


def span_names(doc: AnnotatedDoc, spans: list[int]) -> dict[int, str]:
    """``text (label)`` of each span, with its offsets where needed (:func:`span_places`)."""
    places = span_places(doc, spans)
    return {i: f"{doc.span_text(i)} ({doc.spans[i].label}) {places[i]}".rstrip() for i in spans}


def navigation(store: AnnotationStore) -> None:
    """Previous / document number / next, done-and-next, accept or reject all; with shortcuts."""
    project = store.project
    doc, index, total = project.current, project.cursor, len(project.docs)
    spans = shown_spans(doc)
    suggestions = sum(doc.spans[i].status == "suggested" for i in spans) + sum(
        doc.relations[i].status == "suggested" for i in shown_relations(doc, spans)
    )
    row = st.columns([1.1, 1.3, 1.1, 1.5, 1.4, 1.4], vertical_alignment="center")
    row[0].button(
        "Previous",
        icon=":material/chevron_left:",
        shortcut="P",
        help="Previous document (P)",
        on_click=session.move,
        args=(store.previous,),
        disabled=index == 0,
        width="stretch",
    )
    row[1].number_input(
        f"Document (of {total})",
        1,
        total,
        value=index + 1,
        key=f"goto_{index}",
        label_visibility="collapsed",
        on_change=lambda: session.move(lambda: store.goto(st.session_state[f"goto_{index}"] - 1)),
    )
    row[2].button(
        "Next",
        icon=":material/chevron_right:",
        shortcut="N",
        help="Next document (N)",
        on_click=session.move,
        args=(store.next,),
        disabled=index == total - 1,
        width="stretch",
    )
    row[3].button(
        "Done, next",
        icon=":material/done_all:",
        type="primary",
        shortcut="D",
        help="Mark this document done and go to the next one (D)",
        on_click=done_next,
        args=(store,),
        width="stretch",
    )
    row[4].button(
        "Accept all",
        icon=":material/check:",
        shortcut="A",
        help="Accept every suggestion shown in this document (A); one that overlaps an entity is left "
        "as a suggestion unless the project allows overlapping entities (sidebar)",
        on_click=accept_shown,
        args=(project, doc),
        disabled=not suggestions,
        width="stretch",
    )
    row[5].button(
        "Reject all",
        icon=":material/block:",
        help="Reject every suggestion in this document",
        on_click=session.act,
        args=(reject_all, doc),
        disabled=not suggestions,
        width="stretch",
    )


def accept_shown(project: Project, doc: AnnotatedDoc) -> None:
    """Accept all on what is shown; what it leaves, and why, is said on the page."""
    left: list[str] = []
    only = shown_spans(doc)
    session.act(lambda: left.extend(accept_all(doc, only=only, overlaps=project.overlaps)))
    if left:
        session.flash(
            "warning",
            f"Accept all left {len(left)} suggestion{'s' if len(left) > 1 else ''}: entities of this "
            "project must not overlap (CoNLL IOB2 cannot hold them; the sidebar can allow them for SpERT "
            "JSON, JSONL and DocBin). Accept or reject them one by one: " + "; ".join(left) + ".",
        )


def done_next(store: AnnotationStore) -> None:
    session.act(set_done, store.project.current, True)
    session.move(store.next)


def document(store: AnnotationStore) -> None:
    """The text with its spans; selecting words adds a span with the chosen label."""
    project = store.project
    doc = project.current
    title, toggle = st.columns([5, 1], vertical_alignment="center")
    where = f" · {doc.source}" if doc.source else ""
    title.markdown(f"**Document {project.cursor + 1} of {len(project.docs)}** · `{doc.id}`{where}")
    toggle.toggle(
        "Done",
        value=doc.done,
        key=f"done_{project.cursor}_{doc.done}",
        on_change=session.act,
        args=(set_done, doc, not doc.done),
    )
    labels = label_order(project.entity_labels)
    if labels:
        st.pills(
            "Label for new spans (keys 1–9): select words in the text to add one; click an entity to link it",
            labels,
            key=session.LABEL,
            default=labels[0],
            required=True,  # a click on the chosen label keeps it: new spans always have one
        )
    else:
        st.info("Add an entity label in the sidebar, then select words in the text to annotate them.")
    spans = shown_spans(doc)
    hidden_toggle(doc, spans)
    with st.container(border=True):
        span_selector(
            doc.text,
            [mark(doc, i) for i in spans],
            key=f"selector_{project.cursor}",
            on_select=lambda start, end: session.add_selected(doc, project, start, end),
            on_click=lambda index: pick_for_relation(project.cursor, index),
            labels=len(labels),
            on_label=lambda number: pick_label(labels, number),
        )
    add_by_words(project, doc)


def hidden_toggle(doc: AnnotatedDoc, spans: list[int]) -> None:
    """The toggle that shows the overlapping suggestions the pipeline did not resolve to."""
    hidden = len(doc.spans) - len(spans)
    if hidden or st.session_state.get(SHOW_ALL):
        st.toggle(
            "Show overlapping suggestions"
            + (f" ({hidden} hidden: variants of the entities shown)" if hidden else ""),
            key=SHOW_ALL,
            help="A model suggests overlapping variants of an entity; by default only the one the "
            "pipeline itself chose (its doc.ents) is shown.",
        )


def mark(doc: AnnotatedDoc, index: int) -> Mark:
    span = doc.spans[index]
    return Mark(span.start, span.end, span.label, span.score, span.head, span.status == "suggested", index)


def pick_label(labels: list[str], number: int) -> None:
    """Number key ``number`` (1–9) picks the label for new spans, in the order shown."""
    if 1 <= number <= len(labels):
        st.session_state[session.LABEL] = labels[number - 1]


def add_by_words(project: Project, doc: AnnotatedDoc) -> None:
    """The keyboard way to add a span: its first and last word, and a label."""
    bounds = session.words(doc, project.lang)
    if not bounds or not project.entity_labels:
        return
    with st.expander("Add a span by words (keyboard)"), st.form(f"by_words_{project.cursor}", border=False):
        first, last, label, add = st.columns([3, 3, 2, 2], vertical_alignment="bottom")
        name = lambda i: f"{i + 1}: {doc.text[bounds[i][0] : bounds[i][1]]}"  # noqa: E731
        start = first.selectbox("From word", range(len(bounds)), format_func=name)
        end = last.selectbox("To word", range(len(bounds)), format_func=name)
        chosen = label.selectbox("Label", label_order(project.entity_labels))
        if add.form_submit_button("Add span", icon=":material/add:", width="stretch"):
            if end < start:
                st.error("The last word comes before the first one.", icon=":material/error:")
            else:
                session.add_labelled(doc, project, bounds[start][0], bounds[end][1], chosen)
                st.rerun()


def pick_for_relation(cursor: int, index: int) -> None:
    """A click on an entity fills the new relation's "from", the next click its "to"."""
    head, tail = relation_keys(cursor)["head"], relation_keys(cursor)["tail"]
    if st.session_state.get(head) is None or st.session_state.get(tail) is not None:
        st.session_state[head], st.session_state[tail] = index, None
    else:
        st.session_state[tail] = index


def relation_keys(cursor: int) -> dict[str, str]:
    return {part: f"relation_{part}_{cursor}" for part in ("head", "label", "tail")}


def spans_table(project: Project) -> None:
    """One row per span, in text order: its text, label (change it here), status, accept, remove."""
    doc = project.current
    shown = shown_spans(doc)
    st.markdown(f"**Entities** ({counted(len(shown), len(doc.spans))})")
    if not doc.spans:
        st.caption("No entity yet: select words in the text.")
    order = sorted(shown, key=lambda i: (doc.spans[i].start, doc.spans[i].end))
    for i in listed(order, "entities"):
        span = doc.spans[i]
        key = f"{project.cursor}_{i}_{span.start}_{span.end}_{span.label}_{span.status}"
        text, label, status, yes, no = st.columns([3, 2.2, 2.6, 0.8, 0.8], vertical_alignment="center")
        text.html(chip_html(doc.span_text(i), span.label, span.status == "suggested"))
        labels = label_order([*project.entity_labels, span.label])
        label.selectbox(
            "Label",
            labels,
            index=labels.index(span.label),
            key=f"label_{key}",
            label_visibility="collapsed",
            on_change=relabel,
            args=(doc, i, f"label_{key}"),
        )
        status.caption(session.status_line(span.score, span.head, span.status))
        row_actions(yes, no, doc, "span", i, span.status == "suggested", key)


def counted(shown: int, total: int) -> str:
    """``5``, or ``2 shown of 5`` while overlapping suggestions are hidden."""
    return str(total) if shown == total else f"{shown} shown of {total}"


def relabel(doc: AnnotatedDoc, index: int, key: str) -> None:
    """Relabel a span from its row's select. The browser can report a select again with its label
    unchanged (seen when the rows re-render); relabelling then would only drop the model's score."""
    label = st.session_state[key]
    if label != doc.spans[index].label:
        session.act(relabel_span, doc, index, label)


def relations_table(project: Project) -> None:
    """One row per relation: from, label, to, status, accept, remove; then a form to add one."""
    doc = project.current
    spans = shown_spans(doc)
    shown = shown_relations(doc, spans)
    st.markdown(f"**Relations** ({counted(len(shown), len(doc.relations))})")
    if not doc.relations:
        st.caption("No relation yet.")
    places = span_places(doc, spans)
    by_score = sorted(shown, key=lambda i: _review_order(doc.relations[i]))
    for i in listed(by_score, "relations"):
        link = doc.relations[i]
        key = f"{project.cursor}_{i}_{link.head}_{link.tail}_{link.label}_{link.status}"
        text, status, yes, no = st.columns([5.8, 2, 0.8, 0.8], vertical_alignment="center")
        arrow = f' <span class="ner-arrow">{html.escape(link.label)} →</span> '
        suggested = link.status == "suggested"
        text.html(relation_end(doc, link.head, places) + arrow + relation_end(doc, link.tail, places))
        status.caption(session.status_line(link.score, None, link.status))
        row_actions(yes, no, doc, "relation", i, suggested, key)
    add_relation_form(project)


def relation_end(doc: AnnotatedDoc, index: int, places: dict[int, str]) -> str:
    """One end of a relation row, in its own span's style (an accepted entity stays solid when the
    relation is a suggestion), with its label, and its offsets when its text and label repeat."""
    span = doc.spans[index]
    note = f"{span.label} {places[index]}".rstrip()
    return chip_html(doc.span_text(index), span.label, span.status == "suggested", note=note)


def listed(order: list[int], what: str) -> list[int]:
    """The first :data:`MAX_ROWS` of ``order``, saying how many more there are: a model can
    suggest thousands of relations, and a table of thousands of rows of widgets is unusable."""
    if len(order) > MAX_ROWS:
        st.caption(
            f"The first {MAX_ROWS} of {len(order)} {what}; Accept all and Reject all apply to all of them."
        )
    return order[:MAX_ROWS]


def _review_order(link: Link) -> tuple[bool, float]:
    """Accepted relations first, then suggestions from the most to the least likely."""
    return (link.status != "accepted", -(link.score or 0.0))


def row_actions(yes, no, doc: AnnotatedDoc, kind: str, index: int, suggested: bool, key: str) -> None:
    """Accept (for a suggestion) and reject-or-delete buttons of one table row."""
    yes.button(
        "",
        icon=":material/check:",
        key=f"accept_{kind}_{key}",
        help="Accept this suggestion",
        disabled=not suggested,
        on_click=session.act,
        args=(accept, doc, kind, index),
    )
    if suggested:
        remove, args, help = reject, (doc, kind, index), "Reject this suggestion"
    else:
        remove, args, help = (
            (delete_span if kind == "span" else delete_relation),
            (doc, index),
            f"Delete this {kind}",
        )
    no.button(
        "",
        icon=":material/close:",
        key=f"remove_{kind}_{key}",
        help=help,
        on_click=session.act,
        args=(remove, *args),
    )


def add_relation_form(project: Project) -> None:
    doc = project.current
    if len(doc.spans) < 2:
        return
    if not project.relation_labels:
        st.caption("Add a relation label in the sidebar to link entities.")
        return
    keys = relation_keys(project.cursor)
    on_screen = set(shown_spans(doc))
    for part in ("head", "tail"):  # forget a pick whose span has been deleted or hidden since
        if st.session_state.get(keys[part]) is not None and st.session_state[keys[part]] not in on_screen:
            st.session_state[keys[part]] = None
    spans = shown_spans(doc)
    names = span_names(doc, spans)
    name = names.get
    with st.container(border=True):
        st.markdown("**Link two entities**")
        head, tail = st.columns(2)
        head.selectbox(
            "From", spans, format_func=name, index=None, key=keys["head"], placeholder="click an entity"
        )
        tail.selectbox(
            "To", spans, format_func=name, index=None, key=keys["tail"], placeholder="then another"
        )
        label, add = st.columns(2, vertical_alignment="bottom")
        label.selectbox("Relation", label_order(project.relation_labels), key=keys["label"])
        picked = None not in (st.session_state.get(keys["head"]), st.session_state.get(keys["tail"]))
        add.button(
            "Add relation",
            icon=":material/add_link:",
            disabled=not picked,
            on_click=link_picked,
            args=(doc, keys),
            width="stretch",
        )


def link_picked(doc: AnnotatedDoc, keys: dict[str, str]) -> None:
    """Add the relation picked in the selects, then clear them for the next one."""
    state = st.session_state
    session.act(add_relation, doc, state[keys["head"]], state[keys["tail"]], state[keys["label"]])
    state[keys["head"]] = state[keys["tail"]] = None
