"""One shared encoder and a dictionary of named heads; saved as safetensors + JSON, never pickle.

Two storage modes:

* ``full``: every weight, plus the tokenizer and encoder config, so the directory is self-contained
  (any Hugging Face encoder, or a randomly initialised test encoder).
* ``delta``: only what differs from an installed offline base encoder (see
  :data:`ner.encoder.OFFLINE_ENCODERS` and :data:`ner.encoder.CONVERTED_ENCODERS`): tensors that
  changed are stored as ``fine-tuned - base`` (fp16 by default, which is far more precise than
  storing the weights themselves in fp16; int8 with a scale per row halves the size again),
  word-embedding rows that never received a gradient are not stored at all, and unchanged
  tensors (frozen layers) are skipped. A content hash of every base tensor guards against loading
  onto a different or damaged base.

What a save then a load gives back: ``full`` storage, every weight to the bit. ``delta`` storage
rounds the differences, so a model saved from training loads within that rounding (which is why
training scores the pipeline it saved, loaded back). A model that was itself loaded from a
``delta`` save, and not changed since, is saved with the very differences it was loaded from, so
loading its copy gives it back to the bit: ``spacy.load(a).to_disk(b)`` makes ``b`` predict exactly
as ``a``. (Computing the differences again would not: ``(base + d) - base`` is not always ``d`` in
floating point, and the copy drifted by up to 1.5e-8 per weight, enough to move scores in their
7th digit.)

A head may read a *branch* (:mod:`ner.branches`): its own copy of the encoder's top layers, saved
under ``branches.<head>.`` in the same safetensors file (full fp32 whatever the storage, hashed like
every other weight) and listed in ``model.json`` under ``branches``. Such a model is format 3, so a
version that knows no branches refuses it instead of decoding that head on the trunk.

Every file written is recorded with its SHA-256 in ``model.json`` (``integrity``), and ``model.json``
records the hash of its own content, so a damaged or edited weights file, tokenizer or config fails
at load naming the file (see :mod:`ner.integrity` for what this does and does not guard against).
Loading never touches the network: the base encoder of a ``delta`` model must be on the machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel

from ner.branches import Branch, encode_with_branches
from ner.documents import Entity, Relation, RelationType, Schema
from ner.embeddings import (
    CompactEmbedding,
    compact_rows,
    compact_word_embeddings,
    is_compact,
    log_compacted,
    unknown_id,
)
from ner.encoder import Encoder, Encoding, PieceBatch, load_tokenizer, local_encoder, resolve_encoder
from ner.heads import build_head, parse_head_config
from ner.integrity import IntegrityError, check_files, files_under, hash_files, json_sha256, sha256_file
from ner.lean_loading import (
    BLOCK_ROWS,
    WORD_EMBEDDINGS,
    BaseHashes,
    EmbeddingSettings,
    add_delta,
    delta_targets,
    load_delta_encoder,
    release_freed_memory,
)
from ner.schedule import BATCH_COST_WORDS, padding_aware_batches
from ner.tensor_files import TensorFile, tensor_header

logger = logging.getLogger(__name__)

#: 2 adds the ``integrity`` manifest, required from then on; 1 (no hashes) still loads, with a warning
FORMAT_VERSION = 2
LEGACY_FORMAT = 1
#: what a model with branched heads is saved as (format 2 plus ``branches``); others stay format 2
BRANCH_FORMAT = 3
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "model.json"
INTEGRITY = "integrity"
TOKENIZER_DIR = "tokenizer"

HeadOutput = tuple[list[Entity], list[Relation]]
#: how ``delta`` storage writes the differences from the base encoder (``full`` keeps fp32 weights)
DeltaDtype = Literal["float16", "float32", "int8"]


def schema_to_dict(schema: Schema) -> dict:
    return {
        "entity_labels": list(schema.entity_labels),
        "relation_types": [{"label": t.label, "symmetric": t.symmetric} for t in schema.relation_types],
    }


def schema_from_dict(data: dict) -> Schema:
    return Schema(
        entity_labels=tuple(data["entity_labels"]),
        relation_types=tuple(RelationType(t["label"], bool(t["symmetric"])) for t in data["relation_types"]),
    )


class ExtractionModel(nn.Module):
    """The shared :class:`Encoder` and its heads; ``predict`` runs the encoder once per batch."""

    def __init__(self, encoder: Encoder, heads: dict[str, nn.Module], encoder_name: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)
        #: head name -> its own copy of the encoder's top layers (:mod:`ner.branches`); most heads have none
        self.branches = nn.ModuleDict()
        self.encoder_name = encoder_name
        #: ``(dtype, tensors)``: the encoder differences a ``delta`` model was loaded from, kept to save
        #: an unchanged copy bit-identically (:meth:`_loaded_delta`); None for any other model
        self.stored_delta: tuple[str, dict[str, torch.Tensor]] | None = None

    @classmethod
    def create(cls, encoder: Encoder, encoder_name: str, head_specs: dict[str, tuple[dict, Schema]]):
        """A model with freshly initialised heads: ``head_specs`` maps a name to ``(config, schema)``."""
        heads = {
            name: build_head(parse_head_config(config), encoder.hidden_size, schema)
            for name, (config, schema) in head_specs.items()
        }
        return cls(encoder, heads, encoder_name)

    def add_branch(self, head: str, layers: int) -> Branch:
        """Give ``head`` its own copy of the encoder's top ``layers`` layers, as they are now."""
        if head not in self.heads:
            raise ValueError(f"no head {head!r} to branch; heads: {list(self.heads)}")
        self.branches[head] = Branch.from_encoder(self.encoder, layers)
        return self.branches[head]

    def encode(self, pieces: PieceBatch, heads: Sequence[str] | None = None) -> dict[str, Encoding]:
        """The :class:`Encoding` each of ``heads`` (default: all) reads: one pass of the shared
        encoder, plus the top layers of each branch those heads need, once each."""
        names = list(self.heads) if heads is None else list(heads)
        needed = {name: self.branches[name] for name in names if name in self.branches}
        trunk, branched = encode_with_branches(self.encoder, needed, pieces)
        return {name: branched.get(name, trunk) for name in names}

    # ------------------------------------------------------------------ inference
    @torch.inference_mode()
    def predict(
        self,
        docs: Sequence[Sequence[str]],
        batch_size: int = 64,
        max_batch_words: int = 8192,
        heads: Sequence[str] | None = None,
        batch_cost_words: int = BATCH_COST_WORDS,
    ) -> list[dict[str, HeadOutput]]:
        """Every head's (or the named ``heads``') output for every document, in input order; empty
        documents get empty results.

        Documents are sorted by length and grouped so that a batch holds at most ``batch_size``
        documents and ``max_batch_words`` padded words: short sentences travel in large batches,
        a book-length text alone. Within those budgets a batch is cut where the padding it would
        add costs more than ``batch_cost_words`` (the cost of one more batch, in padded words):
        a long sentence is not padded onto 63 short ones (:func:`ner.schedule.padding_aware_batches`).
        """
        was_training = self.training
        self.eval()
        names = list(self.heads) if heads is None else list(heads)
        results: list[dict[str, HeadOutput]] = [{name: ([], []) for name in names} for _ in docs]
        try:
            lengths = [len(d) for d in docs]
            for batch in padding_aware_batches(lengths, batch_size, max_batch_words, batch_cost_words):
                encodings = self.encode(self.encoder.tokenize([docs[i] for i in batch]), names)
                for name in names:
                    for i, output in zip(batch, self.heads[name].decode(encodings[name])):
                        results[i][name] = output
        finally:
            self.train(was_training)
        return results

    # ------------------------------------------------------------------ persistence
    def save(
        self, directory: str | Path, storage: Literal["full", "delta"] = "full", dtype: DeltaDtype = "float16"
    ):
        """Write ``model.json`` and ``weights.safetensors`` (and the tokenizer for ``full``)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"heads.{k}": v.detach().float().contiguous() for k, v in self.heads.state_dict().items()}
        tensors.update(
            {f"branches.{k}": v.detach().float().contiguous() for k, v in self.branches.state_dict().items()}
        )
        encoder_state = self.encoder.transformer.state_dict()
        weights: dict = {"storage": storage}
        if storage == "delta":
            base = _base_state(self.encoder_name)
            tensors.update(
                self._loaded_delta(base, encoder_state, dtype)
                or _delta(encoder_state, base, getattr(torch, dtype))
            )
            weights.update(dtype=dtype, base_sha256=state_sha256(base))
        else:
            tensors.update({f"encoder.{k}": v.detach().contiguous() for k, v in encoder_state.items()})
            self.encoder.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
        config = {
            "format_version": BRANCH_FORMAT if len(self.branches) else FORMAT_VERSION,
            "encoder": {
                "name": self.encoder_name,
                "config": self.encoder.transformer.config.to_diff_dict(),
                "window": self.encoder.window,
                "overlap": self.encoder.overlap,
            },
            "heads": {
                name: {"config": head.config.model_dump(), "schema": schema_to_dict(head.schema)}
                for name, head in self.heads.items()
            },
            "weights": weights,
        }
        if len(self.branches):
            config["branches"] = {
                name: {"start": branch.start, "layers": len(branch.layers)}
                for name, branch in self.branches.items()
            }
        save_file(tensors, str(directory / WEIGHTS_FILE))
        files = [WEIGHTS_FILE] + (files_under(directory, TOKENIZER_DIR) if storage == "full" else [])
        config[INTEGRITY] = {"algorithm": "sha256", "files": hash_files(directory, files)}
        config[INTEGRITY]["config_sha256"] = _config_digest(config)
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
        # safetensors creates its file 0600: give it the umask's permissions, like model.json, so a
        # pipeline saved into a shared folder is readable by the people it is shared with.
        shutil.copymode(directory / CONFIG_FILE, directory / WEIGHTS_FILE)

    @classmethod
    def load(cls, directory: str | Path, embeddings: EmbeddingSettings | None = None) -> ExtractionModel:
        """Load a saved model; only JSON and safetensors are read, so no code can run from the files.

        Every recorded file is checked against its SHA-256 first (:class:`IntegrityError` names the
        one that differs), and nothing is fetched from the network: a ``delta`` model's base encoder
        must be installed (:class:`ner.encoder.EncoderUnavailableError` says how otherwise).

        ``embeddings``: how to store the word embeddings (:mod:`ner.embeddings`; default: as trained).
        Loading holds little more than the model it returns (:mod:`ner.lean_loading`): the weights are
        read tensor by tensor into the model's own memory, and compacted rows block by block.
        """
        directory = Path(directory)
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        if config.get("format_version") not in (LEGACY_FORMAT, FORMAT_VERSION, BRANCH_FORMAT):
            raise ValueError(f"{directory}: unsupported model format {config.get('format_version')!r}")
        _verify(directory, config)
        embeddings = embeddings or EmbeddingSettings()
        enc = config["encoder"]
        options = {"window": enc["window"], "overlap": enc["overlap"], "local_files_only": True}
        if config["weights"]["storage"] == "delta":
            tensors = load_file(str(directory / WEIGHTS_FILE))  # the heads and the differences: small
            depth = enc["config"].get("num_hidden_layers")
            check = partial(_check_hashes, weights=config["weights"])
            encoder = load_delta_encoder(enc["name"], tensors, depth, embeddings, check, **options)
            if encoder is None:  # a base that cannot be streamed: loaded whole, then cut
                encoder = _plain_delta_encoder(enc, config["weights"], tensors, options)
            stored_delta = {k: v for k, v in tensors.items() if not k.startswith(("heads.", "branches."))}
        else:
            encoder, tensors = _full_encoder(directory, enc, embeddings, options)
        if not is_compact(encoder.transformer):
            compact_word_embeddings(
                encoder.transformer,
                encoder.tokenizer,
                embeddings.dtype,
                embeddings.vocab_rows,
                embeddings.language,
            )
        heads = {
            name: (spec["config"], schema_from_dict(spec["schema"])) for name, spec in config["heads"].items()
        }
        model = cls.create(encoder, enc["name"], heads)
        model.heads.load_state_dict(
            {k[len("heads.") :]: v for k, v in tensors.items() if k.startswith("heads.")}
        )
        _load_branches(model, config.get("branches", {}), tensors, directory)
        if config["weights"]["storage"] == "delta":
            model.stored_delta = (config["weights"].get("dtype", "float16"), stored_delta)
        release_freed_memory()
        return model.eval()

    def _loaded_delta(self, base: dict, state: dict, dtype: DeltaDtype) -> dict[str, torch.Tensor] | None:
        """The differences this model was loaded from, when they are in ``dtype`` and still give its
        encoder's weights to the bit (nothing trained or edited since): saving them again keeps a
        copy bit-identical, where computing them anew could drift in the last bit."""
        if self.stored_delta is None or self.stored_delta[0] != dtype:
            return None
        stored = self.stored_delta[1]
        restored = _apply_delta(base, stored)
        if all(torch.equal(restored[name], value.detach().cpu()) for name, value in state.items()):
            return stored
        return None


def _load_branches(model: ExtractionModel, specs: dict, tensors: dict, directory: Path) -> None:
    """Rebuild each recorded branch on the loaded encoder, then load its saved weights."""
    for head, spec in specs.items():
        branch = model.add_branch(head, spec["layers"])
        if branch.start != spec["start"]:
            raise ValueError(
                f"{directory}: the branch of head {head!r} starts at layer {spec['start']}, but its "
                f"{spec['layers']} layers on this {len(model.encoder.layers)}-layer encoder start at "
                f"{branch.start}"
            )
    model.branches.load_state_dict(
        {k[len("branches.") :]: v for k, v in tensors.items() if k.startswith("branches.")}
    )


def _plain_delta_encoder(enc: dict, weights: dict, tensors: dict, options: dict) -> Encoder:
    """A ``delta`` model's encoder the plain way, for a base that :mod:`ner.lean_loading` cannot
    stream: the whole base loaded by transformers, checked, cut to the trained depth, and the
    differences added to its own weights, in place."""
    encoder = Encoder.from_pretrained(enc["name"], **options)
    _check_base(encoder, enc["name"], weights)
    depth = enc["config"].get("num_hidden_layers")
    if depth is not None and depth < len(encoder.layers):  # trained on the bottom layers only
        encoder.keep_layers(depth)
    with torch.no_grad():
        state = _apply_delta(encoder.transformer.state_dict(), tensors, inplace=True)
        encoder.transformer.load_state_dict(state)
    return encoder


def _full_encoder(
    directory: Path, enc: dict, embeddings: EmbeddingSettings, options: dict
) -> tuple[Encoder, dict[str, torch.Tensor]]:
    """A ``full`` model's encoder and the other tensors of its file (the heads).

    With compact word embeddings (inference only) it is built around the tensors read from the file,
    the rows compacted block by block: no random weights first, no copy, no fp32 matrix. As trained
    (``float32``, ``all``), which is what training starts from (``init_from``), it is built as it always
    was, randomly initialised and then given the file's values: that initialisation draws from torch's
    random generator, and training after ``init_from`` must go on drawing the same numbers."""
    local_files_only = options.pop("local_files_only")
    tokenizer = load_tokenizer(
        local_encoder(str(directory / TOKENIZER_DIR)), local_files_only=local_files_only
    )
    words = f"encoder.{WORD_EMBEDDINGS}"
    with TensorFile(directory / WEIGHTS_FILE) as file:
        entry = file.entries.get(words)
        rows = None
        if entry is not None and entry.dtype == torch.float32 and len(entry.shape) == 2:
            rows = compact_rows(
                tokenizer, entry.shape, embeddings.dtype, embeddings.vocab_rows, embeddings.language
            )
        tensors = {key: file.read(key) for key in file.entries if key != words or rows is None}
        for start in range(0, entry.shape[0], BLOCK_ROWS) if rows is not None else ():
            rows.add(start, file.read(words, (start, min(start + BLOCK_ROWS, entry.shape[0]))))
    compact = None if rows is None else CompactEmbedding.from_rows(rows, unknown_id(tokenizer))
    if compact is not None:
        log_compacted(compact)
    state = {k[len("encoder.") :]: v for k, v in tensors.items() if k.startswith("encoder.")}
    if compact is None:
        transformer = AutoModel.from_config(AutoConfig.for_model(**enc["config"]), add_pooling_layer=False)
        transformer.load_state_dict(state)
        return Encoder(transformer, tokenizer, **options), tensors
    encoder = Encoder.from_state(AutoConfig.for_model(**enc["config"]), tokenizer, state, compact, **options)
    return encoder, tensors


def _base_state(encoder_name: str) -> dict[str, torch.Tensor]:
    path = Path(resolve_encoder(encoder_name))
    if not path.is_dir():
        raise ValueError(f"delta storage needs an installed base encoder directory, not {encoder_name!r}")
    return Encoder.from_pretrained(encoder_name).transformer.state_dict()


def _config_digest(config: dict) -> str:
    """The SHA-256 of ``config`` (canonical JSON) with only its own hash left out: it covers every
    setting and the recorded file hashes, so neither can be edited alone without notice."""
    manifest = config.get(INTEGRITY)
    manifest = (
        {k: v for k, v in manifest.items() if k != "config_sha256"} if isinstance(manifest, dict) else {}
    )
    return json_sha256({**config, INTEGRITY: manifest})


def _verify(directory: Path, config: dict) -> None:
    """Check ``model.json`` against its own recorded hash, then every recorded file against its hash."""
    if config["format_version"] == LEGACY_FORMAT:
        logger.warning(
            "%s: saved without content hashes (model format 1), so its files cannot be checked; "
            "save it again (ner.pipeline.save or nlp.to_disk) to record them",
            directory,
        )
        return
    manifest = config.get(INTEGRITY)
    recorded = manifest.get("config_sha256") if isinstance(manifest, dict) else None
    actual = _config_digest(config)
    if recorded != actual:
        path = directory / CONFIG_FILE
        found = (
            f"the sha256 of its settings, {actual}, differs from the recorded {recorded}"
            if recorded
            else "no integrity manifest, which model format 2 requires"
        )
        message = (
            f"{path}: {found}: a setting or a recorded file hash was edited after saving; restore the "
            "original file, or save the pipeline again"
        )
        raise IntegrityError(path, str(recorded or ""), actual, message=message)
    check_files(directory, manifest["files"])
    if config["weights"]["storage"] == "full":  # a file added to the tokenizer changes it as much
        added = sorted(set(files_under(directory, TOKENIZER_DIR)) - set(manifest["files"]))
        if added:
            raise IntegrityError(directory / added[0], "", sha256_file(directory / added[0]))


def _check_base(encoder: Encoder, name: str, weights: dict) -> None:
    """The installed base must be, to the last value, the one the delta was computed from."""
    state = encoder.transformer.state_dict()
    # format 1 recorded a hash of each tensor's first 4,096 values only
    actual = state_sha256(state) if "base_sha256" in weights else _fingerprint(state)
    where = Path(getattr(encoder.transformer, "name_or_path", "") or name)
    _check_hashes(where, name, BaseHashes(sha256=actual, fingerprint=actual), weights)


def _check_hashes(where: Path, name: str, hashes: BaseHashes, weights: dict) -> None:
    """Raise :class:`IntegrityError` when the base's hash (``base_sha256``, or format 1's
    ``base_fingerprint``) is not the one recorded in ``weights``."""
    if "base_sha256" in weights:
        expected, actual = weights["base_sha256"], hashes.sha256
    else:
        expected, actual = weights["base_fingerprint"], hashes.fingerprint
    if actual != expected:
        raise IntegrityError(
            where,
            expected,
            actual,
            message=(
                f"{where}: the installed base encoder {name!r} differs from the one this model was trained "
                f"from (content hash {actual}, recorded {expected}); install the version named in the "
                "project's dependencies, or restore the encoder's files"
            ),
        )


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and every byte of its values, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(tensor_header(name, tensor.dtype, tuple(tensor.shape)))
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _fingerprint(state: dict[str, torch.Tensor]) -> str:
    """Format 1's base check (kept to load those models): the first 4,096 values of each tensor."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().float().flatten()[:4096].numpy().tobytes())
    return digest.hexdigest()


