"""Long segments (text with no sentence boundary) are cut into bounded windows (ner/segments.py).

What the SpERT head builds per document is counted, not timed. Results on short sentences are
unchanged, entity offsets map back to the text, and entities and relations found in two windows
are kept once.
"""

from __future__ import annotations

import pytest
import spacy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.components import Extractor
from ner.documents import Entity, Relation
from ner.heads import spert
from ner.model import ExtractionModel
from ner.pipeline import build_pipeline
from ner.segments import Window, cut_strengths, merge_windows, plan_windows
from tests.conftest import SCHEMA, tiny_encoder, tiny_model

TEXT = (
    "Leonardo DiCaprio starred in Christopher Nolan's thriller Inception. "
    "He lives in Los Angeles, California, and works for Warner Bros."
)


def _words(n: int) -> str:
    return " ".join(f"word{i % 89}" for i in range(n))


def _bounded(nlp, size: int, overlap: int):
    component = nlp.get_pipe("ner_extractor")
    component.max_segment_words, component.segment_overlap_words = size, overlap
    return nlp


def _summary(doc):
    return (
        [(e.start_char, e.end_char, e.label_, e._.score) for e in doc.ents],
        [(s.start, s.end, s.label_) for s in doc.spans["spert"]],
        list(doc.spans["spert"].attrs["scores"]),
        doc._.relation_data,
    )


@pytest.fixture()
def counted(monkeypatch):
    """Per decoded batch: the longest document, and the most spans and pairs the head built for one."""
    built: list[tuple[int, int, int]] = []
    real_spans, real_pairs = spert.enumerate_spans, spert.pairs_within_docs
    last = {}

    def spans(word_counts, max_width):
        doc, start, end = real_spans(word_counts, max_width)
        last["longest"] = int(word_counts.max())
        last["spans"] = int(torch.bincount(doc).max()) if doc.numel() else 0
        return doc, start, end

    def pairs(doc, start, max_distance=None):
        head, tail = real_pairs(doc, start, max_distance)
        most = int(torch.bincount(doc[head]).max()) if head.numel() else 0
        built.append((last["longest"], last["spans"], most))
        return head, tail

    monkeypatch.setattr(spert, "enumerate_spans", spans)
    monkeypatch.setattr(spert, "pairs_within_docs", pairs)
    return built


def _every_span_model(max_width: int, relations: bool = False) -> ExtractionModel:
    """SpERT that keeps every span as an entity (and relates every pair when ``relations``)."""
    model = tiny_model()
    head = model.heads["spert"]
    head.config.max_span_width = max_width
    with torch.no_grad():
        head.entity_classifier.bias[0] = -100.0
        head.relation_classifier.bias.fill_(20.0 if relations else -20.0)
    return model


