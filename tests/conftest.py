"""Shared fixtures: a tiny randomly initialised BERT with the real MiniLM fast tokenizer.

The tiny encoder has 2 layers of width 32 and a 64-position window, so long-text windowing
is exercised by short inputs and the whole suite runs in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from ner.corpora import read_spert_json, read_spert_types
from ner.documents import Document, Entity, Relation, RelationType, Schema
from ner.encoder import DEFAULT_ENCODER, Encoder
from ner.model import ExtractionModel
from ner.testing import TINY_BERT

DATA = Path(__file__).parent / "data"

SCHEMA = Schema(
    entity_labels=("Peop", "Org", "Loc", "Other"),
    relation_types=(
        RelationType("Work_For"),
        RelationType("Live_In"),
        RelationType("OrgBased_In"),
        RelationType("Located_In"),
        RelationType("Kill"),
    ),
)


def tiny_encoder(window: int | None = None, overlap: int = 16, seed: int = 0) -> Encoder:
    torch.manual_seed(seed)
    return Encoder.from_config(TINY_BERT, DEFAULT_ENCODER, window=window, overlap=overlap)


def tiny_model(seed: int = 0, bias_entities: float = 0.0) -> ExtractionModel:
    """A random SpERT model; ``bias_entities`` > 0 makes it predict many entities (to exercise decoding)."""
    model = ExtractionModel.create(tiny_encoder(seed=seed), "tiny", {"spert": ({"type": "spert"}, SCHEMA)})
    with torch.no_grad():
        model.heads["spert"].entity_classifier.bias[0] -= bias_entities
    return model.eval()


@pytest.fixture(scope="session")
def schema() -> Schema:
    return SCHEMA


@pytest.fixture()
def model() -> ExtractionModel:
    return tiny_model(bias_entities=3.0)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A tiny encoder saved as a Hugging Face directory (exercises the name-or-directory loading path)."""
    directory = tmp_path_factory.mktemp("tiny-encoder")
    encoder = tiny_encoder()
    encoder.transformer.save_pretrained(str(directory))
    encoder.tokenizer.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def toy_corpus() -> tuple[list[Document], Schema]:
    """The project's own small SpERT-format corpus in tests/data."""
    schema = read_spert_types(DATA / "toy_types.json")
    return read_spert_json(DATA / "toy_train.json", schema), schema


def sample_document() -> Document:
    words = ["Leonardo", "DiCaprio", "works", "for", "Warner", "Bros", "in", "Los", "Angeles", "."]
    return Document.from_words(
        words,
        entities=[Entity(0, 2, "Peop"), Entity(4, 6, "Org"), Entity(7, 9, "Loc")],
        relations=[Relation(0, 1, "Work_For"), Relation(1, 2, "OrgBased_In")],
    )


@pytest.fixture()
def rng() -> random.Random:
    return random.Random(1234)


def spert_predictions(model, texts) -> list[tuple[list, list]]:
    """Per text: the "spert" head's entities as (start, end, label, score) and relations as (head,
    tail, label, score), for comparing two ways of running one model."""
    out = []
    for result in model.predict(texts):
        entities, relations = result["spert"]
        out.append(
            (
                [(e.start, e.end, e.label, e.score) for e in entities],
                [(r.head, r.tail, r.label, r.score) for r in relations],
            )
        )
    return out


@pytest.fixture(scope="session")
def multitask(tmp_path_factory, tiny_encoder_dir) -> Path:
    """A two-head tagger pipeline (genes, chemicals) trained by ``ner train`` on tests/data's toy
    multi-task config with the tiny encoder; its training output names both heads' test scores."""
    from typer.testing import CliRunner

    from ner.cli import app

    output = tmp_path_factory.mktemp("mt") / "pipeline"
    args = ["train", str(DATA / "toy_multitask.toml"), "-o", str(output), "--quiet"]
    result = CliRunner().invoke(app, [*args, "--set", f"encoder.name={tiny_encoder_dir}"])
    assert result.exit_code == 0, result.output
    assert "genes test micro F1 (raw text): entities" in result.output and "chemicals test" in result.output
    assert "genes test micro F1 (pipeline tokens): entities" in result.output
    return output
