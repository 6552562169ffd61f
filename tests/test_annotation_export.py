"""Exports: only reviewed annotations, readable by our own readers and by ``ner train``'s task loader."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin

from ner.annotation import (
    AnnotatedDoc,
    AnnotationError,
    Link,
    Project,
    Span,
    add_relation,
    add_span,
    export,
    export_bytes,
    load_dataset,
)
from ner.annotation.export import SPANS_KEY
from ner.batch.records import doc_record
from ner.batch.sources import SourceText
from ner.corpora import read_corpus, read_spert_json, read_spert_types
from ner.tasks import TaskData, TaskSettings
from tests.conftest import DATA


def span(doc: AnnotatedDoc, words: str, label: str, status="accepted") -> Span:
    start = doc.text.index(words)
    return Span(start, start + len(words), label, status=status)


def small_project() -> Project:
    """Two documents: accepted, suggested and duplicate spans, relations of each kind, a line break."""
    first = AnnotatedDoc("one", "Leonardo DiCaprio works for Warner Bros in\nLos Angeles.", done=True)
    first.spans = [
        span(first, "Leonardo DiCaprio", "Peop"),
        span(first, "Warner Bros", "Org"),
        span(first, "Los Angeles", "Loc"),
        span(first, "works", "Other", status="suggested"),
        span(
            first, "Warner Bros", "Org"
        ),  # a duplicate (e.g. two heads' identical suggestion, both accepted)
    ]
    first.relations = [
        Link(0, 1, "Work_For"),
        Link(4, 2, "OrgBased_In"),  # from the duplicate: becomes a relation of the first copy
        Link(0, 2, "Live_In", status="suggested"),
        Link(0, 3, "Kill"),  # accepted, but to a suggested span: not exported
        Link(1, 4, "Self"),  # between the two copies: nothing left to relate
    ]
    second = AnnotatedDoc("two", "Angela Merkel's visit to Москва and Ἀθῆναι 😀.")
    second.spans = [span(second, "Angela Merkel", "Peop"), span(second, "Москва", "Loc")]
    second.spans.append(span(second, "Ἀθῆναι", "Loc"))
    second.relations = [Link(0, 1, "Live_In")]
    return Project(
        docs=[first, second],
        entity_labels=["Peop", "Org", "Loc", "Other"],
        relation_labels=["Work_For", "OrgBased_In", "Live_In", "Kill"],
        name="small",
    )


EXPECTED = [  # (entity texts, relations) of the accepted annotations, token-joined
    (["Leonardo DiCaprio", "Warner Bros", "Los Angeles"], [(0, 1, "Work_For"), (1, 2, "OrgBased_In")]),
    (["Angela Merkel", "Москва", "Ἀθῆναι"], [(0, 1, "Live_In")]),
]


def read_back(documents):
    return [
        (
            [d.span_text(e.start, e.end) for e in d.entities],
            [(r.head, r.tail, r.label) for r in d.relations],
        )
        for d in documents
    ]


def read_exported(project: Project, format: str):
    """The export of ``project`` read back by our public readers (SpERT JSON, or CoNLL-2002 columns)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export"
        export(project, format, path)
        return read_spert_json(path) if format == "spert_json" else read_corpus(path, "conll2002")


def test_spert_json_round_trip(tmp_path):
    export(small_project(), "spert_json", tmp_path / "train.json")
    documents = read_spert_json(tmp_path / "train.json")
    assert read_back(documents) == EXPECTED
    assert documents[0].words[-4:] == ["in", "Los", "Angeles", "."], "the line break is not a token"
    assert documents[1].words[:3] == ["Angela", "Merkel", "'s"]
    assert [d.id for d in documents] == ["one", "two"]


def test_spert_export_is_ready_for_ner_train(tmp_path):
    """The task loader of ``ner train`` reads the export with the exported types and accepts its labels."""
    project = small_project()
    export(project, "spert_json", tmp_path / "train.json")
    export(project, "spert_types", tmp_path / "types.json")
    schema = read_spert_types(tmp_path / "types.json")
    assert schema.entity_labels == ("Peop", "Org", "Loc", "Other")
    assert schema.relation_labels == ("Work_For", "OrgBased_In", "Live_In", "Kill", "Self")
    task = TaskSettings(
        name="ann", format="spert_json", train="train.json", types="types.json", head={"type": "spert"}
    )
    data = TaskData(task, tmp_path, splits=("train",))
    assert read_back(data.train) == EXPECTED


