"""``ner app``: the streamlit command it runs and the environment the app reads its settings from."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from typer.testing import CliRunner

import ner.cli
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
    assert Path(command[4]) == Path(ner.cli.__file__).parents[1] / "app" / "main.py"
    options = dict(zip(command[5::2], command[6::2]))
    assert options == {
        "--server.port": "8600",
        "--server.address": "localhost",
        "--server.headless": "true",
        "--server.fileWatcherType": "none",
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "minimal",
    }
    assert env["NER_APP_PIPELINES"] == os.pathsep.join([str(mine.resolve()), "/from/env"])
    assert env["NER_APP_DATA_DIR"] == str((tmp_path / "data").resolve())
    assert env["HF_HUB_OFFLINE"] == "1"


def test_ner_app_refuses_a_missing_pipeline_folder(tmp_path):
    result = CliRunner().invoke(app, ["app", "--pipeline", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "Invalid value for '--pipeline'" in result.output
