"""The shipped default pipeline (the real multilingual-e5-small encoder, its bottom 6 layers): loads
offline, extracts correct relations, and its evaluator figures are the ones recorded in BENCHMARKS.md."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import spacy

from ner.evaluation import evaluate_pipeline, read_gold_file
from ner.pipeline import DEFAULT_PIPELINE

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[1]
DATA = Path(os.environ.get("NER_DATA_DIR", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def nlp():
    assert (DEFAULT_PIPELINE / "ner_extractor" / "weights.safetensors").is_file(), (
        "the default pipeline ships"
    )
    return spacy.load(DEFAULT_PIPELINE)


def test_it_is_compact():
    size = sum(f.stat().st_size for f in DEFAULT_PIPELINE.rglob("*") if f.is_file())
    assert size <= 30_000_000


def test_correct_relations_from_the_example_documents(nlp):
    """ "Satya Nadella, the chief executive of Microsoft" (business.txt) is Work_For, and "John Wilkes
    Booth assassinated President Abraham Lincoln" (politics.txt) is Kill."""
    texts = [
        (ROOT / "data" / "examples" / f"{name}.txt").read_text(encoding="utf-8")
        for name in ("business", "politics")
    ]
    found = {(h.text, label, t.text) for doc in nlp.pipe(texts) for h, label, t, _ in doc._.relations}
    assert ("Satya Nadella", "Work_For", "Microsoft") in found, found
    assert ("John Wilkes Booth", "Kill", "President Abraham Lincoln") in found, found


def test_the_readme_sentence(nlp):
    doc = nlp("Leonardo DiCaprio starred in Christopher Nolan's thriller Inception.")
    assert ("Leonardo DiCaprio", "Peop") in {(e.text, e.label_) for e in doc.ents}
    assert all(0.0 < e._.score <= 1.0 for e in doc.ents)


#: the shipped weights are an int8 compaction of the trained fp32 run whose scores metrics.json
#: records; compaction may move a figure this much (measured: 0.00 on raw text)
COMPACTION_TOLERANCE = 0.5
PROTOCOL_ROWS = {"raw text": "raw", "corpus tokens": "tokens"}
EVALUATION_ROWS = {
    "entities": "entities",
    "relations, without entity types": "relations",
    "relations, with entity types": "relations_with_types",
}


def benchmarks_table() -> dict[tuple[str, str], list[float]]:
    """The shipped pipeline's visible table in BENCHMARKS.md: (protocol, evaluation) -> micro P, R,
    F1 and macro F1, as printed."""
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    block = text.split("<!-- figures: raw-text;", 1)[1].split("\n\n", 1)[0]
    table, protocol = {}, None
    for line in block.splitlines()[3:]:
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        protocol = PROTOCOL_ROWS.get(cells[0], protocol)
        table[protocol, EVALUATION_ROWS[cells[1]]] = [float(c.strip("*")) for c in cells[2:6]]
    return table


@pytest.mark.skipif(not (DATA / "conll04").is_dir(), reason="CoNLL04 corpus not available")
def test_test_set_scores_match_benchmarks_md_and_metrics_json(nlp):
    """Every P/R/F1 of BENCHMARKS.md's table is what the evaluator gives on the shipped pipeline
    under both protocols, and the training record in its metrics.json agrees with them."""
    table = benchmarks_table()
    assert len(table) == 6
    docs = read_gold_file(nlp, DATA / "conll04" / "test.json", "spert", None, None)
    scores = evaluate_pipeline(nlp, docs, "spert").scores
    for (protocol, name), printed in table.items():
        s = scores[protocol]["spert"][name]
        measured = [round(v, 2) for v in (s.micro.precision, s.micro.recall, s.micro.f1, s.macro.f1)]
        assert measured == printed, (protocol, name)
    recorded = json.loads((DEFAULT_PIPELINE / "metrics.json").read_text())["test_raw_text"]["spert"]
    for name in EVALUATION_ROWS.values():
        assert abs(recorded[name]["micro"]["f1"] - table["raw", name][2]) <= COMPACTION_TOLERANCE


def test_disk_round_trip_of_the_compact_pipeline(nlp, tmp_path):
    texts = [
        (ROOT / "data" / "examples" / name).read_text(encoding="utf-8")
        for name in ("film.txt", "politics.txt")
    ]
    nlp.to_disk(tmp_path / "copy")
    reloaded = spacy.load(tmp_path / "copy")
    for before, after in zip(nlp.pipe(texts), reloaded.pipe(texts)):
        assert [(e.start_char, e.end_char, e.label_) for e in after.ents] == [
            (e.start_char, e.end_char, e.label_) for e in before.ents
        ]
        assert [(h.text, r, t.text) for h, r, t, _ in after._.relations] == [
            (h.text, r, t.text) for h, r, t, _ in before._.relations
        ]
        assert [s for *_, s in after._.relations] == [s for *_, s in before._.relations]  # to the bit
