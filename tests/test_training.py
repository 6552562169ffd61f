"""Training pieces: optimiser groups and what AdamW does to unseen embedding rows."""

from __future__ import annotations

import random

import torch

from ner.training import parameter_groups
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
