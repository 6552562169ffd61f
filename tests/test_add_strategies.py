"""Adding a head to a trained pipeline (``init_from``) under each ``training.add_head_strategy``.

A genes tagger is trained first; a chemicals head is then added with a learning rate high enough
that plain fine-tuning visibly moves what the genes head outputs on its own dev data. Tolerances:

* ``frozen_encoder`` and ``branch``: the old head's logits are exactly equal before and after;
* ``distill``: the old head's tag distributions move (mean total variation per word) at most half
  as much as under plain fine-tuning with the same seed and settings;
* ``rehearsal``: the old head's loss on its own dev data does not rise (fine-tuning's does).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import spacy
import torch

from ner.add_strategies import MAX_OLD_HEAD_DROP, old_head_changes
from ner.config import DEFAULT_ADD_HEAD_STRATEGY, ConfigError, TrainingSettings, load_config
from ner.documents import Document
from ner.integrity import IntegrityError
from ner.metrics import PRF, Scores
from ner.model import BRANCH_FORMAT, CONFIG_FILE, ExtractionModel
from ner.pipeline import blank_pipeline
from ner.tasks import read_split
from ner.training import train
from tests.conftest import SCHEMA, tiny_encoder

DATA = Path(__file__).parent / "data"
CONFIG = DATA / "toy_multitask.toml"
ADDITION = {"training.learning_rate": 3e-3, "training.epochs": 3, "training.distill_weight": 5.0}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def base(tmp_path_factory, tiny_encoder_dir) -> Path:
    """A genes-only pipeline, trained long enough that its dev F1 is above zero."""
    output = tmp_path_factory.mktemp("base") / "genes"
    config = load_config(CONFIG, {"encoder.name": str(tiny_encoder_dir), "training.epochs": 4}, ["genes"])
    train(config, DATA, output, progress=False)
    return output


@pytest.fixture(scope="module")
def add(base, tmp_path_factory):
    """``add(strategy, **overrides) -> (output, result, log messages)``: the chemicals head added to
    ``base``; each distinct run is made once per module."""
    runs: dict = {}

    def run(strategy: str, config_dir: Path = DATA, **overrides):
        key = (strategy, str(config_dir), tuple(sorted(overrides.items())))
        if key not in runs:
            settings = {
                "init_from": str(base),
                "training.add_head_strategy": strategy,
                **ADDITION,
                **overrides,
            }
            output = tmp_path_factory.mktemp(strategy) / "pipeline"
            records, logger = _Records(), logging.getLogger("ner")
            logger.addHandler(records)
            previous = logger.level
            logger.setLevel(logging.INFO)
            try:
                result = train(
                    load_config(CONFIG, settings, ["chemicals"]), config_dir, output, progress=False
                )
            finally:
                logger.removeHandler(records)
                logger.setLevel(previous)
            runs[key] = (output, result, records.messages)
        return runs[key]

    return run


def _genes_dev() -> list[Document]:
    return read_split(load_config(CONFIG).tasks[0], "dev", DATA)


def _genes_outputs(pipeline: Path, docs: list[Document]) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The genes head's logits on ``docs``, which of them are real words, and its dev loss."""
    model = ExtractionModel.load(pipeline / "ner_extractor")
    head = model.heads["genes"]
    encoding = model.encode(model.encoder.tokenize([doc.words for doc in docs]), ["genes"])["genes"]
    with torch.no_grad():
        logits, loss = head.logits(encoding), head.loss(encoding, head.targets(docs)).item()
    real = torch.arange(logits.shape[1])[None, :] < encoding.word_counts[:, None]
    return logits, real, loss


def _shift(before: torch.Tensor, after: torch.Tensor, real: torch.Tensor) -> float:
    """Mean total variation between the tag distributions of each real word."""
    return (0.5 * (after.softmax(-1) - before.softmax(-1)).abs().sum(-1))[real].mean().item()


@pytest.mark.parametrize("strategy", ["frozen_encoder", "branch"])
def test_frozen_strategies_leave_the_old_heads_outputs_exactly_equal(base, add, strategy):
    output, result, _ = add(strategy, **{"training.epochs": 1, "training.branch_layers": 1})
    docs = _genes_dev()
    before, _, _ = _genes_outputs(base, docs)
    after, _, _ = _genes_outputs(output, docs)
    assert torch.equal(before, after)
    assert result["old_heads_dev_f1"]["genes"]["change"] == 0.0
    old = ExtractionModel.load(base / "ner_extractor").encoder.state_dict()
    new = ExtractionModel.load(output / "ner_extractor")
    assert all(torch.equal(old[k], v) for k, v in new.encoder.state_dict().items()), "the encoder is frozen"
    assert result["add_head"]["frozen_encoder"] and result["add_head"]["new_heads"] == ["chemicals"]
    assert list(new.branches) == (["chemicals"] if strategy == "branch" else [])


