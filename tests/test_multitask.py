"""Multi-task NER: per-dataset heads on one encoder, partial labels, one encoder pass at inference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from ner.cli import app as cli_app
from ner.config import ConfigError, load_config
from ner.model import ExtractionModel
from ner.pipeline import build_pipeline
from ner.tasks import TaskError
from ner.training import train
from tests.conftest import SCHEMA, tiny_encoder

DATA = Path(__file__).parent / "data"
CONFIG = DATA / "toy_multitask.toml"


def _config(encoder_dir: Path, **overrides):
    return load_config(CONFIG, {"encoder.name": str(encoder_dir), **overrides})


@pytest.fixture(scope="module")
def multitask_run(tmp_path_factory, tiny_encoder_dir):
    """Two toy datasets with disjoint types (genes: untyped BioBERT TSV; chemicals: typed IOB)."""
    output = tmp_path_factory.mktemp("mt") / "pipeline"
    steps: list[tuple[str, set[str], bool]] = []

    def record(task: str, model: ExtractionModel) -> None:
        heads_with_grad = {
            name
            for name, head in model.heads.items()
            if any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
        }
        encoder_grad = any(p.grad is not None for p in model.encoder.parameters())
        steps.append((task, heads_with_grad, encoder_grad))

    result = train(_config(tiny_encoder_dir), DATA, output, progress=False, on_step=record)
    return output, result, steps


def test_each_head_receives_only_its_own_datasets_loss(multitask_run):
    _, _, steps = multitask_run
    tasks = [task for task, _, _ in steps]
    # 12 gene sentences in batches of 4, 10 chemical sentences in batches of 3, for 2 epochs
    assert sorted(set(tasks)) == ["chemicals", "genes"]
    assert tasks.count("genes") == 2 * 3 and tasks.count("chemicals") == 2 * 4
    for task, heads_with_grad, encoder_grad in steps:
        assert heads_with_grad == {task}, f"a {task} batch reached heads {heads_with_grad}"
        assert encoder_grad, "the shared encoder learns from every task"


def test_the_pipeline_has_one_head_per_dataset_with_its_own_labels(multitask_run):
    output, result, _ = multitask_run
    nlp = spacy.load(output)
    model = nlp.get_pipe("ner_extractor").model
    assert list(model.heads) == ["genes", "chemicals"]
    assert model.heads["genes"].schema.entity_labels == ("Gene",)
    assert model.heads["chemicals"].schema.entity_labels == ("Chemical",)
    doc = nlp("Binding of cisplatin to BRCA1 was not observed .")
    assert set(doc.spans) >= {"genes", "chemicals"}
    assert {s.label_ for s in doc.spans["genes"]} <= {"Gene"}
    assert {s.label_ for s in doc.spans["chemicals"]} <= {"Chemical"}
    assert set(result["test"]) == {"genes", "chemicals"}
    metrics = json.loads((output / "metrics.json").read_text())
    assert set(metrics["epochs"][0]["dev"]) == {"genes", "chemicals"}
    recorded = [t["name"] for t in nlp.meta["training"]["tasks"]]
    assert recorded == ["genes", "chemicals"], "the pipeline remembers its tasks (for evaluate/init_from)"


def test_inference_runs_the_encoder_once_per_batch_whatever_the_number_of_heads(monkeypatch):
    encoder = tiny_encoder()
    schemas = {"spert": SCHEMA, "a": SCHEMA, "b": SCHEMA}
    specs = {name: ({"type": "spert" if name == "spert" else "tagger"}, s) for name, s in schemas.items()}
    model = ExtractionModel.create(encoder, "tiny", specs)
    calls = []
    original = type(encoder).forward
    monkeypatch.setattr(
        type(encoder), "forward", lambda self, batch: calls.append(1) or original(self, batch)
    )
    docs = [["Word"] * (1 + i % 7) for i in range(10)]
    outputs = model.predict(docs, batch_size=4)
    assert len(calls) == 3 and all(set(o) == set(specs) for o in outputs)
    calls.clear()
    nlp = build_pipeline(model)
    list(nlp.pipe([" ".join(d) for d in docs], batch_size=10))
    assert len(calls) == 1, "ten docs fit one model batch (64): one pass for three heads"


#: dev F1 on the corpus's tokens, so that `ner evaluate --protocol tokens` recomputes it independently
CORPUS_TOKENS = {"training.tokenization": "corpus"}


def test_adding_a_task_keeps_the_old_head_and_reports_its_dev_f1_change(tmp_path, tiny_encoder_dir):
    first = tmp_path / "genes"
    train(
        load_config(CONFIG, {"encoder.name": str(tiny_encoder_dir), **CORPUS_TOKENS}, only_tasks=["genes"]),
        DATA,
        first,
        progress=False,
    )
    old_head = {
        k: v.clone()
        for k, v in spacy.load(first).get_pipe("ner_extractor").model.heads["genes"].state_dict().items()
    }
    # fine_tune: the strategy whose promise is exactly this (rehearsal, the default, trains the old head)
    overrides = {"init_from": str(first), "training.add_head_strategy": "fine_tune", **CORPUS_TOKENS}
    config = load_config(CONFIG, overrides, only_tasks=["chemicals"])
    second = tmp_path / "both"
    result = train(config, DATA, second, progress=False)
    change = result["old_heads_dev_f1"]["genes"]
    recorded = json.loads((first / "metrics.json").read_text())
    best = recorded["epochs"][recorded["best_epoch"] - 1]["dev"]["genes"]["entities"]["micro"]["f1"]
    assert change["before"] == pytest.approx(best), "before: the loaded head scores what its run recorded"
    scores = tmp_path / "dev_scores.json"  # after: what `ner evaluate` gives the saved pipeline
    args = [
        "evaluate",
        str(second),
        str(DATA / "toy_genes_dev.tsv"),
        "--head",
        "genes",
        "--protocol",
        "tokens",
    ]
    done = CliRunner().invoke(cli_app, [*args, "-o", str(scores)])
    assert done.exit_code == 0, done.output
    evaluated = json.loads(scores.read_text())["tokens"]["genes"]["entities"]["micro"]["f1"]
    assert change["after"] == pytest.approx(evaluated)
    assert change["change"] == pytest.approx(change["after"] - change["before"])
    model = spacy.load(second).get_pipe("ner_extractor").model
    assert list(model.heads) == ["genes", "chemicals"]
    for key, value in model.heads["genes"].state_dict().items():
        assert torch.equal(value, old_head[key]), "the old head gets no gradient from the new task"
    assert [t["name"] for t in spacy.load(second).meta["training"]["tasks"]] == ["genes", "chemicals"]


def test_a_task_whose_files_disagree_with_its_labels_is_rejected(tmp_path, tiny_encoder_dir):
    config = _config(tiny_encoder_dir)
    config.tasks[1].labels = ["Drug"]  # the chemical file says Chemical
    with pytest.raises(TaskError, match=r"'chemicals'.*\['Chemical'\].*\['Drug'\]"):
        train(config, DATA, tmp_path / "x", progress=False)


def test_an_existing_head_must_fit_its_tasks_labels(tmp_path, tiny_encoder_dir):
    first = tmp_path / "genes"
    train(
        load_config(CONFIG, {"encoder.name": str(tiny_encoder_dir), **CORPUS_TOKENS}, only_tasks=["genes"]),
        DATA,
        first,
        progress=False,
    )
    config = load_config(CONFIG, {"init_from": str(first)}, only_tasks=["genes"])
    config.tasks[0].entity_type = "Protein"
    with pytest.raises(TaskError, match="Protein"):
        train(config, DATA, tmp_path / "x", progress=False)
    data = config.model_dump()
    data["tasks"][0].update(entity_type="Gene", head={"type": "spert"})
    with pytest.raises(TaskError, match="the pipeline's head is a tagger"):
        train(type(config).model_validate(data), DATA, tmp_path / "y", progress=False)


def test_a_spert_task_and_a_tagging_task_train_on_one_encoder(tmp_path, tiny_encoder_dir):
    config = tmp_path / "mixed.toml"
    spert = (DATA / "toy.toml").read_text().split("[training]")[0].replace('data_root = "."', "")
    genes = CONFIG.read_text().split("[[tasks]]")[1]
    config.write_text(f'data_root = "{DATA}"\n{spert}\n[[tasks]]{genes}\n[training]\nepochs = 1\n')
    steps: list[tuple[str, set[str]]] = []

    def record(task: str, model: ExtractionModel) -> None:
        steps.append(
            (task, {n for n, h in model.heads.items() if any(p.grad is not None for p in h.parameters())})
        )

    result = train(
        load_config(config, {"encoder.name": str(tiny_encoder_dir)}),
        DATA,
        tmp_path / "out",
        progress=False,
        on_step=record,
    )
    assert {task for task, _ in steps} == {"spert", "genes"}
    assert all(heads == {task} for task, heads in steps)
    assert set(result["test"]["spert"]) == {"entities", "relations", "relations_with_types"}
    assert set(result["test"]["genes"]) == {"entities"}
    doc = spacy.load(tmp_path / "out")("Leonardo DiCaprio works for Warner Bros in Los Angeles .")
    assert set(doc.spans) >= {"spert", "genes"}


def test_frozen_layers_get_no_gradient_and_are_left_out_of_a_delta_save(tmp_path, tiny_encoder_dir):
    """``encoder.freeze_layers``: the embeddings and the bottom layers stay the base encoder's, so a
    delta pipeline stores only the layers above them, and still loads to the trained weights."""
    overrides = {"encoder.freeze_layers": 1, "export.storage": "delta", "export.dtype": "float32"}
    config = load_config(CONFIG, {"encoder.name": str(tiny_encoder_dir), **overrides}, only_tasks=["genes"])
    frozen_grads: list[bool] = []

    def record(task: str, model: ExtractionModel) -> None:
        frozen = [p for n, p in model.encoder.named_parameters() if ".layer.1." not in n]
        frozen_grads.append(any(p.grad is not None for p in frozen))

    train(config, DATA, tmp_path / "out", progress=False, on_step=record)
    assert frozen_grads and not any(frozen_grads)
    stored = json.loads((tmp_path / "out" / "ner_extractor" / "model.json").read_text())["weights"]
    with safe_open(str(tmp_path / "out" / "ner_extractor" / "weights.safetensors"), "pt") as weights:
        encoder_keys = [k for k in weights.keys() if not k.startswith("heads.")]  # noqa: SIM118
    assert stored["storage"] == "delta" and encoder_keys
    assert all(k.startswith("delta.encoder.layer.1.") for k in encoder_keys), encoder_keys
    base = ExtractionModel.load(tmp_path / "out" / "ner_extractor").encoder.transformer.state_dict()
    original = tiny_encoder().transformer.state_dict()
    assert torch.equal(
        base["embeddings.word_embeddings.weight"], original["embeddings.word_embeddings.weight"]
    )


def test_freezing_more_layers_than_the_encoder_has_fails_with_a_config_error(tmp_path, tiny_encoder_dir):
    config = _config(tiny_encoder_dir, **{"encoder.freeze_layers": 3})
    with pytest.raises(ConfigError, match=r"freeze_layers must be between 0 and 2"):
        train(config, DATA, tmp_path / "x", progress=False)


def test_a_model_on_the_bottom_layers_saves_as_a_delta_and_loads_with_that_depth(tmp_path, tiny_encoder_dir):
    """``encoder.num_layers``: the base encoder is cut to its bottom layers before training; the delta
    pipeline records the depth, and loading cuts the installed base the same way before adding it."""
    overrides = {"encoder.num_layers": 1, "export.storage": "delta", "export.dtype": "float32"}
    config = load_config(CONFIG, {"encoder.name": str(tiny_encoder_dir), **overrides}, only_tasks=["genes"])
    train(config, DATA, tmp_path / "out", progress=False)
    model = ExtractionModel.load(tmp_path / "out" / "ner_extractor")
    assert len(model.encoder.layers) == 1
    with safe_open(str(tmp_path / "out" / "ner_extractor" / "weights.safetensors"), "pt") as weights:
        assert not [k for k in weights.keys() if ".layer.1." in k]  # noqa: SIM118
    # what was loaded is, tensor by tensor, the installed base's bottom layer plus the stored
    # difference (read here straight from the two files, not through the loader)
    loaded = spacy.load(tmp_path / "out").get_pipe("ner_extractor").model.encoder.transformer.state_dict()
    stored = tmp_path / "out" / "ner_extractor" / "weights.safetensors"
    with (
        safe_open(str(stored), "pt") as deltas,
        safe_open(str(tiny_encoder_dir / "model.safetensors"), "pt") as base,
    ):
        names = [k.removeprefix("delta.") for k in deltas.keys() if k.startswith("delta.")]  # noqa: SIM118
        assert any(".layer.0." in name for name in names)
        for name in names:
            expected = base.get_tensor(name) + deltas.get_tensor(f"delta.{name}")
            assert torch.equal(loaded[name], expected), name
    with pytest.raises(ConfigError, match=r"num_layers must be between 1 and 2"):
        train(_config(tiny_encoder_dir, **{"encoder.num_layers": 3}), DATA, tmp_path / "x", progress=False)
