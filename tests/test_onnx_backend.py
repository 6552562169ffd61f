"""The ONNX Runtime backend of the encoder (:mod:`ner.onnx_backend`): the same predictions as torch
in fp32, int8 close to them, a cache that detects damage and model changes, nothing downloaded, and
a pipeline setting that survives a save and load."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import torch

from ner.components import Extractor
from ner.integrity import sha256_file
from ner.onnx_backend import MANIFEST, MODEL_FILE, OnnxBackendError, OnnxRunner, use_backend
from ner.pipeline import blank_pipeline
from tests.conftest import spert_predictions, tiny_model

pytest.importorskip("onnxruntime")

#: fp32 ORT against torch: the largest difference of an entity or relation score
SCORE_TOLERANCE = 1e-4
ROOT = Path(__file__).parents[1]
TEXTS = [
    text.split()
    for text in (
        "Leonardo DiCaprio works for Warner Bros in Los Angeles .",
        "John Wilkes Booth , who assassinated President Abraham Lincoln , was an actor .",
        "Satya Nadella is the chief executive of Microsoft , based in Redmond , Washington .",
        "Paris",
    )
]
#: about 400 word pieces: seven windows of the tiny encoder's 64 positions
LONG_TEXT = ("The committee met in Geneva with delegates from Norway and Chile ; " * 25).split()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("NER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def model():
    """A random model tuned to predict some entities, not every span (and so not millions of pairs)."""
    return tiny_model(bias_entities=-2.0)


def predictions(model, texts) -> list[tuple[list, list]]:
    return spert_predictions(model, texts)


def assert_same(expected, actual, tolerance: float = SCORE_TOLERANCE) -> None:
    """The same entities and relations, each score within ``tolerance``."""
    for (want_e, want_r), (got_e, got_r) in zip(expected, actual, strict=True):
        assert [e[:3] for e in got_e] == [e[:3] for e in want_e]
        assert [r[:3] for r in got_r] == [r[:3] for r in want_r]
        for want, got in zip(want_e + want_r, got_e + got_r):
            assert got[3] == pytest.approx(want[3], abs=tolerance)


def entity_keys(doc) -> list[tuple]:
    return [(e.start, e.end, e.label_) for e in doc.ents]


def relation_keys(doc) -> list[tuple]:
    return [(r["head"], r["tail"], r["label"]) for r in doc._.relation_data]


def only_cache_dir(cache: Path) -> Path:
    (folder,) = (cache / "onnx").iterdir()
    return folder


def test_fp32_gives_torch_entities_relations_and_scores(model):
    expected = predictions(model, TEXTS)
    assert sum(len(e) for e, _ in expected) > 5 and sum(len(r) for _, r in expected) > 0
    use_backend(model.encoder, "onnx")
    assert isinstance(model.encoder.runtime, OnnxRunner)
    assert_same(expected, predictions(model, TEXTS))


def test_a_long_text_over_several_windows_gives_the_same_result(model):
    assert len(model.encoder.tokenize([LONG_TEXT]).window_ids) >= 4
    expected = predictions(model, [LONG_TEXT])
    assert expected[0][0], "the tiny model finds entities in the long text"
    use_backend(model.encoder, "onnx")
    assert_same(expected, predictions(model, [LONG_TEXT]))


@pytest.mark.parametrize("mode", ["int8", "int8-u8u8"])
def test_int8_agreement_is_measured_recorded_and_close(model, cache, mode):
    """int8 is not torch: the manifest records its agreement on the probe windows (mean cosine at
    least 0.99), and at least 80% of the entities are the same ones (F1 of int8 against torch);
    for both of ORT's AVX2 settings (U8S8 per channel with reduce_range, and U8U8)."""
    expected = predictions(model, TEXTS + [LONG_TEXT])
    use_backend(model.encoder, "onnx", mode)
    assert json.loads((only_cache_dir(cache) / MANIFEST).read_text())["quantize"] == mode
    agreement = json.loads((only_cache_dir(cache) / MANIFEST).read_text())["agreement"]
    assert agreement["mean_cosine"] >= 0.99 and agreement["tokens"] > 0
    actual = predictions(model, TEXTS + [LONG_TEXT])
    want = {(i, e[:3]) for i, (entities, _) in enumerate(expected) for e in entities}
    got = {(i, e[:3]) for i, (entities, _) in enumerate(actual) for e in entities}
    assert 2 * len(want & got) / (len(want) + len(got)) >= 0.8


def test_the_fp32_cache_is_reused(model, cache):
    use_backend(model.encoder, "onnx")
    folder = only_cache_dir(cache)
    built = (folder / MODEL_FILE).stat().st_mtime_ns
    use_backend(tiny_model(bias_entities=-2.0).encoder, "onnx")  # the same weights: the same key
    assert only_cache_dir(cache) == folder and (folder / MODEL_FILE).stat().st_mtime_ns == built