def test_conll_round_trip(tmp_path):
    project = small_project()
    export(project, "conll", tmp_path / "train.conll")
    text = (tmp_path / "train.conll").read_text(encoding="utf-8")
    assert text.startswith("Leonardo\tB-Peop\nDiCaprio\tI-Peop\nworks\tO\n") and text.endswith(".\tO\n\n")
    assert text.count("\n\n") == 2, "a blank line after each document"
    documents = read_corpus(tmp_path / "train.conll", "conll2002")
    assert [entities for entities, _ in read_back(documents)] == [entities for entities, _ in EXPECTED]
    task = TaskSettings(name="ann", format="conll2002", train="train.conll")
    assert TaskData(task, tmp_path, splits=("train",)).schema.entity_labels == ("Loc", "Org", "Peop")


def test_conll_refuses_overlapping_entities_naming_the_document():
    project = small_project()
    project.docs[1].spans.append(span(project.docs[1], "Merkel", "Peop"))
    with pytest.raises(
        AnnotationError, match=r"document 'two': 'Angela Merkel' \(Peop\) and 'Merkel' \(Peop\) overlap"
    ):
        export_bytes(project, "conll")
    assert read_back(read_exported(project, "spert_json"))[1][0] == [
        "Angela Merkel",
        "Москва",
        "Ἀθῆναι",
        "Merkel",
    ], "SpERT JSON holds nested entities"


def test_conll_refuses_a_docstart_token():
    project = Project(docs=[AnnotatedDoc("d", "Text with -DOCSTART- in it.")])
    with pytest.raises(AnnotationError, match="document d: word '-DOCSTART-'"):
        export_bytes(project, "conll")


def test_only_done_documents():
    project = small_project()
    assert len(json.loads(export_bytes(project, "spert_json", only_done=True))) == 1
    assert export_bytes(project, "conll", only_done=True).decode().count("\n\n") == 1
    assert len(export_bytes(project, "jsonl", only_done=True).splitlines()) == 1


def test_jsonl_has_the_extraction_record_keys_and_reloads(tmp_path):
    project = small_project()
    project.docs[0].source = "corpus/one.txt"
    project.docs[0].meta = {
        "line": 3,
        "item": None,
        "pipeline": {"name": "p", "version": "1"},
        "encoding": "utf-8",
    }
    project.docs[0].spans[0].score, project.docs[0].spans[0].head = 0.9, "spert"
    export(project, "jsonl", tmp_path / "out.jsonl")
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    blank = spacy.blank("en")("x")
    blank._.relation_data = []
    assert all(record.keys() == doc_record(blank, SourceText("s", "x"), [], {}).keys() for record in records)
    first = records[0]
    assert (first["source"], first["line"], first["pipeline"]["name"]) == ("corpus/one.txt", 3, "p")
    assert first["sha256"] == SourceText("corpus/one.txt", project.docs[0].text).sha256
    assert first["entities"][0] == {
        "start": 0, "end": 17, "text": "Leonardo DiCaprio", "label": "Peop", "score": 0.9, "head": "spert"
    }  # fmt: skip
    assert [e["text"] for e in first["entities"]] == EXPECTED[0][0]
    assert [(r["head"], r["tail"], r["label"]) for r in first["relations"]] == EXPECTED[0][1]
    reloaded = load_dataset(tmp_path / "out.jsonl")
    assert [[d.span_text(i) for i in range(len(d.spans))] for d in reloaded.docs] == [e for e, _ in EXPECTED]


def test_docbin_holds_ents_spans_and_relations():
    project = small_project()
    project.docs[1].spans.append(span(project.docs[1], "Merkel", "Peop"))  # nested: not in doc.ents
    project.docs[1].spans[1].score = 0.5
    nlp = spacy.blank("en")
    docs = list(DocBin().from_bytes(export_bytes(project, "docbin")).get_docs(nlp.vocab))
    assert [[e.text for e in doc.ents] for doc in docs] == [EXPECTED[0][0], EXPECTED[1][0]]
    assert [s.text for s in docs[1].spans[SPANS_KEY]] == [*EXPECTED[1][0], "Merkel"]
    assert docs[1].spans[SPANS_KEY].attrs["scores"] == [None, 0.5, None, None]
    relation = docs[0]._.relation_data[0]  # DocBin gives lists back as tuples
    assert (list(relation["head"]), list(relation["tail"])) == ([0, 2, "Peop"], [4, 6, "Org"])
    assert (relation["label"], relation["score"], relation["model_head"]) == ("Work_For", None, SPANS_KEY)
    assert [(h.text, label, t.text) for h, label, t, _ in docs[0]._.relations] == [
        ("Leonardo DiCaprio", "Work_For", "Warner Bros"),
        ("Warner Bros", "OrgBased_In", "Los Angeles"),
    ]


