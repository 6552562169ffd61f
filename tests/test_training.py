"""Training pieces: optimiser groups, what AdamW does to unseen embedding rows, and refusals made
before the first step (an encoder that cannot be loaded, an output that cannot be written)."""

from __future__ import annotations

import random
import re

import pytest
import torch

from ner.config import ConfigError, TrainConfig
from ner.training import check_output, load_encoder, monitored_tasks, parameter_groups
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
