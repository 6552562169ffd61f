"""Gold spans moved onto the pipeline's own tokens (:mod:`ner.alignment`), with the tokenizer the
saved pipeline has (:func:`ner.pipeline.pipeline_tokenizer`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.alignment import TRAILING_MARKS, retokenize, retokenize_all
from ner.documents import Document, Entity, Relation
from ner.pipeline import build_pipeline, pipeline_tokenizer
from tests.conftest import tiny_model

TOKENIZER = pipeline_tokenizer("en")


def _spans(doc: Document) -> list[tuple[str, str]]:
    return [(doc.span_text(e.start, e.end), e.label) for e in doc.entities]


def test_the_training_tokenizer_is_the_saved_pipelines():
    nlp = build_pipeline(tiny_model(), "en")
    text = "Knight-Ridder paid $3.2 million in Kentucky. The U.S. Inc. \ud800 agreed."
    assert [t.text for t in TOKENIZER(text)] == [t.text for t in nlp.tokenizer(text)]
    assert type(TOKENIZER) is type(nlp.tokenizer)


def test_a_trailing_full_stop_is_split_off_and_stripped_from_the_span():
    doc = Document.from_words(["He", "lives", "in", "Kentucky."], entities=[Entity(3, 4, "Loc")])
    aligned, report = retokenize(doc, TOKENIZER)
    assert aligned.words == ["He", "lives", "in", "Kentucky", "."]
    assert _spans(aligned) == [("Kentucky", "Loc")]
    assert (report.spans, report.normalised, report.unaligned) == (1, 1, 0)


@pytest.mark.parametrize(
    ("words", "span", "tokens"),
    [
        (["Knight-Ridder", "bought", "it"], (0, 1), ["Knight", "-", "Ridder"]),
        (["It", "paid", "$3.2", "million"], (2, 4), ["$", "3.2", "million"]),
        (["It", "moved", "to", "Stratford-upon-Avon", "."], (3, 4), ["Stratford", "-", "upon", "-", "Avon"]),
    ],
    ids=["hyphen", "currency", "hyphens"],
)
def test_a_span_the_tokenizer_cuts_inside_covers_all_its_pieces(words, span, tokens):
    doc = Document.from_words(words, entities=[Entity(*span, "X")])
    aligned, report = retokenize(doc, TOKENIZER)
    entity = aligned.entities[0]
    assert aligned.words[entity.start : entity.end] == tokens
    assert _spans(aligned) == [(doc.span_text(*span), "X")]
    assert (report.normalised, report.unaligned) == (0, 0)


def test_abbreviations_the_tokenizer_keeps_whole_keep_their_full_stop():
    doc = Document.from_words(
        ["The", "U.S.", "army", "and", "Apple", "Inc.", "."],
        entities=[Entity(1, 2, "Loc"), Entity(4, 6, "Org")],
    )
    aligned, report = retokenize(doc, TOKENIZER)
    assert _spans(aligned) == [("U.S.", "Loc"), ("Apple Inc.", "Org")]
    assert report.normalised == 0


def test_a_span_that_cannot_be_aligned_is_reported_with_its_relations():
    """The corpus split "Microsoft" inside a word the tokenizer keeps whole: "Micro" has no token
    boundary to end on. It is left out, with its relation, and both are counted and named."""
    doc = Document(
        words=["Micro", "soft", "hired", "Smith", "in", "Kentucky."],
        text="Microsoft hired Smith in Kentucky.",
        offsets=[(0, 5), (5, 9), (10, 15), (16, 21), (22, 24), (25, 34)],
        entities=[Entity(0, 1, "Org"), Entity(3, 4, "Peop"), Entity(5, 6, "Loc")],
        relations=[Relation(1, 0, "Work_For"), Relation(1, 2, "Live_In")],
        id="d7",
    )
    aligned, report = retokenize(doc, TOKENIZER)
    assert _spans(aligned) == [("Smith", "Peop"), ("Kentucky", "Loc")]
    assert aligned.relations == [Relation(0, 1, "Live_In")], "indices moved to the kept entities"
    assert (report.spans, report.unaligned, report.relations_dropped, report.normalised) == (3, 1, 1, 1)
    assert report.examples == ["d7: 'Micro' (Org)"]
    assert "1 not aligned" in report.describe() and "(1 relations with them)" in report.describe()


def test_relations_follow_their_entities_to_the_new_indices():
    """An entity left out shifts the indices of those after it; gold duplicates become one span,
    and their relations one relation."""
    doc = Document(
        words=["Micro", "soft", "hired", "Smith", "of", "Kentucky."],
        text="Microsoft hired Smith of Kentucky.",
        offsets=[(0, 5), (5, 9), (10, 15), (16, 21), (22, 24), (25, 34)],
        entities=[Entity(0, 1, "Org"), Entity(5, 6, "Loc"), Entity(3, 4, "Peop"), Entity(5, 6, "Loc")],
        relations=[Relation(2, 1, "Live_In"), Relation(2, 3, "Live_In"), Relation(1, 2, "Rev")],
    )
    aligned, report = retokenize(doc, TOKENIZER)
    assert _spans(aligned) == [("Kentucky", "Loc"), ("Smith", "Peop")]
    assert aligned.relations == [Relation(1, 0, "Live_In"), Relation(0, 1, "Rev")]
    assert (report.spans, report.normalised, report.unaligned, report.relations_dropped) == (4, 2, 1, 0)
    _, total = retokenize_all([doc, doc], TOKENIZER)
    assert (total.spans, total.normalised, total.unaligned) == (8, 4, 2)


WORDS = st.lists(
    st.text(alphabet="ab.,;-$3'", min_size=1, max_size=6),
    min_size=1,
    max_size=8,
)


@st.composite
def documents(draw) -> Document:
    words = draw(WORDS)
    spans = draw(st.lists(st.tuples(st.integers(0, len(words) - 1), st.integers(1, 3)), max_size=4))
    entities = [Entity(start, min(len(words), start + width), "X") for start, width in spans]
    return Document.from_words(words, entities=entities)


@settings(deadline=None, max_examples=200)
@given(documents())
def test_every_aligned_span_starts_where_its_gold_starts_and_lies_inside_it(doc):
    aligned, report = retokenize(doc, TOKENIZER)
    assert aligned.text == doc.text and report.spans == len(doc.entities)
    gold = [doc.char_span(e.start, e.end) for e in doc.entities]
    for entity in aligned.entities:
        first, last = aligned.char_span(entity.start, entity.end)
        # a sub-span of a gold span, from its first character, losing at most glued trailing marks
        assert any(
            first == start and last <= end and set(doc.text[last:end]) <= TRAILING_MARKS
            for start, end in gold
        ), (first, last, gold)
    kept = {aligned.char_span(e.start, e.end) for e in aligned.entities}
    assert len(doc.entities) - report.unaligned >= len(kept)
