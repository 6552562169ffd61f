"""Column (CoNLL-style) corpora: tag chunking, every preset, error messages, round trips, real counts."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.corpora import (
    FORMATS,
    CorpusError,
    read_conll,
    read_corpus,
    spans_to_bio,
    tags_to_spans,
    write_conll,
)
from ner.documents import Document, Entity

DATA = Path(os.environ.get("NER_DATA_DIR", Path(__file__).parents[2] / "shared" / "data"))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def spans(doc: Document) -> list[tuple[int, int, str]]:
    return [(e.start, e.end, e.label) for e in doc.entities]


# Tag chunking


def test_iob1_chunks_like_conlleval():
    """In IOB1 ``B-`` only separates adjacent same-type entities; an ``I-`` after ``O`` starts one."""
    assert tags_to_spans(["I-PER", "I-PER", "B-PER", "O", "I-LOC"]) == [
        (0, 2, "PER"),
        (2, 3, "PER"),
        (4, 5, "LOC"),
    ]


def test_type_change_and_sentence_initial_i_start_entities():
    """``I-ORG`` after ``I-LOC`` is a new entity; a leading ``I-`` (CoNLL-2002 es) is too."""
    assert tags_to_spans(["I-LOC", "I-ORG", "I-ORG", "B-ORG"]) == [
        (0, 1, "LOC"),
        (1, 3, "ORG"),
        (3, 4, "ORG"),
    ]
    assert tags_to_spans([]) == [] and tags_to_spans(["O", "O"]) == []


def test_untyped_tags_take_entity_type_and_typed_tags_keep_theirs():
    assert tags_to_spans(["B", "I", "O", "I", "B"], "Disease") == [
        (0, 2, "Disease"),
        (3, 4, "Disease"),
        (4, 5, "Disease"),
    ]
    with pytest.raises(ValueError, match="entity_type"):
        tags_to_spans(["O", "B"])


@pytest.mark.parametrize("tag", ["X-PER", "B-", "E-PER", "", "o", "BPER"])
def test_malformed_tags_raise_with_their_index(tag):
    with pytest.raises(ValueError, match="tag 1"):
        tags_to_spans(["O", tag], "X")


def test_spans_to_bio_writes_iob2_and_rejects_overlaps():
    assert spans_to_bio(5, [(2, 3, "PER"), (0, 2, "PER"), Entity(4, 5, "LOC")]) == [
        "B-PER",
        "I-PER",
        "B-PER",
        "O",
        "B-LOC",
    ]
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_bio(4, [(0, 3, "A"), (2, 4, "B")])
    with pytest.raises(ValueError, match="outside"):
        spans_to_bio(2, [(1, 3, "A")])


# Presets on small files

CONLL2003 = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Smith NNP I-NP B-PER
in IN I-PP O
Paris NNP I-NP I-LOC


-DOCSTART- -X- O O

Bonn NNP I-NP I-LOC
"""


