"""What text ``nlp()`` accepts: any Python ``str`` of up to ``MAX_LENGTH`` characters.

A plain spaCy pipeline stops on two kinds of input that the library has to take:

* **Lone surrogates.** Valid JSON can hold ``"\\ud800"``, and so can a ``surrogateescape``-decoded
  byte. spaCy's string store then raises UnicodeEncodeError. :class:`SurrogateSafeTokenizer`
  replaces each lone surrogate with U+FFFD REPLACEMENT CHARACTER before it tokenizes. One code
  point replaces one code point, so every character offset into the Doc is also an offset into
  the input. ``doc.text`` differs from the input in exactly those characters. We accept that on
  purpose. A lone surrogate is not a character: UTF-8 cannot encode it, so no output (JSONL,
  DocBin, the app) could hold it anyway. U+FFFD is Unicode's own mark for such a code point, and
  Python's ``errors="replace"`` writes the same.
* **Long texts.** spaCy refuses any text over ``nlp.max_length``, which defaults to 10**6
  characters, because its parser and NER need about 1 GB per 100,000 characters. Our extractor
  sees at most ``max_segment_words`` words at a time (:mod:`ner.segments`), so what still grows
  with the text is the Doc and the word lists: a few hundred bytes per word. ``MAX_LENGTH`` keeps
  a limit, 10**7 characters (about 1.5 million words, a 10 MB text), so memory stays bounded.
  A longer text raises spaCy's E088 error with both numbers. The ``ner.max_length.v1`` callback
  sets the limit from the pipeline config.

English pipelines also keep more abbreviations whole than spaCy does (:data:`ENGLISH_ABBREVIATIONS`:
"Lt.", "Capt.", "Sgt.", "Wyo.", "inc." ...). spaCy's sentencizer ends a sentence after any "."
token, and its tokenizer splits the full stop off every abbreviation it has no exception for, so
"Navy Lt. Nettie Johnson said" was two sentences, and the relation between "Navy" and "Nettie
Johnson" could not be found. Abbreviations in the exceptions ("Mr.", "Inc.", "U.S.") were never
split. The tokens are the corpora's too: CoNLL04 writes "Lt." as one token. A saved pipeline keeps
the exceptions it was saved with, so a model always sees the tokens it was trained on.

Both are registered in spaCy's registries, and ``pyproject.toml`` lists them as entry points
(``spacy_tokenizers``, ``spacy_callbacks``). A pipeline whose ``config.cfg`` names them
therefore loads with a plain ``spacy.load`` and no import of this package.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from spacy.attrs import ORTH
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc
from spacy.util import (
    compile_infix_regex,
    compile_prefix_regex,
    compile_suffix_regex,
    get_lang_class,
    registry,
)

TOKENIZER = "ner.Tokenizer.v1"
MAX_LENGTH_CALLBACK = "ner.max_length.v1"
MAX_LENGTH = 10_000_000  # characters; see the module docstring
REPLACEMENT = "\ufffd"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: Abbreviations kept as one token in English, beyond spaCy's own exceptions. Each is only ever an
#: abbreviation, never an English word with a sentence's full stop after it (no "No." or "Me.").
ENGLISH_ABBREVIATIONS = (
    # ranks and titles before a name
    "Lt.", "Lieut.", "Capt.", "Col.", "Sgt.", "Maj.", "Cpl.", "Pvt.", "Cmdr.", "Cdr.", "Brig.",
    "Gens.", "Sens.", "Reps.", "Govs.", "Supt.", "Insp.", "Det.", "Pres.", "Hon.", "Rt.", "Msgr.",
    "Atty.", "Amb.", "Mme.", "Mlle.", "Sr.", "Esq.",
    # organisations, places and addresses
    "inc.", "corp.", "ltd.", "bros.", "Dept.", "Univ.", "Assn.", "Ave.", "Blvd.", "Ft.", "Ste.",
    "Tex.", "Vt.", "Wyo.", "W.Va.",
)  # fmt: skip


def replace_lone_surrogates(text: str) -> str:
    """``text`` with every surrogate code point replaced by U+FFFD (same length, same offsets)."""
    return _LONE_SURROGATE.sub(REPLACEMENT, text) if _LONE_SURROGATE.search(text) else text


class SurrogateSafeTokenizer(Tokenizer):
    """spaCy's rule-based tokenizer, for any ``str``: lone surrogates become U+FFFD first.

    The rules, serialisation and ``pipe`` are spaCy's own. ``pipe`` calls ``self(text)`` and so
    goes through the replacement too.
    """

    def __call__(self, string: str) -> Doc:
        return super().__call__(replace_lone_surrogates(string))

    @classmethod
    def like(cls, tokenizer: Tokenizer) -> SurrogateSafeTokenizer:
        """A safe copy of a loaded ``tokenizer``, with the same rules and special cases."""
        _, args, *_ = tokenizer.__reduce__()
        return cls(*args, faster_heuristics=tokenizer.faster_heuristics)


@registry.tokenizers(TOKENIZER)
def create_tokenizer() -> Callable[[Language], Tokenizer]:
    """spaCy's ``spacy.Tokenizer.v1`` with the language's defaults, made surrogate-safe."""

    def tokenizer_factory(nlp: Language) -> Tokenizer:
        defaults = nlp.Defaults
        return SurrogateSafeTokenizer(
            nlp.vocab,
            rules=tokenizer_exceptions(nlp.lang, defaults.tokenizer_exceptions),
            prefix_search=compile_prefix_regex(defaults.prefixes).search if defaults.prefixes else None,
            suffix_search=compile_suffix_regex(defaults.suffixes).search if defaults.suffixes else None,
            infix_finditer=compile_infix_regex(defaults.infixes).finditer if defaults.infixes else None,
            token_match=defaults.token_match,
            url_match=defaults.url_match,
        )

    return tokenizer_factory


def tokenizer_exceptions(lang: str, defaults: dict) -> dict:
    """The language's exceptions, plus :data:`ENGLISH_ABBREVIATIONS` for English (spaCy's own
    entries win where both have one)."""
    extra = {a: [{ORTH: a}] for a in ENGLISH_ABBREVIATIONS} if lang == "en" else {}
    return {**extra, **defaults}


@registry.callbacks(MAX_LENGTH_CALLBACK)
def set_max_length(max_length: int = MAX_LENGTH) -> Callable[[Language], Language]:
    """An ``[nlp.after_creation]`` callback that sets ``nlp.max_length`` (characters per text)."""

    def after_creation(nlp: Language) -> Language:
        nlp.max_length = max_length
        return nlp

    return after_creation


def pipeline_config(lang: str) -> dict:
    """``spacy.blank`` config overrides that give a new ``lang`` pipeline both behaviours.

    Languages with their own tokenizer (Japanese, Chinese, ...) keep it; only the length limit
    applies to them."""
    config: dict = {"nlp": {"after_creation": {"@callbacks": MAX_LENGTH_CALLBACK, "max_length": MAX_LENGTH}}}
    if _uses_rule_based_tokenizer(lang):
        config["nlp"]["tokenizer"] = {"@tokenizers": TOKENIZER}
    return config


def accept_any_text(nlp: Language) -> Language:
    """Give a pipeline saved before this module existed the same behaviour, in place.

    A pipeline whose config already names the tokenizer or a creation callback is left alone."""
    settings = nlp.config["nlp"]
    if type(nlp.tokenizer) is Tokenizer and settings["tokenizer"].get("@tokenizers") == "spacy.Tokenizer.v1":
        nlp.tokenizer = SurrogateSafeTokenizer.like(nlp.tokenizer)
    if settings.get("after_creation") is None:
        nlp.max_length = max(nlp.max_length, MAX_LENGTH)
    return nlp


def _uses_rule_based_tokenizer(lang: str) -> bool:
    tokenizer = get_lang_class(lang).default_config["nlp"]["tokenizer"]
    return tokenizer.get("@tokenizers") == "spacy.Tokenizer.v1"
