"""End to end through the ``ner`` command line with a tiny random encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from ner.cli import app

DATA = Path(__file__).parent / "data"
runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_encoder_dir) -> Path:
    output = tmp_path_factory.mktemp("run") / "pipeline"
    result = runner.invoke(
        app,
        [
            "train",
            str(DATA / "toy.toml"),
            "--output",
            str(output),
            "--set",
            f"encoder.name={tiny_encoder_dir}",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    return output


def test_train_writes_a_loadable_pipeline_and_metrics(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert {"entities", "relations", "relations_with_types"} <= set(metrics["test"]["spert"])
    assert all(e["train_seconds"] >= 0 for e in metrics["epochs"])
    nlp = spacy.load(trained)
    assert nlp.pipe_names == ["sentencizer", "ner_extractor"]


def test_evaluate_prints_and_writes_scores(trained, tmp_path):
    out = tmp_path / "scores.json"
    result = runner.invoke(app, ["evaluate", str(trained), str(DATA / "toy_dev.json"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "relations_with_types" in result.output and "micro" in result.output
    written = json.loads(out.read_text())
    assert list(written) == ["raw", "tokens"], "raw text first, then the corpus's tokens"
    scores = written["tokens"]["spert"]
    assert set(scores) == {"entities", "relations", "relations_with_types"}
    assert set(written["raw"]["spert"]) == {*scores, "gold_alignment"}
    recorded = json.loads((trained / "metrics.json").read_text())  # toy.toml's test split is toy_dev.json
    assert scores == recorded["test"]["spert"], "the CLI scores the tokens as training did"
    assert scores["entities"]["micro"]["f1"] > 0.0, "a figure that can be wrong"


def test_extract_writes_jsonl_skips_bad_files_and_resumes(trained, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Angela Merkel lives in Berlin. Booth killed Lincoln.", encoding="utf-8")
    (docs / "b.md").write_text("Ünïcödé São Paulo — Zürich 🙂 Москва.", encoding="utf-8")
    (docs / "empty.txt").write_text("", encoding="utf-8")
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02 binary")
    latin1 = "Le café de la Gare, à Genève, où Hélène travaillait depuis l'été dernier, a fermé."
    (docs / "latin1.txt").write_bytes(latin1.encode("latin-1"))
    out = tmp_path / "out.jsonl"
    args = ["extract", str(docs), "-o", str(out), "--pipeline", str(trained), "--quiet"]
    result = runner.invoke(app, [*args, "--show"])
    assert result.exit_code == 1, result.output  # finished, but inputs were skipped
    assert "3 documents extracted (0 already done)" in result.output and "2 failures" in result.output
    assert "== " in result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [Path(r["source"]).name for r in records] == ["a.txt", "b.md", "latin1.txt"]
    assert records[2]["text"] == latin1 and records[2]["encoding"] != "utf-8"
    for record in records:
        assert record["pipeline"]["name"] and len(record["sha256"]) == 64
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["text"]
            assert entity["head"] == "spert"
    errors_file = tmp_path / "out.jsonl.errors.jsonl"
    reasons = {
        Path(e["source"]).name: e["reason"] for e in map(json.loads, errors_file.read_text().splitlines())
    }
    assert set(reasons) == {"empty.txt", "binary.txt"} and "binary" in reasons["binary.txt"]
    before, errors_before = out.read_text(encoding="utf-8"), errors_file.read_text()
    again = runner.invoke(app, args)
    assert again.exit_code == 1, again.output  # the same inputs are still skipped
    assert "0 documents extracted (3 already done)" in again.output
    assert out.read_text(encoding="utf-8") == before and errors_file.read_text() == errors_before


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_compact_keeps_predictions(trained, tmp_path, dtype, monkeypatch):
    out = tmp_path / "nested" / "compact"  # missing parents are created
    args = ["compact", str(trained), str(out), "--storage", "delta", "--dtype", dtype, "--name", "renamed"]
    monkeypatch.setattr("sys.argv", ["/venv/bin/ner", *args])  # as the console script sees it
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = spacy.load(out).meta
    assert meta["name"] == "renamed"
    assert meta["compacted_by"]["command"] == " ".join(["ner", *args])  # which command made these bytes
    text = "Satya Nadella runs Microsoft in Redmond."
    before, after = spacy.load(trained)(text), spacy.load(out)(text)
    assert [(s.start, s.end, s.label_) for s in after.spans["spert"]] == [
        (s.start, s.end, s.label_) for s in before.spans["spert"]
    ]


def test_train_rejects_a_bad_config(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text((DATA / "toy.toml").read_text() + "\n[surprise]\nkey = 1\n")
    result = runner.invoke(app, ["train", str(config)])
    assert result.exit_code == 2
    assert "surprise" in result.output


def test_evaluate_scores_every_head_on_its_own_test_split(multitask, tmp_path):
    out = tmp_path / "scores.json"
    result = runner.invoke(app, ["evaluate", str(multitask), "--data-root", str(DATA), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "===== genes =====" in result.output and "Chemical" in result.output
    scores = json.loads(out.read_text())["tokens"]
    assert set(scores) == {"genes", "chemicals"}
    assert set(scores["genes"]["entities"]["per_type"]) <= {"Gene"}
    trained = json.loads((multitask / "metrics.json").read_text())["test"]
    assert scores["genes"]["entities"]["micro"] == trained["genes"]["entities"]["micro"]


def test_evaluate_one_file_takes_format_and_type_from_the_heads_task(multitask):
    result = runner.invoke(
        app, ["evaluate", str(multitask), str(DATA / "toy_genes_dev.tsv"), "--head", "genes"]
    )
    assert result.exit_code == 0, result.output
    assert "Gene" in result.output
    wrong = runner.invoke(
        app,
        [
            "evaluate",
            str(multitask),
            str(DATA / "toy_chem_dev.tsv"),
            "--head",
            "genes",
            "--format",
            "crichton_iob",
        ],
    )
    assert wrong.exit_code == 2 and "['Chemical']" in wrong.output
    missing = runner.invoke(app, ["evaluate", str(multitask), str(DATA / "toy_genes_dev.tsv"), "--head", "x"])
    assert missing.exit_code == 2 and "no head 'x'" in missing.output


def test_train_reports_a_label_mismatch_without_a_traceback(tmp_path, tiny_encoder_dir):
    config = tmp_path / "c.toml"
    text = (DATA / "toy_multitask.toml").read_text().replace('data_root = "."', f'data_root = "{DATA}"')
    config.write_text(text.replace("batch_size = 3", 'batch_size = 3\nlabels = ["Drug"]'))
    result = runner.invoke(
        app, ["train", str(config), "--set", f"encoder.name={tiny_encoder_dir}", "--quiet"]
    )
    assert result.exit_code == 2
    assert "['Chemical'] that the head does not predict (['Drug'])" in result.output
    assert "Traceback" not in result.output


def test_evaluate_maps_label_sets_explicitly_and_reads_conll_by_language(multitask, tmp_path):
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("BRCA1\tB-Gene\nand\tO\naspirin\tB-Chemical\n\nEGFR\tB-Gene\n")
    args = ["evaluate", str(multitask), str(mixed), "--head", "genes", "--format", "crichton_iob"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "['Chemical']" in refused.output
    mapped = runner.invoke(app, [*args, "--ignore-label", "Chemical", "-o", str(tmp_path / "s.json")])
    assert mapped.exit_code == 0, mapped.output
    for protocol in ("raw", "tokens"):
        scores = json.loads((tmp_path / "s.json").read_text())[protocol]["genes"]["entities"]
        assert {t: s["support"] for t, s in scores["per_type"].items() if s["support"]} == {"Gene": 2}
    spanish = tmp_path / "test.txt"  # CoNLL-2002 layout: token and tag, IOB2
    spanish.write_text("La O\nproteína O\nBRCA1 B-Gene\n")
    result = runner.invoke(app, ["evaluate", str(multitask), str(spanish), "--head", "genes", "--lang", "es"])
    assert result.exit_code == 0, result.output
    unknown = runner.invoke(
        app, ["evaluate", str(multitask), str(spanish), "--head", "genes", "--lang", "xx"]
    )
    assert unknown.exit_code == 2 and "no CoNLL format known for language 'xx'" in unknown.output


def test_train_adds_a_task_to_a_trained_pipeline_and_reports_the_old_heads(multitask, tmp_path):
    config = tmp_path / "more.toml"
    text = (DATA / "toy_multitask.toml").read_text().replace('data_root = "."', f'data_root = "{DATA}"')
    config.write_text(text.replace('name = "chemicals"', 'name = "chemicals_again"'))
    output = tmp_path / "more"
    args = [
        "train",
        str(config),
        "--task",
        "chemicals_again",
        "--init-from",
        str(multitask),
        "-o",
        str(output),
    ]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "old head genes: dev F1" in result.output and "old head chemicals: dev F1" in result.output
    heads = spacy.load(output).get_pipe("ner_extractor").model.heads
    assert list(heads) == ["genes", "chemicals", "chemicals_again"]


def test_extract_into_a_folder_and_engine_names_are_checked(trained, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Booth killed Lincoln.", encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, ["extract", str(docs), "-o", str(out), "--pipeline", str(trained), "--quiet"])
    assert result.exit_code == 0, result.output
    assert len((out / "extractions.jsonl").read_text().splitlines()) == 1
    wrong = runner.invoke(app, ["extract", str(docs), "-o", str(out), "--engine", "spark"])
    assert wrong.exit_code == 2 and "--engine must be local or ray" in wrong.output


def test_extract_docbin_holds_the_pipelines_own_docs(trained, tmp_path):
    """--docbin rebuilds, from the JSONL records, the Docs nlp.pipe gives: tokens, every head's
    spans and scores, the merged doc.ents and the relations."""
    from spacy.tokens import DocBin

    texts = ["Angela Merkel lives in Berlin. Booth killed Lincoln.", "Ünïcödé São Paulo — Zürich 🙂 Москва."]
    docs = tmp_path / "docs"
    docs.mkdir()
    for number, text in enumerate(texts):
        (docs / f"{number}.txt").write_text(text, encoding="utf-8")
    out, docbin = tmp_path / "out.jsonl", tmp_path / "out.spacy"
    args = ["extract", str(docs), "-o", str(out), "--pipeline", str(trained), "--docbin", str(docbin)]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"2 documents -> {docbin}" in result.output
    nlp = spacy.load(trained)
    rebuilt = list(DocBin().from_bytes(docbin.read_bytes()).get_docs(nlp.vocab))
    expected = list(nlp.pipe(texts))
    assert sum(len(doc.spans["spert"]) for doc in expected) > 0  # the comparison is not vacuous
    for got, want in zip(rebuilt, expected):
        assert [t.text for t in got] == [t.text for t in want]
        assert [(e.start, e.end, e.label_) for e in got.ents] == [
            (e.start, e.end, e.label_) for e in want.ents
        ]
        assert [(s.start, s.end, s.label_) for s in got.spans["spert"]] == [
            (s.start, s.end, s.label_) for s in want.spans["spert"]
        ]
        assert got.spans["spert"].attrs["scores"] == pytest.approx(
            want.spans["spert"].attrs["scores"], abs=1e-4
        )
        strip = [{**r, "score": round(r["score"], 4)} for r in want._.relation_data]
        assert [{**r, "head": list(r["head"]), "tail": list(r["tail"])} for r in got._.relation_data] == strip
