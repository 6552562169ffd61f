"""Lean loading (:mod:`ner.lean_loading`, :mod:`ner.tensor_files`): a saved model loaded tensor by
tensor gives, to the bit, the weights and predictions of loading the whole base and cutting it; the
base is still hashed in full (the layers that are cut and every block of word-embedding rows); the
differences are added in place; and no copy of the word-embedding matrix is made while loading."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import spacy
import torch
from safetensors.torch import load_file, save_file
from torch.utils._python_dispatch import TorchDispatchMode

from ner import lean_loading
from ner import model as model_module
from ner.embeddings import CompactEmbedding, compact_word_embeddings, is_compact
from ner.encoder import Encoder
from ner.integrity import IntegrityError
from ner.lean_loading import EmbeddingSettings, add_delta
from ner.model import ExtractionModel, _apply_delta, _delta, _fingerprint, state_sha256
from ner.tensor_files import TensorFile
from tests.conftest import SCHEMA, tiny_model
from tests.test_model import SENTENCES

WORDS = "embeddings.word_embeddings.weight"
SHIPPED = Path(__file__).resolve().parents[1] / "ner" / "pretrained" / "conll04_spert"


@pytest.fixture
def base_dir(tiny_encoder_dir, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_encoder_dir, tmp_path / "base"))


def fine_tuned(base_dir: Path, layers: int | None = None) -> ExtractionModel:
    """A model over ``base_dir`` as training leaves it: some embedding rows, a layer and the heads moved."""
    encoder = Encoder.from_pretrained(str(base_dir), overlap=16)
    if layers:
        encoder.keep_layers(layers)
    model = ExtractionModel.create(encoder, str(base_dir), {"spert": ({"type": "spert"}, SCHEMA)})
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        words = encoder.transformer.get_input_embeddings().weight
        rows = torch.tensor([5, 100, 4095, 4096, 20000, words.shape[0] - 1])  # across block edges
        words[rows] += torch.randn(len(rows), words.shape[1], generator=generator) * 0.01
        encoder.layers[-1].output.dense.weight.add_(0.05)
        model.heads["spert"].entity_classifier.bias[0] -= 3.0
    return model.eval()


def plain_load(directory: Path, monkeypatch, embeddings: EmbeddingSettings | None = None) -> ExtractionModel:
    """The model loaded the plain way: the whole base through transformers, then cut and compacted."""
    with monkeypatch.context() as patch:
        patch.setattr(model_module, "load_delta_encoder", lambda *args, **kwargs: None)
        return ExtractionModel.load(directory, embeddings)


def outputs(model: ExtractionModel) -> list:
    """Every prediction with its exact score (no tolerance: the loads must agree to the bit)."""
    items = []
    for index, result in enumerate(model.predict(SENTENCES)):
        entities, relations = result["spert"]
        items += [(index, e.start, e.end, e.label, e.score) for e in entities]
        items += [(index, r.head, r.tail, r.label, r.score) for r in relations]
    return items


def encoder_state(model: ExtractionModel) -> dict[str, torch.Tensor]:
    transformer = model.encoder.transformer
    return dict(transformer.named_parameters()) | dict(transformer.named_buffers())


def assert_same_model(lean: ExtractionModel, plain: ExtractionModel) -> None:
    lean_state, plain_state = encoder_state(lean), encoder_state(plain)
    assert lean_state.keys() == plain_state.keys()
    for name, value in plain_state.items():
        assert lean_state[name].dtype == value.dtype and torch.equal(lean_state[name], value), name
    lean_config, plain_config = lean.encoder.transformer.config, plain.encoder.transformer.config
    assert lean_config.to_json_string(use_diff=True) == plain_config.to_json_string(use_diff=True)
    assert lean_config._attn_implementation == plain_config._attn_implementation
    assert lean.encoder.transformer.name_or_path == plain.encoder.transformer.name_or_path
    assert outputs(lean) == outputs(plain)
    assert outputs(lean)  # the comparison is not between two empty lists


# ---------------------------------------------------------------------- the same model, to the bit
@pytest.mark.parametrize("layers", [None, 1])
@pytest.mark.parametrize("dtype", ["int8", "float16"])
def test_a_delta_model_loads_leanly_to_the_bit_of_the_plain_load(
    base_dir, tmp_path, monkeypatch, layers, dtype
):
    fine_tuned(base_dir, layers).save(tmp_path / "m", storage="delta", dtype=dtype)
    lean = ExtractionModel.load(tmp_path / "m")
    plain = plain_load(tmp_path / "m", monkeypatch)
    assert len(lean.encoder.layers) == (layers or 2)
    assert_same_model(lean, plain)
    assert lean.stored_delta[0] == plain.stored_delta[0] == dtype
    assert all(torch.equal(lean.stored_delta[1][k], v) for k, v in plain.stored_delta[1].items())
    assert all(p.requires_grad for p in lean.parameters())  # still trainable, as before


@pytest.mark.parametrize("setting", [("int8", "pipeline"), ("float16", "all"), ("float32", "pipeline")])
def test_compacted_rows_read_in_blocks_are_those_of_the_whole_matrix(
    base_dir, tmp_path, monkeypatch, setting
):
    """Rows quantized block by block while reading equal the rows compacted from the loaded fp32
    matrix, which the plain load builds first; the predictions are the same to the bit."""
    fine_tuned(base_dir).save(tmp_path / "m", storage="delta", dtype="int8")
    embeddings = EmbeddingSettings(*setting, language="en")
    lean = ExtractionModel.load(tmp_path / "m", embeddings)
    plain = plain_load(tmp_path / "m", monkeypatch)
    compact_word_embeddings(plain.encoder.transformer, plain.encoder.tokenizer, *setting, "en")
    lean_rows, plain_rows = (m.encoder.transformer.get_input_embeddings() for m in (lean, plain))
    assert isinstance(lean_rows, CompactEmbedding) and lean_rows.extra_repr() == plain_rows.extra_repr()
    for name in ("rows", "scales", "remap"):
        a, b = getattr(lean_rows, name), getattr(plain_rows, name)
        assert (a is None and b is None) or torch.equal(a, b), name
    assert outputs(lean) == outputs(plain)


@pytest.mark.parametrize("setting", [("float32", "all"), ("int8", "pipeline")])
def test_a_full_model_loads_around_its_own_tensors_to_the_bit(tmp_path, setting):
    """Full storage: built around the file's tensors (no random weights first) and compacted while
    reading, it predicts exactly as the model it was saved from, compacted in memory."""
    saved = tiny_model(bias_entities=3.0)
    saved.save(tmp_path / "m", storage="full")
    lean = ExtractionModel.load(tmp_path / "m", EmbeddingSettings(*setting, language="en"))
    compact_word_embeddings(saved.encoder.transformer, saved.encoder.tokenizer, *setting, "en")
    assert is_compact(lean.encoder.transformer) == (setting != ("float32", "all"))
    assert outputs(lean) == outputs(saved)


def draws_after(load) -> torch.Tensor:
    torch.manual_seed(0)
    load()
    return torch.rand(4)


def test_loading_draws_from_the_random_generator_as_before(base_dir, tmp_path):
    """Training after ``init_from`` goes on from the generator's state after loading, so a full model
    as trained still draws its random initialisation (as ``Encoder.from_config`` always did), and a
    delta model draws only its heads' initialisation (``from_pretrained`` never drew anything)."""
    saved = tiny_model()
    saved.save(tmp_path / "full", storage="full")
    fine_tuned(base_dir).save(tmp_path / "delta", storage="delta")
    config = saved.encoder.transformer.config.to_diff_dict()
    heads = {"spert": (saved.heads["spert"].config.model_dump(), SCHEMA)}
    built = draws_after(
        lambda: ExtractionModel.create(
            Encoder.from_config(config, str(tmp_path / "full" / "tokenizer")), "", heads
        )
    )
    assert torch.equal(draws_after(lambda: ExtractionModel.load(tmp_path / "full")), built)
    plain = draws_after(lambda: ExtractionModel.create(Encoder.from_pretrained(str(base_dir)), "", heads))
    assert torch.equal(draws_after(lambda: ExtractionModel.load(tmp_path / "delta")), plain)


