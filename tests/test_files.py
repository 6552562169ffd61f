"""Atomic writes: the old file or the new one, never half of each, and no temporary left behind."""

from __future__ import annotations

import os

import pytest

from ner.files import write_atomic


def test_replaces_the_file_whole(tmp_path):
    path = tmp_path / "out.json"
    write_atomic(path, b"old")
    write_atomic(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_crash_before_the_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    write_atomic(path, b"old")

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
