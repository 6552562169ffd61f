"""Annotation edits: snapping selections to tokens, every edit and every refusal, suggestions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.annotation import (
    AnnotatedDoc,
    AnnotationError,
    Link,
    Project,
    Span,
    accept,
    accept_all,
    add_label,
    add_relation,
    add_span,
    delete_relation,
    delete_span,
    reject,
    reject_all,
    relabel_span,
    set_done,
)
from ner.annotation.edits import resolved, set_overlaps
from ner.annotation.model import label_order, project_from_dict, project_to_dict

TEXT = "Christopher Nolan's thriller Inception, shot in Los Angeles."


def doc_with(*spans: tuple[str, str], relations=(), suggested=False) -> AnnotatedDoc:
    """A document of TEXT with spans given by their text (first occurrence) and label."""
    doc = AnnotatedDoc("d1", TEXT)
    for words, label in spans:
        start = TEXT.index(words)
        doc.spans.append(
            Span(start, start + len(words), label, status="suggested" if suggested else "accepted")
        )
    doc.relations += [
        Link(h, t, label, status="suggested" if suggested else "accepted") for h, t, label in relations
    ]
    return doc


def texts(doc: AnnotatedDoc) -> list[str]:
    return [doc.span_text(i) for i in range(len(doc.spans))]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ("Christopher Nolan", "Christopher Nolan"),  # exact
        ("topher No", "Christopher Nolan"),  # partial words grow to whole words
        ("Nolan", "Nolan"),  # the possessive 's is its own token
        (" thriller ", "thriller"),  # surrounding whitespace is left out
        ("Angeles.", "Angeles."),  # selected punctuation is kept: it was selected
    ],
)
def test_add_span_snaps_to_whole_tokens(selection, expected):
    doc = AnnotatedDoc("d", TEXT)
    start = TEXT.index(selection)
    index = add_span(doc, start, start + len(selection), "X")
    assert doc.span_text(index) == expected
    assert doc.spans[index] == Span(TEXT.index(expected), TEXT.index(expected) + len(expected), "X")


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (5, 5, "empty or outside"),
        (-1, 3, "outside"),
        (0, len(TEXT) + 1, "outside"),
        (11, 12, "only whitespace"),
    ],
)
def test_add_span_refuses_empty_whitespace_and_out_of_range_selections(start, end, message):
    doc = AnnotatedDoc("d", TEXT)
    with pytest.raises(AnnotationError, match=message):
        add_span(doc, start, end, "X")
    assert doc.spans == []


@pytest.mark.parametrize("label", ["", "two words", "tab\there", None])
def test_labels_must_be_single_words(label):
    with pytest.raises(AnnotationError, match="without spaces"):
        add_span(AnnotatedDoc("d", TEXT), 0, 5, label)


def test_exact_duplicates_are_refused_and_overlaps_allowed():
    doc = AnnotatedDoc("d", TEXT)
    add_span(doc, 0, 17, "Peop")
    with pytest.raises(AnnotationError, match="already annotated as Peop"):
        add_span(doc, 2, 15, "Peop")  # snaps to the same span
    add_span(doc, 0, 17, "Org")  # same words, other label
    add_span(doc, 12, 17, "Peop")  # nested
    assert texts(doc) == ["Christopher Nolan", "Christopher Nolan", "Nolan"]


def test_adding_a_suggested_span_accepts_the_suggestion():
    doc = doc_with(("Inception", "Other"), suggested=True)
    start = TEXT.index("Inception")
    assert add_span(doc, start, start + 9, "Other") == 0
    assert len(doc.spans) == 1 and doc.spans[0].status == "accepted"


def test_add_span_uses_the_language_tokenizer():
    doc = AnnotatedDoc("d", "Ich wohne in der Schweiz.")
    index = add_span(doc, 17, 22, "Loc", lang="de")
    assert doc.span_text(index) == "Schweiz"


def test_delete_span_removes_its_relations_and_reindexes_the_rest():
    doc = doc_with(
        ("Christopher Nolan", "Peop"),
        ("Inception", "Other"),
        ("Los Angeles", "Loc"),
        relations=[(0, 1, "Made"), (1, 2, "Shot_In"), (0, 2, "Live_In")],
    )
    delete_span(doc, 1)
    assert texts(doc) == ["Christopher Nolan", "Los Angeles"]
    assert [(r.head, r.tail, r.label) for r in doc.relations] == [(0, 1, "Live_In")]


@pytest.mark.parametrize("index", [3, -1, "0", True])
def test_bad_indices_are_refused(index):
    doc = doc_with(("Inception", "Other"), ("Los Angeles", "Loc"), relations=[(0, 1, "Shot_In")])
    for edit in (delete_span, lambda d, i: relabel_span(d, i, "X"), delete_relation):
        with pytest.raises(AnnotationError, match="no (span|relation)"):
            edit(doc, index)
    with pytest.raises(AnnotationError, match="kind must be"):
        accept(doc, "entity", 0)
    assert len(doc.spans) == 2 and len(doc.relations) == 1


def test_relabel_accepts_a_suggestion_and_refuses_duplicates():
    doc = doc_with(("Los Angeles", "Org"), suggested=True)
    doc.spans[0].score, doc.spans[0].head = 0.7, "spert"
    relabel_span(doc, 0, "Loc")
    assert doc.spans[0] == Span(TEXT.index("Los"), len(TEXT) - 1, "Loc", None, "spert", "accepted")
    doc.spans.append(Span(doc.spans[0].start, doc.spans[0].end, "Org"))
    with pytest.raises(AnnotationError, match="already annotated as Loc"):
        relabel_span(doc, 1, "Loc")
    relabel_span(doc, 0, "Loc")  # to its own label: nothing to refuse


def test_add_relation_validates_and_accepts_its_spans():
    doc = doc_with(("Inception", "Other"), ("Los Angeles", "Loc"), suggested=True)
    assert add_relation(doc, 0, 1, "Shot_In") == 0
    assert [s.status for s in doc.spans] == ["accepted", "accepted"]
    with pytest.raises(AnnotationError, match="already exists"):
        add_relation(doc, 0, 1, "Shot_In")
    with pytest.raises(AnnotationError, match="two different spans"):
        add_relation(doc, 1, 1, "Shot_In")
    with pytest.raises(AnnotationError, match="no span 2"):
        add_relation(doc, 0, 2, "Shot_In")
    assert add_relation(doc, 1, 0, "Shot_In") == 1  # the other direction is another relation
    delete_relation(doc, 0)
    assert [(r.head, r.tail) for r in doc.relations] == [(1, 0)]


def test_adding_a_suggested_relation_accepts_it():
    doc = doc_with(
        ("Inception", "Other"), ("Los Angeles", "Loc"), relations=[(0, 1, "Shot_In")], suggested=True
    )
    assert add_relation(doc, 0, 1, "Shot_In") == 0
    assert len(doc.relations) == 1 and doc.relations[0].status == "accepted"


def test_accept_and_reject_one_suggestion():
    doc = doc_with(
        ("Christopher Nolan", "Peop"),
        ("Inception", "Other"),
        ("Los Angeles", "Loc"),
        relations=[(0, 1, "Made"), (1, 2, "Shot_In")],
        suggested=True,
    )
    accept(doc, "relation", 1)  # accepts Inception and Los Angeles too
    assert [s.status for s in doc.spans] == ["suggested", "accepted", "accepted"]
    reject(doc, "span", 0)  # takes its relation along
    assert texts(doc) == ["Inception", "Los Angeles"]
    assert [(r.head, r.tail, r.label, r.status) for r in doc.relations] == [(0, 1, "Shot_In", "accepted")]
    with pytest.raises(AnnotationError, match="not a suggestion: delete it"):
        reject(doc, "span", 0)
    with pytest.raises(AnnotationError, match="not a suggestion"):
        reject(doc, "relation", 0)


def test_reject_a_suggested_relation_keeps_its_spans():
    doc = doc_with(
        ("Inception", "Other"), ("Los Angeles", "Loc"), relations=[(0, 1, "Shot_In")], suggested=True
    )
    reject(doc, "relation", 0)
    assert doc.relations == [] and len(doc.spans) == 2


def test_accept_all_and_reject_all():
    def mixed() -> AnnotatedDoc:
        doc = doc_with(("Christopher Nolan", "Peop"), ("Inception", "Other"), ("Los Angeles", "Loc"))
        doc.spans[1].status = "suggested"
        doc.relations += [Link(0, 2, "Live_In", status="suggested"), Link(0, 1, "Made"), Link(2, 0, "X")]
        return doc

    doc = mixed()
    accept_all(doc)
    assert {item.status for item in [*doc.spans, *doc.relations]} == {"accepted"}
    doc = mixed()
    reject_all(doc)
    assert texts(doc) == ["Christopher Nolan", "Los Angeles"]
    assert [(r.head, r.tail, r.label) for r in doc.relations] == [(1, 0, "X")]


def test_set_done_and_progress():
    project = Project(docs=[AnnotatedDoc("a", "x"), AnnotatedDoc("b", "y"), AnnotatedDoc("c", "z")])
    set_done(project.docs[1])
    assert project.progress() == (1, 3)
    set_done(project.docs[1], False)
    assert project.progress() == (0, 3)
    assert project.current is project.docs[0]
    with pytest.raises(AnnotationError, match="no documents"):
        _ = Project().current


def test_add_label():
    project = Project(entity_labels=["Peop"])
    add_label(project, "span", "Loc")
    add_label(project, "relation", "Live_In")
    assert (project.entity_labels, project.relation_labels) == (["Peop", "Loc"], ["Live_In"])
    with pytest.raises(AnnotationError, match="already a label"):
        add_label(project, "span", "Peop")
    with pytest.raises(AnnotationError, match="without spaces"):
        add_label(project, "relation", "lives in")


# Words in several scripts, joined by every kind of whitespace: selections land anywhere in them.
WORDS = st.sampled_from(
    ["Zürich", "Ærøskøbing", "naïve", "Москва", "Ἀθῆναι", "Θεσσαλονίκη", "😀", "👩‍🔬", "Nolan's", "U.S.",
     "e-mail", "(x)", "42,5", "!", "日本"]
)  # fmt: skip
SEPARATORS = st.sampled_from([" ", "  ", "\n", "\t", " \n ", "\u00a0", ""])


@st.composite
def text_and_selection(draw) -> tuple[str, int, int]:
    parts = draw(st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=12))
    text = draw(SEPARATORS) + "".join(word + separator for word, separator in parts)
    start = draw(st.integers(0, len(text) - 1))
    return text, start, draw(st.integers(start + 1, len(text)))


@settings(max_examples=300, deadline=None)
@given(text_and_selection(), st.sampled_from(["en", "xx"]))
def test_add_span_yields_a_trimmed_span_covering_the_selection(case, lang):
    text, start, end = case
    doc = AnnotatedDoc("d", text)
    selection = text[start:end]
    if not selection.strip():
        with pytest.raises(AnnotationError, match="only whitespace"):
            add_span(doc, start, end, "X", lang=lang)
        return
    span = doc.spans[add_span(doc, start, end, "X", lang=lang)]
    chosen = text[span.start : span.end]
    assert chosen and chosen == chosen.strip()
    first = start + len(selection) - len(selection.lstrip())
    last = end - (len(selection) - len(selection.rstrip()))
    assert span.start <= first and last <= span.end, "every selected non-space character is inside"


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=40), st.data())
def test_add_span_on_arbitrary_unicode(text, data):
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    doc = AnnotatedDoc("d", text)
    if not text[start:end].strip():
        return
    span = doc.spans[add_span(doc, start, end, "X")]
    chosen = text[span.start : span.end]
    assert chosen == chosen.strip() and text[start:end].strip() in chosen


# ------------------------------------------------------------------ overlapping suggestions
OVERLAPPING = "Composer Thomas moved to Chisholm , Minn . in 1990."


def overlapping_doc() -> AnnotatedDoc:
    """A model's overlapping variants, as SpERT suggests them, and relations on two of them."""
    doc = AnnotatedDoc("o", OVERLAPPING)
    for words, label, score in [
        ("Composer Thomas", "Peop", 0.9),
        ("Thomas", "Peop", 0.8),
        ("Chisholm", "Loc", 0.7),
        ("Chisholm , Minn", "Loc", 0.95),
        ("Chisholm , Minn .", "Loc", 0.6),
    ]:
        start = OVERLAPPING.index(words)
        doc.spans.append(Span(start, start + len(words), label, score, "spert", "suggested"))
    doc.relations = [Link(0, 3, "Live_In", 0.9, "suggested"), Link(1, 2, "Live_In", 0.5, "suggested")]
    return doc


