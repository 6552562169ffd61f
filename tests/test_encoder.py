"""The shared encoder: window planning, word/piece alignment, and sliding-window states for long texts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.encoder import DEFAULT_ENCODER, Encoder, plan_windows, resolve_encoder
from tests.conftest import tiny_encoder

# ---------------------------------------------------------------------- window planning


def check_plan(num_pieces: int, window: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Every invariant of a window plan; returns the plan for further checks."""
    plan = plan_windows(num_pieces, window, overlap)
    owned = [p for _, _, own_start, own_end in plan for p in range(own_start, own_end)]
    assert owned == list(range(num_pieces))  # every piece owned exactly once, in order
    for start, end, own_start, own_end in plan:
        assert 0 <= start <= own_start < own_end <= end <= num_pieces
        assert end - start <= window
    for (start, end, _, own_end), (next_start, _, next_own_start, _) in zip(plan, plan[1:], strict=False):
        assert start < next_start
        assert next_start <= own_end == next_own_start <= end  # the switch lies inside the overlap
        assert end - own_end >= overlap // 2  # right context of the last owned piece
        assert next_own_start - next_start >= overlap // 2  # left context of the next window's first
    return plan


@pytest.mark.parametrize("num_pieces", [1, 23, 24])
def test_a_short_text_is_one_window(num_pieces):
    assert check_plan(num_pieces, 24, 8) == [(0, num_pieces, 0, num_pieces)]


def test_a_long_text_is_covered_by_full_windows():
    """Every window of a long text has the full size; the last one is aligned with the end."""
    plan = check_plan(100, 24, 8)
    assert [(start, end) for start, end, _, _ in plan] == [
        (0, 24),
        (16, 40),
        (32, 56),
        (48, 72),
        (64, 88),
        (76, 100),
    ]
    # switches in the middle of each overlap: (16+24)//2, (32+40)//2, ..., (76+88)//2
    assert [own_end for _, _, _, own_end in plan] == [20, 36, 52, 68, 82, 100]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 400), st.integers(1, 64), st.data())
def test_window_plans_cover_every_piece_once_for_any_sizes(num_pieces, window, data):
    """Any length, window and overlap in ``[0, window)``."""
    overlap = data.draw(st.integers(0, window - 1))
    check_plan(num_pieces, window, overlap)


# ---------------------------------------------------------------------- alignment
@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return tiny_encoder().eval()


def test_special_tokens_are_cls_and_sep(encoder):
    assert encoder.prefix == [encoder.tokenizer.cls_token_id]
    assert encoder.suffix == [encoder.tokenizer.sep_token_id]
    assert encoder.window == 64 - 2  # max positions minus [CLS] and [SEP]


def test_a_word_the_tokenizer_drops_becomes_unk(encoder):
    """A control character has no pieces of its own; it still gets one ([UNK]) so the word stays aligned."""
    (pieces,) = encoder.word_pieces([["hello", "\x00", "world", "\u200b"]])
    unk = encoder.tokenizer.unk_token_id
    assert pieces[1] == [unk] and pieces[3] == [unk]
    assert pieces[0] == encoder.tokenizer("hello", add_special_tokens=False)["input_ids"]
    assert unk not in pieces[0] + pieces[2]


def test_word_starts_and_ends_follow_the_piece_counts(encoder):
    """``word_ends - word_starts`` is each word's piece count and the words tile the pieces."""
    docs = [
        ["Schwarzenegger", "visited", "\x00", "Reykjavík"],
        ["a"],
        ["tokenization", "is", "fun", "!", "ok"],
    ]
    batch = encoder.tokenize(docs)
    for d, pieces in enumerate(encoder.word_pieces(docs)):
        counts = [len(p) for p in pieces]
        n = len(counts)
        assert (batch.word_ends[d, :n] - batch.word_starts[d, :n]).tolist() == counts
        assert (
            batch.word_starts[d, 0] == 0
            and batch.word_starts[d, 1:n].tolist() == batch.word_ends[d, : n - 1].tolist()
        )
        assert int(batch.piece_mask[d].sum()) == sum(counts) == int(batch.word_ends[d, n - 1])
        assert batch.word_starts[d, n:].eq(0).all() and batch.word_ends[d, n:].eq(0).all()
    assert batch.word_counts.tolist() == [4, 1, 5]


@pytest.mark.parametrize("docs", [[[]], [["a"], []], []], ids=["empty doc", "one empty of two", "no docs"])
def test_an_empty_document_is_rejected(encoder, docs):
    with pytest.raises(ValueError, match="without words"):
        encoder.tokenize(docs)


# ---------------------------------------------------------------------- sliding windows
LONG_SENTENCE = (
    "The unbelievably long-winded Schwarzenegger biography , published in Reykjavík , "
    "was translated into 14 languages by 2003 ."
)


