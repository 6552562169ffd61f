"""``train()``'s choices: which epoch it keeps, by which key, and the encoder depth with ``init_from``."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ner import training
from ner.config import load_config
from ner.metrics import PRF, Scores, TypeScore
from ner.model import ExtractionModel
from ner.training import selection_key, train

DATA = Path(__file__).parent / "data"
CONFIG = DATA / "toy_multitask.toml"


def _scores(f1: float) -> Scores:
    prf = PRF(f1, f1, f1)
    return Scores(micro=prf, macro=prf, per_type={"X": TypeScore(prf, 1)})


def _genes(encoder_dir: Path, **overrides):
    return load_config(CONFIG, {"encoder.name": str(encoder_dir), **overrides}, only_tasks=["genes"])


def test_the_selection_key_is_relation_f1_for_spert_then_entity_f1():
    """Typed-relation F1 leads for a head that predicts relations; entity F1 leads for a tagger and
    breaks ties; the key is the mean over tasks."""
    spert = {"entities": _scores(90.0), "relations_with_types": _scores(40.0)}
    tagger = {"entities": _scores(70.0)}
    assert selection_key({"a": spert, "b": tagger}) == (55.0, 80.0)
    better_relations = {"entities": _scores(10.0), "relations_with_types": _scores(41.0)}
    assert selection_key({"a": better_relations}) > selection_key({"a": spert})
    assert selection_key({"a": {**spert, "entities": _scores(91.0)}}) > selection_key({"a": spert})


def test_the_best_dev_epoch_is_kept_when_it_is_not_the_last(tmp_path, tiny_encoder_dir, monkeypatch):
    """Dev F1 scripted to 10, 30, 20: the saved pipeline is epoch 2's weights, and says so."""
    scripted, snapshots = iter([10.0, 30.0, 20.0]), []
    real = training.evaluate_tasks

    def evaluate(model, tasks, split, batch_size):
        if split != "dev":
            return real(model, tasks, split, batch_size)
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        f1 = next(scripted)
        return {data.name: {"entities": _scores(f1)} for data in tasks}

    monkeypatch.setattr(training, "evaluate_tasks", evaluate)
    output = tmp_path / "run"
    result = train(_genes(tiny_encoder_dir, **{"training.epochs": 3}), DATA, output, progress=False)
    assert result["best_epoch"] == 2 and len(snapshots) == 3
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["best_epoch"] == 2
    run = metrics["run"]  # what made it: a shipped pipeline's record names its command and commit
    assert run["git_commit"] and run["torch_threads"] >= 1 and run["peak_rss_mb"] > 0
    assert [e["dev_selection"] for e in result["epochs"]] == [(10.0, 10.0), (30.0, 30.0), (20.0, 20.0)]
    saved = ExtractionModel.load(output / "ner_extractor").state_dict()
    assert saved.keys() == snapshots[1].keys()
    assert all(torch.equal(saved[k], snapshots[1][k]) for k in saved)
    assert not all(torch.equal(saved[k], snapshots[2][k]) for k in saved), "epochs 2 and 3 differ"


def test_num_layers_applies_when_continuing_from_a_pipeline(tmp_path, tiny_encoder_dir):
    """Regression (commit deeba6f): ``encoder.num_layers`` with ``init_from`` was silently ignored."""
    first = tmp_path / "first"
    train(_genes(tiny_encoder_dir, **{"training.epochs": 1}), DATA, first, progress=False)
    assert len(ExtractionModel.load(first / "ner_extractor").encoder.layers) == 2
    config = load_config(
        CONFIG,
        {"init_from": str(first), "encoder.num_layers": 1, "training.epochs": 1},
        only_tasks=["genes"],
    )
    train(config, DATA, tmp_path / "cut", progress=False)
    assert len(ExtractionModel.load(tmp_path / "cut" / "ner_extractor").encoder.layers) == 1
