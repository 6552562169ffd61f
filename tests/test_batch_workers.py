"""Batch extraction with worker processes that cannot work: the run stops with the reason (exit 2),
never hangs, and keeps what was written.

The runs go through ``ner extract`` in a subprocess with a deadline: before the fix, a worker whose
pipeline did not load was respawned by ``multiprocessing.Pool`` forever, and the test must fail on
that, not hang with it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ner.batch.runner import PipelineUnavailable, RunOptions, errors_path, run
from ner.cli import app
from ner.pipeline import build_pipeline, save
from tests.conftest import tiny_model

GOOD = "Angela Merkel met Satya Nadella in Paris."
DEADLINE = 300  # seconds: a hang guard only, far above a run of these few documents on a busy machine


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pipeline") / "tiny"
    save(build_pipeline(tiny_model(bias_entities=-1.5), name="tiny"), path)
    return path


@pytest.fixture
def damaged(pipeline, tmp_path) -> Path:
    """A copy of the pipeline whose weights file was damaged after saving: the folder passes the
    parent's checks (it exists), but loading it fails, in the parent or in a worker."""
    copy = Path(shutil.copytree(pipeline, tmp_path / "damaged"))
    (copy / "ner_extractor" / "weights.safetensors").write_bytes(b"not safetensors")
    return copy


def _documents(folder: Path, count: int, first: int = 0) -> Path:
    folder.mkdir(exist_ok=True)
    for number in range(first, first + count):
        (folder / f"{number:02d}.txt").write_text(f"{GOOD} Number {number}.", encoding="utf-8")
    return folder


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _ner(*args: str, script: str | None = None) -> subprocess.CompletedProcess:
    """``ner *args`` (or ``python -c script *args``) in its own process group; past the deadline the
    whole group is killed, workers included, and the test fails instead of hanging."""
    command = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "ner.cli", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"ner {' '.join(args)} did not end within {DEADLINE} s (hung)")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_workers_that_cannot_load_the_pipeline_stop_the_run_with_the_reason(pipeline, damaged, tmp_path):
    """Before: the workers' initializer raised, the pool respawned them forever, and the run hung
    without a word. Now: exit 2 naming the pipeline and why, the earlier records kept, nothing listed
    as a failed document (none was tried)."""
    docs = _documents(tmp_path / "docs", 2)
    output = tmp_path / "out.jsonl"
    assert run([docs], output, RunOptions(str(pipeline)), progress=False).documents == 2
    _documents(docs, 6, first=2)
    args = ["extract", str(docs), "-o", str(output), "--pipeline", str(damaged), "--quiet", "--workers", "2"]
    result = _ner(*args, "--batch-size", "1")
    assert result.returncode == 2, result.stderr
    assert f"the pipeline {damaged} cannot be loaded in a worker process" in result.stderr
    assert "weights.safetensors" in result.stderr and "a rerun resumes" in result.stderr
    assert "Traceback" not in result.stderr
    assert [Path(r["source"]).name for r in _records(output)] == ["00.txt", "01.txt"]
    assert errors_path(output).read_text() == ""  # no document was tried, so none is listed


def test_a_pipeline_that_cannot_be_loaded_in_process_is_a_message_too(damaged, tmp_path):
    """Before: a traceback and exit 1, the status of a finished run with skipped inputs."""
    docs = _documents(tmp_path / "docs", 1)
    args = ["extract", str(docs), "-o", str(tmp_path / "out.jsonl"), "--pipeline", str(damaged), "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"the pipeline {damaged} cannot be loaded: IntegrityError" in result.output
    with pytest.raises(PipelineUnavailable, match="weights.safetensors"):
        run([docs], tmp_path / "other.jsonl", RunOptions(str(damaged)), progress=False)


# Runs ``ner extract`` and SIGKILLs one worker process once the first record is written, as the
# kernel's out-of-memory killer would; the kill point is a record count, not a race with the clock.
_KILL_A_WORKER = """
import multiprocessing, os, signal, sys
from ner.batch import output

original, killed = output.JsonlLog.append, []

def append_then_kill_a_worker(self, record):
    original(self, record)
    if not killed:
        victim = multiprocessing.active_children()[0]
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        killed.append(victim.pid)

output.JsonlLog.append = append_then_kill_a_worker
sys.argv = ["ner", *sys.argv[1:]]
from ner.cli import app
app()
"""


def test_a_worker_killed_mid_run_stops_the_run_and_a_rerun_completes_it(pipeline, tmp_path):
    """Before: the pool respawned the killed worker and carried on, or, when the worker died
    holding a chunk, waited for that chunk forever. Now: exit 2 with the reason; a rerun resumes."""
    docs = _documents(tmp_path / "docs", 12)
    output = tmp_path / "out.jsonl"
    args = ["extract", str(docs), "-o", str(output), "--pipeline", str(pipeline), "--quiet", "--workers", "2"]
    result = _ner(*args, "--batch-size", "1", script=_KILL_A_WORKER)
    assert result.returncode == 2, result.stderr
    assert "a worker process stopped abruptly" in result.stderr and "a rerun resumes" in result.stderr
    assert "Traceback" not in result.stderr
    written = len(_records(output))
    assert 1 <= written < 12
    resumed = CliRunner().invoke(app, args[:-2])  # the rest, in this process
    assert resumed.exit_code == 0, resumed.output
    assert f"({written} already done)" in resumed.output
    assert sorted(Path(r["source"]).name for r in _records(output)) == [f"{n:02d}.txt" for n in range(12)]


def test_ray_actors_that_cannot_load_the_pipeline_stop_the_run_with_the_reason(pipeline, damaged, tmp_path):
    """Before: Ray's traceback of the actor's constructor (a page of frames, exit 1). Now: exit 2,
    the pipeline and why, and the records written before kept, as with worker processes."""
    pytest.importorskip("ray")
    docs = _documents(tmp_path / "docs", 2)
    output = tmp_path / "out.jsonl"
    assert run([docs], output, RunOptions(str(pipeline)), progress=False).documents == 2
    _documents(docs, 2, first=2)
    args = ["extract", str(docs), "-o", str(output), "--pipeline", str(damaged), "--quiet"]
    result = _ner(*args, "--engine", "ray", "--workers", "1")
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"the pipeline {damaged} cannot be loaded in a Ray actor" in result.stderr
    assert "weights.safetensors" in result.stderr and "a rerun resumes" in result.stderr
    assert "Traceback" not in result.stderr
    assert [Path(r["source"]).name for r in _records(output)] == ["00.txt", "01.txt"]
