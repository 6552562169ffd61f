"""Training configs: validation messages, data-root resolution, overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from ner.config import ConfigError, TrainConfig, TrainingSettings, expand_env, load_config

DATA = Path(__file__).parent / "data"
PIPELINES = Path(__file__).parents[1] / "pipelines"


def _shipped(config_path: Path) -> TrainConfig:
    """A shipped config, validated in full; only an absent corpus folder skips, never another error.

    The keys are checked first and without data (:func:`test_every_shipped_config_has_only_known_keys`),
    so a typo fails here rather than hiding behind a skip."""
    config = TrainConfig.model_validate(tomllib.loads(config_path.read_text(encoding="utf-8")))
    if not config.root(config_path.parent).is_dir():
        pytest.skip(f"corpus folder not available here: {config.root(config_path.parent)}")
    return load_config(config_path)


@pytest.mark.parametrize("config_path", sorted(PIPELINES.glob("*.toml")), ids=lambda path: path.name)
def test_every_shipped_config_has_only_known_keys(config_path):
    """Runs with no corpora: the schema forbids unknown keys, and that check needs no data."""
    try:
        TrainConfig.model_validate(tomllib.loads(config_path.read_text(encoding="utf-8")))
    except ValidationError as error:
        pytest.fail(f"{config_path.name}: {error}")


def test_a_shipped_config_with_a_typo_fails_without_corpora(tmp_path, monkeypatch):
    """The guard above is real: an unknown key in a copy of a shipped config is an error, not a skip."""
    monkeypatch.setenv("NER_DATA_DIR", str(tmp_path / "no-corpora-here"))
    path = tmp_path / "conll04.toml"
    path.write_text((PIPELINES / "conll04.toml").read_text(encoding="utf-8") + "\nepochz = 3\n")
    with pytest.raises(ValidationError, match="epochz"):
        _shipped(path)


def test_the_shipped_conll04_config_is_valid_and_has_the_paper_defaults():
    config_path = PIPELINES / "conll04.toml"
    config = _shipped(config_path)
    t = config.training
    assert (t.warmup, t.weight_decay, t.grad_clip, t.batch_size, t.epochs) == (0.1, 0.01, 1.0, 2, 20)
    assert (t.learning_rate, t.head_learning_rate) == (1e-4, 1e-3)  # measured choice, see BENCHMARKS.md
    (task,) = config.tasks
    assert task.head.max_span_width == 10 and task.head.relation_threshold == 0.4
    assert (config.root(config_path.parent) / task.train).is_file()


def test_the_bioner_config_names_four_typed_tasks():
    config_path = PIPELINES / "bioner.toml"
    config = _shipped(config_path)
    assert [(t.name, t.entity_type) for t in config.tasks] == [
        ("bc2gm", "Gene"),
        ("bc5cdr_chem", "Chemical"),
        ("bc5cdr_disease", "Disease"),
        ("ncbi_disease", "Disease"),
    ]
    assert all(t.head.type == "tagger" for t in config.tasks) and config.training.sampling == "shuffle"


def test_training_defaults_are_the_papers():
    t = TrainingSettings()
    assert (t.learning_rate, t.head_learning_rate, t.warmup, t.weight_decay) == (5e-5, None, 0.1, 0.01)
    assert (t.grad_clip, t.batch_size, t.epochs) == (1.0, 2, 20)


TASK = '[[tasks]]\nname = "t"\nformat = "crichton_iob"\ntrain = "a.tsv"\n'


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        (TASK + "[training]\nepochz = 3\n", "epochz"),
        (TASK + "colour = 1\n", "colour"),
        (TASK + "[tasks.head]\ntype = 'tagger'\ndropot = 0.2\n", "dropot"),
        (
            TASK.replace("crichton_iob", "spert_json")
            + "[tasks.head]\ntype = 'spert'\nrelation_threshold = 1.5\n",
            "relation_threshold",
        ),
        (TASK + "[tasks.head]\ntype = 'crf'\n", "'spert', 'tagger'"),
        (TASK.replace("crichton_iob", "iob3"), "iob3"),
        (TASK.replace("crichton_iob", "biobert_tsv"), "untyped B/I/O; set entity_type"),
        (TASK.replace("crichton_iob", "spert_json"), "needs 'types'"),
        (TASK + TASK, "task names must be unique"),
        (TASK.replace('"t"', '"bad name"'), "name"),
        ("[training]\nepochs = 3\n", "tasks"),
        (TASK + "[training]\nsampling = 'random'\n", "round_robin"),
        (TASK + "encoding = 'klingon'\n", "unknown text encoding 'klingon'"),
    ],
)
def test_wrong_configs_are_rejected_with_a_message_naming_the_problem(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text))


def test_missing_data_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"tasks\[0\] \(t\)\.train = .*a\.tsv does not exist"):
        load_config(_write(tmp_path, 'data_root = "."\n' + TASK))


def test_init_from_must_be_a_pipeline(tmp_path, monkeypatch):
    (tmp_path / "a.tsv").write_text("x\tO\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="not a saved pipeline"):
        load_config(_write(tmp_path, 'data_root = "."\ninit_from = "nowhere"\n' + TASK))


def test_only_tasks_selects_and_names_unknown_ones():
    config = load_config(DATA / "toy_multitask.toml", only_tasks=["chemicals"])
    assert [t.name for t in config.tasks] == ["chemicals"]
    with pytest.raises(ConfigError, match=r"no task named \['proteins'\]"):
        load_config(DATA / "toy_multitask.toml", only_tasks=["proteins"])


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


def test_a_folder_given_as_the_config_is_named(tmp_path):
    with pytest.raises(ConfigError, match=rf"{tmp_path}: is a folder, not a TOML config file"):
        load_config(tmp_path)


def test_an_undecodable_config_names_the_file_and_the_byte(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(("# Réglages\n" + TASK).encode("latin-1"))
    with pytest.raises(
        ConfigError, match=r"c\.toml:1:4: this TOML config file is not utf-8 \(byte offset 3: e9"
    ):
        load_config(path)


@pytest.mark.parametrize("key", ["training.epochs.x", "tasks.0.batch_size"])
def test_an_override_below_a_value_is_refused(key):
    with pytest.raises(ConfigError, match=rf"cannot set {key}: .* is not a table"):
        load_config(DATA / "toy.toml", {key: 1})


@pytest.mark.parametrize("name", ["multilingual.toml", "multilingual_en_es_nl.toml"])
def test_the_multilingual_configs_are_valid(name):
    config = _shipped(PIPELINES / name)
    assert config.encoder.name == "multilingual-e5-small" and config.encoder.freeze_word_embeddings
    assert config.export.lang == "xx" and config.tasks[0].format == "conll2003"


#: the hold-out configs: language -> the shipped multilingual recipe's training files it leaves out
HOLD_OUTS = {
    "de": {"wikiann_de/train.tsv"},
    "es": {"conll2002_es/train.txt"},
    "nl": {"conll2002_nl/train.txt", "wikiann_nl/train.tsv"},
}


@pytest.mark.parametrize("lang", sorted(HOLD_OUTS))
def test_each_hold_out_config_is_the_shipped_recipe_without_its_language(lang):
    """The zero-shot figures compare a hold-out run with the shipped one, so nothing else may differ."""

    def read(path: Path) -> dict:
        return TrainConfig.model_validate(tomllib.loads(path.read_text(encoding="utf-8"))).model_dump()

    shipped = read(PIPELINES / "multilingual_ner.toml")
    held = read(PIPELINES.parent / "benchmarks" / "configs" / f"multilingual_holdout_{lang}.toml")
    for task, kept in zip(shipped["tasks"], held["tasks"], strict=True):
        assert kept["train"] == [path for path in task["train"] if path not in HOLD_OUTS[lang]]
        assert {**task, "train": None} == {**kept, "train": None}
    left_out = {p for task in shipped["tasks"] for p in task["train"]} - {
        p for task in held["tasks"] for p in task["train"]
    }
    assert left_out == HOLD_OUTS[lang]
    for key in ("encoder", "training"):
        assert held[key] == shipped[key]
    assert {**held["export"], "pipeline_name": None} == {**shipped["export"], "pipeline_name": None}