def _delta(state: dict, base: dict, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """What differs from ``base``: sparse rows for the word embeddings, dense differences elsewhere.

    ``dtype`` int8 stores each difference row as int8 with its own scale (``scale.<key>``): half the
    size of fp16, with an error under half a step of the row's largest change.
    """
    out = {}
    for name, value in state.items():
        value, reference = value.detach(), base[name]
        if torch.equal(value, reference):
            continue
        if name.endswith(WORD_EMBEDDINGS):
            rows = (value != reference).any(dim=-1).nonzero(as_tuple=True)[0]
            out[f"rows.{name}.index"] = rows.contiguous()
            out.update(_pack(f"rows.{name}.delta", value[rows] - reference[rows], dtype))
        elif value.is_floating_point():
            out.update(_pack(f"delta.{name}", value - reference, dtype))
        else:
            out[f"full.{name}"] = value.contiguous()
    return out


def _pack(key: str, difference: torch.Tensor, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """``difference`` in ``dtype``; int8 is symmetric per last-dimension row, with its scale beside it."""
    if dtype != torch.int8:
        return {key: difference.to(dtype).contiguous()}
    scale = difference.abs().amax(dim=-1, keepdim=True).float() / 127
    steps = (difference / scale.clamp_min(torch.finfo(torch.float32).tiny)).round().clamp(-127, 127)
    return {key: steps.to(torch.int8).contiguous(), f"scale.{key}": scale.contiguous()}


def _apply_delta(base: dict, tensors: dict, inplace: bool = False) -> dict[str, torch.Tensor]:
    """``base`` with the stored differences ``tensors`` added: to copies, or with ``inplace`` to
    ``base``'s own tensors (loading: the base is not needed afterwards, so no second copy is made)."""
    state = dict(base) if inplace else {name: value.clone() for name, value in base.items()}
    for name in delta_targets(tensors):
        state[name] = add_delta(name, state[name], tensors)
    return state