# ---------------------------------------------------------------------- the base check stays whole
def damage(base_dir: Path, key: str, row: int) -> None:
    tensors = load_file(str(base_dir / "model.safetensors"))
    tensors[key][row] += 0.25
    save_file(tensors, str(base_dir / "model.safetensors"), metadata={"format": "pt"})


@pytest.mark.parametrize(
    ("key", "row", "setting"),
    [
        ("encoder.layer.1.output.dense.weight", 0, ("float32", "all")),  # a layer the model cuts
        (WORDS, 30000, ("int8", "pipeline")),  # a row in the last block, one the language drops
        (WORDS, 10, ("float32", "all")),
    ],
    ids=["cut-layer", "late-dropped-row", "row"],
)
def test_a_damaged_base_is_refused_wherever_it_changed(base_dir, tmp_path, key, row, setting):
    fine_tuned(base_dir, layers=1).save(tmp_path / "m", storage="delta")
    ExtractionModel.load(tmp_path / "m", EmbeddingSettings(*setting, language="en"))
    damage(base_dir, key, row)
    with pytest.raises(IntegrityError, match=f"{base_dir}.*differs from the one this model was trained from"):
        ExtractionModel.load(tmp_path / "m", EmbeddingSettings(*setting, language="en"))


def test_the_streamed_hashes_are_those_of_the_loaded_state(base_dir):
    """The hash computed while reading the file equals :func:`state_sha256` (and format 1's
    fingerprint) of the state transformers loads, for every tensor of the full-depth base."""
    state = Encoder.from_pretrained(str(base_dir)).transformer.state_dict()
    with TensorFile(base_dir / "model.safetensors") as file:
        _, hashes = lean_loading._stream(file, sorted(state), lambda key: True, {}, None)
    assert hashes.sha256 == state_sha256(state)
    assert hashes.fingerprint == _fingerprint(state)