def reference_states(encoder: Encoder, words: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each piece's state from running the transformer on its owning window alone; the mean [CLS]."""
    flat = [piece for pieces in encoder.word_pieces([words])[0] for piece in pieces]
    states, cls = [], []
    for start, end, own_start, own_end in plan_windows(len(flat), encoder.window, encoder.overlap):
        ids = torch.tensor([encoder.prefix + flat[start:end] + encoder.suffix])
        hidden = encoder.transformer(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
        offset = len(encoder.prefix) - start
        states.append(hidden[own_start + offset : own_end + offset])
        cls.append(hidden[0])
    return torch.cat(states), torch.stack(cls).mean(0)


@torch.no_grad()
def test_long_texts_take_each_piece_from_its_owning_window():
    """Several windows per document, batched with padding and in chunks, equal one window at a time."""
    encoder = tiny_encoder(window=24, overlap=8).eval()
    encoder.max_batch_windows = 3  # several transformer calls, each padded
    long_words = LONG_SENTENCE.split() * 3
    docs = [long_words, ["short", "one"], long_words[5:40]]
    encoding = encoder.encode(docs)
    assert encoding.word_counts.tolist() == [len(d) for d in docs]
    for d, words in enumerate(docs):
        expected, expected_cls = reference_states(encoder, words)
        assert len(expected) > 24 or d == 1  # the long documents need several windows
        n = len(expected)
        torch.testing.assert_close(encoding.states[d, :n], expected, atol=1e-5, rtol=1e-5)
        assert encoding.states[d, n:].eq(0).all() and int(encoding.piece_mask[d].sum()) == n
        torch.testing.assert_close(encoding.cls[d], expected_cls, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_a_5000_word_document_is_encoded_whole(encoder):
    """Nothing is truncated: one state per piece, and every word is counted."""
    vocabulary = LONG_SENTENCE.split()
    words = [vocabulary[i % len(vocabulary)] for i in range(5000)]
    num_pieces = sum(len(p) for p in encoder.word_pieces([words])[0])
    encoding = encoder.encode([words])
    assert encoding.states.shape == (1, num_pieces, 32)
    assert encoding.word_counts.tolist() == [5000]
    assert int(encoding.word_ends[0, -1]) == num_pieces
    assert encoding.states[0].abs().sum(-1).gt(0).all()  # every piece got a real state


# ---------------------------------------------------------------------- loading
def test_the_default_encoder_resolves_to_an_installed_directory():
    path = Path(resolve_encoder(DEFAULT_ENCODER))
    assert path.is_dir() and (path / "config.json").is_file()


@pytest.mark.parametrize("name", ["bert-base-cased", "org/some-model", "/tmp/a/local/dir"])
def test_other_names_pass_through_unchanged(name):
    assert resolve_encoder(name) == name


@torch.no_grad()
def test_from_pretrained_loads_a_saved_directory(tiny_encoder_dir, encoder):
    """A Hugging Face directory loads by path and computes what the encoder it was saved from computes."""
    loaded = Encoder.from_pretrained(str(tiny_encoder_dir), overlap=16).eval()
    assert loaded.hidden_size == 32 and loaded.window == encoder.window
    words = [["Angela", "Merkel", "lives", "in", "Berlin"]]
    torch.testing.assert_close(loaded.encode(words).states, encoder.encode(words).states)


def test_an_overlap_as_large_as_the_window_is_rejected():
    with pytest.raises(ValueError, match="overlap"):
        tiny_encoder(window=16, overlap=16)


def test_freeze_stops_gradients_below_the_chosen_layer():
    encoder = tiny_encoder()
    encoder.freeze(layers=1)
    encoder.encode([["Angela", "Merkel", "lives", "in", "Berlin"]]).states.sum().backward()
    for name, parameter in encoder.named_parameters():
        trained = ".layer.1." in name
        assert parameter.requires_grad == trained, name
        assert (parameter.grad is not None) == trained, name


def test_freeze_word_embeddings_alone_leaves_the_other_embeddings_trainable():
    encoder = tiny_encoder()
    encoder.freeze(word_embeddings=True)
    frozen = {name for name, p in encoder.named_parameters() if not p.requires_grad}
    assert frozen == {"transformer.embeddings.word_embeddings.weight"}


@pytest.mark.parametrize("layers", [-1, 3])
def test_freezing_more_layers_than_the_encoder_has_is_rejected(layers):
    with pytest.raises(ValueError, match=r"freeze_layers must be between 0 and 2"):
        tiny_encoder().freeze(layers=layers)


def test_keep_layers_cuts_the_stack_and_the_config():
    encoder = tiny_encoder()
    encoder.keep_layers(1)
    assert len(encoder.layers) == 1 and encoder.transformer.config.num_hidden_layers == 1
    assert torch.isfinite(encoder.encode([["Angela", "Merkel"]]).states).all()
    with pytest.raises(ValueError, match=r"num_layers must be between 1 and 1"):
        encoder.keep_layers(2)