def test_a_corrupt_cached_file_is_detected_and_rebuilt(model, cache, caplog):
    expected = predictions(model, TEXTS)
    use_backend(model.encoder, "onnx")
    path = only_cache_dir(cache) / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="ner.onnx_backend"):
        use_backend(model.encoder, "onnx")
    assert "damaged cache" in caplog.text
    recorded = json.loads((path.parent / MANIFEST).read_text())["files"][MODEL_FILE]
    assert sha256_file(path) == recorded
    assert_same(expected, predictions(model, TEXTS))


def test_a_manifest_for_another_model_is_rebuilt(model, cache, caplog):
    use_backend(model.encoder, "onnx")
    manifest_path = only_cache_dir(cache) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "key": "0" * 64}))
    with caplog.at_level(logging.WARNING, logger="ner.onnx_backend"):
        use_backend(model.encoder, "onnx")
    assert "built from another model" in caplog.text
    assert json.loads(manifest_path.read_text())["key"] == manifest["key"]


def test_a_changed_model_builds_a_new_file(model, cache):
    """A stale file (built before the weights changed) is never used: the key covers every weight."""
    use_backend(model.encoder, "onnx")
    old = only_cache_dir(cache)
    with torch.no_grad():
        model.encoder.layers[-1].output.dense.weight.mul_(1.5)
    use_backend(model.encoder, "torch")
    expected = predictions(model, TEXTS)
    use_backend(model.encoder, "onnx")
    assert model.encoder.runtime.path.parent != old
    assert_same(expected, predictions(model, TEXTS))


def test_nothing_is_downloaded(model, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    expected = predictions(model, TEXTS)
    use_backend(model.encoder, "onnx")
    assert_same(expected, predictions(model, TEXTS))


def test_training_mode_runs_torch_with_gradients(model):
    use_backend(model.encoder, "onnx")
    model.encoder.train()
    encoding = model.encoder.encode(TEXTS[:1])
    assert encoding.states.requires_grad


def test_a_pipeline_with_the_onnx_backend_round_trips(model, tmp_path):
    texts = [" ".join(words) for words in TEXTS]
    nlp = blank_pipeline("en")
    nlp.add_pipe("sentencizer")
    component = nlp.add_pipe("ner_extractor", config={"backend": "onnx"})
    component.model = model
    assert isinstance(model.encoder.runtime, OnnxRunner)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    extractor = loaded.get_pipe("ner_extractor")
    assert extractor.backend == "onnx" and isinstance(extractor.model.encoder.runtime, OnnxRunner)
    assert extractor.model.encoder.layers_released  # ORT runs them: the torch copies are dropped
    extractor.set_backend("torch")
    assert extractor.model.encoder.runtime is None
    torch_docs = list(loaded.pipe(texts))
    extractor.set_backend("onnx")
    for want, got in zip(torch_docs, loaded.pipe(texts)):
        assert entity_keys(got) == entity_keys(want)
        assert relation_keys(got) == relation_keys(want)


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="backend must be one of"):
        Extractor(backend="tensorrt")
    with pytest.raises(ValueError, match="onnx_quantize must be one of"):
        Extractor(backend="onnx", onnx_quantize="int4")


def test_without_onnxruntime_torch_works_and_onnx_says_what_to_install(model, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    Extractor(model=model)
    with pytest.raises(OnnxBackendError, match="pip install onnxruntime"):
        Extractor(backend="onnx", model=model)


def test_the_package_imports_without_onnxruntime():
    code = (
        "import sys; sys.modules['onnxruntime'] = None; sys.modules['onnx'] = None\n"
        "import ner.components, ner.pipeline, ner.onnx_backend\n"
        "assert 'onnxruntime' not in [m for m in sys.modules if sys.modules[m] is not None]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ})


@pytest.mark.integration
def test_the_shipped_pipeline_gives_the_same_entities_through_onnx():
    from ner.pipeline import load

    texts = [(ROOT / "data" / "examples" / name).read_text(encoding="utf-8") for name in ("business.txt",)]
    texts += ["Leonardo DiCaprio starred in Christopher Nolan's thriller Inception."]
    nlp = load()
    expected = [entity_keys(doc) for doc in nlp.pipe(texts)]
    relations = [relation_keys(doc) for doc in nlp.pipe(texts)]
    nlp.get_pipe("ner_extractor").set_backend("onnx")
    docs = list(nlp.pipe(texts))
    assert [entity_keys(doc) for doc in docs] == expected
    assert [relation_keys(doc) for doc in docs] == relations
