"""Loading datasets into projects (every format, every kind of bad file) and model pre-annotation."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ner.annotation import AnnotationError, Span, load_dataset, preannotate, project_from_texts
from ner.annotation.edits import resolved
from ner.annotation.export import export_bytes
from ner.annotation.model import check_doc
from ner.corpora import read_corpus, read_spert_json
from ner.pipeline import build_pipeline
from tests.conftest import DATA, tiny_model

TEXT = "Satya Nadella, the chief executive of Microsoft, lives in Seattle."
RECORD = {
    "source": "data/examples/business.txt",
    "line": None,
    "item": None,
    "sha256": "5f0c",
    "pipeline": {"name": "conll04_spert", "version": "0.0.0"},
    "encoding": "utf-8",
    "text": TEXT,
    "entities": [
        {"start": 0, "end": 13, "text": "Satya Nadella", "label": "Peop", "score": 0.99, "head": "spert"},
        {"start": 38, "end": 47, "text": "Microsoft", "label": "Org", "score": 0.98, "head": "spert"},
        {"start": 38, "end": 47, "text": "Microsoft", "label": "Org", "score": 0.5, "head": "other"},
        {"start": 58, "end": 64, "text": "Seattl", "label": "Loc", "score": 0.7, "head": "spert"},
    ],
    "relations": [{"head": 0, "tail": 2, "label": "Work_For", "score": 0.9}],
}


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_extraction_jsonl_becomes_suggestions(tmp_path):
    other = {"text": "No entities here.", "id": "plain"}
    path = write(tmp_path / "out.jsonl", json.dumps(RECORD) + "\n\n" + json.dumps(other) + "\n")
    project = load_dataset(path)
    assert project.name == "out" and len(project.docs) == 2
    doc = project.docs[0]
    assert (doc.id, doc.source, doc.text) == ("out.jsonl:1", "data/examples/business.txt", TEXT)
    assert doc.spans[0] == Span(0, 13, "Peop", 0.99, "spert", "suggested")
    assert [doc.span_text(i) for i in range(len(doc.spans))] == ["Satya Nadella", "Microsoft", "Seattle"]
    assert len(doc.spans) == 3, "the second head's identical span is not repeated"
    assert doc.spans[2].end == 65, "offsets are snapped to whole tokens"
    assert [(r.head, r.tail, r.label, r.score, r.status) for r in doc.relations] == [
        (0, 1, "Work_For", 0.9, "suggested")
    ]
    assert doc.meta["pipeline"] == RECORD["pipeline"] and "text" not in doc.meta
    assert project.docs[1].id == "plain" and project.docs[1].spans == []
    assert (project.entity_labels, project.relation_labels) == (["Loc", "Org", "Peop"], ["Work_For"])


def test_jsonl_with_another_text_field(tmp_path):
    path = write(tmp_path / "texts.jsonl", json.dumps({"body": "Hello Paris.", "text": 3}) + "\n")
    assert load_dataset(path, text_field="body").docs[0].text == "Hello Paris."


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"text": "ok"}', '{"text": '], "out.jsonl:2: not valid JSON"),
        (['["a list"]'], "out.jsonl:1: expected a JSON object with a text field 'text'"),
        (['{"body": "no text field"}'], "text field 'text'"),
        ([json.dumps({**RECORD, "entities": [{"start": "x", "end": 3, "label": "A"}]})], "entities.0.start"),
        (
            [json.dumps({**RECORD, "entities": [{"start": 0, "end": 99, "label": "A"}]})],
            "entity 0: selection \\(0, 99\\) is empty or outside the text",
        ),
        (
            [json.dumps({**RECORD, "entities": [{"start": 14, "end": 15, "label": "A"}], "relations": []})],
            "entity 0: the selection holds only whitespace",
        ),
        (
            [json.dumps({**RECORD, "entities": [{"start": 0, "end": 5, "label": "A", "text": "x"}]})],
            "not what",
        ),
        (
            [
                json.dumps(
                    {**RECORD, "entities": [{"start": 0, "end": 5, "label": "two words"}], "relations": []}
                )
            ],
            "without spaces",
        ),
        ([json.dumps({**RECORD, "relations": [{"head": 0, "tail": 9, "label": "R"}]})], "relation 0 points"),
    ],
)
def test_malformed_jsonl_names_the_line(tmp_path, lines, message):
    with pytest.raises(AnnotationError, match=message):
        load_dataset(write(tmp_path / "out.jsonl", "\n".join(lines) + "\n"))


def test_spert_json_is_gold(tmp_path):
    project = load_dataset(DATA / "toy_train.json")
    gold = read_spert_json(DATA / "toy_train.json")
    assert len(project.docs) == len(gold)
    for doc, document in zip(project.docs, gold):
        assert doc.text == document.text and doc.id == document.id
        assert [doc.span_text(i) for i in range(len(doc.spans))] == [
            document.span_text(e.start, e.end) for e in document.entities
        ]
        assert [(r.head, r.tail, r.label) for r in doc.relations] == [
            (r.head, r.tail, r.label) for r in document.relations
        ]
        assert {s.status for s in doc.spans} <= {"accepted"} and {r.status for r in doc.relations} <= {
            "accepted"
        }
    assert project.docs[0].span_text(0) == "Leonardo DiCaprio"
    assert "Work_For" in project.relation_labels and "Peop" in project.entity_labels


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"tokens": ["a"], ', r"x.json:1: not valid JSON"),
        ('{"tokens": []}', "expected a JSON list"),
        ('[{"entities": []}]', "malformed record"),
        ('[{"tokens": ["a"], "entities": [{"type": "X", "start": 0, "end": 3}]}]', "outside the 1 tokens"),
        ('["just text"]', "malformed record|not SpERT JSON"),
        ('[{"tokens": ["a"], "entities": "oops"}]', "malformed record|not SpERT JSON"),
        ('[{"tokens": ["a", "b"], "entities": [{"type": "X", "start": 0, "end": 1}], '
         '"relations": [{"type": "R", "head": 0, "tail": 0}]}]', "two different spans"),
        ('[{"tokens": ["a"], "entities": [{"type": "X", "start": Infinity, "end": 1}]}]', "not SpERT JSON"),
        ("[]", "no documents"),
    ],
)  # fmt: skip
def test_malformed_spert_json(tmp_path, content, message):
    with pytest.raises(AnnotationError, match=message):
        load_dataset(write(tmp_path / "x.json", content))


@pytest.mark.parametrize(
    ("name", "content", "expected_format"),
    [
        ("es.txt", "La\tO\nONU\tB-ORG\n\nEn\tO\nMadrid\tB-LOC\nhoy\tO\n", "conll2002"),
        ("en.txt", "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n", "conll2003"),
        ("wiki.tsv", "de:Angela\tB-PER\nde:Merkel\tI-PER\n", "wikiann"),
    ],
)
def test_column_files_are_detected_and_read_as_gold(tmp_path, name, content, expected_format):
    path = write(tmp_path / name, content)
    project = load_dataset(path)
    sentences = read_corpus(path, expected_format)
    assert [doc.text for doc in project.docs] == [s.text for s in sentences]
    assert [[d.span_text(i) for i in range(len(d.spans))] for d in project.docs] == [
        [s.span_text(e.start, e.end) for e in s.entities] for s in sentences
    ]
    assert all(span.status == "accepted" for doc in project.docs for span in doc.spans)


def test_bioner_tsv_untyped_tags_take_the_entity_type():
    project = load_dataset(DATA / "toy_genes_train.tsv", entity_type="Gene")
    assert project.docs[0].span_text(0) == "insulin receptor" and project.entity_labels == ["Gene"]
    crichton = load_dataset(DATA / "toy_chem_train.tsv", "crichton_iob")
    assert crichton.docs[0].span_text(0) == "aspirin" and crichton.entity_labels == ["Chemical"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a\tO\nb\tO\tX\n", r"x.conll:2: expected 2 columns, found 3"),
        ("a\tO\nb\tQ-LOC\n", r"x.conll:2: unknown tag 'Q-LOC'"),
        ("just some prose\nover two lines\n", r"x.conll:1: unknown tag"),
    ],
)
def test_malformed_column_files_name_the_line(tmp_path, content, message):
    with pytest.raises(AnnotationError, match=message):
        load_dataset(write(tmp_path / "x.conll", content))


def test_a_text_file_that_is_not_columns_is_one_document(tmp_path):
    project = load_dataset(write(tmp_path / "note.txt", "Angela Merkel visited Paris.\nShe liked it.\n"))
    assert [(d.id, d.text, d.spans) for d in project.docs] == [
        ("note.txt", "Angela Merkel visited Paris.\nShe liked it.\n", [])
    ]


def test_a_folder_of_text_files(tmp_path):
    write(tmp_path / "b.txt", "Second text.")
    write(tmp_path / "a.txt", "First text, in Zürich.")
    write(tmp_path / "notes.md", "Read too, as ner extract reads it.")
    write(tmp_path / "table.csv", "left out, with its reason")
    project = load_dataset(tmp_path)
    assert [(d.id, d.text) for d in project.docs] == [
        ("a.txt", "First text, in Zürich."),
        ("b.txt", "Second text."),
        ("notes.md", "Read too, as ner extract reads it."),
    ]
    assert project.name == tmp_path.name
    write(tmp_path / "c.txt", b"\x00\x01binary")  # one bad file is left out (and logged), not fatal
    assert [d.id for d in load_dataset(tmp_path).docs] == ["a.txt", "b.txt", "notes.md"]


def test_an_empty_folder(tmp_path):
    with pytest.raises(AnnotationError, match="no .txt files"):
        load_dataset(tmp_path)
    with pytest.raises(AnnotationError, match="only folders of .txt files"):
        load_dataset(tmp_path, "jsonl")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.jsonl", b"", "the file is empty"),
        ("x.json", b"  \n", "the file is empty"),
        ("x.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "x.txt: binary content"),
    ],
)
def test_empty_binary_and_non_utf8_files(tmp_path, name, content, message):
    with pytest.raises(AnnotationError, match=message):
        load_dataset(write(tmp_path / name, content))


def test_size_limit_and_missing_files_and_unknown_formats(tmp_path):
    path = write(tmp_path / "big.txt", "word " * 100)
    with pytest.raises(AnnotationError, match="500 bytes is over the limit of 100 bytes"):
        load_dataset(path, max_bytes=100)
    assert load_dataset(path, max_bytes=500).docs[0].text.startswith("word")
    with pytest.raises(AnnotationError, match="no such file"):
        load_dataset(tmp_path / "missing.txt")
    with pytest.raises(AnnotationError, match="unknown format 'xml'"):
        load_dataset(path, "xml")
    with pytest.raises(AnnotationError, match="unknown language code"):
        load_dataset(write(tmp_path / "x.jsonl", json.dumps(RECORD)), lang="qqq")


def test_a_utf8_bom_is_not_part_of_the_text(tmp_path):
    assert load_dataset(write(tmp_path / "bom.txt", b"\xef\xbb\xbfHello")).docs[0].text == "Hello"


def test_project_from_texts():
    project = project_from_texts([("a", "One text."), ("b", "Another.")], name="pasted", lang="de")
    assert [(d.id, d.text) for d in project.docs] == [("a", "One text."), ("b", "Another.")]
    assert (project.name, project.lang, project.cursor) == ("pasted", "de", 0)
    with pytest.raises(AnnotationError, match="document 'b' is empty"):
        project_from_texts([("a", "x"), ("b", " \n")])


@pytest.fixture(scope="module")
def nlp():
    model = tiny_model(bias_entities=2.0)
    model.heads["spert"].config.relation_threshold = 0.3  # random weights: make some relations appear
    return build_pipeline(model, name="tiny_test")


def test_preannotate_adds_suggestions_with_heads_and_exact_offsets(nlp):
    texts = [
        ("a", "Leonardo DiCaprio starred in Inception. He lives in Los Angeles, California."),
        ("b", "Angela Merkel besuchte Zürich und Ἀθῆναι.\n\nÜber 😀 Москва."),
        ("done", "Warner Bros is in Burbank."),
        ("gold", "Satya Nadella works for Microsoft."),
    ]
    project = project_from_texts(texts)
    project.docs[2].done = True
    project.docs[3].spans.append(Span(0, 13, "Peop"))
    assert preannotate(project, nlp, batch_size=2) == 3
    suggested = [s for doc in project.docs for s in doc.spans if s.status == "suggested"]
    assert suggested, "the biased random model predicts entities"
    assert project.docs[2].spans == [] and "pipeline" not in project.docs[2].meta, (
        "done documents are left alone"
    )
    assert project.docs[3].spans[0] == Span(0, 13, "Peop"), "existing annotations are kept"
    for doc in project.docs:
        words = {(t.idx, t.idx + len(t)) for t in nlp.make_doc(doc.text)}
        starts, ends = {a for a, _ in words}, {b for _, b in words}
        for span in doc.spans:
            text = doc.text[span.start : span.end]
            assert text and text == text.strip() and span.start in starts and span.end in ends
            if span.status == "suggested":
                assert (
                    span.head == "spert" and 0.0 < span.score <= 1.0 and span.label in project.entity_labels
                )
        for link in doc.relations:
            assert link.status == "suggested" and link.head != link.tail
            assert max(link.head, link.tail) < len(doc.spans)
    assert project.docs[0].meta["pipeline"] == {"name": "tiny_test", "version": "0.0.0"}
    before = copy.deepcopy(project.docs)
    project.docs[0].spans.clear()  # all suggestions rejected: not suggested again
    assert preannotate(project, nlp) == 0
    assert project.docs[1:] == before[1:]


def labelled(order: list[tuple[str, str]]) -> bytes:
    """One JSONL record per ``(entity label, relation label)``, in this order of first appearance."""
    lines = []
    for entity, relation in order:
        entities = [{"start": 0, "end": 4, "label": entity}, {"start": 5, "end": 9, "label": "Peop"}]
        lines.append(json.dumps({"text": "Anna Bell", "entities": entities, "relations": [
            {"head": 0, "tail": 1, "label": relation}
        ]}))  # fmt: skip
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_the_same_labels_in_another_order_of_appearance_are_stored_and_exported_alike(tmp_path, nlp):
    order = [("Org", "Work_For"), ("Misc", "Kill"), ("Loc", "Live_In")]
    first = load_dataset(write(tmp_path / "a.jsonl", labelled(order)))
    second = load_dataset(write(tmp_path / "b.jsonl", labelled(order[::-1])))
    assert (
        first.entity_labels == second.entity_labels == ["Loc", "Misc", "Org", "Peop"]
    )  # no pipeline: sorted
    assert first.relation_labels == second.relation_labels == ["Kill", "Live_In", "Work_For"]
    types = [export_bytes(project, "spert_types") for project in (first, second)]
    assert types[0] == types[1]
    for project in (first, second):  # a pipeline's declared labels first, in its order; the rest sorted
        preannotate(project, nlp)
        assert project.entity_labels == ["Peop", "Org", "Loc", "Other", "Misc"]
        assert project.relation_labels == ["Work_For", "Live_In", "OrgBased_In", "Located_In", "Kill"]
    assert export_bytes(first, "spert_types") == export_bytes(second, "spert_types")


def test_preannotate_records_what_the_pipeline_put_in_doc_ents_and_the_view_follows_it(nlp):
    component = nlp.get_pipe("ner_extractor")
    text = "Leonardo DiCaprio starred in Inception. He lives in Los Angeles, California, with Kate Winslet."
    for rule in ("length", "score"):
        component.ents_merge = rule  # "length" chooses otherwise than the score rule resolved() redoes
        try:
            project = project_from_texts([("a", text)])
            preannotate(project, nlp)
            ents = {(e.start_char, e.end_char, e.label_) for e in nlp(text).ents}
        finally:
            component.ents_merge = "score"
        doc = project.docs[0]
        assert ents and all(span.ent is not None for span in doc.spans)
        assert {(s.start, s.end, s.label) for s in doc.spans if s.ent} == ents
        assert {(doc.spans[i].start, doc.spans[i].end, doc.spans[i].label) for i in resolved(doc)} == ents
        unrecorded = copy.deepcopy(doc)  # a project saved before the record: the score rule again
        for span in unrecorded.spans:
            span.ent = None
        if rule == "length":
            assert resolved(unrecorded) != resolved(doc), "the tiny model's overlaps tell the rules apart"


def test_preannotate_needs_one_of_our_pipelines():
    with pytest.raises(AnnotationError, match="no ner_extractor component"):
        preannotate(project_from_texts([("a", "Some text.")]), spacy.blank("en"))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 40)
    | st.floats()
    | st.sampled_from(["", "a b", "X", "tokens"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["tokens", "entities", "relations", "type", "start", "end", "head", "tail", "label", "text"]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(JSON_VALUES, st.sampled_from(["x.json", "x.jsonl"]))
def test_any_json_loads_or_is_refused_with_an_annotation_error(tmp_path, value, name):
    path = write(tmp_path / name, json.dumps(value))
    try:
        project = load_dataset(path)
    except AnnotationError:
        return
    for doc in project.docs:
        check_doc(doc)