def test_resolved_keeps_one_of_each_overlapping_group_as_the_pipeline_does():
    doc = overlapping_doc()
    assert [doc.span_text(i) for i in resolved(doc)] == ["Composer Thomas", "Chisholm , Minn"]
    accept(doc, "span", 1)  # the annotator chose "Thomas": its variants are decided on
    assert [doc.span_text(i) for i in resolved(doc)] == ["Thomas", "Chisholm , Minn"]


def test_resolved_follows_the_pipelines_recorded_doc_ents_where_there_is_a_record():
    doc = overlapping_doc()  # by score the pipeline's rule picks "Composer Thomas", "Chisholm , Minn"
    for span, in_ents in zip(doc.spans, [False, True, False, False, True]):  # as ents_merge="length"
        span.ent = in_ents  # would not choose, but a pipeline may: the record is what it chose
    assert [doc.span_text(i) for i in resolved(doc)] == ["Thomas", "Chisholm , Minn ."]
    accept(doc, "span", 2)  # the annotator chose "Chisholm": its recorded variant is decided on
    assert [doc.span_text(i) for i in resolved(doc)] == ["Thomas", "Chisholm"]
    mixed = overlapping_doc()
    mixed.spans[1].ent = True  # "Thomas" recorded; the others not: they are chosen by the rule
    assert [mixed.span_text(i) for i in resolved(mixed)] == ["Thomas", "Chisholm , Minn"]


