"""Readers and writers that turn corpora into :class:`ner.documents.Document` and back."""

from ner.corpora.jsonl import extraction_record, write_jsonl
from ner.corpora.spert_json import read_spert_json, read_spert_types, write_spert_json

__all__ = ["extraction_record", "read_spert_json", "read_spert_types", "write_jsonl", "write_spert_json"]
