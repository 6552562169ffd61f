"""The BIO tagging head: targets, loss, decoding, learning, and its place in the model and pipeline."""

from __future__ import annotations

import random

import pytest
import torch

from ner.documents import Document, Entity, Schema
from ner.heads import parse_head_config
from ner.heads.tagger import IGNORE, TaggerConfig, TaggerHead, bio_labels
from ner.model import ExtractionModel
from ner.pipeline import build_pipeline
from tests.conftest import tiny_encoder

SCHEMA = Schema(entity_labels=("Gene", "Disease"))
DOCS = [
    Document.from_words(
        ["BRCA1", "mutations", "cause", "breast", "cancer", "."],
        entities=[Entity(0, 1, "Gene"), Entity(3, 5, "Disease")],
    ),
    Document.from_words(["TP53", "is", "a", "gene"], entities=[Entity(0, 1, "Gene")]),
    Document.from_words(["no", "entities", "here", "at", "all", ",", "really"]),
]


def test_labels_and_targets():
    head = TaggerHead(8, SCHEMA)
    assert (
        head.labels == bio_labels(SCHEMA.entity_labels) == ["O", "B-Gene", "I-Gene", "B-Disease", "I-Disease"]
    )
    targets = head.targets(DOCS)
    assert targets.shape == (3, 7)
    assert targets[0].tolist() == [1, 0, 0, 3, 4, 0, IGNORE]
    assert targets[1].tolist() == [1, 0, 0, 0, IGNORE, IGNORE, IGNORE]


def test_a_few_steps_learn_the_toy_tags():
    """A tiny encoder plus tagger overfits three sentences: the decoder then returns the gold spans."""
    torch.manual_seed(0)
    encoder = tiny_encoder()
    head = TaggerHead(encoder.hidden_size, SCHEMA, TaggerConfig(dropout=0.0))
    model = ExtractionModel(encoder, {"bio": head}, "tiny")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = encoder.tokenize([d.words for d in DOCS])
    targets = head.targets(DOCS, random.Random(0))
    losses = []
    for _ in range(60):
        loss = head.loss(encoder(batch), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    outputs = model.predict([d.words for d in DOCS])
    for doc, output in zip(DOCS, outputs):
        entities, relations = output["bio"]
        assert [(e.start, e.end, e.label) for e in entities] == [
            (e.start, e.end, e.label) for e in doc.entities
        ]
        assert relations == [] and all(0.0 < e.score <= 1.0 for e in entities)


def test_decoding_uses_conlleval_chunking():
    """Logits forced to ``O I-Gene I-Gene O``: the stray I- tags still form one entity."""
    encoder = tiny_encoder()
    head = TaggerHead(encoder.hidden_size, SCHEMA).eval()
    encoding = encoder.encode([["a", "b", "c", "d"]])
    forced = torch.tensor([[0, 2, 2, 0]])
    head.logits = lambda _: torch.nn.functional.one_hot(forced, len(head.labels)).float() * 10
    ((entities, _),) = head.decode(encoding)
    assert [(e.start, e.end, e.label) for e in entities] == [(1, 3, "Gene")]


def test_registry_save_load_and_spacy(tmp_path):
    assert parse_head_config({"type": "tagger", "dropout": 0.3}) == TaggerConfig(dropout=0.3)
    with pytest.raises(ValueError, match="unknown head type"):
        parse_head_config({"type": "crf-of-the-future"})
    model = ExtractionModel.create(tiny_encoder(), "tiny", {"bio": ({"type": "tagger"}, SCHEMA)})
    model.save(tmp_path / "m")
    reloaded = ExtractionModel.load(tmp_path / "m")
    words = [["BRCA1", "causes", "cancer"]]
    assert reloaded.predict(words) == model.eval().predict(words)
    doc = build_pipeline(reloaded)("BRCA1 causes cancer.")
    assert "bio" in doc.spans and doc._.relations == []
