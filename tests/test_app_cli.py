"""``ner app``: the streamlit command it runs and the environment the app reads its settings from."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ner.cli
from app.extraction import MAX_UPLOAD_BYTES
from ner.cli import app


def test_ner_app_runs_streamlit_headless_with_the_pipelines_and_data_dir(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ner.cli.os, "execve", lambda path, command, env: calls.append((command, env)))
    monkeypatch.setenv("NER_APP_PIPELINES", "/from/env")
    mine = tmp_path / "mine"
    mine.mkdir()
    result = CliRunner().invoke(
        app, ["app", "--port", "8600", "--pipeline", str(mine), "--data-dir", str(tmp_path / "data")]
    )
    assert result.exit_code == 0, result.output
    ((command, env),) = calls
    assert command[0] == sys.executable  # exec'd in place: a signal to `ner app` reaches the server
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"]
    # the app behind its Host check (app/server.py wraps main.py), never main.py on its own
    assert Path(command[4]) == Path(ner.cli.__file__).parents[1] / "app" / "server.py"
    options = dict(zip(command[5::2], command[6::2]))
    assert options == {
        "--server.port": "8600",
        "--server.address": "localhost",
        "--server.headless": "true",
        "--server.fileWatcherType": "none",
        "--server.maxUploadSize": str(math.ceil(MAX_UPLOAD_BYTES / 2**20)),  # what the app accepts
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "minimal",
    }
    assert env["NER_APP_PIPELINES"] == os.pathsep.join([str(mine.resolve()), "/from/env"])
    assert env["NER_APP_DATA_DIR"] == str((tmp_path / "data").resolve())
    assert (tmp_path / "data").is_dir()
    assert env["NER_APP_ALLOWED_HOSTS"] == "localhost,127.0.0.1,::1"
    assert env["HF_HUB_OFFLINE"] == "1"


def test_ner_app_keeps_its_data_in_annotations_by_default(tmp_path, monkeypatch):
    """Without --data-dir the data folder is ./annotations (created), never the folder of a
    dataset that gets opened."""
    calls = []
    monkeypatch.setattr(ner.cli.os, "execve", lambda path, command, env: calls.append(env))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["app", "--host", "0.0.0.0", "--allowed-host", "annotate.example.org"])
    assert result.exit_code == 0, result.output
    assert calls[0]["NER_APP_DATA_DIR"] == str((tmp_path / "annotations").resolve())
    assert (tmp_path / "annotations").is_dir()
    assert calls[0]["NER_APP_ALLOWED_HOSTS"] == "localhost,127.0.0.1,::1,*ip,annotate.example.org"


def test_ner_app_refuses_a_data_dir_that_is_a_file(tmp_path, monkeypatch):
    monkeypatch.setattr(ner.cli.os, "execve", lambda *args: pytest.fail("the server must not start"))
    (tmp_path / "file").write_text("")
    result = CliRunner().invoke(app, ["app", "--data-dir", str(tmp_path / "file")])
    assert result.exit_code == 2 and "as the data folder" in result.output


def test_ner_app_refuses_a_missing_pipeline_folder(tmp_path):
    result = CliRunner().invoke(app, ["app", "--pipeline", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "Invalid value for '--pipeline'" in result.output
