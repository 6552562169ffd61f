"""The spaCy layer: doc.ents, doc.spans, doc._.relations, batching, serialisation, exact offsets."""

from __future__ import annotations

import subprocess
import sys

import pytest
import spacy
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin, Span

from ner.batch.records import doc_record
from ner.batch.sources import SourceText
from ner.components import Extractor, RelationMention, _non_overlapping
from ner.model import ExtractionModel
from ner.pipeline import build_pipeline, extractor_model
from tests.conftest import SCHEMA, tiny_encoder, tiny_model
from tests.piece_cover import assert_pieces_cover_the_entity

TEXT = (
    "Leonardo DiCaprio starred in Christopher Nolan's thriller Inception. "
    "He lives in Los Angeles, California, and works for Warner Bros."
)


@pytest.fixture(scope="module")
def nlp():
    model = tiny_model(bias_entities=2.0)
    model.heads["spert"].config.relation_threshold = 0.3  # random weights: make some relations appear
    return build_pipeline(model, name="tiny_test")


def _summary(doc):
    """Everything the component wrote, as (structure, scores)."""
    structure = (
        [(e.start_char, e.end_char, e.label_) for e in doc.ents],
        [(s.start, s.end, s.label_) for s in doc.spans["spert"]],
        [(r["head"], r["tail"], r["label"]) for r in doc._.relation_data],
    )
    scores = [e._.score for e in doc.ents] + list(doc.spans["spert"].attrs["scores"])
    return structure, scores + [r["score"] for r in doc._.relation_data]


def _same(a, b) -> bool:
    """Equal structure; scores equal up to float noise (padding in a batch changes them by ~1e-7)."""
    return a[0] == b[0] and a[1] == pytest.approx(b[1], abs=1e-5)


def test_entities_spans_and_relations_are_set(nlp):
    doc = nlp(TEXT)
    assert doc.ents, "the biased random model predicts entities"
    assert len(doc.spans["spert"]) >= len(doc.ents)
    tokens = [t.i for e in doc.ents for t in e]
    assert len(tokens) == len(set(tokens)), "doc.ents never overlap"
    for ent in doc.ents:
        assert 0.0 < ent._.score <= 1.0
        assert ent.label_ in {"Peop", "Org", "Loc", "Other"}
    for relation in doc._.relations:
        assert isinstance(relation, RelationMention)
        head, label, tail, score = relation
        assert head.doc is doc and tail.doc is doc
        assert label in {"Work_For", "Live_In", "OrgBased_In", "Located_In", "Kill"}
        assert score >= 0.3


def test_relations_stay_inside_sentences(nlp):
    doc = nlp(TEXT)
    sentence_of = {t.i: s.start for s in doc.sents for t in s}
    for head, _, tail, _ in doc._.relations:
        assert sentence_of[head.start] == sentence_of[tail.start]


def test_pipe_matches_single_calls(nlp):
    texts = [TEXT, "Angela Merkel lives in Berlin.", "", "   \n  ", TEXT.upper()]
    piped = [_summary(doc) for doc in nlp.pipe(texts, batch_size=2)]
    for one_by_one, batched in zip([_summary(nlp(text)) for text in texts], piped):
        assert _same(batched, one_by_one)
    assert piped[2][0][0] == [] and piped[3][0][0] == []


def test_a_long_sentence_is_not_padded_onto_a_full_batch_of_short_ones(nlp, monkeypatch):
    """Issue 13's slowdown: 64 one-sentence texts went to the encoder as one batch of 64 padded to the
    one long sentence among them; cut by padding, the long one goes alone and nothing is padded."""
    batches: list[list[int]] = []  # the word counts of each batch the encoder is given
    encode = ExtractionModel.encode

    def counting_encode(model, pieces, heads=None):
        batches.append(pieces.word_counts.tolist())
        return encode(model, pieces, heads)

    monkeypatch.setattr(ExtractionModel, "encode", counting_encode)
    texts = ["Angela Merkel lives in Berlin."] * 63 + [" ".join(["word"] * 40) + "."]
    docs = list(nlp.pipe(texts, batch_size=64))
    assert sum(len(list(doc.sents)) for doc in docs) == 64  # one annotate call, one model.predict
    assert sorted(batches, key=len) == [[41], [6] * 63]
    assert sum(len(b) * max(b) for b in batches) == sum(len(doc) for doc in docs)


def test_disk_round_trip_is_exact(nlp, tmp_path):
    nlp.to_disk(tmp_path / "pipeline")
    files = {p.name for p in (tmp_path / "pipeline" / "ner_extractor").iterdir()}
    assert {"model.json", "weights.safetensors"} <= files and not any(
        f.endswith((".bin", ".pt")) for f in files
    )
    reloaded = spacy.load(tmp_path / "pipeline")
    assert reloaded.pipe_names == ["sentencizer", "ner_extractor"]
    assert _same(_summary(reloaded(TEXT)), _summary(nlp(TEXT)))
    assert reloaded(TEXT)._.relation_data == nlp(TEXT)._.relation_data, "fp32 full storage is bit-exact"


