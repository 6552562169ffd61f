"""``ner.pipeline.save``: the same pipeline saves to the same bytes in any Python process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SAVE = (
    "import spacy, sys; from ner.pipeline import save; "
    "nlp = spacy.blank('xx'); nlp.add_pipe('sentencizer'); save(nlp, sys.argv[1])"
)


def _save_with_hash_seed(folder: Path, seed: str) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    subprocess.run([sys.executable, "-c", SAVE, str(folder)], check=True, env=env)
    return (folder / "sentencizer.json").read_bytes()


def test_a_sentencizer_saves_the_same_bytes_under_any_hash_seed(tmp_path):
    """spaCy writes the punctuation set in hash order; a re-saved shipped pipeline showed a diff of
    sentencizer.json with nothing changed."""
    first = _save_with_hash_seed(tmp_path / "a", "1")
    second = _save_with_hash_seed(tmp_path / "b", "2")
    assert first == second
