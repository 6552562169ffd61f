"""Training configs: validation messages, data-root resolution, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from ner.config import ConfigError, TrainingSettings, expand_env, load_config

DATA = Path(__file__).parent / "data"


def test_the_shipped_conll04_config_is_valid_and_has_the_paper_defaults():
    config_path = Path(__file__).parents[1] / "pipelines" / "conll04.toml"
    try:
        config = load_config(config_path)
    except ConfigError as error:
        pytest.skip(f"corpus not available here: {error}")
    t = config.training
    assert (t.warmup, t.weight_decay, t.grad_clip, t.batch_size, t.epochs) == (0.1, 0.01, 1.0, 2, 20)
    assert (t.learning_rate, t.head_learning_rate) == (1e-4, 1e-3)  # measured choice, see BENCHMARKS.md
    assert config.head.max_span_width == 10 and config.head.relation_threshold == 0.4
    assert config.data_path("train", config_path.parent).name == "train.json"


def test_training_defaults_are_the_papers():
    t = TrainingSettings()
    assert (t.learning_rate, t.head_learning_rate, t.warmup, t.weight_decay) == (5e-5, None, 0.1, 0.01)
    assert (t.grad_clip, t.batch_size, t.epochs) == (1.0, 2, 20)


def test_unknown_keys_are_rejected_by_name(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\ntrain="a"\ntypes="b"\n[training]\nepochz = 3\n')
    with pytest.raises(ConfigError, match="epochz"):
        load_config(path)


def test_wrong_values_get_a_clear_message(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\ntrain="a"\ntypes="b"\n[head]\nrelation_threshold = 1.5\n')
    with pytest.raises(ConfigError, match="relation_threshold"):
        load_config(path)


def test_missing_data_files_are_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\nroot="."\ntrain="nope.json"\ntypes="types.json"\n')
    with pytest.raises(ConfigError, match="nope.json"):
        load_config(path)


def test_environment_variable_root(monkeypatch):
    monkeypatch.setenv("NER_TEST_ROOT", str(DATA))
    assert expand_env("${NER_TEST_ROOT:-/elsewhere}/x") == f"{DATA}/x"
    monkeypatch.delenv("NER_TEST_ROOT")
    assert expand_env("${NER_TEST_ROOT:-/elsewhere}/x") == "/elsewhere/x"


def test_overrides_apply_before_validation():
    config = load_config(DATA / "toy.toml", {"training.epochs": 5, "encoder.name": "somewhere"})
    assert config.training.epochs == 5 and config.encoder.name == "somewhere"


def test_invalid_toml_is_reported(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[data\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