# ---------------------------------------------------------------------------------------- planning
@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 400),
    st.integers(1, 64),
    st.data(),
)
def test_windows_cover_the_segment_overlap_exactly_and_own_each_word_once(n, size, data):
    overlap = data.draw(st.integers(0, size // 2))
    strengths = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    windows = plan_windows(strengths, size, overlap)
    assert windows[0].start == 0 and windows[-1].end == n
    assert windows[0].own_start == 0 and windows[-1].own_end == n
    for window in windows:
        assert window.end - window.start <= size
        assert window.start <= window.own_start <= window.own_end <= window.end
    for before, after in zip(windows, windows[1:]):
        assert after.start == before.end - overlap, "consecutive windows overlap by exactly `overlap`"
        assert after.own_start == before.own_end, "the owned parts tile the segment"
        assert before.end - before.own_end >= overlap // 2 and after.own_start - after.start >= overlap // 2
        assert before.own_end > before.own_start
    if n <= size:
        assert windows == [Window(0, n, 0, n)]


def test_a_window_ends_after_the_strongest_weak_boundary_in_its_last_quarter():
    strengths = [0] * 200
    strengths[59] = 2  # ";" after word 59, inside the last quarter of the first window [0, 80)
    strengths[70] = 1  # "," after word 70: weaker
    strengths[30] = 3  # a line break outside the last quarter: not considered
    first = plan_windows(strengths, 80, 16)[0]
    assert (first.start, first.end) == (0, 60)
    assert plan_windows([0] * 200, 80, 16)[0].end == 80, "no boundary: the window is full"


def test_cut_strengths_read_line_breaks_and_punctuation():
    doc = spacy.blank("en")("one two\nthree; four, five. six")
    tokens = [t.i for t in doc if not t.is_space]
    assert [doc[i].text for i in tokens] == ["one", "two", "three", ";", "four", ",", "five", ".", "six"]
    assert cut_strengths(doc, tokens) == [0, 3, 0, 2, 0, 1, 0, 3, 0]


def test_merging_keeps_entities_by_their_start_and_relations_once():
    windows = [Window(0, 10, 0, 8), Window(6, 16, 8, 16)]
    first = (
        [
            Entity(7, 9, "Loc", 0.9),
            Entity(2, 3, "Peop", 0.8),
            Entity(6, 7, "Peop", 0.7),
            Entity(9, 10, "Org"),
        ],
        [Relation(1, 0, "Live_In", 0.5), Relation(1, 3, "Work_For", 0.7)],  # (9, 10) is not kept
    )
    # The second window sees (7, 9) as (1, 3) and predicts it too, with another score; (8, 10) is its
    # own; it labels (6, 7) differently from the first window, which owns it.
    second = (
        [Entity(1, 3, "Loc", 0.7), Entity(2, 4, "Org", 0.6), Entity(0, 1, "Org", 0.5)],
        [
            Relation(1, 0, "OrgBased_In", 0.6),
            Relation(1, 0, "OrgBased_In", 0.9),
            Relation(1, 2, "Work_For", 0.8),
        ],
    )
    entities, relations = merge_windows(windows, [first, second])
    assert entities == [
        Entity(7, 9, "Loc", 0.9),
        Entity(2, 3, "Peop", 0.8),
        Entity(6, 7, "Peop", 0.7),
        Entity(8, 10, "Org", 0.6),
    ]
    assert relations == [
        Relation(1, 0, "Live_In", 0.5),
        Relation(3, 0, "OrgBased_In", 0.9),
        Relation(3, 2, "Work_For", 0.8),
    ]


# ---------------------------------------------------------------------------------------- the bound
def test_the_head_builds_a_bounded_number_of_spans_and_pairs_per_document(counted):
    """400 unpunctuated words, every span kept: the head never sees more than the bound, and what it
    builds grows linearly with the text, not with its square."""
    nlp = build_pipeline(_every_span_model(max_width=1))
    assert nlp.get_pipe("ner_extractor").max_segment_words == 256, "the documented default"
    nlp(_words(400))
    assert max(longest for longest, _, _ in counted) <= 256
    assert max(spans for _, spans, _ in counted) <= 256
    assert max(pairs for *_, pairs in counted) <= 256 * 255
    totals = []
    for n in (400, 800):
        counted.clear()
        nlp = _bounded(build_pipeline(_every_span_model(max_width=2)), 32, 8)
        nlp(_words(n))
        assert max(longest for longest, _, _ in counted) <= 32
        totals.append(sum(pairs for *_, pairs in counted))
    assert totals[1] < 2.2 * totals[0], f"pairs grow linearly with the text: {totals}"


def test_short_sentences_are_predicted_exactly_as_without_the_bound():
    model = tiny_model(bias_entities=2.0)
    with torch.no_grad():  # random weights relate almost every pair: keep a few dozen relations
        model.heads["spert"].relation_classifier.bias -= 2.0
    nlp = build_pipeline(model)
    texts = [TEXT, _words(24)]
    bounded = [_summary(doc) for doc in nlp.pipe(texts)]
    assert bounded[0][3] and bounded[1][3], "relations are predicted"
    _bounded(nlp, 10**9, 0)
    assert [_summary(doc) for doc in nlp.pipe(texts)] == bounded
    _bounded(nlp, 24, 8)  # a segment of exactly the bound is one window
    assert [_summary(doc) for doc in nlp.pipe(texts)] == bounded


def test_every_word_is_one_entity_at_its_own_offsets_across_windows():
    """A tagger that tags every word B-Loc: each word comes back exactly once, at its characters."""
    model = ExtractionModel.create(tiny_encoder(), "tiny", {"tagger": ({"type": "tagger"}, SCHEMA)})
    head = model.heads["tagger"]
    with torch.no_grad():
        head.classifier.weight.zero_()
        head.classifier.bias.fill_(-5.0)
        head.classifier.bias[head.label_ids["B-Loc"]] = 5.0
    nlp = _bounded(build_pipeline(model), 24, 8)
    pieces = [f"w{i}" + ("," if i % 7 == 3 else ";" if i % 11 == 5 else "") for i in range(300)]
    text = "  ".join(" ".join(pieces[i : i + 13]) + "\n" for i in range(0, 300, 13))
    doc = nlp(text)
    words = [t for t in doc if not t.is_space]
    assert [(s.start, s.end) for s in doc.spans["tagger"]] == [(t.i, t.i + 1) for t in words]
    assert [(e.start_char, e.end_char) for e in doc.ents] == [(t.idx, t.idx + len(t)) for t in words]
    for ent in doc.ents:
        assert ent.text == text[ent.start_char : ent.end_char]


def test_spans_and_relations_in_window_overlaps_are_kept_once():
    nlp = _bounded(build_pipeline(_every_span_model(max_width=3)), 32, 8)
    n = 150
    doc = nlp(_words(n))
    spans = [(s.start, s.end) for s in doc.spans["spert"]]
    assert sorted(spans) == [(s, s + w) for s in range(n) for w in (1, 2, 3) if s + w <= n]

    nlp = _bounded(build_pipeline(_every_span_model(max_width=1, relations=True)), 16, 8)
    n = 60
    doc = nlp(_words(n))
    assert [(s.start, s.end) for s in doc.spans["spert"]] == [(i, i + 1) for i in range(n)]
    found = [(r["head"][0], r["tail"][0], r["label"]) for r in doc._.relation_data]
    assert len(found) == len(set(found)), "no relation twice"
    windows = plan_windows([0] * n, 16, 8)
    together = {
        (i, j) for w in windows for i in range(w.start, w.end) for j in range(w.start, w.end) if i != j
    }
    labels = [t.label for t in SCHEMA.relation_types]
    assert set(found) == {(i, j, label) for i, j in together for label in labels}


def test_the_bound_is_validated():
    with pytest.raises(ValueError, match="max_segment_words must be at least 1"):
        Extractor(max_segment_words=0)
    with pytest.raises(
        ValueError, match=r"segment_overlap_words must be between 0 and half .*\(16\), not 17"
    ):
        Extractor(max_segment_words=32, segment_overlap_words=17)
