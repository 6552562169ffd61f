"""Weights integrity: every file that shapes a saved model's output is checked against the SHA-256
recorded when it was saved, so a corrupted or edited pipeline fails naming the file instead of
loading and giving wrong results."""

from __future__ import annotations

import json
import logging
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ner.integrity import IntegrityError, sha256_file
from ner.model import CONFIG_FILE, TOKENIZER_DIR, WEIGHTS_FILE, ExtractionModel, _config_digest
from ner.pipeline import build_pipeline, load, save
from tests.conftest import SCHEMA, tiny_model
from tests.test_model import SENTENCES, assert_same_predictions


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A tiny model saved in full (weights + tokenizer), never modified: tests work on copies."""
    directory = tmp_path_factory.mktemp("saved") / "model"
    tiny_model(bias_entities=3.0).save(directory, storage="full")
    return directory


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "model"))


@pytest.fixture
def base_dir(tiny_encoder_dir, tmp_path) -> Path:
    """A private copy of the tiny encoder directory, to serve as (and be damaged as) a delta base."""
    return Path(shutil.copytree(tiny_encoder_dir, tmp_path / "base"))


def delta_model(base_dir: Path, layers: int | None = None) -> ExtractionModel:
    """A model over ``base_dir`` whose top layer moved (what fine-tuning does), ready for delta storage."""
    from ner.encoder import Encoder

    encoder = Encoder.from_pretrained(str(base_dir), overlap=16)
    if layers:
        encoder.keep_layers(layers)
    model = ExtractionModel.create(encoder, str(base_dir), {"spert": ({"type": "spert"}, SCHEMA)})
    with torch.no_grad():
        encoder.layers[-1].output.dense.weight.add_(0.05)
        model.heads["spert"].entity_classifier.bias[0] -= 3.0
    return model.eval()


def read_config(directory: Path) -> dict:
    return json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))


def write_config(directory: Path, config: dict) -> None:
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")


def scramble_tensor_data(path: Path) -> None:
    """Random bytes after a valid safetensors header: the file still loads, with other values."""
    data = bytearray(path.read_bytes())
    (header_size,) = struct.unpack("<Q", data[:8])
    start = 8 + header_size
    generator = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (len(data) - start,), generator=generator, dtype=torch.uint8)
    data[start:] = noise.numpy().tobytes()
    path.write_bytes(bytes(data))
    load_file(str(path))  # still a valid safetensors file


# ---------------------------------------------------------------------- the pipeline's own files
def test_random_bytes_after_the_safetensors_header_are_refused_naming_the_file(copy):
    scramble_tensor_data(copy / WEIGHTS_FILE)
    with pytest.raises(IntegrityError, match=rf"{WEIGHTS_FILE}.*sha256") as caught:
        ExtractionModel.load(copy)
    assert caught.value.path == copy / WEIGHTS_FILE
    assert caught.value.expected == read_config(copy)["integrity"]["files"][WEIGHTS_FILE]
    assert caught.value.actual == sha256_file(copy / WEIGHTS_FILE)
    assert caught.value.expected in str(caught.value) and caught.value.actual in str(caught.value)


def test_a_delta_pipeline_with_more_layers_in_its_config_is_refused(base_dir, tmp_path):
    """Trained on the bottom layer of a 2-layer base; "num_hidden_layers": 2 in model.json would run
    the untrained top layer as well, and give other results with no error at all."""
    delta_model(base_dir, layers=1).save(tmp_path / "m", storage="delta")
    config = read_config(tmp_path / "m")
    assert config["encoder"]["config"]["num_hidden_layers"] == 1
    config["encoder"]["config"]["num_hidden_layers"] = 2
    write_config(tmp_path / "m", config)
    with pytest.raises(IntegrityError, match=CONFIG_FILE) as caught:
        ExtractionModel.load(tmp_path / "m")
    assert caught.value.path == tmp_path / "m" / CONFIG_FILE


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["encoder"].update(window=c["encoder"]["window"] // 2),
        lambda c: c["heads"]["spert"]["config"].update(relation_threshold=0.1),
        lambda c: c["heads"]["spert"]["schema"]["entity_labels"].reverse(),
        lambda c: c["weights"].update(storage="delta"),
    ],
    ids=["window", "threshold", "labels", "storage"],
)
def test_any_edit_of_the_model_config_is_refused(copy, edit):
    config = read_config(copy)
    edit(config)
    write_config(copy, config)
    with pytest.raises(IntegrityError, match=CONFIG_FILE):
        ExtractionModel.load(copy)


def test_reformatting_the_model_config_is_not_an_edit(copy):
    """The hash covers the JSON value, not its layout: re-indenting model.json changes nothing."""
    (copy / CONFIG_FILE).write_text(json.dumps(read_config(copy), indent=4, sort_keys=True))
    ExtractionModel.load(copy)


def test_a_recorded_hash_cannot_be_changed_to_match_a_damaged_file(copy):
    """The manifest is covered by the config's own hash: updating a file's hash there is an edit."""
    scramble_tensor_data(copy / WEIGHTS_FILE)
    config = read_config(copy)
    config["integrity"]["files"][WEIGHTS_FILE] = sha256_file(copy / WEIGHTS_FILE)
    write_config(copy, config)
    with pytest.raises(IntegrityError, match=CONFIG_FILE):
        ExtractionModel.load(copy)


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json"])
def test_an_edited_tokenizer_file_is_refused(copy, name):
    path = copy / TOKENIZER_DIR / name
    path.write_text(path.read_text(encoding="utf-8").replace('"[UNK]"', '"[UNK2]"', 1), encoding="utf-8")
    with pytest.raises(IntegrityError, match=name):
        ExtractionModel.load(copy)


def test_a_missing_or_added_tokenizer_file_is_refused(saved, copy):
    (copy / TOKENIZER_DIR / "tokenizer.json").unlink()
    with pytest.raises(IntegrityError, match="tokenizer.json.*missing"):
        ExtractionModel.load(copy)
    shutil.copy(saved / TOKENIZER_DIR / "tokenizer.json", copy / TOKENIZER_DIR / "tokenizer.json")
    (copy / TOKENIZER_DIR / "added_tokens.json").write_text('{"[NEW]": 30522}')
    with pytest.raises(IntegrityError, match="added_tokens.json.*not recorded"):
        ExtractionModel.load(copy)


def test_a_format_2_config_without_its_manifest_is_refused(copy):
    config = read_config(copy)
    del config["integrity"]
    write_config(copy, config)
    with pytest.raises(IntegrityError, match=CONFIG_FILE):
        ExtractionModel.load(copy)


def test_a_pipeline_saved_before_hashes_loads_with_a_warning(copy, caplog):
    """Format 1 (no manifest) keeps loading, with a logged warning that says how to add the hashes."""
    config = read_config(copy)
    del config["integrity"]
    config["format_version"] = 1
    write_config(copy, config)
    with caplog.at_level(logging.WARNING, logger="ner.model"):
        model = ExtractionModel.load(copy)
    assert any(str(copy) in r.message and "without content hashes" in r.message for r in caplog.records)
    model.save(copy)
    assert read_config(copy)["integrity"]["files"][WEIGHTS_FILE] == sha256_file(copy / WEIGHTS_FILE)


def test_a_clean_round_trip_verifies_and_predicts_the_same(copy, caplog):
    with caplog.at_level(logging.WARNING, logger="ner.model"):
        loaded = ExtractionModel.load(copy)
    assert not caplog.records
    assert_same_predictions(loaded.predict(SENTENCES), tiny_model(bias_entities=3.0).predict(SENTENCES))


def test_spacy_load_of_a_damaged_pipeline_names_the_file(tmp_path):
    save(build_pipeline(tiny_model(), name="tiny"), tmp_path / "nlp")
    weights = tmp_path / "nlp" / "ner_extractor" / WEIGHTS_FILE
    scramble_tensor_data(weights)
    with pytest.raises(IntegrityError, match=str(weights)):
        load(tmp_path / "nlp")


# ---------------------------------------------------------------------- the delta base
def change_after_the_first_4096_values(weights: Path) -> None:
    """Every tensor keeps its first 4,096 values (all the old fingerprint read); one value after moves."""
    tensors = load_file(str(weights))
    key = "embeddings.word_embeddings.weight"
    assert tensors[key].numel() > 5000
    tensors[key].view(-1)[5000] += 0.5
    save_file(tensors, str(weights), metadata={"format": "pt"})


def test_a_delta_base_changed_after_its_first_4096_values_is_refused(base_dir, tmp_path):
    delta_model(base_dir).save(tmp_path / "m", storage="delta")
    ExtractionModel.load(tmp_path / "m")
    change_after_the_first_4096_values(base_dir / "model.safetensors")
    with pytest.raises(IntegrityError, match=f"{base_dir}.*differs from the one this model was trained from"):
        ExtractionModel.load(tmp_path / "m")


def test_a_delta_round_trip_still_restores_the_model(base_dir, tmp_path):
    model = delta_model(base_dir)
    model.save(tmp_path / "m", storage="delta")
    config = read_config(tmp_path / "m")
    assert set(config["integrity"]["files"]) == {WEIGHTS_FILE}
    assert len(config["weights"]["base_sha256"]) == 64
    assert_same_predictions(
        ExtractionModel.load(tmp_path / "m").predict(SENTENCES), model.predict(SENTENCES), 1e-3
    )


def test_the_config_digest_ignores_only_its_own_slot(copy):
    config = read_config(copy)
    assert _config_digest(config) == config["integrity"]["config_sha256"]
    config["integrity"]["config_sha256"] = "0" * 64
    assert _config_digest(config) == read_config(copy)["integrity"]["config_sha256"]


def test_a_manifest_cannot_name_files_outside_its_folder(copy):
    config = read_config(copy)
    config["integrity"]["files"]["../../etc/passwd"] = "0" * 64
    config["integrity"]["config_sha256"] = _config_digest(config)
    write_config(copy, config)
    with pytest.raises(IntegrityError, match="recorded outside"):
        ExtractionModel.load(copy)