def test_load_then_export_gives_back_the_corpus(tmp_path):
    """A SpERT corpus and a column corpus loaded into the tool and exported unchanged read back equal."""
    export(load_dataset(DATA / "toy_train.json"), "spert_json", tmp_path / "again.json")
    original, again = read_spert_json(DATA / "toy_train.json"), read_spert_json(tmp_path / "again.json")
    assert [(d.words, d.entities, d.relations, d.id) for d in again] == [
        (d.words, d.entities, d.relations, d.id) for d in original
    ]
    export(load_dataset(DATA / "toy_chem_train.tsv"), "conll", tmp_path / "again.tsv")
    original, again = (
        read_corpus(p, "crichton_iob") for p in (DATA / "toy_chem_train.tsv", tmp_path / "again.tsv")
    )
    assert [(d.words, d.entities) for d in again] == [(d.words, d.entities) for d in original]


def test_unknown_format_and_a_failed_export_keeps_the_old_file(tmp_path):
    with pytest.raises(AnnotationError, match="unknown export format 'xml'"):
        export_bytes(small_project(), "xml")
    (tmp_path / "train.json").write_text("old", encoding="utf-8")
    with pytest.raises(AnnotationError):
        export(Project(docs=[AnnotatedDoc("d", "-DOCSTART- x")]), "conll", tmp_path / "train.json")
    assert (tmp_path / "train.json").read_text(encoding="utf-8") == "old"


WORDS = st.sampled_from(
    ["Zürich", "Ærøskøbing", "Москва", "Ἀθῆναι", "😀", "Nolan's", "U.S.", "e-mail", "(x)", "42,5", "日本"]
)  # fmt: skip
SEPARATORS = st.sampled_from([" ", "\n", "\t", " \n ", "  "])


@st.composite
def annotated_text(draw) -> tuple[str, list[tuple[int, int]]]:
    parts = draw(st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=15))
    text = "".join(word + separator for word, separator in parts)
    selections = []
    for _ in range(draw(st.integers(1, 5))):
        start = draw(st.integers(0, len(text) - 1))
        selections.append((start, draw(st.integers(start + 1, min(len(text), start + 30)))))
    return text, selections


@settings(max_examples=150, deadline=None)
@given(annotated_text(), st.sampled_from(["en", "xx", "de"]))
def test_exports_preserve_entity_texts(case, lang):
    """Every accepted span reads back from SpERT JSON and CoNLL with the same characters (tokens are
    joined by one space there, so the comparison ignores whitespace)."""
    text, selections = case
    doc = AnnotatedDoc("d", text)
    for start, end in selections:
        try:
            add_span(doc, start, end, "X", lang=lang)
        except AnnotationError:
            continue  # whitespace-only selection or duplicate
    if len(doc.spans) > 1:
        add_relation(doc, 0, 1, "R")
    project = Project(docs=[doc], lang=lang)
    expected = [doc.span_text(i).split() for i in range(len(doc.spans))]

    documents = read_exported(project, "spert_json")
    got = [documents[0].words[e.start : e.end] for e in documents[0].entities]
    assert ["".join(words) for words in got] == ["".join(e) for e in expected]
    assert [(r.head, r.tail) for r in documents[0].relations] == ([(0, 1)] if len(doc.spans) > 1 else [])

    doc.spans[:] = sorted(without_overlaps(doc.spans), key=lambda s: s.start)  # CoNLL lists them in order
    doc.relations.clear()
    sentences = read_exported(project, "conll")
    got = [sentence.words[e.start : e.end] for sentence in sentences for e in sentence.entities]
    assert ["".join(words) for words in got] == [
        "".join(doc.span_text(i).split()) for i in range(len(doc.spans))
    ]


def without_overlaps(spans: list[Span]) -> list[Span]:
    """The spans that overlap none before them (CoNLL cannot hold the others)."""
    kept: list[Span] = []
    for candidate in spans:
        if all(candidate.end <= other.start or other.end <= candidate.start for other in kept):
            kept.append(candidate)
    return kept