def test_branch_gives_the_new_head_its_own_trained_top_layers(base, add):
    output, _, _ = add("branch", **{"training.epochs": 1, "training.branch_layers": 1})
    model = ExtractionModel.load(output / "ner_extractor")
    config = json.loads((output / "ner_extractor" / CONFIG_FILE).read_text())
    assert config["format_version"] == BRANCH_FORMAT
    assert config["branches"] == {"chemicals": {"start": 1, "layers": 1}}
    branch, top = model.branches["chemicals"].layers[0].state_dict(), model.encoder.layers[1].state_dict()
    assert not all(torch.equal(branch[k], top[k]) for k in branch), "the branch was trained"


def test_distill_moves_the_old_head_at_most_half_as_much_as_fine_tuning(base, add):
    docs = _genes_dev()
    before, real, _ = _genes_outputs(base, docs)
    fine_tuned = _shift(before, _genes_outputs(add("fine_tune")[0], docs)[0], real)
    distilled = _shift(before, _genes_outputs(add("distill")[0], docs)[0], real)
    assert fine_tuned > 0.05, "the setting must move the old head under plain fine-tuning"
    assert distilled <= 0.5 * fine_tuned, (distilled, fine_tuned)
    report = add("distill")[1]["add_head"]
    assert report["distilled"] == ["genes"] and report["distill_weight"] == 5.0


def test_rehearsal_keeps_training_the_old_head_on_its_own_data(base, add):
    docs = _genes_dev()
    _, _, loss_before = _genes_outputs(base, docs)
    _, _, loss_fine_tuned = _genes_outputs(add("fine_tune")[0], docs)
    _, result, _ = add("rehearsal")
    _, _, loss_rehearsed = _genes_outputs(add("rehearsal")[0], docs)
    assert loss_fine_tuned > loss_before, "plain fine-tuning degrades the old head on its own data"
    assert loss_rehearsed <= loss_before
    assert result["add_head"]["rehearsed"] == ["genes"] and result["add_head"]["distilled"] == []
    assert set(result["test"]) == {"chemicals", "genes"}, "a rehearsed task is scored like a trained one"


def test_fine_tuning_warns_naming_the_head_and_metrics_json_records_the_change(add):
    output, result, messages = add("fine_tune")
    metrics = json.loads((output / "metrics.json").read_text())
    genes = metrics["old_heads_dev_f1"]["genes"]
    assert genes["change"] == pytest.approx(genes["after"] - genes["before"]) and genes["change"] < -1
    assert genes["dropped"] is True
    assert metrics["add_head"]["strategy"] == "fine_tune" and metrics["add_head"]["old_heads"] == ["genes"]
    assert any("old head genes: dev entity F1" in m for m in messages)
    assert any("old head 'genes' lost" in m and "add_head_strategy" in m for m in messages)


def test_rehearsal_without_the_old_files_says_so_and_distills(add, tmp_path):
    for name in ("toy_chem_train.tsv", "toy_chem_dev.tsv"):  # the new task's data, not the old one's
        shutil.copy(DATA / name, tmp_path / name)
    output, result, messages = add("rehearsal", tmp_path, **{"training.epochs": 1})
    warning = next(m for m in messages if "cannot be rehearsed" in m)
    assert "'genes'" in warning and "toy_genes_train.tsv" in warning and "distillation" in warning
    report = json.loads((output / "metrics.json").read_text())["add_head"]
    assert report["rehearsed"] == [] and report["distilled"] == ["genes"]
    assert "toy_genes_train.tsv" in report["rehearsal_fallbacks"]["genes"]


def _scores(entities: float, relations: float | None = None) -> dict[str, Scores]:
    def scores(f1: float) -> Scores:
        return Scores(PRF(f1, f1, f1), PRF(f1, f1, f1), {})

    result = {"entities": scores(entities)}
    if relations is not None:
        result["relations_with_types"] = scores(relations)
    return result


