"""Segments that respect the text: no entity and no relation crosses a blank line (on text and on
HTML input), no relation links two spans that overlap, and no sentence ends after an abbreviation.

The model here calls every span an entity and every pair of entities related, so anything the
segments let through shows up; only the segmentation keeps predictions inside paragraphs.
"""

from __future__ import annotations

import pytest
import spacy
import torch

from ner.batch.sources import html_to_text
from ner.pipeline import build_pipeline
from ner.segments import is_paragraph_break, paragraph_segments
from ner.tokenizer import ENGLISH_ABBREVIATIONS
from tests.conftest import tiny_model


@pytest.fixture(scope="module")
def nlp():
    model = tiny_model(bias_entities=30.0)
    with torch.no_grad():
        model.heads["spert"].relation_classifier.bias += 30.0
    return build_pipeline(model, name="everything_is_an_entity")


def _paragraph_of(doc) -> list[int]:
    """For each token, the number of blank lines before it in the text (its paragraph)."""
    text = doc.text
    return [sum(is_paragraph_break(text[a:b]) for a, b in _gaps(doc, t.idx)) for t in doc]


def _gaps(doc, end: int):
    """The whitespace runs of the text before character ``end``."""
    text, start = doc.text, None
    for i, char in enumerate(text[:end]):
        if char.isspace() and start is None:
            start = i
        elif not char.isspace() and start is not None:
            yield start, i
            start = None
    if start is not None:
        yield start, end


def _assert_inside_paragraphs(doc) -> None:
    paragraph = _paragraph_of(doc)
    spans = list(doc.spans["spert"])
    assert spans, "the model predicts every span"
    for span in spans:
        assert paragraph[span.start] == paragraph[span.end - 1], f"entity {span.text!r} crosses a blank line"
    assert doc._.relations, "the model relates every pair"
    for head, _, tail, _ in doc._.relations:
        assert paragraph[head.start] == paragraph[tail.start], f"{head.text!r} -> {tail.text!r}"


@pytest.mark.parametrize("by_sentence", [True, False])
@pytest.mark.parametrize("blank", ["\n\n", "\n \n", "\r\n\r\n", "\n\t\n\n", "\u2029"])
def test_no_entity_or_relation_crosses_a_blank_line_in_text(nlp, by_sentence, blank):
    nlp.get_pipe("ner_extractor").segment_by_sentence = by_sentence
    try:
        doc = nlp(f"Hello World{blank}Amazon is based in Seattle{blank}Warsaw{blank}Andy Jassy")
    finally:
        nlp.get_pipe("ner_extractor").segment_by_sentence = True
    _assert_inside_paragraphs(doc)
    assert "World" in {s.text.split()[-1] for s in doc.spans["spert"]}


def test_no_entity_or_relation_crosses_an_html_block(nlp):
    html = (
        "<html><head><title>Skip me</title></head><body><h1>Hello World</h1>"
        "<p>Amazon is based in Seattle</p><div>Warsaw</div><div>Andy Jassy</div>"
        "<ul><li>Microsoft</li><li>Satya Nadella</li></ul></body></html>"
    )
    text = html_to_text(html)
    assert "World\n\nAmazon" in text and "Warsaw\n\nAndy Jassy" in text
    doc = nlp(text)
    _assert_inside_paragraphs(doc)
    texts = {span.text for span in doc.spans["spert"]}
    assert not any("\n" in t for t in texts), texts


def test_a_single_line_break_is_not_a_boundary(nlp):
    """Wrapped text breaks lines inside sentences and names: those stay one segment."""
    doc = nlp("Leonardo\nDiCaprio starred in\nInception")
    assert "Leonardo\nDiCaprio" in {span.text for span in doc.spans["spert"]}


def test_no_relation_links_overlapping_spans_in_the_pipeline(nlp):
    """Every span an entity and every pair related, yet "Redmond" is never related to "Redmond,
    Washington": the relations in ``doc._.relations`` all link spans that share no token."""
    doc = nlp("Bill Gates lives in Redmond, Washington")
    spans = {(s.start, s.end) for s in doc.spans["spert"]}
    assert {(4, 5), (4, 7)} <= spans, "both readings of the place are predicted"
    assert doc._.relations
    for head, _, tail, _ in doc._.relations:
        assert head.end <= tail.start or tail.end <= head.start, (head.text, tail.text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a b\nc", [["a", "b", "c"]]),
        ("a b\n\nc", [["a", "b"], ["c"]]),
        ("a  \n  \n  b \n c", [["a"], ["b", "c"]]),
        ("\n\na\n\n\n\nb\n\n", [["a"], ["b"]]),
        ("a\u2029b\u2028c", [["a"], ["b", "c"]]),
        ("", []),
        ("\n\n", []),
    ],
)
def test_paragraph_segments(text, expected):
    doc = spacy.blank("en")(text)
    assert [[doc[i].text for i in segment] for segment in paragraph_segments(doc[:])] == expected


# ---------------------------------------------------------------------- abbreviations
@pytest.mark.parametrize(
    "text",
    [
        "Navy Lt. Nettie Johnson was unable to say whether the aircraft had problems.",
        "Navy Capt. Michael Coats said during the final preflight news conference.",
        "Temperatures ranged from 9 degrees at Yellowstone, Wyo., to 85 degrees at McAllen.",
        "Jack MacAllister, chairman of U S West inc., said the franchise is a major opportunity.",
        "Mr. Smith of the U.S. Army met Sgt. Jones of Acme Inc. at Ft. Worth.",
    ],
)
def test_no_sentence_ends_after_an_abbreviation(nlp, text):
    """CoNLL04 sentences the stock sentencizer cut in two after "Lt." or "Wyo.": spaCy splits the
    full stop off abbreviations it has no exception for, then ends a sentence after it."""
    doc = nlp(text)
    assert len(list(doc.sents)) == 1, [s.text for s in doc.sents]
    assert len(nlp.get_pipe("ner_extractor")._segments(doc)) == 1


def test_sentences_still_end_after_a_full_stop(nlp):
    doc = nlp("Nettie Johnson spoke for the Navy. Michael Coats flew the shuttle. He landed.")
    assert [s.text for s in doc.sents] == [
        "Nettie Johnson spoke for the Navy.",
        "Michael Coats flew the shuttle.",
        "He landed.",
    ]


def test_every_abbreviation_is_one_token_and_spacys_exceptions_are_kept(tmp_path):
    nlp = build_pipeline(tiny_model(), name="abbreviations")
    for abbreviation in ENGLISH_ABBREVIATIONS:
        tokens = [t.text for t in nlp.tokenizer(f"the {abbreviation}, then")]
        assert tokens == ["the", abbreviation, ",", "then"], tokens
    stock = spacy.blank("en").tokenizer
    for text in list(stock.rules)[:500:7]:
        assert [t.text for t in nlp.tokenizer(text)] == [t.text for t in stock(text)], text
    nlp.to_disk(tmp_path / "saved")
    assert [t.text for t in spacy.load(tmp_path / "saved").tokenizer("Lt. Col. North")] == [
        "Lt.",
        "Col.",
        "North",
    ]


def test_other_languages_get_no_english_abbreviations():
    nlp = build_pipeline(tiny_model(), lang="de", name="german")
    assert set(nlp.tokenizer.rules) == set(spacy.blank("de").tokenizer.rules)
    assert "Lt." not in nlp.tokenizer.rules