# ---------------------------------------------------------------------- the differences, in place
def reference_apply(base: dict, tensors: dict) -> dict:
    """How differences were added before (copies of the base), kept here as the oracle."""
    state = {name: value.clone() for name, value in base.items()}
    for key, value in tensors.items():
        kind, _, name = key.partition(".")
        unpack = lambda k, dtype: (  # noqa: E731
            (tensors[k].float() * tensors[f"scale.{k}"]).to(dtype)
            if tensors[k].dtype == torch.int8
            else tensors[k].to(dtype)
        )
        if kind == "delta":
            state[name] += unpack(key, state[name].dtype)
        elif kind == "full":
            state[name] = value
        elif kind == "rows" and name.endswith(".index"):
            target = name[: -len(".index")]
            state[target][value] += unpack(f"rows.{target}.delta", state[target].dtype)
    return state


@pytest.mark.parametrize("dtype", [torch.int8, torch.float16])
def test_differences_added_in_place_or_by_blocks_give_the_same_tensors(dtype):
    generator = torch.Generator().manual_seed(7)
    base = {
        WORDS: torch.randn(50, 8, generator=generator),
        "encoder.layer.0.dense.weight": torch.randn(6, 5, generator=generator),
        "encoder.layer.0.dense.bias": torch.randn(6, generator=generator),
        "embeddings.position_ids": torch.arange(6),
    }
    state = {name: value.clone() for name, value in base.items()}
    state[WORDS][[0, 9, 10, 31, 49]] += torch.randn(5, 8, generator=generator) * 0.01
    state["encoder.layer.0.dense.weight"] += torch.randn(6, 5, generator=generator) * 0.01
    state["encoder.layer.0.dense.bias"] += 0.5
    state["embeddings.position_ids"] = torch.arange(6).flip(0)
    stored = _delta(state, base, dtype)
    expected = reference_apply(base, stored)

    copies = {name: value.clone() for name, value in base.items()}
    in_place = _apply_delta(copies, stored, inplace=True)
    blocks = torch.cat(
        [add_delta(WORDS, base[WORDS][s : s + 10].clone(), stored, s) for s in range(0, 50, 10)]
    )
    for name in expected:
        assert torch.equal(in_place[name], expected[name]), name
    assert in_place[WORDS].data_ptr() == copies[WORDS].data_ptr()  # no copy was made
    assert torch.equal(blocks, expected[WORDS])


