"""Shipped pipelines by short name: ``ner.load("bio")``, ``ner extract --pipeline bio``, ``ner
evaluate bio``; names resolve before folders (as installed packages do in ``spacy.load``), unknown
names fail with the list of shipped ones, and ``ner compact`` keeps which heads feed ``doc.ents``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

import ner
from ner import pipeline
from ner.cli import app
from ner.embeddings import is_compact
from ner.pipeline import DEFAULT_PIPELINE, SHIPPED, extractor_model, load, resolve, shipped_pipelines

runner = CliRunner()
DATA = Path(__file__).parent / "data"


def test_every_shipped_name_is_installed_and_the_default_comes_first():
    assert list(shipped_pipelines()) == list(SHIPPED)  # a clean clone has every one of them
    assert next(iter(shipped_pipelines().values())) == DEFAULT_PIPELINE
    for name, folder in shipped_pipelines().items():
        assert resolve(name) == folder and (folder / "meta.json").is_file()


def test_none_is_the_default_and_a_folder_is_itself(tmp_path):
    assert resolve(None) == DEFAULT_PIPELINE == resolve("conll04")
    assert resolve(tmp_path) == tmp_path and resolve(str(tmp_path)) == tmp_path


def test_a_short_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conll04").mkdir()
    assert resolve("conll04") == DEFAULT_PIPELINE
    assert resolve("./conll04") == Path("./conll04")  # the way to name the folder


def test_an_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no pipeline 'biology'") as error:
        resolve("biology")
    assert all(name in str(error.value) for name in shipped_pipelines())


def test_a_shipped_name_missing_from_the_installation_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "PRETRAINED", tmp_path)
    with pytest.raises(FileNotFoundError, match="shipped pipeline 'bio' is not installed"):
        resolve("bio")
    assert shipped_pipelines() == {}


def test_ner_load_takes_a_short_name():
    nlp = ner.load("conll04")
    assert nlp.meta["name"] == spacy.load(DEFAULT_PIPELINE).meta["name"]
    labels = {e.label_ for e in nlp("Satya Nadella works for Microsoft.").ents}
    assert labels and labels <= {"Peop", "Org", "Loc", "Other"}


def test_extract_with_a_short_name_and_a_wrong_one(tmp_path):
    """`ner extract --pipeline bio DOCS/` (issue 15's acceptance), and a name that is no pipeline."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The drug cisplatin caused severe nephrotoxicity.", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["extract", str(docs), "-o", str(out), "--pipeline", "bio", "--quiet"])
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert record["pipeline"]["name"] == "bio"
    assert {e["label"] for e in record["entities"]} <= {"Gene", "Chemical", "Disease"}
    args = ["extract", str(docs), "-o", str(tmp_path / "w.jsonl"), "--pipeline", "nosuch"]
    wrong = runner.invoke(app, args)
    assert wrong.exit_code == 2 and "no pipeline 'nosuch'" in wrong.output
    assert not (tmp_path / "w.jsonl").exists()


def extractor_config(path: Path) -> dict:
    return dict(spacy.load(path).config["components"]["ner_extractor"])


def test_compact_keeps_the_component_settings_and_can_set_the_ents_heads(multitask, tmp_path):
    kept, chosen = tmp_path / "kept", tmp_path / "chosen"
    assert runner.invoke(app, ["compact", str(multitask), str(kept), "--dtype", "int8"]).exit_code == 0
    before = extractor_config(multitask)
    assert {k: v for k, v in extractor_config(kept).items() if k != "dtype"} == {
        k: v for k, v in before.items() if k not in ("dtype", "storage")
    } | {"storage": "delta"}
    result = runner.invoke(app, ["compact", str(kept), str(chosen), "--ents-head", "genes"])
    assert result.exit_code == 0, result.output
    assert extractor_config(chosen)["ents_heads"] == ["genes"]
    doc = spacy.load(chosen)("BRCA1 and aspirin and cisplatin")
    assert {e.label_ for e in doc.ents} <= {"Gene"}  # the chemicals head no longer feeds doc.ents
    assert "chemicals" in doc.spans
    wrong = runner.invoke(app, ["compact", str(kept), str(tmp_path / "w"), "--ents-head", "species"])
    assert wrong.exit_code == 2 and "species" in wrong.output


def test_compact_sets_how_the_loaded_pipeline_holds_its_embeddings(multitask, tmp_path):
    """fp16 embedding rows are a load-time setting: the stored weights stay whole, so compacting the
    fp16 pipeline back to float32 rows gives the first pipeline's predictions again (compacting a
    pipeline loaded with its rounded rows failed: the model held no full matrix to save). Training
    on from it (init_from) loads it whole the same way."""
    half, back = tmp_path / "half", tmp_path / "back"
    result = runner.invoke(app, ["compact", str(multitask), str(half), "--embedding-dtype", "float16"])
    assert result.exit_code == 0, result.output
    assert extractor_config(half)["embedding_dtype"] == "float16"
    assert is_compact(extractor_model(load(half)).encoder.transformer)
    assert not is_compact(extractor_model(load(half, whole=True)).encoder.transformer)
    assert extractor_config(multitask)["embedding_dtype"] == "float32"
    result = runner.invoke(app, ["compact", str(half), str(back), "--embedding-dtype", "float32"])
    assert result.exit_code == 0, result.output
    text = "BRCA1 and aspirin and cisplatin in BRCA2 carriers"
    spans = lambda doc: {k: [(s.start, s.end, s.label_) for s in v] for k, v in doc.spans.items()}  # noqa: E731
    assert spans(spacy.load(back)(text)) == spans(spacy.load(multitask)(text))
    wrong = runner.invoke(app, ["compact", str(half), str(tmp_path / "w"), "--embedding-dtype", "bf16"])
    assert wrong.exit_code == 2 and "embedding dtype" in wrong.output


def test_extract_passes_every_option_to_its_own_field(tmp_path, monkeypatch):
    """RunOptions was built by position, and a field added in its middle shifted the rest:
    --engine ray ran locally, every record was fsynced and --read-timeout was off."""
    seen = {}

    def fake_run(inputs, output, options, progress=True):
        seen["options"] = options
        raise SystemExit(0)

    monkeypatch.setattr("ner.batch.runner.run", fake_run)
    (tmp_path / "a.txt").write_text("Some text.", encoding="utf-8")
    args = ["extract", str(tmp_path / "a.txt"), "-o", str(tmp_path / "o.jsonl"), "--pipeline", "conll04"]
    args += ["--engine", "ray", "--read-timeout", "5", "--workers", "2", "--glob", "*.txt"]
    runner.invoke(app, args)
    options = seen["options"]
    assert (options.engine, options.fsync, options.read_seconds) == ("ray", False, 5.0)
    assert (options.workers, options.pattern, options.address) == (2, "*.txt", None)
    assert options.pipeline == str(DEFAULT_PIPELINE)
