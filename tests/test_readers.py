"""Corpus readers and writers: SpERT JSON in and out, error messages, offsets, JSONL output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.corpora import read_spert_json, read_spert_types, write_spert_json
from ner.corpora.spert_json import CorpusError
from ner.documents import Document, Entity, Relation

TYPES = {
    "entities": {"Peop": {"short": "Peop"}, "Org": {"short": "Org"}},
    "relations": {"Work_For": {"symmetric": False}, "Spouse": {"symmetric": True}},
}
RECORDS = [
    {
        "tokens": ["Ann", "married", "Bob", "at", "Acme", "."],
        "entities": [{"type": "Peop", "start": 2, "end": 3}, {"type": "Peop", "start": 0, "end": 1}],
        "relations": [{"type": "Spouse", "head": 0, "tail": 1}, {"type": "Work_For", "head": 0, "tail": 1}],
        "orig_id": 17,
    },
    {"tokens": ["Zürich", "–", "東京"], "entities": [{"type": "Org", "start": 0, "end": 3}], "relations": []},
]


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture()
def corpus(tmp_path):
    schema = read_spert_types(write(tmp_path / "types.json", TYPES))
    return read_spert_json(write(tmp_path / "train.json", RECORDS), schema), schema


def test_types_keep_their_order_and_symmetric_flags(corpus):
    """Labels in file order; only relations flagged ``symmetric`` are symmetric."""
    _, schema = corpus
    assert schema.entity_labels == ("Peop", "Org")
    assert schema.relation_labels == ("Work_For", "Spouse")
    assert schema.symmetric_relations == {"Spouse"}


def test_documents_are_read_with_offsets_and_ids(corpus):
    """Words joined by spaces, entities as given, ``orig_id`` as a string id (absent -> None)."""
    docs, _ = corpus
    assert [d.text for d in docs] == ["Ann married Bob at Acme .", "Zürich – 東京"]
    assert docs[0].entities == [Entity(2, 3, "Peop"), Entity(0, 1, "Peop")]
    assert docs[0].span_text(2, 3) == "Bob" and docs[1].span_text(0, 3) == "Zürich – 東京"
    assert (docs[0].id, docs[1].id) == ("17", None)


def test_symmetric_relations_are_put_head_first_and_others_left_alone(corpus):
    """``Spouse(Bob, Ann)`` becomes ``Spouse(Ann, Bob)``; the directed ``Work_For(Bob, Ann)`` is kept."""
    docs, _ = corpus
    assert docs[0].relations == [Relation(1, 0, "Spouse"), Relation(0, 1, "Work_For")]


def test_without_a_schema_nothing_is_reordered(tmp_path):
    """Symmetry comes from the types file: without a schema relations are kept as written."""
    docs = read_spert_json(write(tmp_path / "train.json", RECORDS))
    assert docs[0].relations[0] == Relation(0, 1, "Spouse")


def test_write_then_read_gives_the_same_documents(corpus, tmp_path):
    """``write_spert_json`` is the inverse of ``read_spert_json`` (ids, non-ASCII words included)."""
    docs, schema = corpus
    write_spert_json(docs, tmp_path / "copy.json")
    assert read_spert_json(tmp_path / "copy.json", schema) == docs
    assert "Zürich" in (tmp_path / "copy.json").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "records, message",
    [
        ({"tokens": ["a"]}, "expected a JSON list"),
        ([{"tokens": ["a", "b"], "entities": [{"type": "Peop", "start": 1, "end": 3}]}], r"\[0\]: entity"),
        ([{"tokens": ["a"], "entities": [{"type": "Peop", "start": 1, "end": 1}]}], r"\[0\]: entity"),
        (
            [
                {"tokens": ["a"]},
                {
                    "tokens": ["a", "b"],
                    "entities": [{"type": "Peop", "start": 0, "end": 1}],
                    "relations": [{"type": "Work_For", "head": 0, "tail": 1}],
                },
            ],
            r"\[1\]: relation .* outside the 1 entities",
        ),
        ([{"words": ["a"]}], r"\[0\]: malformed record"),
        ([{"tokens": ["a"], "entities": [{"type": "Peop", "start": "x", "end": 1}]}], "malformed"),
    ],
    ids=["not a list", "entity past the end", "empty entity", "relation outside", "no tokens", "bad offset"],
)
def test_malformed_corpora_raise_corpus_error_naming_the_file(tmp_path, records, message):
    """Each malformation is a ``CorpusError`` whose message names the file and the record index."""
    path = write(tmp_path / "broken_corpus.json", records)
    with pytest.raises(CorpusError, match=message) as error:
        read_spert_json(path)
    assert "broken_corpus.json" in str(error.value)


def test_malformed_types_raise_corpus_error_naming_the_file(tmp_path):
    """Relations given as a list instead of a mapping."""
    path = write(tmp_path / "bad_types.json", {"entities": ["Peop"], "relations": ["Work_For"]})
    with pytest.raises(CorpusError, match="bad_types.json"):
        read_spert_types(path)


# ---------------------------------------------------------------------- offsets and JSONL (properties)
WORD = st.text(alphabet=st.characters(blacklist_categories=("Z", "C")), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(WORD, min_size=1, max_size=12), st.data())
def test_from_words_offsets_point_at_each_word(words, data):
    """``text[start:end] == word`` for every word; a span's text is its words joined by single spaces."""
    doc = Document.from_words(words)
    assert doc.text == " ".join(words)
    for word, (start, end) in zip(words, doc.offsets, strict=True):
        assert doc.text[start:end] == word
    start = data.draw(st.integers(0, len(words) - 1))
    end = data.draw(st.integers(start + 1, len(words)))
    assert doc.span_text(start, end) == " ".join(words[start:end])


# ---------------------------------------------------------------------- the real corpus, where present
CONLL04 = Path(os.environ.get("NER_DATA_DIR", Path(__file__).parents[2] / "shared" / "data")) / "conll04"


def test_the_conll04_corpus_has_the_published_sizes():
    """922 / 231 / 288 sentences; 3,377 entities and 1,283 relations in train (SpERT's split)."""
    if not (CONLL04 / "types.json").exists():
        pytest.skip(f"CoNLL04 not found at {CONLL04}")
    schema = read_spert_types(CONLL04 / "types.json")
    splits = {name: read_spert_json(CONLL04 / f"{name}.json", schema) for name in ("train", "dev", "test")}
    assert {name: len(docs) for name, docs in splits.items()} == {"train": 922, "dev": 231, "test": 288}
    assert sum(len(d.entities) for d in splits["train"]) == 3377
    assert sum(len(d.relations) for d in splits["train"]) == 1283
    assert set(schema.entity_labels) == {"Loc", "Org", "Peop", "Other"} and len(schema.relation_types) == 5
