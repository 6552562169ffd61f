"""The training loop: seeded, AdamW with linear warm-up and decay, dev evaluation every epoch.

The best epoch (by dev relation micro F1 with entity types, then entity micro F1) is written as a
spaCy pipeline to the output directory as soon as it is reached, so a run that is stopped still
leaves its best model; ``metrics.json`` beside it records every epoch.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from ner.config import TrainConfig
from ner.corpora import read_spert_json, read_spert_types
from ner.documents import Document
from ner.encoder import Encoder
from ner.evaluation import evaluate_model
from ner.model import WORD_EMBEDDINGS, ExtractionModel
from ner.pipeline import build_pipeline, extractor_model, load, save

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def parameter_groups(model: ExtractionModel, weight_decay: float, lr: float, head_lr: float) -> list[dict]:
    """Encoder and heads at their own learning rates; no decay for biases and LayerNorms (as
    SpERT) nor for word embeddings.

    Word-embedding rows of pieces never seen in training then stay bit-identical to the base
    encoder, which is what lets the ``delta`` storage skip them.
    """
    groups: dict[tuple[float, float], list] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        plain = "bias" in name or "LayerNorm" in name or name.endswith(WORD_EMBEDDINGS)
        rate = head_lr if name.startswith("heads.") else lr
        groups.setdefault((rate, 0.0 if plain else weight_decay), []).append(parameter)
    return [{"params": p, "lr": rate, "weight_decay": decay} for (rate, decay), p in groups.items()]


def batches(docs: Sequence[Document], size: int, rng: random.Random) -> list[list[Document]]:
    order = list(range(len(docs)))
    rng.shuffle(order)
    return [[docs[i] for i in order[k : k + size]] for k in range(0, len(order), size)]


def selection_key(scores: dict) -> tuple[float, float]:
    return scores["relations_with_types"].micro.f1, scores["entities"].micro.f1


def train(config: TrainConfig, config_dir: Path, output: Path | None = None, progress: bool = True) -> dict:
    """Train the configured model and write the best epoch's pipeline and ``metrics.json`` to ``output``."""
    output = Path(output or config.output)
    t = config.training
    seed_everything(t.seed)
    if t.threads:
        torch.set_num_threads(t.threads)
    schema = read_spert_types(config.data_path("types", config_dir))
    train_docs = read_spert_json(config.data_path("train", config_dir), schema)[: t.max_train_docs]
    dev_path, test_path = config.data_path("dev", config_dir), config.data_path("test", config_dir)
    dev_docs = read_spert_json(dev_path, schema) if dev_path else []
    encoder = Encoder.from_pretrained(
        config.encoder.name, window=config.encoder.window, overlap=config.encoder.overlap
    )
    if config.encoder.freeze_word_embeddings:
        encoder.transformer.get_input_embeddings().weight.requires_grad_(False)
    model = ExtractionModel.create(
        encoder, config.encoder.name, {config.head_name: (config.head.model_dump(), schema)}
    )
    head = model.heads[config.head_name]
    rng = random.Random(t.seed)
    steps = t.epochs * -(-len(train_docs) // t.batch_size)
    groups = parameter_groups(model, t.weight_decay, t.learning_rate, t.head_learning_rate or t.learning_rate)
    optimizer = torch.optim.AdamW(groups, lr=t.learning_rate, fused=True)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(t.warmup * steps), steps)
    history, best = [], None
    for epoch in range(1, t.epochs + 1):
        model.train()
        started, total_loss, total_words = time.perf_counter(), 0.0, 0
        epoch_batches = batches(train_docs, t.batch_size, rng)
        bar = tqdm(epoch_batches, desc=f"epoch {epoch}/{t.epochs}", disable=not progress, unit="batch")
        for batch in bar:
            targets = head.targets(batch, rng)
            encoding = model.encoder(model.encoder.tokenize([doc.words for doc in batch]))
            loss = head.loss(encoding, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            optimizer.step()
            scheduler.step()
            total_loss += loss.item()
            total_words += sum(len(doc.words) for doc in batch)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        seconds = time.perf_counter() - started
        record = {
            "epoch": epoch,
            "loss": total_loss / max(1, len(epoch_batches)),
            "train_seconds": round(seconds, 1),
            "train_words_per_second": round(total_words / seconds, 1),
        }
        if dev_docs:
            scores = evaluate_model(model, dev_docs, config.head_name, t.eval_batch_size)
            record["dev"] = {name: s.as_dict() for name, s in scores.items()}
            improved = best is None or selection_key(scores) > best[0]
        else:
            scores, improved = None, True
        if improved:
            best = (selection_key(scores) if scores else (0.0, 0.0), epoch)
            _save(model, config, output, {"best_epoch": epoch})
        history.append(record)
        logger.info("epoch %d: %s", epoch, {k: v for k, v in record.items() if k != "dev"})
        _write_metrics(output, config, history, best)
    result = {"epochs": history, "best_epoch": best[1] if best else None}
    if test_path:
        best_model = _load_model(output)
        scores = evaluate_model(
            best_model, read_spert_json(test_path, schema), config.head_name, t.eval_batch_size
        )
        result["test"] = {name: s.as_dict() for name, s in scores.items()}
    _write_metrics(output, config, history, best, result.get("test"))
    return result


def _save(model: ExtractionModel, config: TrainConfig, output: Path, meta: dict) -> None:
    e = config.export
    nlp = build_pipeline(model, e.lang, e.pipeline_name, e.storage, e.dtype, meta={"training": meta})
    save(nlp, output)


def _load_model(output: Path) -> ExtractionModel:
    return extractor_model(load(output))


def _write_metrics(output: Path, config: TrainConfig, history: list, best, test: dict | None = None) -> None:
    output.mkdir(parents=True, exist_ok=True)
    data = {"config": config.model_dump(), "epochs": history, "best_epoch": best[1] if best else None}
    if test is not None:
        data["test"] = test
    (output / "metrics.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
