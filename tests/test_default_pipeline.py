"""The shipped default pipeline (the real multilingual-e5-small encoder, its bottom 6 layers): loads
offline, extracts correct relations, and its evaluator figures are the ones recorded in BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import spacy

from ner.corpora import read_spert_json, read_spert_types
from ner.evaluation import evaluate_model
from ner.pipeline import DEFAULT_PIPELINE, extractor_model

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


@pytest.mark.skipif(not (DATA / "conll04").is_dir(), reason="CoNLL04 corpus not available")
def test_test_set_scores_match_benchmarks_md():
    """The micro F1 figures in BENCHMARKS.md are what the evaluator gives on the shipped pipeline."""
    table = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    recorded = json.loads(re.search(r"<!-- default-pipeline-scores (\{.*?\}) -->", table).group(1))
    schema = read_spert_types(DATA / "conll04" / "types.json")
    model = extractor_model(spacy.load(DEFAULT_PIPELINE))
    scores = evaluate_model(model, read_spert_json(DATA / "conll04" / "test.json", schema))
    measured = {name: round(s.micro.f1, 2) for name, s in scores.items()}
    measured.update({f"{name}_macro": round(s.macro.f1, 2) for name, s in scores.items()})
    assert measured == recorded


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
