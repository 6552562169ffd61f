"""What a save then a load gives back, for each storage (issue 13, part 4).

* ``full``: every weight to the bit, so predictions are bit-identical (tests/test_components.py).
* ``delta``: the differences from the base encoder are rounded (fp16, int8; fp32 too, in the last
  bit), so a freshly trained model loads within that rounding. A pipeline that was itself loaded
  from a delta save is saved with the differences it was loaded from: its copy predicts bit-identically.
  Computing them again drifted by up to 1.5e-8 per weight (0.86755561 became 0.86755537).
"""

from __future__ import annotations

import pytest
import spacy
import torch

from ner.encoder import Encoder
from ner.model import ExtractionModel
from ner.pipeline import build_pipeline, extractor_model
from tests.conftest import SCHEMA

TEXTS = [
    "Leonardo DiCaprio starred in Christopher Nolan's thriller Inception.",
    "He lives in Los Angeles, California, and works for Warner Bros.",
    "Bill Gates lives in Redmond, Washington.",
]


def _fine_tuned(base_dir, seed: int = 1) -> ExtractionModel:
    """The base encoder with every weight moved a little, as training would, and a random head that
    predicts entities and relations."""
    encoder = Encoder.from_pretrained(str(base_dir))
    torch.manual_seed(seed)
    model = ExtractionModel.create(encoder, str(base_dir), {"spert": ({"type": "spert"}, SCHEMA)})
    with torch.no_grad():
        for parameter in model.encoder.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.01)
        model.heads["spert"].entity_classifier.bias[0] -= 2.0
    model.heads["spert"].config.relation_threshold = 0.3
    return model.eval()


def _predictions(nlp) -> list:
    """Everything the pipeline writes, scores as exact floats."""
    return [
        (
            [(s.start, s.end, s.label_) for s in doc.spans["spert"]],
            list(doc.spans["spert"].attrs["scores"]),
            doc._.relation_data,
        )
        for doc in nlp.pipe(TEXTS)
    ]


@pytest.mark.parametrize("dtype", ["int8", "float16", "float32"])
def test_a_loaded_delta_pipeline_saved_again_predicts_bit_identically(tmp_path, tiny_encoder_dir, dtype):
    trained = build_pipeline(_fine_tuned(tiny_encoder_dir), name="rt", storage="delta", dtype=dtype)
    trained.to_disk(tmp_path / "a")
    shipped = spacy.load(tmp_path / "a")
    shipped.to_disk(tmp_path / "b")
    copy = spacy.load(tmp_path / "b")
    original, again = extractor_model(shipped).state_dict(), extractor_model(copy).state_dict()
    assert [k for k in original if not torch.equal(original[k], again[k])] == []
    assert _predictions(copy) == _predictions(shipped)
    assert any(relations for *_, relations in _predictions(copy)), "the test model predicts relations"
    assert (tmp_path / "a" / "ner_extractor" / "weights.safetensors").read_bytes() == (
        tmp_path / "b" / "ner_extractor" / "weights.safetensors"
    ).read_bytes()


def test_a_changed_model_gets_new_differences(tmp_path, tiny_encoder_dir):
    """The kept differences are reused only while they give the weights to the bit: a loaded model
    trained further is saved with its new weights."""
    build_pipeline(_fine_tuned(tiny_encoder_dir), storage="delta", dtype="float16").to_disk(tmp_path / "a")
    nlp = spacy.load(tmp_path / "a")
    model = extractor_model(nlp)
    with torch.no_grad():
        model.encoder.transformer.encoder.layer[0].output.dense.weight.add_(0.05)
    nlp.to_disk(tmp_path / "b")
    saved = extractor_model(spacy.load(tmp_path / "b")).encoder.transformer.encoder.layer[0].output.dense
    changed = model.encoder.transformer.encoder.layer[0].output.dense.weight
    assert torch.allclose(saved.weight, changed, atol=1e-3)
    assert not torch.allclose(saved.weight, changed - 0.05, atol=1e-2)


def test_a_freshly_trained_delta_model_loads_within_the_rounding_of_its_dtype(tmp_path, tiny_encoder_dir):
    """What holds for a model saved from training: each weight comes back within fp16 rounding of its
    change (half a unit in the last of fp16's 11 bits, or fp16's smallest step for a tiny change),
    plus fp32 rounding of the sum: not bit-identical, which is why training scores the saved pipeline."""
    model = _fine_tuned(tiny_encoder_dir)
    build_pipeline(model, storage="delta", dtype="float16").to_disk(tmp_path / "a")
    loaded = extractor_model(spacy.load(tmp_path / "a")).encoder.state_dict()
    base = Encoder.from_pretrained(str(tiny_encoder_dir)).state_dict()
    exact = []
    for name, value in model.encoder.state_dict().items():
        change = (value - base[name]).abs()
        bound = change * 2**-11 + 2**-24 + value.abs() * 2**-23
        assert ((loaded[name] - value).abs() <= bound).all(), name
        exact.append(torch.equal(loaded[name], value))
    assert not all(exact), "fp16 differences are not exact"
