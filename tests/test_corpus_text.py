"""Corpus files are decoded strictly and every failure names the file (SpERT JSON, types, any text)."""

from __future__ import annotations

import json

import pytest

from ner.corpora import CorpusError, read_spert_json, read_spert_types, read_text

LATIN1 = "Zürich\tB-Loc\nest\tO\nà\tO\n"


def test_a_latin1_file_is_refused_with_the_file_line_and_byte_offset(tmp_path):
    path = tmp_path / "esp.train"
    path.write_bytes(LATIN1.encode("latin-1"))
    with pytest.raises(CorpusError) as error:
        read_text(path)
    message = str(error.value)
    assert f"{path}:1:2:" in message and "not utf-8" in message
    assert "byte offset 1: fc" in message and 'encoding = "latin-1"' in message


def test_a_declared_encoding_or_a_byte_order_mark_decodes_it(tmp_path):
    path = tmp_path / "esp.train"
    path.write_bytes(LATIN1.encode("latin-1"))
    assert read_text(path, "latin-1") == LATIN1
    path.write_bytes(LATIN1.encode("utf-16"))  # with its byte-order mark: unambiguous, not a guess
    assert read_text(path) == LATIN1
    path.write_bytes(b"\xef\xbb\xbf" + LATIN1.encode("utf-8"))
    assert read_text(path) == read_text(path, "utf-8") == LATIN1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a folder, not a corpus file"),
        (lambda p: None, "no such corpus file"),
        (lambda p: p.write_text("x"), "unknown text encoding 'klingon'"),
    ],
    ids=["folder", "missing", "unknown encoding"],
)
def test_unreadable_files_are_named(tmp_path, make, message):
    path = tmp_path / "train.tsv"
    make(path)
    with pytest.raises(CorpusError, match=message) as error:
        read_text(path, "klingon" if "encoding" in message else None)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the SpERT types file is empty"),
        (b"  \n", "the SpERT types file is empty"),
        (b"entities: [Loc]", r":1: not valid JSON \(column 1"),
        (b'{"entities": {}, "relations": {}}', "declares no entity types"),
        (b'{"entities": [1], "relations": {}}', "non-empty string"),
        ('{"entities": ["Lieu à"], "relations": {}}'.encode("latin-1"), "not utf-8"),
    ],
    ids=["empty", "blank", "not JSON", "no types", "number", "latin-1"],
)
def test_bad_types_files_are_named(tmp_path, content, message):
    path = tmp_path / "types.json"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=message) as error:
        read_spert_types(path)
    assert str(path) in str(error.value)


def _records(first_word: str) -> list[dict]:
    return [{"tokens": [first_word, "lives"], "entities": [{"type": "Peop", "start": 0, "end": 1}]}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            json.dumps(_records("José"), ensure_ascii=False).encode("latin-1"),
            r":1:\d+: this SpERT JSON corpus",
        ),
        (json.dumps(_records("\ud800")).encode(), r"\[0\]: token 0 '\\ud800' holds a lone surrogate"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'[{"tokens": "Jos\xc3\xa9 lives"}]', "'tokens' must be a list"),
        (b"", "the SpERT JSON corpus is empty"),
    ],
    ids=["latin-1", "lone surrogate", "deep nesting", "tokens not a list", "empty"],
)
def test_bad_spert_corpora_are_named(tmp_path, content, message):
    path = tmp_path / "train.json"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=message) as error:
        read_spert_json(path)
    assert str(path) in str(error.value)


def test_a_spert_corpus_in_a_declared_encoding_reads(tmp_path):
    path = tmp_path / "train.json"
    path.write_bytes(json.dumps(_records("José"), ensure_ascii=False).encode("latin-1"))
    (doc,) = read_spert_json(path, encoding="latin-1")
    assert doc.words == ["José", "lives"]
