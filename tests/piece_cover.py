"""What characters the model reads for an entity: the encoder's word pieces, mapped back to the text.

``span.text == text[span.start_char:span.end_char]`` holds for any spaCy span by construction, so it
checks nothing. The property that matters is that the pieces the model scored for an entity's words
cover exactly the entity's characters: none dropped (a character the tokenizer loses is a character
the model never saw), none borrowed from outside the entity."""

from __future__ import annotations

import unicodedata

from spacy.tokens import Span
from transformers import PreTrainedTokenizerFast


def piece_characters(tokenizer: PreTrainedTokenizerFast, span: Span) -> set[int]:
    """Document character positions covered by the word pieces of ``span``'s words (the fast
    tokenizer's offset mapping, the words given as the extractor gives them: the non-space tokens'
    texts, pre-split, no special tokens). A word with no piece is read as one [UNK] (the encoder's
    fallback), which stands for the whole word."""
    words = [token for token in span if not token.is_space]
    encoded = tokenizer(
        [token.text for token in words],
        is_split_into_words=True,
        add_special_tokens=False,
        return_offsets_mapping=True,
    )
    covered: set[int] = set()
    for (start, end), word in zip(encoded["offset_mapping"], encoded.word_ids(), strict=True):
        covered.update(range(words[word].idx + start, words[word].idx + end))
    for index, token in enumerate(words):
        if index not in encoded.word_ids():
            covered.update(range(token.idx, token.idx + len(token.text)))
    return covered


def _discarded_by_normalizers(character: str) -> bool:
    """Controls, format characters, marks and spaces: what BERT's and SentencePiece's normalizers
    drop or fold into the character before (an NFD accent, a zero-width joiner)."""
    return unicodedata.category(character)[0] in "CMZ"


def assert_pieces_cover_the_entity(tokenizer: PreTrainedTokenizerFast, span: Span) -> None:
    """The pieces stay inside the entity, and every character of it they leave out is one a
    normalizer discards: no letter, digit or mark of punctuation of the entity went unread."""
    text = span.doc.text
    covered = piece_characters(tokenizer, span)
    inside = set(range(span.start_char, span.end_char))
    unread = sorted(i for i in inside - covered if not _discarded_by_normalizers(text[i]))
    assert covered and covered <= inside and not unread, (
        f"{span.text!r} [{span.start_char}:{span.end_char}]: pieces cover {sorted(covered)}, "
        f"outside the entity {sorted(covered - inside)}, unread characters {unread}"
    )