def test_accept_all_leaves_overlapping_suggestions_and_says_why():
    doc = overlapping_doc()
    left = accept_all(doc)
    assert [doc.span_text(i) for i, s in enumerate(doc.spans) if s.status == "accepted"] == [
        "Composer Thomas", "Chisholm , Minn",
    ]  # fmt: skip
    assert left == [
        "'Thomas' (Peop) overlaps 'Composer Thomas' (Peop)",
        "'Chisholm' (Loc) overlaps 'Chisholm , Minn' (Loc)",
        "'Chisholm , Minn .' (Loc) overlaps 'Chisholm , Minn' (Loc)",
        "'Thomas' (Peop) Live_In 'Chisholm' (Loc): one of its entities was left as a suggestion",
    ]
    assert [r.status for r in doc.relations] == ["accepted", "suggested"]


def test_accept_all_respects_accepted_spans_and_only_what_is_shown():
    doc = overlapping_doc()
    accept(doc, "span", 1)  # "Thomas"
    assert accept_all(doc, only=resolved(doc)) == []  # the shown ones never overlap
    assert [s.status for s in doc.spans] == ["suggested", "accepted", "suggested", "accepted", "suggested"]
    assert [r.status for r in doc.relations] == ["suggested", "suggested"]  # each has a hidden end


def test_accept_all_with_overlaps_allowed_accepts_everything():
    doc = overlapping_doc()
    assert accept_all(doc, overlaps=True) == []
    assert {item.status for item in [*doc.spans, *doc.relations]} == {"accepted"}
    with pytest.raises(AnnotationError, match="no span 9"):
        accept_all(doc, only=[9])


def test_label_order_is_the_same_whatever_order_labels_came_in():
    assert label_order(["Peop", "Loc", "Other", "Org"]) == label_order(["Peop", "Loc", "Org", "Other", "Loc"])
    assert label_order(["peop", "Loc", "Org"]) == ["Loc", "Org", "peop"]


def test_set_overlaps_is_saved_with_the_project():
    project = Project()
    set_overlaps(project, True)
    assert project_from_dict(project_to_dict(project)).overlaps is True
    assert project_from_dict({"docs": []}).overlaps is False  # projects saved before the setting
