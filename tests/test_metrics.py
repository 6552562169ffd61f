"""SpERT's strict evaluation on hand-worked cases: every expected figure is derived in the comments."""

from __future__ import annotations

import random

import pytest

from ner.documents import Document, Entity, Relation
from ner.metrics import (
    PRF,
    entity_items,
    entity_scores,
    evaluate_documents,
    format_scores,
    score_items,
    seqeval_scores,
)

SYMMETRIC = frozenset({"Spouse"})
WORDS = [f"w{i}" for i in range(8)]

# Document 1. Gold: A=(0,2) Peop, B=(3,4) Org, C=(5,7) Loc; Work_For(A, B), OrgBased_In(B, C).
# Predicted: A ok; B with the wrong type Loc; C with a boundary error (5,6).
#   Work_For(A, B): spans right, tail type wrong -> correct without types, wrong with types.
#   OrgBased_In(B, C): tail span wrong -> wrong in both settings.
GOLD_1 = Document.from_words(
    WORDS,
    entities=[Entity(0, 2, "Peop"), Entity(3, 4, "Org"), Entity(5, 7, "Loc")],
    relations=[Relation(0, 1, "Work_For"), Relation(1, 2, "OrgBased_In")],
)
PRED_1 = Document.from_words(
    WORDS,
    entities=[Entity(0, 2, "Peop", 0.9), Entity(3, 4, "Loc", 0.8), Entity(5, 6, "Loc", 0.7)],
    relations=[Relation(0, 1, "Work_For", 0.9), Relation(1, 2, "OrgBased_In", 0.9)],
)
# Document 2. Gold: P=(0,1) Peop, O=(2,3) Org, Q=(6,7) Peop; Spouse(P, Q) (symmetric), Work_For(Q, O).
# Predicted: P, O, Q ok, plus M=(4,5) of type Misc, which no gold entity has.
#   Spouse(Q, P) and Spouse(P, Q): the gold fact in reverse order and in order -> one correct item.
#   Work_For(Q, O) correct; Kill(P, M): a relation type only in the predictions.
GOLD_2 = Document.from_words(
    WORDS,
    entities=[Entity(0, 1, "Peop"), Entity(2, 3, "Org"), Entity(6, 7, "Peop")],
    relations=[Relation(0, 2, "Spouse"), Relation(2, 1, "Work_For")],
)
PRED_2 = Document.from_words(
    WORDS,
    entities=[Entity(0, 1, "Peop"), Entity(2, 3, "Org"), Entity(4, 5, "Misc"), Entity(6, 7, "Peop")],
    relations=[
        Relation(3, 0, "Spouse"),
        Relation(0, 3, "Spouse"),
        Relation(3, 1, "Work_For"),
        Relation(0, 2, "Kill"),
    ],
)


@pytest.fixture(scope="module")
def results():
    return evaluate_documents([GOLD_1, GOLD_2], [PRED_1, PRED_2], SYMMETRIC)


def assert_prf(prf: PRF, precision: float, recall: float, f1: float) -> None:
    assert (prf.precision, prf.recall, prf.f1) == pytest.approx((precision, recall, f1))


def test_entities(results):
    """Wrong type = 1 fp + 1 fn; boundary error = 1 fp + 1 fn; a predicted-only type enters macro with 0."""
    scores = results["entities"]
    # Peop:  tp 3 (A, P, Q)                       -> P 100, R 100, F 100, support 3
    # Org:   tp 1 (O), fn 1 (B)                   -> P 100, R 50,  F 2*100*50/150 = 66.67, support 2
    # Loc:   fp 2 ((3,4) and (5,6)), fn 1 ((5,7)) -> P 0,   R 0,   F 0, support 1
    # Misc:  fp 1                                 -> P 0,   R 0,   F 0, support 0
    assert list(scores.per_type) == ["Loc", "Misc", "Org", "Peop"]
    assert_prf(scores.per_type["Peop"].prf, 100, 100, 100)
    assert_prf(scores.per_type["Org"].prf, 100, 50, 200 / 3)
    assert_prf(scores.per_type["Loc"].prf, 0, 0, 0)
    assert_prf(scores.per_type["Misc"].prf, 0, 0, 0)
    assert {t: s.support for t, s in scores.per_type.items()} == {"Loc": 1, "Misc": 0, "Org": 2, "Peop": 3}
    # micro: tp 4, fp 3, fn 2 -> P 4/7, R 4/6, F 2*4 / (2*4 + 3 + 2) = 8/13
    assert_prf(scores.micro, 400 / 7, 400 / 6, 800 / 13)
    # macro over 4 types: P (100+100+0+0)/4 = 50, R (100+50+0+0)/4 = 37.5, F (100+66.67+0+0)/4 = 41.67
    assert_prf(scores.macro, 50, 37.5, (100 + 200 / 3) / 4)


