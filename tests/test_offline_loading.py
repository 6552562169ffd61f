"""Loading a saved pipeline never touches the network, even with Hugging Face's offline mode off:
an encoder that is not on the machine fails at once, naming it and saying how to make it available."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import huggingface_hub.constants
import pytest
import spacy

from ner.encoder import Encoder, EncoderUnavailableError
from ner.model import CONFIG_FILE, ExtractionModel, _config_digest
from ner.pipeline import build_pipeline, load, save
from tests.conftest import SCHEMA, tiny_model

MADE_UP = "made-up-org/no-such-encoder-4f1c"


class NetworkAttempt(RuntimeError):
    """Raised by the patched socket functions: not an OSError, so no library retries it."""


@pytest.fixture
def no_network(monkeypatch) -> list[tuple]:
    """Offline mode off (as in a user's Python session), and every name lookup or connection is
    recorded and refused, so a test sees an attempt instead of waiting on one."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    # the hub client fetches a registry once per process while building request headers, even for
    # local_files_only: forget it, so every test sees that fetch if the load path ever asks the hub
    monkeypatch.setattr("huggingface_hub.utils._detect_agent._registry", None, raising=False)
    attempts: list[tuple] = []

    def refuse(kind):
        def call(*args, **kwargs):
            attempts.append((kind, args[:2]))
            raise NetworkAttempt(f"test: no network ({kind})")

        return call

    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    return attempts


def rename_encoder(pipeline: Path, name: str) -> None:
    """Point a saved delta pipeline at another base encoder, recording the edit as if saved so."""
    path = pipeline / "ner_extractor" / CONFIG_FILE
    config = json.loads(path.read_text(encoding="utf-8"))
    config["encoder"]["name"] = name
    if "integrity" in config:  # a format 1 pipeline has no hashes to update
        config["integrity"]["config_sha256"] = _config_digest(config)
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")


@pytest.fixture
def hub_pipeline(tiny_encoder_dir, tmp_path) -> Path:
    """A delta pipeline saved over a local base, then renamed to a hub encoder this machine lacks."""
    base = Path(shutil.copytree(tiny_encoder_dir, tmp_path / "base"))
    encoder = Encoder.from_pretrained(str(base), overlap=16)
    model = ExtractionModel.create(encoder, str(base), {"spert": ({"type": "spert"}, SCHEMA)})
    save(build_pipeline(model, storage="delta"), tmp_path / "nlp")
    rename_encoder(tmp_path / "nlp", MADE_UP)
    return tmp_path / "nlp"


@pytest.mark.parametrize("loader", [load, spacy.load], ids=["ner.pipeline.load", "spacy.load"])
def test_a_pipeline_naming_an_absent_hub_encoder_fails_at_once_without_the_network(
    hub_pipeline, no_network, loader
):
    with pytest.raises(EncoderUnavailableError) as caught:
        loader(hub_pipeline)
    message = str(caught.value)
    assert MADE_UP in message
    assert "pip install" in message and "hf download" in message and "never downloads" in message
    assert no_network == []


def test_a_pipeline_naming_a_missing_directory_says_so_without_the_network(
    hub_pipeline, no_network, tmp_path
):
    rename_encoder(hub_pipeline, str(tmp_path / "gone" / "encoder"))
    with pytest.raises(EncoderUnavailableError, match="gone/encoder"):
        load(hub_pipeline)
    assert no_network == []


def test_a_full_pipeline_loads_without_the_network(tmp_path, no_network):
    save(build_pipeline(tiny_model(), name="tiny"), tmp_path / "nlp")
    nlp = load(tmp_path / "nlp")
    assert nlp("Angela Merkel lives in Berlin.").text
    assert no_network == []


def test_an_encoder_for_training_may_still_come_from_the_hub(no_network):
    """Only loading a pipeline is offline: a name given for training goes to Hugging Face as usual
    (here it reaches for the network, which the test refuses)."""
    with pytest.raises(
        OSError, match=MADE_UP
    ):  # transformers' "couldn't connect" once the hub is unreachable
        Encoder.from_pretrained(MADE_UP)
    assert no_network and no_network[0][0] == "getaddrinfo"


def test_a_hub_encoder_in_the_hugging_face_cache_loads_without_the_network(
    hub_pipeline, tiny_encoder_dir, tmp_path, monkeypatch, no_network
):
    """Pre-downloaded with ``hf download`` (here: laid out as the hub cache does) -> loads offline."""
    cache = tmp_path / "hub"
    snapshot = cache / f"models--{MADE_UP.replace('/', '--')}" / "snapshots" / "0123abcd"
    shutil.copytree(tiny_encoder_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    nlp = load(hub_pipeline)
    assert nlp("Angela Merkel lives in Berlin.").text
    assert no_network == []