def test_conll2003_preset_skips_docstart_and_decodes_iob1(tmp_path):
    docs = read_corpus(write(tmp_path / "eng.train", CONLL2003), "conll2003")
    assert [d.words for d in docs] == [
        ["EU", "rejects", "German", "call"],
        ["Peter", "Blackburn", "Smith", "in", "Paris"],
        ["Bonn"],
    ]
    assert [spans(d) for d in docs] == [
        [(0, 1, "ORG"), (2, 3, "MISC")],
        [(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC")],
        [(0, 1, "LOC")],
    ]
    assert [d.id for d in docs] == ["eng.train:3", "eng.train:8", "eng.train:17"]
    assert docs[1].span_text(0, 2) == "Peter Blackburn"


def test_conll2002_preset_reads_es_and_nl_layouts(tmp_path):
    """es: ``tok NER`` with no DOCSTART and no final blank; nl: a DOCSTART line directly before a sentence."""
    es = read_corpus(
        write(tmp_path / "esp.testb", "San I-LOC\nSebastián I-LOC\n\nLa B-ORG\nCoruña I-ORG"), "conll2002"
    )
    assert [spans(d) for d in es] == [[(0, 2, "LOC")], [(0, 2, "ORG")]]
    assert es[0].words == ["San", "Sebastián"]
    nl_text = (
        "-DOCSTART- -DOCSTART- O\nDat Pron O\nItalië N B-LOC\n\n-DOCSTART- -DOCSTART- O\nVan Prep B-PER\n"
    )
    nl = read_corpus(write(tmp_path / "ned.testb", nl_text), "conll2002")
    assert [d.words for d in nl] == [["Dat", "Italië"], ["Van"]]
    assert [spans(d) for d in nl] == [[(1, 2, "LOC")], [(0, 1, "PER")]]


def test_biobert_preset_types_untyped_tags(tmp_path):
    path = write(tmp_path / "test.tsv", "ataxia\tB\n-\tI\ntelangiectasia\tI\ngene\tO\n\nBRCA1\tB\n")
    docs = read_corpus(path, "biobert_tsv", entity_type="Disease")
    assert [spans(d) for d in docs] == [[(0, 3, "Disease")], [(0, 1, "Disease")]]
    assert spans(read_corpus(path, "biobert_tsv")[1]) == [(0, 1, FORMATS["biobert_tsv"]["entity_type"])]
    with pytest.raises(CorpusError, match=r"test\.tsv:1: untyped tag 'B' needs entity_type"):
        read_conll(path)


def test_crichton_preset_reads_typed_tab_columns_with_spaces_in_tokens(tmp_path):
    """Tab-separated lines are split on tabs only, so a token may contain a space."""
    path = write(
        tmp_path / "train.tsv", "Selegiline\tB-Chemical\n-\tO\npostural\tB-Disease\nlow bp\tI-Disease\n"
    )
    (doc,) = read_corpus(path, "crichton_iob")
    assert doc.words == ["Selegiline", "-", "postural", "low bp"]
    assert spans(doc) == [(0, 1, "Chemical"), (2, 4, "Disease")]


def test_wikiann_preset_strips_language_prefixes(tmp_path):
    path = write(
        tmp_path / "test", "nl:Jan\tB-PER\nnl:de\tI-PER\nnl:Vries\tI-PER\nnl:http://x.nl\tO\n\nnl::\tO\n"
    )
    docs = read_corpus(path, "wikiann")
    assert [d.words for d in docs] == [["Jan", "de", "Vries", "http://x.nl"], [":"]]
    assert spans(docs[0]) == [(0, 3, "PER")]
    assert read_conll(path)[0].words[0] == "nl:Jan"


def test_columns_are_chosen_by_index(tmp_path):
    path = write(tmp_path / "x.txt", "B-PER John NNP\nO runs VBZ\n")
    (doc,) = read_conll(path, token_column=1, tag_column=0)
    assert doc.words == ["John", "runs"] and spans(doc) == [(0, 1, "PER")]


def test_unknown_format_and_scheme_are_rejected(tmp_path):
    path = write(tmp_path / "x.txt", "a O\n")
    with pytest.raises(ValueError, match="known formats: biobert_tsv, crichton_iob, conll2003"):
        read_corpus(path, "conll2004")
    with pytest.raises(ValueError, match="unknown scheme 'bioes'"):
        read_conll(path, scheme="bioes")


# Errors name the file and the 1-based line


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a O\nb X-PER\n", 2, "unknown tag 'X-PER'"),
        ("a NN O\n\nb NN O\nc O\n", 4, "expected 3 columns, found 2"),
        ("a\tO\n\nb\tB-\n", 3, "tag .B-. has an empty type"),
        ("a\tO\n\t\tO\n", 2, "expected 2 columns, found 3"),
        ("a\tO\n\tO\n", 2, "empty token"),
        ("a O\nb I-PER\nc B-LOC Z\n", 3, "expected 2 columns, found 3"),
    ],
)
def test_malformed_lines_raise_corpus_error_with_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path / "broken.txt", text)
    with pytest.raises(CorpusError, match=rf"broken\.txt:{line}: {message}"):
        read_conll(path)


def test_missing_column_is_reported(tmp_path):
    with pytest.raises(CorpusError, match=r"x\.txt:1: no token column 0 or tag column 3"):
        read_conll(write(tmp_path / "x.txt", "a O\n"), tag_column=3)


@pytest.mark.parametrize("format", ["conll2002", "biobert_tsv", "crichton_iob", "wikiann"])
def test_a_latin1_file_is_refused_naming_file_line_and_byte_unless_declared(tmp_path, format):
    """The original CoNLL-2002 files are ISO-8859-1: never guessed, refused with the place of the
    first bad byte, and read exactly when the encoding is declared."""
    path = tmp_path / "esp.train"
    path.write_bytes("El B-LOC\nPerú I-LOC\n".replace(" ", "\t").encode("latin-1"))
    with pytest.raises(CorpusError, match=r"esp\.train:2:4: .* not utf-8 \(byte offset 12: fa"):
        read_corpus(path, format)
    (doc,) = read_corpus(path, format, encoding="latin-1")
    assert doc.words[1].endswith("Perú")


def test_a_folder_or_a_missing_file_is_named(tmp_path):
    with pytest.raises(CorpusError, match=rf"{tmp_path}: is a folder"):
        read_conll(tmp_path)
    with pytest.raises(CorpusError, match=r"gone\.tsv: no such corpus file"):
        read_corpus(tmp_path / "gone.tsv", "biobert_tsv", entity_type="Gene")


# Round trips

LABELS = st.sampled_from(["PER", "LOC", "ORG", "MISC", "Chemical", "B-X", "I"])


@st.composite
def sentence_spans(draw) -> tuple[int, list[tuple[int, int, str]]]:
    """A length and non-overlapping typed spans: cut points split ``[0, length)`` into segments."""
    length = draw(st.integers(0, 30))
    cuts = sorted(draw(st.sets(st.integers(0, length), max_size=12)) | {0, length})
    segments = list(zip(cuts, cuts[1:]))
    chosen = [s for s in segments if draw(st.booleans())]
    return length, [(start, end, draw(LABELS)) for start, end in chosen]


