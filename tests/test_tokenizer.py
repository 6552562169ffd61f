"""``nlp()`` takes any ``str``: lone surrogates, and single texts longer than spaCy's 10**6 characters
(ner/tokenizer.py). This holds for built pipelines, for the shipped one and for a plain ``spacy.load``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.attrs import ORTH
from spacy.lang.en import English
from spacy.util import load_config

from ner.batch.records import doc_record
from ner.batch.sources import SourceText
from ner.pipeline import DEFAULT_PIPELINE, build_pipeline, load
from ner.tokenizer import (
    ENGLISH_ABBREVIATIONS,
    MAX_LENGTH,
    SurrogateSafeTokenizer,
    pipeline_config,
    replace_lone_surrogates,
)
from tests.conftest import tiny_model

SURROGATES = "Angela Merkel\ud800 lives in \udcffBerlin. \ud83d\ude00 Booth killed Lincoln."


@pytest.fixture(scope="module")
def nlp():
    return build_pipeline(tiny_model(bias_entities=2.0), name="tiny_test")


def test_a_lone_surrogate_does_not_stop_the_pipeline(nlp):
    doc = nlp(SURROGATES)
    assert doc.text == SURROGATES.translate(
        {0xD800: "\ufffd", 0xDCFF: "\ufffd", 0xD83D: "\ufffd", 0xDE00: "\ufffd"}
    )
    assert len(doc.text) == len(SURROGATES), "one replacement character per surrogate: offsets hold"
    assert [t.text for t in doc if t.text.isalpha()] == [
        "Angela",
        "Merkel",
        "lives",
        "in",
        "Berlin",
        "Booth",
        "killed",
        "Lincoln",
    ]
    assert list(nlp.pipe([SURROGATES, "\ud800"]))[1].text == "\ufffd"


@pytest.mark.parametrize("lang", ["en", "de", "xx"])
def test_the_safe_tokenizer_cuts_text_exactly_as_spacy_s_own(lang):
    """spaCy's own cuts and rules, plus (English only) ``ENGLISH_ABBREVIATIONS`` kept whole."""
    text = "Don't e-mail Müller-Lüdenscheidt at http://x.org :) before 3.5km, z.B. U.S. 北京."
    safe, plain = spacy.blank(lang, config=pipeline_config(lang)), spacy.blank(lang)
    assert isinstance(safe.tokenizer, SurrogateSafeTokenizer)
    assert [t.text for t in safe(text)] == [t.text for t in plain(text)]
    for abbreviation in ENGLISH_ABBREVIATIONS if lang == "en" else ():
        plain.tokenizer.add_special_case(abbreviation, [{ORTH: abbreviation}])
    assert safe.tokenizer.rules == plain.tokenizer.rules
    exclude = ["vocab", "rules"]
    assert safe.tokenizer.to_bytes(exclude=exclude) == plain.tokenizer.to_bytes(exclude=exclude)


def test_a_text_longer_than_spacy_s_limit_is_accepted_and_a_limit_is_kept(nlp):
    line = "word " * 480_000  # 2.4 MB on one line, as in the issue
    assert len(nlp.make_doc(line)) == 480_000
    assert nlp.max_length == MAX_LENGTH > 2 * 10**6
    with pytest.raises(ValueError, match="E088"):
        nlp("x" * (MAX_LENGTH + 1))


def test_the_shipped_pipeline_s_config_names_the_safe_tokenizer_and_the_limit():
    """Built from its config.cfg alone (no weights are read): what spacy.load builds before from_disk."""
    shipped = English.from_config(load_config(DEFAULT_PIPELINE / "config.cfg"))
    assert isinstance(shipped.tokenizer, SurrogateSafeTokenizer)
    assert shipped.max_length == MAX_LENGTH
    assert shipped.make_doc("a\ud800b").text == "a\ufffdb"


def test_a_saved_pipeline_loads_with_both_behaviours_and_no_import_of_ours(nlp, tmp_path):
    nlp.to_disk(tmp_path / "pipeline")
    code = (
        "import spacy\n"
        f"nlp = spacy.load({str(tmp_path / 'pipeline')!r})\n"
        "doc = nlp('Angela Merkel\\ud800 lives in Berlin.')\n"
        "print(nlp.max_length, len(nlp.make_doc('a ' * 600_000)), ord(doc.text[13]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split()[-3:] == [str(MAX_LENGTH), "600000", str(0xFFFD)]


def test_load_gives_a_pipeline_saved_before_the_safe_tokenizer_the_same_behaviour(nlp, tmp_path):
    """An older pipeline: spaCy's own tokenizer and no creation callback in its config."""
    old = spacy.blank("en")
    old.tokenizer.add_special_case("Bros.", [{"ORTH": "Bros."}])
    old.add_pipe("sentencizer")
    old.to_disk(tmp_path / "old")
    loaded = load(tmp_path / "old")
    assert isinstance(loaded.tokenizer, SurrogateSafeTokenizer) and loaded.max_length == MAX_LENGTH
    assert [t.text for t in loaded("Warner Bros. don't\ud800")] == ["Warner", "Bros.", "do", "n't", "\ufffd"]
    assert loaded.tokenizer.to_bytes(exclude=["vocab"]) == old.tokenizer.to_bytes(exclude=["vocab"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(max_size=8), st.characters(categories=["Cs"])), max_size=20).map("".join))
def test_offsets_map_back_to_the_source_text_with_surrogates(nlp, text):
    doc = nlp(text)
    assert doc.text == replace_lone_surrogates(text) and len(doc.text) == len(text)
    for span in list(doc.ents) + list(doc.spans["spert"]):
        assert span.text == doc.text[span.start_char : span.end_char]
    record = doc_record(doc, SourceText("x", text), ["spert"], {"name": "t", "version": "0"})
    for entity in record["entities"]:
        assert entity["text"] == doc.text[entity["start"] : entity["end"]]