# ---------------------------------------------------------------------- no copy of the matrix
class FreshTensors(TorchDispatchMode):
    """Records the shape of every CPU tensor an operation creates with new values (not ``empty``,
    which only reserves memory, and not an in-place result)."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if "empty" in name or name.endswith("_"):
            return result
        inputs = {
            t.untyped_storage().data_ptr() for t in args if isinstance(t, torch.Tensor) and not t.is_meta
        }
        for out in result if isinstance(result, tuple | list) else [result]:
            fresh = isinstance(out, torch.Tensor) and out.device.type == "cpu"
            if fresh and out.untyped_storage().data_ptr() not in inputs:
                self.shapes.append(tuple(out.shape))
        return result


@pytest.mark.parametrize("setting", [("float32", "all"), ("int8", "all"), ("float16", "pipeline")])
def test_loading_makes_no_copy_of_the_word_embedding_matrix(base_dir, tmp_path, setting):
    """The plain load cloned the base state (the fp32 matrix twice) and then compacted a whole copy;
    now no operation creates a tensor with as many values as the matrix, whatever the setting."""
    fine_tuned(base_dir).save(tmp_path / "m", storage="delta", dtype="int8")
    matrix = load_file(str(base_dir / "model.safetensors"))[WORDS].numel()
    with FreshTensors() as fresh:
        ExtractionModel.load(tmp_path / "m", EmbeddingSettings(*setting, language="en"))
    large = [shape for shape in fresh.shapes if torch.Size(shape).numel() >= matrix]
    assert not large


# ---------------------------------------------------------------------- the shipped pipeline
@pytest.mark.integration
@pytest.mark.parametrize(
    "settings", [{}, {"embedding_dtype": "int8", "vocab_rows": "pipeline"}], ids=["default", "int8-rows"]
)
def test_the_shipped_pipeline_loads_leanly_to_the_bit_of_the_plain_load(monkeypatch, settings):
    texts = [
        "Angela Merkel visited Paris and met Emmanuel Macron, the President of France.",
        "John Wilkes Booth, who assassinated President Abraham Lincoln, was an actor from Maryland.",
        "Fiat's headquarters are in Turin; Jürgen Müller works for Siemens in München.",
    ]
    config = {"components": {"ner_extractor": settings}}

    def load_and_run():
        nlp = spacy.load(SHIPPED, config=config)
        docs = list(nlp.pipe(texts))
        found = [[(e.start, e.end, e.label_, e._.score) for e in doc.ents] for doc in docs]
        found += [[(r.head.start, r.tail.start, r.label, r.score) for r in doc._.relations] for doc in docs]
        return nlp.get_pipe("ner_extractor").model, found

    lean, lean_found = load_and_run()
    with monkeypatch.context() as patch:
        patch.setattr(model_module, "load_delta_encoder", lambda *args, **kwargs: None)
        plain, plain_found = load_and_run()
    assert lean_found == plain_found and any(lean_found)
    if not settings:
        assert_same_model(lean, plain)
