"""The two evaluation protocols on hand-worked cases: raw text (``nlp.pipe`` on each document's
text, character offsets) and corpus tokens (the papers' protocol).

The model is a tiny one whose ``predict`` is replaced by a script: a table from the words it is
given to the spans it returns. So every prediction, and every expected figure, is known by hand.
The texts of the three documents and what spaCy's English tokenizer makes of them:

* A "Smith lives in Kentucky."  corpus: Smith|lives|in|Kentucky.   pipeline: ...|Kentucky|.
* B "Jones visited Ohio."       corpus: Jones|visited|Ohio.        pipeline: ...|Ohio|.
* D "Lee left Texas."           corpus: Lee|left|Texas.            pipeline: ...|Texas|.
* C "Smith works for Acme Inc. now" with the corpus splitting "Inc" from "." (no space between):
  corpus: ...|Acme|Inc|.|now, pipeline: ...|Acme|Inc.|now (an exception keeps "Inc." whole), so
  the gold "Acme Inc" cannot be aligned to the pipeline's tokens.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ner.cli import app
from ner.documents import Document, Entity, Relation, RelationType, Schema
from ner.evaluation import (
    Evaluation,
    evaluate_file,
    evaluate_model,
    evaluate_pipeline,
    evaluate_raw,
    evaluate_recorded_tasks,
)
from ner.model import ExtractionModel
from ner.pipeline import build_pipeline, extractor_model
from ner.raw_text import gold_characters, predicted_characters
from tests.conftest import SCHEMA, tiny_encoder

Script = dict[tuple[str, ...], tuple[list[Entity], list[Relation]]]


def scripted_pipeline(script: Script, head: str = "spert", config: dict | None = None, schema=SCHEMA):
    """A pipeline around a tiny model whose one head returns ``script[words]`` (nothing for other words)."""
    model = ExtractionModel.create(tiny_encoder(), "tiny", {head: (config or {"type": "spert"}, schema)})

    def predict(docs, batch_size=64, max_batch_words=8192, heads=None):
        return [{head: scored(*script.get(tuple(words), ([], [])))} for words in docs]

    model.predict = predict
    return build_pipeline(model.eval())


def scored(entities: list[Entity], relations: list[Relation]) -> tuple[list[Entity], list[Relation]]:
    """Predictions carry scores (``doc.ents`` are chosen by them)."""
    return [Entity(e.start, e.end, e.label, 1.0) for e in entities], [
        Relation(r.head, r.tail, r.label, 1.0) for r in relations
    ]


def corpus_document(text: str, cuts: list[tuple[int, int]], entities, relations=()) -> Document:
    """A corpus document whose words are ``text[a:b]`` for each ``(a, b)`` of ``cuts``."""
    words = [text[a:b] for a, b in cuts]
    return Document(words, text, cuts, list(entities), list(relations))


PEOP, LOC, ORG = "Peop", "Loc", "Org"
DOC_A = Document.from_words(
    ["Smith", "lives", "in", "Kentucky."],
    entities=[Entity(0, 1, PEOP), Entity(3, 4, LOC)],
    relations=[Relation(0, 1, "Live_In")],
)
DOC_B = Document.from_words(
    ["Jones", "visited", "Ohio."],
    entities=[Entity(0, 1, PEOP), Entity(2, 3, LOC)],
    relations=[Relation(0, 1, "Live_In")],
)
DOC_D = Document.from_words(
    ["Lee", "left", "Texas."],
    entities=[Entity(0, 1, PEOP), Entity(2, 3, LOC)],
    relations=[Relation(0, 1, "Live_In")],
)
DOC_C = corpus_document(
    "Smith works for Acme Inc. now",
    [(0, 5), (6, 11), (12, 15), (16, 20), (21, 24), (24, 25), (26, 29)],
    entities=[Entity(0, 1, PEOP), Entity(3, 5, ORG)],
    relations=[Relation(0, 1, "Work_For")],
)

SCRIPT: Script = {
    # corpus tokens: every gold item found, plus one wrong entity ("lives" as Other) in A
    ("Smith", "lives", "in", "Kentucky."): (
        [Entity(0, 1, PEOP), Entity(3, 4, LOC), Entity(1, 2, "Other")],
        [Relation(0, 1, "Live_In")],
    ),
    ("Jones", "visited", "Ohio."): ([Entity(0, 1, PEOP), Entity(2, 3, LOC)], [Relation(0, 1, "Live_In")]),
    ("Lee", "left", "Texas."): ([Entity(0, 1, PEOP), Entity(2, 3, LOC)], [Relation(0, 1, "Live_In")]),
    ("Smith", "works", "for", "Acme", "Inc", ".", "now"): (
        [Entity(0, 1, PEOP), Entity(3, 5, ORG)],
        [Relation(0, 1, "Work_For")],
    ),
    # the pipeline's tokens: "Kentucky" without its full stop (the gold, normalised: a hit) ...
    ("Smith", "lives", "in", "Kentucky", "."): (
        [Entity(0, 1, PEOP), Entity(3, 4, LOC)],
        [Relation(0, 1, "Live_In")],
    ),
    # ... "Ohio ." with it (not the gold "Ohio": a false positive and a miss, and so is its relation)
    ("Jones", "visited", "Ohio", "."): ([Entity(0, 1, PEOP), Entity(2, 4, LOC)], [Relation(0, 1, "Live_In")]),
    ("Lee", "left", "Texas", "."): ([Entity(0, 1, PEOP), Entity(2, 3, LOC)], [Relation(0, 1, "Live_In")]),
    # ... and "Acme Inc." for a gold "Acme Inc" that no pipeline token ends at (a miss, and a false positive)
    ("Smith", "works", "for", "Acme", "Inc.", "now"): (
        [Entity(0, 1, PEOP), Entity(3, 5, ORG)],
        [Relation(0, 1, "Work_For")],
    ),
}


@pytest.fixture(scope="module")
def nlp():
    return scripted_pipeline(SCRIPT)


def test_the_scripted_pipeline_sees_the_tokens_the_docstring_says(nlp):
    assert [t.text for t in nlp.tokenizer(DOC_C.text)] == ["Smith", "works", "for", "Acme", "Inc.", "now"]
    assert [t.text for t in nlp.tokenizer(DOC_A.text)][-2:] == ["Kentucky", "."]


def test_gold_is_normalised_where_it_aligns_and_kept_where_it_cannot(nlp):
    gold, report = gold_characters(DOC_A, nlp.tokenizer)
    assert [(e.start, e.end, e.label) for e in gold.entities] == [(0, 5, PEOP), (15, 23, LOC)]
    assert gold.span_text(15, 23) == "Kentucky" and gold.relations == [Relation(0, 1, "Live_In")]
    assert (report.spans, report.normalised, report.unaligned, report.relations_dropped) == (2, 1, 0, 0)
    gold, report = gold_characters(DOC_C, nlp.tokenizer)
    assert [(e.start, e.end, e.label) for e in gold.entities] == [(0, 5, PEOP), (16, 24, ORG)]
    assert gold.span_text(16, 24) == "Acme Inc", "unaligned: kept with its own characters"
    assert gold.relations == [Relation(0, 1, "Work_For")], "its relation stays, to be a miss"
    assert (report.spans, report.normalised, report.unaligned, report.relations_dropped) == (2, 0, 1, 1)


def test_predictions_are_every_span_of_the_head_and_its_relations_in_characters(nlp):
    doc = nlp(DOC_B.text)
    doc._.relation_data = [*doc._.relation_data, {**doc._.relation_data[0], "model_head": "other"}]
    predicted = predicted_characters(doc, "spert")
    assert [(e.start, e.end, e.label) for e in predicted.entities] == [(0, 5, PEOP), (14, 19, LOC)]
    assert predicted.span_text(14, 19) == "Ohio."
    assert predicted.relations == [Relation(0, 1, "Live_In")], "another head's relations are not this head's"


def test_raw_text_scores_on_character_offsets(nlp):
    scores, alignment = evaluate_raw(nlp, [DOC_A, DOC_B, DOC_C, DOC_D])
    entities = scores["entities"]
    # gold: Peop x4, Loc "Kentucky", "Ohio", "Texas" (normalised), Org "Acme Inc" (unaligned).
    # Predicted: Peop x4, "Kentucky", "Texas" (hits), "Ohio." and "Acme Inc." (false positives):
    # tp 6, fp 2, fn 2 (Ohio, Acme Inc)
    assert entities.micro.precision == 75.0 and entities.micro.recall == 75.0 and entities.micro.f1 == 75.0
    per_type = {t: (s.prf.precision, s.prf.recall, s.support) for t, s in entities.per_type.items()}
    assert per_type == {
        LOC: (pytest.approx(200 / 3), pytest.approx(200 / 3), 3),  # tp 2, fp 1, fn 1
        ORG: (0.0, 0.0, 1),
        PEOP: (100.0, 100.0, 4),
    }
    assert entities.macro.f1 == pytest.approx((200 / 3 + 0 + 100) / 3)
    # relations: A's and D's Live_In have both arguments right; B's and C's do not: tp 2, fp 2, fn 2
    for name in ("relations", "relations_with_types"):
        prf = scores[name].micro
        assert (prf.precision, prf.recall, prf.f1) == (50.0, 50.0, 50.0)
    assert (alignment.spans, alignment.normalised, alignment.unaligned) == (8, 3, 1)


def test_the_papers_protocol_is_unchanged_on_the_same_data(nlp):
    docs = [DOC_A, DOC_B, DOC_C, DOC_D]
    evaluation = evaluate_pipeline(nlp, docs, protocols=["tokens"])
    assert list(evaluation.scores) == ["tokens"] and evaluation.alignment == {}
    tokens = evaluation.scores["tokens"]["spert"]
    assert tokens == evaluate_model(extractor_model(nlp), docs)
    # every gold item found, one wrong entity: entities tp 8, fp 1, fn 0 (F1 = 2 * 8 / (2 * 8 + 1));
    # relations all right
    assert tokens["entities"].micro.precision == pytest.approx(800 / 9)
    assert tokens["entities"].micro.recall == 100.0
    assert tokens["entities"].micro.f1 == pytest.approx(1600 / 17)
    assert tokens["relations_with_types"].micro.f1 == 100.0


def test_both_protocols_are_reported_raw_first(nlp):
    evaluation = evaluate_pipeline(nlp, [DOC_A, DOC_B, DOC_C, DOC_D], protocols=["tokens", "raw"])
    assert list(evaluation.scores) == ["raw", "tokens"]
    as_dict = evaluation.as_dict()
    assert as_dict["raw"]["spert"]["gold_alignment"]["unaligned_scored_as_misses"] == 1
    assert set(as_dict["tokens"]["spert"]) == {"entities", "relations", "relations_with_types"}
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate_pipeline(nlp, [DOC_A], protocols=["words"])


def test_symmetric_relations_match_in_either_order_on_characters():
    schema = Schema((PEOP,), (RelationType("Kin", symmetric=True),))
    gold = Document.from_words(
        ["Ann", "and", "Bob."],
        entities=[Entity(0, 1, PEOP), Entity(2, 3, PEOP)],
        relations=[Relation(0, 1, "Kin")],
    )
    script = {("Ann", "and", "Bob", "."): ([Entity(0, 1, PEOP), Entity(2, 3, PEOP)], [Relation(1, 0, "Kin")])}
    scores, _ = evaluate_raw(scripted_pipeline(script, schema=schema), [gold])
    assert scores["relations_with_types"].micro.f1 == 100.0, "Bob-Ann is Ann-Bob for a symmetric relation"


def test_tagging_heads_match_spans_strictly_on_characters():
    schema = Schema((LOC,))
    gold = [
        Document.from_words(["Smith", "lives", "in", "Kentucky."], entities=[Entity(3, 4, LOC)]),
        Document.from_words(["Jones", "visited", "Ohio."], entities=[Entity(2, 3, LOC)]),
        Document.from_words(["Lee", "left", "Texas."], entities=[Entity(2, 3, LOC)]),
    ]
    script = {
        ("Smith", "lives", "in", "Kentucky", "."): ([Entity(3, 4, LOC)], []),  # "Kentucky": a hit
        ("Jones", "visited", "Ohio", "."): ([Entity(2, 4, LOC)], []),  # "Ohio.": a false positive and a miss
        ("Lee", "left", "Texas", "."): ([Entity(2, 3, LOC)], []),  # "Texas": a hit
    }
    nlp = scripted_pipeline(script, "places", {"type": "tagger"}, schema)
    scores, _ = evaluate_raw(nlp, gold)
    assert set(scores) == {"entities"}
    prf = scores["entities"].micro  # tp 2, fp 1, fn 1
    assert (prf.precision, prf.recall, prf.f1) == (pytest.approx(200 / 3),) * 3


# ---------------------------------------------------------------------- files, recorded tasks, CLI

TYPES = {
    "entities": {label: {"short": label, "verbose": label} for label in SCHEMA.entity_labels},
    "relations": {
        t.label: {"short": t.label, "verbose": t.label, "symmetric": False} for t in SCHEMA.relation_types
    },
}


def spert_json(docs: list[Document]) -> list[dict]:
    return [
        {
            "tokens": doc.words,
            "entities": [{"type": e.label, "start": e.start, "end": e.end} for e in doc.entities],
            "relations": [{"type": r.label, "head": r.head, "tail": r.tail} for r in doc.relations],
        }
        for doc in docs
    ]


@pytest.fixture()
def gold_file(tmp_path):
    (tmp_path / "types.json").write_text(json.dumps(TYPES))
    path = tmp_path / "test.json"
    path.write_text(json.dumps(spert_json([DOC_A, DOC_B, DOC_D])))
    return path


def test_evaluate_file_and_recorded_tasks_give_both_protocols(nlp, gold_file):
    # A, B and D: raw entities tp 5, fp 1 ("Ohio."), fn 1 (Ohio); tokens tp 6, fp 1 (lives), fn 0
    from_file = evaluate_file(nlp, gold_file)
    assert isinstance(from_file, Evaluation) and list(from_file.scores) == ["raw", "tokens"]
    assert from_file.scores["raw"]["spert"]["entities"].micro.f1 == pytest.approx(500 / 6)
    assert from_file.scores["tokens"]["spert"]["entities"].micro.precision == pytest.approx(600 / 7)
    task = {"name": "spert", "format": "spert_json", "train": "test.json", "test": "test.json"}
    nlp.meta["training"] = {"tasks": [{**task, "types": "types.json", "head": {"type": "spert"}}]}
    try:
        recorded = evaluate_recorded_tasks(nlp, gold_file.parent)
    finally:
        del nlp.meta["training"]
    assert recorded.as_dict() == from_file.as_dict()


def test_cli_prints_raw_text_first_and_writes_both_protocols(nlp, gold_file, tmp_path, monkeypatch):
    monkeypatch.setattr("ner.pipeline.load", lambda path=None: nlp)
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(app, ["evaluate", "scripted", str(gold_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    raw, tokens = result.output.index("##### raw text"), result.output.index("##### corpus tokens")
    assert raw < tokens and result.output.count("===== spert =====") == 2
    assert "6 gold spans, 3 with a trailing mark stripped, 0 not aligned" in result.output[raw:tokens]
    scores = json.loads(out.read_text())
    assert list(scores) == ["raw", "tokens"]
    assert scores["raw"]["spert"]["entities"]["micro"]["f1"] == pytest.approx(500 / 6)
    assert scores["tokens"]["spert"]["entities"]["micro"]["precision"] == pytest.approx(600 / 7)
    only = CliRunner().invoke(
        app, ["evaluate", "scripted", str(gold_file), "--protocol", "tokens", "-o", str(out)]
    )
    assert only.exit_code == 0 and "##### raw text" not in only.output
    assert list(json.loads(out.read_text())) == ["tokens"]
    wrong = CliRunner().invoke(app, ["evaluate", "scripted", str(gold_file), "--protocol", "words"])
    assert wrong.exit_code == 2 and "--protocol must be raw, tokens or both" in wrong.output
