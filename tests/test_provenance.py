"""The provenance record saved with pipelines names the command and the commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ner import provenance as prov

ROOT = Path(__file__).parents[1]


def test_it_names_the_command_and_the_checkout_commit():
    record = prov.provenance(["/usr/bin/ner", "compact", "runs/x", "out"])
    assert record["command"] == "ner compact runs/x out"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert record["git_commit"] == head.stdout.strip()
    assert isinstance(record["uncommitted_changes"], bool)


def test_outside_a_checkout_the_commit_is_none(monkeypatch, tmp_path):
    monkeypatch.setattr(prov, "_ROOT", tmp_path)
    record = prov.provenance(["ner", "train"])
    assert record["git_commit"] is None and record["uncommitted_changes"] is None


def test_peak_rss_is_this_processes_in_mb():
    assert 10 < prov.peak_rss_mb() < 100_000
