"""Batch extraction: resumable append-only output, a real kill -9 mid-run, worker processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ner.batch.output import JsonlLog, record_key
from ner.batch.runner import RunOptions, errors_path, run
from ner.pipeline import build_pipeline, save
from tests.conftest import tiny_model


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pipeline") / "tiny"
    model = tiny_model(bias_entities=-1.5)  # some spans and a few relations: real output, fast
    model.heads["spert"].config.relation_threshold = 0.7
    save(build_pipeline(model, name="tiny"), path)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Documents of mixed size and format, plus a few that cannot be used."""
    root = tmp_path_factory.mktemp("docs")
    names = ["Angela Merkel", "Satya Nadella", "Paris", "Microsoft", "Redmond", "Booth", "Lincoln"]
    for i in range(60):
        sentence = f"{names[i % 7]} met {names[(i * 3) % 7]} in {names[(i * 5) % 7]}. "
        (root / f"doc{i:03d}.txt").write_text(sentence * (1 + i % 9), encoding="utf-8")
    lines = [json.dumps({"text": f"{names[i % 7]} works for {names[(i + 3) % 7]}."}) for i in range(12)]
    (root / "records.jsonl").write_text(
        "\n".join(lines[:10] + ["{broken"] + lines[10:]) + "\n", encoding="utf-8"
    )
    (root / "page.html").write_text("<p>Satya Nadella runs <b>Microsoft</b>.</p>", encoding="utf-8")
    (root / "empty.txt").write_text("", encoding="utf-8")
    (root / "binary.txt").write_bytes(b"\x00\x01binary")
    return root


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _extract_command(folder: Path, output: Path, pipeline: Path, *extra: str) -> list[str]:
    args = ["extract", str(folder), "-o", str(output), "--pipeline", str(pipeline), "--quiet", *extra]
    return [sys.executable, "-m", "ner.cli", *args]


@pytest.fixture(scope="module")
def reference(folder, pipeline, tmp_path_factory) -> tuple[Path, object]:
    """An uninterrupted single-process run, the yardstick of the other tests."""
    output = tmp_path_factory.mktemp("reference") / "out.jsonl"
    return output, run([folder], output, RunOptions(str(pipeline), batch_size=2), progress=False)


def test_a_complete_run_has_every_document_once(reference):
    output, summary = reference
    records = _records(output)
    assert summary.documents == len(records) == 60 + 12 + 1
    assert summary.failures == 3  # the broken JSONL line, the empty file, the binary file
    assert len({record_key(r) for r in records}) == len(records)
    assert sum(len(r["entities"]) for r in records) > 50, "offsets below are checked on real output"
    assert sum(len(r["relations"]) for r in records) > 0
    for record in records:
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["text"]
    assert {r["line"] for r in records if r["source"].endswith(".jsonl")} == set(range(1, 14)) - {11}
    assert len(_records(errors_path(output))) == 3


# Runs ``ner extract`` with a test-only hold: after KILL_AFTER complete records, the next record is
# written half (as a kill mid-write leaves it), a marker file appears, and the run waits for its
# SIGKILL. The kill point is then a record count, not a race with the machine's speed.
_HELD_EXTRACT = """
import os, sys, threading
from pathlib import Path
from ner.batch import output

output_path, marker, after = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), int(sys.argv[3])
original = output.JsonlLog.append

def held_append(self, record):
    if self.path.resolve() == output_path and self.records == after:
        data = output.encode_line(record)
        os.write(self._fd, data[: len(data) // 2])
        marker.write_text("held")
        threading.Event().wait()  # until the SIGKILL
    original(self, record)

output.JsonlLog.append = held_append
sys.argv = ["ner", *sys.argv[4:]]
from ner.cli import app
app()
"""
KILL_AFTER = 20


def test_killed_with_sigkill_and_resumed_gives_the_uninterrupted_result(
    folder, pipeline, reference, tmp_path
):
    output, marker = tmp_path / "killed.jsonl", tmp_path / "held"
    command = _extract_command(folder, output, pipeline, "--batch-size", "2")
    held = [sys.executable, "-c", _HELD_EXTRACT, str(output), str(marker), str(KILL_AFTER), *command[3:]]
    process = subprocess.Popen(held)
    while not marker.exists():  # no clock: the run cannot finish before the hold
        assert process.poll() is None, "the run ended before writing its records"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not output.read_bytes().endswith(b"\n"), "the kill left half a record"
    assert len(_records_tolerant(output)) == KILL_AFTER
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 1, resumed.stderr  # 1: finished, with the 3 unusable inputs listed
    assert f"({KILL_AFTER} already done)" in resumed.stdout
    assert _records(output) == _records(reference[0]), "every document exactly once, same results, same order"


def _records_tolerant(path: Path) -> list[dict]:
    """Complete lines only (a kill may leave a partial last line, which the next run cuts off)."""
    data = path.read_bytes()
    return [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]


def test_an_incomplete_last_line_is_cut_off_on_reopening(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"source": "a", "sha256": "1"}\n{"source": "b", "sha')
    with JsonlLog(path) as log:
        assert log.records == 1 and ("a", None, None, "1") in log and ("b", None, None, None) not in log
        log.append({"source": "c", "sha256": "3"})
    assert path.read_text() == '{"source": "a", "sha256": "1"}\n{"source": "c", "sha256": "3"}\n'


def test_a_file_that_is_not_our_output_is_refused(tmp_path):
    path = tmp_path / "other.jsonl"
    path.write_text("hello\n")
    with pytest.raises(ValueError, match="other.jsonl:1: not a JSON record"):
        JsonlLog(path)


def test_two_workers_give_the_same_records_as_one(folder, pipeline, reference, tmp_path):
    output = tmp_path / "two.jsonl"
    summary = run([folder], output, RunOptions(str(pipeline), batch_size=2, workers=2), progress=False)
    assert summary.documents == 73
    assert _records(output) == _records(reference[0])


def test_ray_with_two_actors_writes_the_same_records_as_the_local_path(folder, pipeline, reference, tmp_path):
    ray = pytest.importorskip("ray")
    output = tmp_path / "ray.jsonl"
    try:
        options = RunOptions(str(pipeline), batch_size=2, workers=2, engine="ray")
        summary = run([folder], output, options, progress=False)
    finally:
        ray.shutdown()
    assert summary.documents == 73 and summary.failures == 3
    assert _records(output) == _records(reference[0])