@settings(max_examples=300, deadline=None)
@given(sentence_spans())
def test_spans_to_bio_round_trips_through_tags_to_spans(case):
    """Adjacent same-type spans survive because IOB2 marks every start with ``B-``."""
    length, expected = case
    tags = spans_to_bio(length, expected)
    assert len(tags) == length
    assert tags_to_spans(tags) == sorted(expected)


# No whitespace or control characters; no U+FEFF, which the reader drops as a byte-order mark at file start.
WORDS = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters="\ufeff"
    ),
    min_size=1,
    max_size=8,
).filter(lambda word: word != "-DOCSTART-")


@st.composite
def documents(draw) -> Document:
    length, chosen = draw(sentence_spans().filter(lambda case: case[0] > 0))
    words = draw(st.lists(WORDS, min_size=length, max_size=length))
    entities = [Entity(start, end, label) for start, end, label in draw(st.permutations(chosen))]
    return Document.from_words(words, entities=entities)


@settings(max_examples=60, deadline=None)
@given(st.lists(documents(), max_size=5))
def test_write_conll_round_trips_through_read_conll(tmp_path_factory, docs):
    path = tmp_path_factory.mktemp("roundtrip") / "out.tsv"
    write_conll(docs, path)
    back = read_conll(path)
    assert [d.words for d in back] == [d.words for d in docs]
    assert [spans(d) for d in back] == [sorted(spans(d)) for d in docs]
    assert [d.text for d in back] == [d.text for d in docs]


def test_write_conll_writes_iob2_lines_and_refuses_unwritable_words(tmp_path):
    doc = Document.from_words(
        ["Peter", "Smith", "in", "Paris"], entities=[Entity(3, 4, "LOC"), Entity(0, 2, "PER")]
    )
    write_conll([doc, Document.from_words([]), doc], tmp_path / "a.tsv")
    block = "Peter\tB-PER\nSmith\tI-PER\nin\tO\nParis\tB-LOC\n\n"
    assert (tmp_path / "a.tsv").read_text(encoding="utf-8") == block * 2
    with pytest.raises(ValueError, match="cannot be written"):
        write_conll([Document.from_words(["a\tb"])], tmp_path / "b.tsv")
    nested = Document.from_words(["a", "b"], entities=[Entity(0, 2, "X"), Entity(1, 2, "Y")])
    with pytest.raises(ValueError, match="overlaps"):
        write_conll([nested], tmp_path / "c.tsv")


# Real corpora: counts published in shared/data/README.md (conlleval chunking, DOCSTART excluded)

REAL = [
    ("conll2003_en", "train.txt", "conll2003", 14041, {"PER": 6600, "LOC": 7140, "ORG": 6321, "MISC": 3438}),
    ("conll2003_en", "test.txt", "conll2003", 3453, {"PER": 1617, "LOC": 1668, "ORG": 1661, "MISC": 702}),
    ("conll2002_es", "test.txt", "conll2002", 1517, {"ORG": 1400, "LOC": 1084, "PER": 735, "MISC": 340}),
    ("conll2002_nl", "test.txt", "conll2002", 5195, {"MISC": 1187, "PER": 1098, "ORG": 882, "LOC": 774}),
    ("bc5cdr", "test.tsv", "crichton_iob", 4797, {"Chemical": 5385, "Disease": 4424}),
    ("bc5cdr_chem", "test.tsv", "biobert_tsv", 4797, {"ENTITY": 5385}),
    ("bc5cdr_disease", "test.tsv", "biobert_tsv", 4797, {"ENTITY": 4424}),
    ("ncbi_disease", "test.tsv", "biobert_tsv", 940, {"ENTITY": 960}),
    ("bc2gm", "test.tsv", "biobert_tsv", 5038, {"ENTITY": 6325}),
    ("jnlpba", "test.tsv", "biobert_tsv", 3856, {"ENTITY": 6241}),
    ("linnaeus", "test.tsv", "biobert_tsv", 7142, {"ENTITY": 1433}),
    ("wikiann_en", "test.tsv", "wikiann", 10000, {"total": 13958}),
    ("wikiann_de", "test.tsv", "wikiann", 10000, {"total": 13868}),
    ("wikiann_nl", "test.tsv", "wikiann", 10000, {"total": 13725}),
]


@pytest.mark.parametrize(
    ("dataset", "file", "format", "sentences", "entities"), REAL, ids=[f"{r[0]}-{r[1]}" for r in REAL]
)
def test_real_corpus_counts_match_the_published_statistics(dataset, file, format, sentences, entities):
    path = DATA / dataset / file
    if not path.exists():
        pytest.skip(f"{path} not present (set NER_DATA_DIR)")
    docs = read_corpus(path, format)
    counts = Counter(e.label for doc in docs for e in doc.entities)
    assert len(docs) == sentences
    if set(entities) == {"total"}:
        assert sum(counts.values()) == entities["total"] and set(counts) == {"PER", "ORG", "LOC"}
    else:
        assert counts == entities
    assert all(doc.words and all(doc.words) for doc in docs)
    if format == "wikiann":
        assert not any(word[:3] == f"{dataset[-2:]}:" for doc in docs for word in doc.words)