def test_a_drop_of_more_than_one_point_is_a_warning_naming_the_head(caplog):
    before = {"genes": _scores(80.0), "chem": _scores(80.0), "spert": _scores(90.0, 60.0)}
    after = {
        "genes": _scores(80.0 - MAX_OLD_HEAD_DROP - 0.01),
        "chem": _scores(79.1),
        "spert": _scores(90.0, 58.0),
    }
    with caplog.at_level(logging.INFO, logger="ner.add_strategies"):
        changes = old_head_changes(before, after)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "'genes'" in warnings[0] and "entity" in warnings[0]
    assert "'spert'" in warnings[1] and "typed relation" in warnings[1]
    assert [changes[n]["dropped"] for n in ("genes", "chem", "spert")] == [True, False, True]
    assert changes["spert"]["typed_relations"]["change"] == pytest.approx(-2.0)


def _branched_model(window: int | None = None, overlap: int = 16) -> ExtractionModel:
    specs = {name: ({"type": "tagger"}, SCHEMA) for name in ("trunk", "left", "right")}
    model = ExtractionModel.create(tiny_encoder(window=window, overlap=overlap), "tiny", specs)
    model.add_branch("left", 1)
    model.add_branch("right", 2)
    with torch.no_grad():
        for parameter in model.branches["right"].parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    return model.eval()


def test_an_unchanged_branch_reads_exactly_what_the_trunk_gives(rng):
    model = _branched_model(window=16, overlap=4)  # short windows: documents span several, merged back
    docs = [
        [rng.choice(["gene", "BRCA1", "binds", "the", "protein", "."]) for _ in range(n)] for n in (3, 40)
    ]
    with torch.no_grad():
        encodings = model.encode(model.encoder.tokenize(docs))
    trunk, left = encodings["trunk"], encodings["left"]
    assert torch.equal(trunk.states, left.states) and torch.equal(trunk.cls, left.cls)
    assert not torch.equal(trunk.states, encodings["right"].states)


def test_the_shared_layers_and_each_branch_run_once_per_chunk(monkeypatch):
    model = _branched_model()
    calls: list[str] = []
    modules = {
        "bottom": model.encoder.layers[0],
        "top": model.encoder.layers[1],
        "left": model.branches["left"].layers[0],
        "right0": model.branches["right"].layers[0],
    }
    for name, module in modules.items():
        module.register_forward_hook(lambda *_, name=name: calls.append(name))
    model.predict([["Word"] * 5] * 4, batch_size=8)
    assert sorted(calls) == ["bottom", "left", "right0", "top"]
    calls.clear()
    model.predict([["Word"] * 5] * 4, batch_size=8, heads=["trunk"])
    assert sorted(calls) == ["bottom", "top"], "a trunk head alone runs no branch"


def test_branches_save_and_load_through_the_hashed_safetensors(tmp_path):
    model = _branched_model()
    docs = [["BRCA1", "binds", "p53", "."], ["cisplatin"]]
    model.save(tmp_path / "m")
    loaded = ExtractionModel.load(tmp_path / "m")
    for name, branch in model.branches.items():
        saved = loaded.branches[name].state_dict()
        assert all(torch.equal(saved[k], v) for k, v in branch.state_dict().items())
    with torch.no_grad():
        a, b = model.encode(model.encoder.tokenize(docs)), loaded.encode(loaded.encoder.tokenize(docs))
    assert all(torch.equal(a[n].states, b[n].states) for n in a)
    config = tmp_path / "m" / CONFIG_FILE
    config.write_text(config.read_text().replace('"start": 1', '"start": 0'))
    with pytest.raises(IntegrityError):
        ExtractionModel.load(tmp_path / "m")


def test_the_strategy_is_a_validated_setting_whose_default_is_one_constant(tmp_path, tiny_encoder_dir):
    assert TrainingSettings().add_head_strategy == DEFAULT_ADD_HEAD_STRATEGY
    with pytest.raises(ConfigError, match="add_head_strategy"):
        load_config(CONFIG, {"training.add_head_strategy": "forget"})


def test_a_branched_pipeline_with_the_onnx_backend_keeps_its_torch_layers(tmp_path, monkeypatch):
    """A branch runs on the torch layers below it, so loading with ``backend = "onnx"`` must not
    release them: the branched head would fail."""
    monkeypatch.setenv("NER_CACHE_DIR", str(tmp_path / "cache"))
    model = _branched_model()
    nlp = blank_pipeline("en")
    nlp.add_pipe("ner_extractor", config={"backend": "onnx"}).model = model
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    encoder = loaded.get_pipe("ner_extractor").model.encoder
    assert not encoder.layers_released
    docs = list(loaded.pipe(["BRCA1 binds p53 .", "cisplatin"]))
    assert all(set(doc.spans) >= {"trunk", "left", "right"} for doc in docs)
