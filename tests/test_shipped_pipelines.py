"""Every shipped pipeline (issue 15): loads offline by its short name, fits the size caps, tags an
example for each head in its languages, and ``ner evaluate`` reproduces the figures its benchmark
JSON (and so BENCHMARKS.md, through benchmarks/check_figures.py) records.

The examples are plain cases of each head's types, written before the models were trained; the
figure checks take each pipeline's cheapest full test set, since scoring every set of the bio and
multilingual pipelines takes longer than the whole suite."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import ner
from ner.evaluation import evaluate_pipeline, read_gold_file
from ner.pipeline import SHIPPED, resolve, shipped_pipelines

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[1]
DATA = Path(os.environ.get("NER_DATA_DIR", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"
MODES = [name for name in SHIPPED if name != "conll04"]  # the default has tests/test_default_pipeline.py

#: per pipeline: (text, head, entity text, label) that its heads must find
EXAMPLES = {
    "bio": [
        ("The drug cisplatin caused severe nephrotoxicity in rats.", "bc5cdr_chem", "cisplatin", "Chemical"),
        (
            "The drug cisplatin caused severe nephrotoxicity in rats.",
            "bc5cdr_disease",
            "nephrotoxicity",
            "Disease",
        ),
        ("Germline mutations in BRCA1 predispose women to breast cancer.", "bc2gm", "BRCA1", "Gene"),
        (
            "Germline mutations in BRCA1 predispose women to breast cancer.",
            "ncbi_disease",
            "breast cancer",
            "Disease",
        ),
    ],
    "multilingual": [
        ("Angela Merkel met Emmanuel Macron in Paris on Monday.", "conll", "Emmanuel Macron", "PER"),
        ("El presidente del Gobierno, Pedro Sánchez, viajó ayer a Barcelona.", "conll", "Barcelona", "LOC"),
        ("Premier Mark Rutte sprak dinsdag in Amsterdam met journalisten.", "conll", "Mark Rutte", "PER"),
        ("Bundeskanzler Olaf Scholz besuchte am Dienstag Hamburg.", "conll", "Olaf Scholz", "PER"),
        ("Bundeskanzler Olaf Scholz besuchte am Dienstag Hamburg.", "wikiann", "Hamburg", "LOC"),
    ],
    "news": [
        (
            "Tim Cook, the chief executive of Apple, spoke in Berlin on Tuesday.",
            "conll2003",
            "Tim Cook",
            "PER",
        ),
        ("Tim Cook, the chief executive of Apple, spoke in Berlin on Tuesday.", "conll2003", "Apple", "ORG"),
        ("Tim Cook, the chief executive of Apple, spoke in Berlin on Tuesday.", "spert", "Tim Cook", "Peop"),
    ],
}
#: per pipeline: the set whose full figures the test reproduces (the cheapest to score)
FIGURE_SET = {"bio": "ncbi_disease", "multilingual": "conll2002_es", "news": "conll04"}


@pytest.fixture(scope="module", params=MODES)
def shipped(request):
    return request.param, ner.load(request.param)


def test_every_pipeline_ships_compact():
    sizes = {
        name: sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        for name, path in shipped_pipelines().items()
    }
    assert set(sizes) == set(SHIPPED)
    assert max(sizes.values()) <= 30_000_000 and sum(sizes.values()) <= 60_000_000, sizes


def test_each_head_tags_its_example(shipped):
    name, nlp = shipped
    for text, head, entity, label in EXAMPLES[name]:
        doc = nlp(text)
        found = {(span.text, span.label_) for span in doc.spans[head]}
        assert (entity, label) in found, (head, text, found)


def test_doc_ents_never_holds_one_span_twice(shipped):
    name, nlp = shipped
    for text, *_ in EXAMPLES[name]:
        doc = nlp(text)
        spans = [(e.start_char, e.end_char) for e in doc.ents]
        assert len(spans) == len(set(spans))
        assert all(doc.text[e.start_char : e.end_char] == e.text for e in doc.ents)


def test_news_doc_ents_come_from_the_conll2003_tagger_alone():
    nlp = ner.load("news")
    doc = nlp("Tim Cook, the chief executive of Apple, spoke in Berlin on Tuesday.")
    assert doc.ents and {e.label_ for e in doc.ents} <= {"PER", "ORG", "LOC", "MISC"}
    assert any(label == "Work_For" for _, label, _, _ in doc._.relations)


@pytest.mark.parametrize("name", MODES)
def test_ner_evaluate_reproduces_the_recorded_figures(name):
    recorded = json.loads((RESULTS / f"shipped_{name}.json").read_text(encoding="utf-8"))["sets"]
    figures = recorded[FIGURE_SET[name]]
    if not (DATA / figures["file"]).is_file():
        pytest.skip(f"{figures['file']} is not available")
    nlp = ner.load(resolve(name))
    head, ignored = figures["head"], tuple(figures["ignored_labels"])
    docs = read_gold_file(nlp, DATA / figures["file"], head, ignore_labels=ignored)
    scores = evaluate_pipeline(nlp, docs, head, ignore_labels=ignored).as_dict()
    for protocol in ("raw", "tokens"):
        for evaluation, value in figures[protocol].items():
            if evaluation == "gold_alignment":
                assert scores[protocol][head][evaluation] == value
                continue
            micro = scores[protocol][head][evaluation]["micro"]
            assert round(micro["f1"], 2) == value["micro"]["f1"], (protocol, evaluation)
