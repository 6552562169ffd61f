"""``ner train`` and ``ner evaluate`` refuse bad input with a message naming it and exit status 2.

Each case once trained 0 steps and saved a pipeline with scores (an empty train set), silently
fell back to other data (a missing ``--types``), or ended in a traceback with exit status 1.
Refusals of data come before training: no pipeline folder is written.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ner.cli import app
from ner.pipeline import build_pipeline, save
from tests.conftest import tiny_model

DATA = Path(__file__).parent / "data"
runner = CliRunner()
TOY = ("toy.toml", "toy_train.json", "toy_dev.json", "toy_types.json")
LATIN1_RECORD = [{"tokens": ["José", "lives"], "entities": [{"type": "Peop", "start": 0, "end": 1}]}]


def _latin1(path: Path) -> None:
    path.write_bytes(json.dumps(LATIN1_RECORD, ensure_ascii=False).encode("latin-1"))


# name: (file to break, how, expected message)
TRAIN_CASES = {
    "empty train set": ("toy_train.json", "[]", "train file .*toy_train.json holds no documents"),
    "empty dev set": ("toy_dev.json", "[]", "dev file .*toy_dev.json holds no documents; no epoch can be"),
    "empty types file": ("toy_types.json", "", "toy_types.json: the SpERT types file is empty"),
    "non-JSON types file": ("toy_types.json", "Peop, Org", r"toy_types.json:1: not valid JSON"),
    "types without entities": ("toy_types.json", '{"entities": {}, "relations": {}}', "no entity types"),
    "latin-1 corpus": ("toy_train.json", _latin1, r"toy_train.json:1:\d+: .* not utf-8 \(byte offset"),
    "no entities": ("toy_train.json", '[{"tokens": ["a", "b"]}]', "hold no entities; a head cannot learn"),
    "lone surrogate": ("toy_train.json", '[{"tokens": ["\\ud800"]}]', r"token 0 '\\ud800' holds a lone"),
}


@pytest.fixture()
def toy(tmp_path) -> Path:
    for name in TOY:
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


def _train(config: Path, encoder: Path | str, *extra: str):
    output = config.parent / "pipeline"
    args = ["train", str(config), "-o", str(output), "--set", f"encoder.name={encoder}", "--quiet", *extra]
    return runner.invoke(app, args), output


def _refused(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a message, not a traceback
    assert re.search(message, result.output), result.output


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_train_refuses_bad_data_before_training(toy, tiny_encoder_dir, case):
    name, content, message = TRAIN_CASES[case]
    if callable(content):
        content(toy / name)
    else:
        (toy / name).write_text(content, encoding="utf-8")
    result, output = _train(toy / "toy.toml", tiny_encoder_dir)
    _refused(result, message)
    assert not output.exists(), "refused before anything was written"


def test_train_refuses_an_encoder_it_cannot_load(toy):
    result, output = _train(toy / "toy.toml", "no-such-encoder")
    _refused(result, r"encoder 'no-such-encoder' cannot be loaded: it is not an offline alias")
    assert not output.exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a folder, not a TOML config file"),
        (lambda p: p.write_bytes("# Réglages\n".encode("latin-1")), r"c.toml:1:4: .* not utf-8"),
        (lambda p: None, "config file not found"),
        (lambda p: p.write_text("[tasks\n"), "not valid TOML"),
    ],
    ids=["folder", "latin-1", "missing", "not TOML"],
)
def test_train_refuses_a_config_it_cannot_read(tmp_path, make, message):
    make(tmp_path / "c.toml")
    _refused(runner.invoke(app, ["train", str(tmp_path / "c.toml")]), message)


def test_train_refuses_an_output_that_is_a_file_before_training(toy, tiny_encoder_dir):
    (toy / "taken").write_text("not a folder")
    result = runner.invoke(
        app,
        [
            "train",
            str(toy / "toy.toml"),
            "-o",
            str(toy / "taken"),
            "--set",
            f"encoder.name={tiny_encoder_dir}",
        ],
    )
    _refused(result, "output .*taken: cannot create the pipeline folder")
    assert not (toy / "metrics.json").exists()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    """A saved pipeline around a random tiny SpERT model (scores do not matter here)."""
    path = tmp_path_factory.mktemp("evaluate") / "pipeline"
    save(build_pipeline(tiny_model()), path)
    return path


def _evaluate(*args: str):
    return runner.invoke(app, ["evaluate", *args])


def test_evaluate_refuses_a_pipeline_it_cannot_load(tmp_path):
    _refused(_evaluate(str(tmp_path / "nowhere"), str(DATA / "toy_dev.json")), "cannot load the pipeline")
    _refused(_evaluate(str(tmp_path), str(DATA / "toy_dev.json")), "cannot load the pipeline")


def test_evaluate_refuses_a_latin1_file_unless_its_encoding_is_given(pipeline, tmp_path):
    _latin1(tmp_path / "dev.json")
    _refused(_evaluate(str(pipeline), str(tmp_path / "dev.json")), r"dev.json:1:\d+: .* not utf-8 \(byte")
    result = _evaluate(str(pipeline), str(tmp_path / "dev.json"), "--encoding", "latin-1")
    assert result.exit_code == 0, result.output
    assert "relations_with_types" in result.output


@pytest.mark.parametrize(
    ("data", "extra", "message"),
    [
        ("[]", [], "dev.json holds no documents: nothing to score"),
        (None, ["--types", "{tmp}/empty.json"], "empty.json: the SpERT types file is empty"),
        (None, ["--types", "{tmp}/missing.json"], "missing.json: no such SpERT types file"),
        ("folder", ["--format", "conll2003"], "dev.json: is a folder, not a corpus file"),
        (None, ["--encoding", "klingon"], "unknown text encoding 'klingon'"),
        (None, ["-o", "{tmp}"], "cannot write the scores to"),
    ],
    ids=["no documents", "empty types", "missing types", "folder", "unknown encoding", "output a folder"],
)
def test_evaluate_refuses_data_it_cannot_score(pipeline, tmp_path, data, extra, message):
    path = tmp_path / "dev.json"
    if data == "folder":
        path.mkdir()
    else:
        path.write_text(data or (DATA / "toy_dev.json").read_text())
    (tmp_path / "empty.json").write_text("")
    args = [arg.format(tmp=tmp_path) for arg in extra]
    _refused(_evaluate(str(pipeline), str(path), *args), message)