def test_loading_needs_no_import_of_ours(nlp, tmp_path):
    """The factory comes from the spacy_factories entry point in a fresh interpreter."""
    nlp.to_disk(tmp_path / "pipeline")
    code = (
        "import sys, spacy\n"
        f"nlp = spacy.load({str(tmp_path / 'pipeline')!r})\n"
        "doc = nlp('Angela Merkel lives in Berlin.')\n"
        "print(len(doc.spans['spert']), 'ner.components' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split()[-1] == "True"


def test_relations_survive_docbin(nlp):
    docs = list(nlp.pipe([TEXT, "Booth killed Lincoln in Washington."]))
    data = DocBin(docs=docs, store_user_data=True).to_bytes()
    restored = list(DocBin(store_user_data=True).from_bytes(data).get_docs(nlp.vocab))
    for before, after in zip(docs, restored):
        assert [(h.text, label, t.text, s) for h, label, t, s in after._.relations] == [
            (h.text, label, t.text, s) for h, label, t, s in before._.relations
        ]
        assert [(e.text, e._.score) for e in after.ents] == [(e.text, e._.score) for e in before.ents]
        assert after.spans["spert"].attrs["scores"] == before.spans["spert"].attrs["scores"]


def _scored(doc, items):
    return [(score, rank, Span(doc, start, end, label=label)) for score, rank, start, end, label in items]


def test_entity_selection_prefers_score_then_length_and_keeps_earlier_entities():
    doc = spacy.blank("en")("a b c d e f g")
    items = [
        (0.6, 0, 0, 2, "X"),
        (0.9, 0, 1, 3, "X"),
        (0.7, 0, 4, 5, "X"),
        (0.7, 0, 4, 6, "X"),
        (0.2, 0, 6, 7, "X"),
    ]
    existing = [Span(doc, 0, 1, label="OLD"), Span(doc, 6, 7, label="OLD")]
    chosen = [(s.start, s.end, s.label_) for s in _non_overlapping(_scored(doc, items), existing, "score")]
    # (1,3) wins over the overlapping (0,2); of the tied (4,5)/(4,6) the longer wins; (6,7) is free
    # for our low-scored span, and the earlier (0,1) entity survives where nothing of ours overlaps.
    assert chosen == [(0, 1, "OLD"), (1, 3, "X"), (4, 6, "X"), (6, 7, "X")]


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("score", [(2, 3, "Disease")]),  # "cancer" 0.9 from head 1 beats "breast cancer" 0.8
        ("length", [(1, 3, "Disease")]),  # the longer span wins
        ("priority", [(1, 3, "Disease")]),  # head 0 is listed first
    ],
)
def test_merge_rules_between_heads(rule, expected):
    doc = spacy.blank("en")("with breast cancer")
    items = [(0.8, 0, 1, 3, "Disease"), (0.9, 1, 2, 3, "Disease")]
    assert [(s.start, s.end, s.label_) for s in _non_overlapping(_scored(doc, items), [], rule)] == expected


def test_merge_settings_are_validated_and_applied_in_the_pipeline():
    with pytest.raises(ValueError, match="ents_merge must be one of score, length, priority"):
        Extractor(ents_merge="vote")
    with pytest.raises(ValueError, match="needs ents_heads"):
        Extractor(ents_merge="priority")
    model = ExtractionModel.create(
        tiny_encoder(), "tiny", {"a": ({"type": "tagger"}, SCHEMA), "b": ({"type": "tagger"}, SCHEMA)}
    )
    nlp = build_pipeline(model)
    component = nlp.get_pipe("ner_extractor")
    for name in ("a", "b"):  # head "a" tags every word as a Loc entity, head "b" nothing
        head = model.heads[name]
        with torch.no_grad():
            head.classifier.weight.zero_()
            head.classifier.bias.fill_(-5.0)
            head.classifier.bias[head.label_ids["B-Loc"]] = 5.0 if name == "a" else -5.0
    assert [e.label_ for e in nlp("one two").ents] == ["Loc", "Loc"]
    component.ents_heads = ["b"]
    doc = nlp("one two")
    assert list(doc.ents) == [] and len(doc.spans["a"]) == 2, "heads outside ents_heads keep doc.spans"
    component.ents_heads = ["c"]
    with pytest.raises(ValueError, match=r"ents_heads names \['c'\]"):
        nlp("one two")


def test_a_component_without_model_says_so():
    nlp = spacy.blank("en")
    nlp.add_pipe("ner_extractor")
    with pytest.raises(RuntimeError, match="has no model"):
        nlp("Some text.")


def test_five_thousand_words_are_processed_whole():
    """No sentence boundaries and 5,000 words: the encoder windows cover it all, nothing is cut."""
    model = tiny_model(bias_entities=-1.0)
    with torch.no_grad():  # a random model would relate everything to everything: keep the output small
        model.heads["spert"].relation_classifier.bias.fill_(-20.0)
    model.heads["spert"].config.max_pair_distance = 3
    nlp = build_pipeline(model)
    words = [f"word{i % 97}" for i in range(5000)]
    doc = nlp(" ".join(words))
    assert len(doc) == 5000
    assert extractor_model(nlp).encoder.window < 5000
    spans = doc.spans["spert"]
    assert spans and max(s.end for s in spans) > 4900, "spans are predicted up to the very end"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=0, max_size=200))
def test_offsets_map_back_to_the_source_text(nlp, text):
    doc = nlp(text)
    assert doc.text == text
    tokenizer = extractor_model(nlp).encoder.tokenizer
    for span in list(doc.ents) + list(doc.spans["spert"]):
        assert_pieces_cover_the_entity(tokenizer, span)
    record = doc_record(doc, SourceText("x", text), ["spert"], {"name": "t", "version": "0"})
    for entity in record["entities"]:
        assert entity["text"] == text[entity["start"] : entity["end"]]
