"""Training pieces: optimiser groups, what AdamW does to unseen embedding rows, and refusals made
before the first step (an encoder that cannot be loaded, an output that cannot be written)."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ner.config import ConfigError, TrainConfig, load_config
from ner.heads.spert import SpertHead
from ner.training import check_output, load_encoder, monitored_tasks, parameter_groups, prepare_tasks, train
from tests.conftest import sample_document, tiny_model


def test_parameter_groups_split_rates_and_decay():
    model = tiny_model()
    groups = parameter_groups(model, weight_decay=0.01, lr=5e-5, head_lr=1e-3)
    by_id = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert by_id[id(named["heads.spert.entity_classifier.weight"])] == (1e-3, 0.01)
    assert by_id[id(named["heads.spert.entity_classifier.bias"])] == (1e-3, 0.0)
    embeddings = named["encoder.transformer.embeddings.word_embeddings.weight"]
    assert by_id[id(embeddings)] == (5e-5, 0.0), "no decay on word embeddings (delta storage)"
    layer_norm = next(p for n, p in named.items() if "LayerNorm" in n)
    assert by_id[id(layer_norm)][1] == 0.0
    assert len(by_id) == sum(1 for p in model.parameters() if p.requires_grad)


def test_unseen_word_embedding_rows_stay_bit_identical():
    """AdamW without decay never moves rows that get no gradient: the basis of delta storage."""
    model = tiny_model()
    model.train()
    before = model.encoder.transformer.get_input_embeddings().weight.detach().clone()
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.01, 1e-3, 1e-3), fused=True)
    head = model.heads["spert"]
    doc = sample_document()
    for _ in range(3):
        loss = head.loss(model.encoder.encode([doc.words]), head.targets([doc], random.Random(0)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.encoder.transformer.get_input_embeddings().weight.detach()
    changed = (after != before).any(-1).nonzero().flatten().tolist()
    used = {p for w in model.encoder.word_pieces([doc.words])[0] for p in w}
    used |= set(model.encoder.prefix + model.encoder.suffix)
    assert changed and set(changed) <= used


def _config(**encoder) -> TrainConfig:
    task = {"name": "t", "format": "crichton_iob", "train": "a.tsv"}
    return TrainConfig.model_validate({"tasks": [task], "encoder": encoder})


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no-such-encoder", "it is not an offline alias .*, not a folder, and not in the Hugging Face cache"),
        ("{tmp}", "the folder .* does not hold a Hugging Face model and tokenizer"),
        ("{tmp}/weights.bin", ".*weights.bin is a file; give a model folder"),
    ],
    ids=["unknown name", "empty folder", "file"],
)
def test_an_encoder_that_cannot_be_loaded_is_a_config_error_naming_it(tmp_path, monkeypatch, name, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "weights.bin").write_bytes(b"\0")
    name = name.format(tmp=tmp_path)
    with pytest.raises(ConfigError, match=rf"encoder '{re.escape(name)}' cannot be loaded: {message}"):
        load_encoder(_config(name=name))


def test_an_output_that_cannot_be_a_folder_is_refused_before_training(tmp_path):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(ConfigError, match="output .*taken: cannot create the pipeline folder"):
        check_output(tmp_path / "taken")
    with pytest.raises(ConfigError, match="cannot create the pipeline folder"):
        check_output(tmp_path / "taken" / "below")
    check_output(tmp_path / "new" / "run")
    assert (tmp_path / "new" / "run").is_dir()


def test_an_inherited_head_whose_dev_file_is_empty_is_not_monitored_and_the_run_goes_on(tmp_path, caplog):
    """Monitoring old heads only reports; an unusable dev file is named in a warning."""
    (tmp_path / "dev.json").write_text("[]")
    (tmp_path / "types.json").write_text('{"entities": ["Peop"], "relations": {}}')
    record = {"name": "spert", "format": "spert_json", "train": "x.json", "dev": "dev.json"}
    record |= {"types": "types.json", "head": {"type": "spert"}}
    with caplog.at_level("WARNING", logger="ner.training"):
        assert monitored_tasks([record], _config(), tmp_path, tiny_model()) == []
    assert "not monitoring head 'spert'" in caplog.text and "dev.json holds no documents" in caplog.text


def _kentucky_corpus(folder: Path) -> None:
    """A SpERT corpus whose gold needs aligning: a glued full stop, a hyphenated name, and a span
    on a no-break space, which no token of the pipeline's covers (not alignable)."""
    docs = [
        {
            "tokens": ["Smith", "lives", "in", "Kentucky."],
            "entities": [{"type": "Peop", "start": 0, "end": 1}, {"type": "Loc", "start": 3, "end": 4}],
            "relations": [{"type": "Live_In", "head": 0, "tail": 1}],
        },
        {
            "tokens": ["Jones", "works", "for", "Knight-Ridder", "in", "\u00a0", "."],
            "entities": [
                {"type": "Peop", "start": 0, "end": 1},
                {"type": "Org", "start": 3, "end": 4},
                {"type": "Loc", "start": 5, "end": 6},
            ],
            "relations": [
                {"type": "Work_For", "head": 0, "tail": 1},
                {"type": "OrgBased_In", "head": 1, "tail": 2},
            ],
        },
    ]
    (folder / "train.json").write_text(json.dumps(docs))
    (folder / "dev.json").write_text(json.dumps(docs[:1]))
    types = {
        "entities": ["Peop", "Org", "Loc"],
        "relations": {"Live_In": {}, "Work_For": {}, "OrgBased_In": {}},
    }
    (folder / "types.json").write_text(json.dumps(types))
    (folder / "run.toml").write_text(
        'data_root = "."\n[[tasks]]\nname = "re"\nformat = "spert_json"\ntrain = "train.json"\n'
        'dev = "dev.json"\ntest = "dev.json"\ntypes = "types.json"\n[tasks.head]\ntype = "spert"\n'
        "[training]\nepochs = 1\n"
    )