def test_relations_without_entity_types(results):
    """Only spans and the relation type count; the symmetric pair matches in either order, once."""
    scores = results["relations"]
    # Work_For:    tp 2 (doc 1 despite the tail type, doc 2) -> 100, 100, 100
    # OrgBased_In: fp 1, fn 1 (tail boundary)                -> 0, 0, 0
    # Spouse:      tp 1 (both predicted orders are one item) -> 100, 100, 100
    # Kill:        fp 1                                      -> 0, 0, 0
    assert_prf(scores.per_type["Work_For"].prf, 100, 100, 100)
    assert_prf(scores.per_type["OrgBased_In"].prf, 0, 0, 0)
    assert_prf(scores.per_type["Spouse"].prf, 100, 100, 100)
    assert_prf(scores.per_type["Kill"].prf, 0, 0, 0)
    # micro: tp 3, fp 2, fn 1 -> P 60, R 75, F 6 / (6 + 3) = 66.67
    assert_prf(scores.micro, 60, 75, 200 / 3)
    # macro over 4 types: (100 + 0 + 100 + 0) / 4 = 50 for each figure
    assert_prf(scores.macro, 50, 50, 50)


def test_relations_with_entity_types(results):
    """An argument with the wrong entity type makes the relation wrong (SpERT's NER + RE setting)."""
    scores = results["relations_with_types"]
    # Work_For:    tp 1 (doc 2), fp 1 + fn 1 (doc 1: tail Loc vs Org) -> 50, 50, 50
    # OrgBased_In: fp 1, fn 1; Spouse: tp 1; Kill: fp 1 (as without types)
    assert_prf(scores.per_type["Work_For"].prf, 50, 50, 50)
    assert_prf(scores.per_type["Spouse"].prf, 100, 100, 100)
    assert scores.per_type["Work_For"].support == 2
    # micro: tp 2, fp 3, fn 2 -> P 40, R 50, F 4 / (4 + 5) = 44.44
    assert_prf(scores.micro, 40, 50, 400 / 9)
    # macro over 4 types: (50 + 0 + 100 + 0) / 4 = 37.5 for each figure
    assert_prf(scores.macro, 37.5, 37.5, 37.5)


def test_a_non_symmetric_relation_in_reverse_is_wrong():
    """Without the symmetric flag, ``Spouse(Q, P)`` does not match the gold ``Spouse(P, Q)``."""
    scores = evaluate_documents([GOLD_2], [PRED_2])["relations"]
    # Spouse: gold (P, Q); predicted (Q, P) and (P, Q) are two items -> tp 1, fp 1 -> P 50, R 100, F 66.67
    assert_prf(scores.per_type["Spouse"].prf, 50, 100, 200 / 3)


def test_score_items_directly():
    """Per-document sets: the same item in different documents counts separately."""
    gold = [{(0, 1, "X"), (2, 3, "Y")}, {(0, 1, "X")}]
    predicted = [{(0, 1, "X")}, {(0, 1, "X"), (4, 5, "Y")}]
    scores = score_items(gold, predicted)
    # X: tp 2 -> 100/100/100; Y: fp 1 (doc 2), fn 1 (doc 1) -> 0/0/0
    # micro: tp 2, fp 1, fn 1 -> P 66.67, R 66.67, F 66.67; macro: 50/50/50
    assert_prf(scores.micro, 200 / 3, 200 / 3, 200 / 3)
    assert_prf(scores.macro, 50, 50, 50)


