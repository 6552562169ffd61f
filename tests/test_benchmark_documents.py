"""The batch benchmark's document generator: deterministic, mixed sizes and formats, all readable."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ner.batch.sources import SourceText, find_files, read_items

_SPEC = importlib.util.spec_from_file_location(
    "make_documents", Path(__file__).resolve().parents[1] / "benchmarks" / "make_documents.py"
)
make_documents = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(make_documents)


def _contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    make_documents.write_documents(tmp_path / "a", 60, seed=3)
    make_documents.write_documents(tmp_path / "b", 60, seed=3)
    make_documents.write_documents(tmp_path / "c", 60, seed=4)
    assert _contents(tmp_path / "a") == _contents(tmp_path / "b")
    assert _contents(tmp_path / "a") != _contents(tmp_path / "c")


def test_mixed_sizes_and_formats_all_readable(tmp_path):
    paths = make_documents.write_documents(tmp_path, 300)
    assert {p.suffix for p in paths} == {".txt", ".md", ".html"}
    items = [i for p in find_files([tmp_path]) for i in read_items(p)]
    assert len(items) == 300 and all(isinstance(i, SourceText) for i in items)
    words = sorted(len(i.text.split()) for i in items)
    assert words[0] < 100 and words[-1] > 2000  # paragraphs and long reports beyond the encoder window
    assert all("<p>" not in i.text for i in items)  # HTML markup dropped by the reader