def test_training_sees_the_pipelines_tokens_and_reports_each_files_alignment(
    tmp_path, tiny_encoder_dir, monkeypatch, caplog
):
    _kentucky_corpus(tmp_path)
    config = load_config(tmp_path / "run.toml", {"encoder.name": str(tiny_encoder_dir)})
    seen: list[list[str]] = []
    targets = SpertHead.targets

    def record(self, batch, rng):
        seen.extend(doc.words for doc in batch)
        return targets(self, batch, rng)

    monkeypatch.setattr(SpertHead, "targets", record)
    with caplog.at_level("INFO", logger="ner.tasks"):
        result = train(config, tmp_path, tmp_path / "out", progress=False)
    assert sorted(seen) == [
        ["Jones", "works", "for", "Knight", "-", "Ridder", "in", "."],
        ["Smith", "lives", "in", "Kentucky", "."],
    ]
    reports = json.loads((tmp_path / "out" / "metrics.json").read_text())["alignment"]["re"]
    assert reports == result["alignment"]["re"]
    train_report = {k: v for k, v in reports[0].items() if k != "examples"}
    assert train_report == {
        "split": "train",
        "file": "train.json",
        "spans": 5,
        "normalised": 1,
        "unaligned": 1,
        "relations_dropped": 1,
    }
    assert [(r["split"], r["unaligned"]) for r in reports[1:]] == [("dev", 0), ("test", 0)]
    warning = next(r for r in caplog.records if r.levelname == "WARNING")
    assert "task 're', train file train.json: 5 gold spans, 1 with a trailing mark" in warning.message
    assert "1 not aligned" in warning.message and "'\\xa0' (Loc)" in warning.message


def test_corpus_tokenization_keeps_the_corpus_words(tmp_path, tiny_encoder_dir):
    _kentucky_corpus(tmp_path)
    overrides = {"encoder.name": str(tiny_encoder_dir), "training.tokenization": "corpus"}
    config = load_config(tmp_path / "run.toml", overrides)
    (data,) = prepare_tasks(config, tmp_path, tiny_model())
    assert data.train[0].words == ["Smith", "lives", "in", "Kentucky."] and data.alignment == []
    assert data.train[0].span_text(3, 4) == "Kentucky."
    config = load_config(tmp_path / "run.toml", {"encoder.name": str(tiny_encoder_dir)})
    (data,) = prepare_tasks(config, tmp_path, tiny_model())
    assert data.train[0].words == ["Smith", "lives", "in", "Kentucky", "."]
    assert data.train[0].span_text(3, 4) == "Kentucky"


def test_ner_train_prints_the_per_file_report(tmp_path, tiny_encoder_dir):
    """What a user running ``ner train`` reads (the log goes to the terminal, not to pytest)."""
    _kentucky_corpus(tmp_path)
    command = [sys.executable, "-m", "ner.cli", "train", str(tmp_path / "run.toml"), "--quiet"]
    command += ["--output", str(tmp_path / "out"), "--set", f"encoder.name={tiny_encoder_dir}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    train_line = "task 're', train file train.json: 5 gold spans, 1 with a trailing mark stripped, 1 not"
    assert train_line in done.stderr
    assert "task 're', dev file dev.json: 2 gold spans, 1 with a trailing mark stripped, 0 not" in done.stderr