@pytest.mark.parametrize(
    "gold, predicted",
    [([], []), ([Document.from_words(["a"])], [Document.from_words(["a"])])],
    ids=["no documents", "no annotations"],
)
def test_empty_inputs_score_zero_without_crashing(gold, predicted):
    """Nothing to count: every figure is 0 and there are no per-type rows."""
    for scores in evaluate_documents(gold, predicted).values():
        assert_prf(scores.micro, 0, 0, 0)
        assert_prf(scores.macro, 0, 0, 0)
        assert scores.per_type == {}
    assert "micro" in format_scores(evaluate_documents(gold, predicted))


def test_nothing_predicted_gives_zero_precision_and_recall():
    """Gold items but no predictions: recall 0 and, by convention, precision 0."""
    scores = score_items([{(0, 1, "X")}], [set()])
    assert_prf(scores.micro, 0, 0, 0)
    assert scores.per_type["X"].support == 1


def test_mismatched_document_counts_are_rejected():
    """Gold and predictions must pair up one to one."""
    with pytest.raises(ValueError, match="2 gold documents but 1 predictions"):
        evaluate_documents([GOLD_1, GOLD_2], [PRED_1])


def _doc(n: int, entities) -> Document:
    return Document.from_words(["w"] * n, entities=[Entity(*e) for e in entities])


def test_seqeval_strict_scores_per_type_micro_and_macro():
    gold = [_doc(8, [(0, 2, "Gene"), (3, 4, "Gene"), (5, 7, "Chemical")]), _doc(3, [(0, 1, "Chemical")])]
    predicted = [_doc(8, [(0, 2, "Gene"), (3, 5, "Gene"), (5, 7, "Chemical")]), _doc(3, [])]
    scores = seqeval_scores(gold, predicted)
    gene, chem = scores.per_type["Gene"], scores.per_type["Chemical"]
    assert (gene.prf.precision, gene.prf.recall, gene.support) == (50.0, 50.0, 2)  # (3,5) != (3,4): strict
    assert (chem.prf.precision, chem.prf.recall, chem.support) == (100.0, 50.0, 2)
    assert scores.micro.precision == pytest.approx(200 / 3) and scores.micro.recall == 50.0
    assert scores.macro.f1 == pytest.approx((50.0 + 2 * 100 * 50 / 150) / 2)


def _random_gold_and_predicted(seed: int, count: int) -> tuple[list, list]:
    """``count`` documents of 1-12 words, each with random non-overlapping gold and predicted spans."""
    rng = random.Random(seed)
    gold, predicted = [], []
    for _ in range(count):
        n = rng.randint(1, 12)
        gold.append(_doc(n, _random_spans(rng, n)))
        predicted.append(_doc(n, _random_spans(rng, n)))
    return gold, predicted


def test_seqeval_agrees_with_exact_span_matching_on_non_overlapping_entities():
    gold, predicted = _random_gold_and_predicted(seed=4, count=200)
    ours = score_items(map(entity_items, gold), map(entity_items, predicted))
    theirs = seqeval_scores(gold, predicted)
    assert theirs.micro.f1 == pytest.approx(ours.micro.f1)
    assert {t: s.support for t, s in theirs.per_type.items() if s.support} == {
        t: s.support for t, s in ours.per_type.items() if s.support
    }


def test_entity_scores_are_seqeval_strict_on_spans_that_do_not_overlap():
    """The raw-text protocol scores tagging heads with :func:`entity_scores` (character spans have
    no tags): on non-overlapping spans it gives seqeval strict's figures, per type, micro and macro."""
    gold, predicted = _random_gold_and_predicted(seed=7, count=300)
    ours, theirs = entity_scores(gold, predicted), seqeval_scores(gold, predicted)
    for average in ("micro", "macro"):
        assert vars(getattr(ours, average)) == pytest.approx(vars(getattr(theirs, average)))
    assert {t: (vars(s.prf), s.support) for t, s in ours.per_type.items()} == {
        t: (pytest.approx(vars(s.prf)), s.support) for t, s in theirs.per_type.items()
    }
    with pytest.raises(ValueError, match="1 gold documents but 2 predictions"):
        entity_scores(gold[:1], predicted[:2])


def _random_spans(rng: random.Random, n: int) -> list[tuple[int, int, str]]:
    spans, position = [], 0
    while position < n:
        width = rng.randint(1, 3)
        if rng.random() < 0.4 and position + width <= n:
            spans.append((position, position + width, rng.choice(["A", "B"])))
        position += width
    return spans
