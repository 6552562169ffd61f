"""Readers and writers that turn corpora into :class:`ner.documents.Document` and back."""

from ner.corpora.conll import FORMATS, read_conll, read_corpus, spans_to_bio, tags_to_spans, write_conll
from ner.corpora.spert_json import CorpusError, read_spert_json, read_spert_types, write_spert_json
from ner.corpora.text import check_encoding, read_text

__all__ = [
    "FORMATS",
    "CorpusError",
    "check_encoding",
    "read_conll",
    "read_corpus",
    "read_spert_json",
    "read_spert_types",
    "read_text",
    "spans_to_bio",
    "tags_to_spans",
    "write_conll",
    "write_spert_json",
]
