"""The extraction model: save/load (safetensors only), batching, prediction order, delta storage."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open

from ner.model import WEIGHTS_FILE, ExtractionModel, _apply_delta, _delta
from tests.conftest import tiny_model

SENTENCES = [
    ["Leonardo", "DiCaprio", "works", "for", "Warner", "Bros", "in", "Los", "Angeles", "."],
    ["Angela", "Merkel", "lives", "in", "Berlin", "."],
    ["The", "Schwarzenegger", "biography", "was", "published", "in", "Reykjavík", "."],
]


def flatten(results: list[dict]) -> list[tuple]:
    """Every predicted item with its score, for comparison."""
    items = []
    for index, result in enumerate(results):
        for head, (entities, relations) in result.items():
            items += [(index, head, "e", e.start, e.end, e.label, e.score) for e in entities]
            items += [(index, head, "r", r.head, r.tail, r.label, r.score) for r in relations]
    return items


def assert_same_predictions(first: list[dict], second: list[dict], tolerance: float = 1e-6) -> None:
    a, b = flatten(first), flatten(second)
    assert [item[:-1] for item in a] == [item[:-1] for item in b]
    assert [item[-1] for item in a] == pytest.approx([item[-1] for item in b], abs=tolerance)


@pytest.fixture(scope="module")
def model() -> ExtractionModel:
    model = tiny_model(bias_entities=3.0)
    model.heads["spert"].config.relation_threshold = 0.7  # random weights: a few hundred relations, not 20k
    return model


# ---------------------------------------------------------------------- persistence
def test_full_save_and_load_give_identical_predictions(model, tmp_path):
    """Weights, head config, schema, tokenizer and window settings all survive the round trip."""
    before = model.predict(SENTENCES)
    assert any(entities for result in before for entities, _ in result.values())
    model.save(tmp_path / "model", storage="full")
    loaded = ExtractionModel.load(tmp_path / "model")
    assert not loaded.training
    assert (loaded.encoder.window, loaded.encoder.overlap) == (model.encoder.window, model.encoder.overlap)
    assert loaded.heads["spert"].schema == model.heads["spert"].schema
    assert loaded.heads["spert"].config == model.heads["spert"].config
    assert_same_predictions(loaded.predict(SENTENCES), before)


def test_saved_weights_are_safetensors_and_nothing_is_pickled(model, tmp_path):
    """One safetensors file holds every weight; no ``.bin``/``.pt``/pickle file is written anywhere."""
    directory = tmp_path / "model"
    model.save(directory, storage="full")
    suffixes = {path.suffix for path in directory.rglob("*") if path.is_file()}
    assert not suffixes & {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}
    with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as weights:
        keys = set(weights.keys())
    expected = {f"heads.{k}" for k in model.heads.state_dict()}
    expected |= {f"encoder.{k}" for k in model.encoder.transformer.state_dict()}
    assert keys == expected


def test_an_unknown_format_version_is_rejected(model, tmp_path):
    directory = tmp_path / "model"
    model.save(directory)
    config = directory / "model.json"
    config.write_text(config.read_text().replace('"format_version": 2', '"format_version": 99'))
    with pytest.raises(ValueError, match="unsupported model format"):
        ExtractionModel.load(directory)


# ---------------------------------------------------------------------- batching and prediction
def test_predict_on_nothing_and_on_empty_documents(model):
    """No documents give no results; an empty document gets empty results for every head."""
    assert model.predict([]) == []
    results = model.predict([[], SENTENCES[1], []])
    assert results[0] == results[2] == {"spert": ([], [])}
    assert_same_predictions(results[1:2], model.predict([SENTENCES[1]]), tolerance=1e-5)


def test_predict_keeps_the_input_order_across_sorted_batches(model):
    """Documents are batched by length internally; results come back in input order."""
    docs = [SENTENCES[0], [], SENTENCES[2], SENTENCES[1], SENTENCES[0][:3]]
    batched = model.predict(docs, batch_size=2)
    one_by_one = [model.predict([doc])[0] for doc in docs]
    assert_same_predictions(batched, one_by_one, tolerance=1e-5)
    for doc, result in zip(docs, batched, strict=True):
        for entity in result["spert"][0]:
            assert entity.end <= len(doc)


def test_predict_restores_training_mode(model):
    model.train()
    try:
        model.predict([SENTENCES[1]])
        assert model.training
    finally:
        model.eval()


# ---------------------------------------------------------------------- delta storage
WORDS_KEY = "embeddings.word_embeddings.weight"


def test_delta_stores_only_what_changed_and_applying_it_restores_the_weights():
    """Two changed embedding rows -> 2 stored rows; a changed dense tensor -> its fp16 difference;
    an unchanged tensor -> nothing. Applying the delta restores each value within fp16 rounding of its change.
    """
    torch.manual_seed(0)
    base = {
        WORDS_KEY: torch.randn(10, 4),
        "encoder.layer.0.dense.weight": torch.randn(3, 3),
        "encoder.layer.0.norm.weight": torch.ones(3),
        "embeddings.position_ids": torch.arange(6),
    }
    state = {name: value.clone() for name, value in base.items()}
    state[WORDS_KEY][[2, 7]] += torch.randn(2, 4) * 1e-3
    state["encoder.layer.0.dense.weight"] += torch.randn(3, 3) * 1e-2

    stored = _delta(state, base, torch.float16)
    assert set(stored) == {
        f"rows.{WORDS_KEY}.index",
        f"rows.{WORDS_KEY}.delta",
        "delta.encoder.layer.0.dense.weight",
    }
    assert stored[f"rows.{WORDS_KEY}.index"].tolist() == [2, 7]
    assert stored[f"rows.{WORDS_KEY}.delta"].shape == (2, 4)
    assert all(value.dtype == torch.float16 for key, value in stored.items() if not key.endswith(".index"))

    untouched = {name: value.clone() for name, value in base.items()}
    restored = _apply_delta(base, stored)
    assert set(restored) == set(state)
    for name in state:
        change = (state[name] - base[name]).abs().float()
        error = (restored[name] - state[name]).abs().float()
        assert (error <= change * 2**-10 + 1e-7).all(), name  # fp16 keeps 11 significant bits of the change
    assert torch.equal(restored["encoder.layer.0.norm.weight"], base["encoder.layer.0.norm.weight"])
    assert torch.equal(
        restored[WORDS_KEY][[0, 1, 3, 4, 5, 6, 8, 9]], base[WORDS_KEY][[0, 1, 3, 4, 5, 6, 8, 9]]
    )
    assert all(torch.equal(base[name], untouched[name]) for name in base)  # the base is not modified


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10**6), st.floats(1e-6, 1.0))
def test_int8_deltas_restore_every_weight_within_half_a_step_of_its_rows_scale(seed, size):
    """int8 storage: one int8 per changed value plus an fp32 scale per row; a row's error is at most
    half its scale (its largest change / 254), a row that did not change is restored exactly."""
    generator = torch.Generator().manual_seed(seed)
    base = {
        WORDS_KEY: torch.randn(10, 8, generator=generator),
        "encoder.layer.0.dense.weight": torch.randn(6, 5, generator=generator),
        "encoder.layer.0.dense.bias": torch.randn(6, generator=generator),
    }
    state = {name: value.clone() for name, value in base.items()}
    state[WORDS_KEY][[1, 4]] += torch.randn(2, 8, generator=generator) * size
    state["encoder.layer.0.dense.weight"][:5] += torch.randn(5, 5, generator=generator) * size  # row 5 kept
    state["encoder.layer.0.dense.bias"] += torch.randn(6, generator=generator) * size
    stored = _delta(state, base, torch.int8)
    assert stored["delta.encoder.layer.0.dense.weight"].dtype == torch.int8
    assert stored["scale.delta.encoder.layer.0.dense.weight"].shape == (6, 1)
    assert stored[f"rows.{WORDS_KEY}.delta"].dtype == torch.int8
    restored = _apply_delta(base, stored)
    for name in state:
        change = state[name] - base[name]
        bound = change.abs().amax(dim=-1, keepdim=True) / 254 * (1 + 1e-5) + 1e-6
        assert ((restored[name] - state[name]).abs() <= bound).all(), name
    assert torch.equal(restored["encoder.layer.0.dense.weight"][5], base["encoder.layer.0.dense.weight"][5])
    assert torch.equal(restored[WORDS_KEY][[0, 2, 3]], base[WORDS_KEY][[0, 2, 3]])


def test_a_changed_integer_buffer_is_stored_in_full():
    base = {"embeddings.position_ids": torch.arange(6)}
    state = {"embeddings.position_ids": torch.arange(6).flip(0)}
    stored = _delta(state, base, torch.float16)
    assert set(stored) == {"full.embeddings.position_ids"}
    assert torch.equal(
        _apply_delta(base, stored)["embeddings.position_ids"], state["embeddings.position_ids"]
    )


def test_saved_weights_get_the_umasks_permissions(model, tmp_path):
    model.save(tmp_path / "m")
    weights = tmp_path / "m" / "weights.safetensors"
    assert weights.stat().st_mode & 0o777 == (tmp_path / "m" / "model.json").stat().st_mode & 0o777
