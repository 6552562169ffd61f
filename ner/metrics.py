"""SpERT's strict evaluation protocol, reimplemented without scikit-learn.

* Entities match when start, end and type are all equal.
* Relations match when the relation type and both argument spans are equal; "with types" also
  requires both argument entity types to be equal (SpERT's ``NER + RE`` setting).
* Symmetric relations are put in positional order on both sides, and duplicates are dropped.
* Micro P/R/F1 pools all types; macro averages the per-type F1 (and P, R) over the types that
  occur in the gold annotations or in the predictions, as SpERT does through scikit-learn.

Tagging tasks (multi-task NER) are scored with seqeval in strict mode over IOB2 tags, the
protocol of the BioBERT/MT-BioNER papers; :func:`seqeval_scores` returns the same :class:`Scores`.
On spans that do not overlap, :func:`entity_scores` (strict span matching) gives the same figures
without tags, which the raw-text protocol needs: its spans are character offsets.

Spans are plain integers here, never read back as words: the raw-text protocol scores documents
whose "words" are the text's characters (:func:`ner.raw_text.character_document`), so the same
functions score ``(start_char, end_char, label)``.

All figures are percentages, as in the papers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ner.corpora.conll import spans_to_bio
from ner.documents import Document, canonical_pair


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float

    @classmethod
    def from_counts(cls, tp: int, fp: int, fn: int) -> PRF:
        precision = 100.0 * tp / (tp + fp) if tp + fp else 0.0
        recall = 100.0 * tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(precision, recall, f1)


@dataclass(frozen=True)
class TypeScore:
    prf: PRF
    support: int  # gold items of this type


@dataclass(frozen=True)
class Scores:
    micro: PRF
    macro: PRF
    per_type: dict[str, TypeScore]

    def as_dict(self) -> dict:
        return {
            "micro": vars(self.micro),
            "macro": vars(self.macro),
            "per_type": {t: {**vars(s.prf), "support": s.support} for t, s in self.per_type.items()},
        }


def score_items(gold: Iterable[set[tuple]], predicted: Iterable[set[tuple]]) -> Scores:
    """Strict scores of per-document sets of items whose last element is the item's type."""
    tp, fp, fn = Counter(), Counter(), Counter()
    for gold_items, predicted_items in zip(gold, predicted, strict=True):
        for item in gold_items & predicted_items:
            tp[item[-1]] += 1
        for item in predicted_items - gold_items:
            fp[item[-1]] += 1
        for item in gold_items - predicted_items:
            fn[item[-1]] += 1
    types = sorted(set(tp) | set(fp) | set(fn))
    per_type = {t: TypeScore(PRF.from_counts(tp[t], fp[t], fn[t]), tp[t] + fn[t]) for t in types}
    micro = PRF.from_counts(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    if types:
        macro = PRF(
            *(
                sum(getattr(s.prf, f) for s in per_type.values()) / len(types)
                for f in PRF.__dataclass_fields__
            )
        )
    else:
        macro = PRF(0.0, 0.0, 0.0)
    return Scores(micro, macro, per_type)


def entity_items(doc: Document) -> set[tuple]:
    return {(e.start, e.end, e.label) for e in doc.entities}


def relation_items(doc: Document, symmetric: frozenset[str], with_types: bool) -> set[tuple]:
    items = set()
    for relation in doc.relations:
        head, tail = doc.entities[relation.head], doc.entities[relation.tail]
        head, tail = canonical_pair(head, tail, relation.label in symmetric)
        head_key = (head.start, head.end, head.label if with_types else None)
        tail_key = (tail.start, tail.end, tail.label if with_types else None)
        items.add((head_key, tail_key, relation.label))
    return items


def entity_scores(gold: Sequence[Document], predicted: Sequence[Document]) -> Scores:
    """Strict entity scores: a predicted entity counts when start, end and type equal a gold one's."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold documents but {len(predicted)} predictions")
    return score_items(map(entity_items, gold), map(entity_items, predicted))


def evaluate_documents(
    gold: Sequence[Document], predicted: Sequence[Document], symmetric: frozenset[str] = frozenset()
) -> dict[str, Scores]:
    """SpERT's three evaluations: entities, relations without and with entity types."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold documents but {len(predicted)} predictions")
    return {
        "entities": entity_scores(gold, predicted),
        "relations": score_items(
            (relation_items(d, symmetric, False) for d in gold),
            (relation_items(d, symmetric, False) for d in predicted),
        ),
        "relations_with_types": score_items(
            (relation_items(d, symmetric, True) for d in gold),
            (relation_items(d, symmetric, True) for d in predicted),
        ),
    }


def seqeval_scores(gold: Sequence[Document], predicted: Sequence[Document]) -> Scores:
    """Entity-level strict P/R/F1 by seqeval over the IOB2 tags of both sides (per type, micro,
    macro). Predicted entities must not overlap, which holds for tagging heads."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold documents but {len(predicted)} predictions")
    y_true = [spans_to_bio(len(doc.words), doc.entities) for doc in gold]
    y_pred = [spans_to_bio(len(doc.words), doc.entities) for doc in predicted]
    report = classification_report(
        y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )

    def prf(row: dict) -> PRF:
        return PRF(100 * float(row["precision"]), 100 * float(row["recall"]), 100 * float(row["f1-score"]))

    averages = {"micro avg", "macro avg", "weighted avg"}
    rows = {label: row for label, row in report.items() if label not in averages}
    per_type = {label: TypeScore(prf(row), int(row["support"])) for label, row in rows.items()}
    empty = {"precision": 0, "recall": 0, "f1-score": 0}
    return Scores(prf(report.get("micro avg", empty)), prf(report.get("macro avg", empty)), per_type)


def format_scores(results: dict[str, Scores]) -> str:
    """A plain-text report: per-type rows, then micro and macro, for each evaluation."""
    lines = []
    for name, scores in results.items():
        lines.append(f"--- {name} ---")
        lines.append(f"{'type':>24} {'precision':>10} {'recall':>10} {'f1':>10} {'support':>8}")
        for label, s in scores.per_type.items():
            lines.append(
                f"{label:>24} {s.prf.precision:10.2f} {s.prf.recall:10.2f} {s.prf.f1:10.2f} {s.support:8d}"
            )
        for average in ("micro", "macro"):
            prf = getattr(scores, average)
            lines.append(f"{average:>24} {prf.precision:10.2f} {prf.recall:10.2f} {prf.f1:10.2f}")
        lines.append("")
    return "\n".join(lines)
