"""``ner train`` scores its test split as a user meets it: raw text through the saved pipeline first."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ner.cli import app

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def test_metrics_hold_the_raw_text_test_scores_of_the_saved_pipeline(tmp_path, tiny_encoder_dir):
    output = tmp_path / "pipeline"
    args = ["train", str(DATA / "toy.toml"), "-o", str(output), "--quiet"]
    result = runner.invoke(app, [*args, "--set", f"encoder.name={tiny_encoder_dir}"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    raw_line = next(i for i, line in enumerate(lines) if "test micro F1 (raw text)" in line)
    tokens_line = next(i for i, line in enumerate(lines) if "test micro F1 (pipeline tokens)" in line)
    assert raw_line < tokens_line, "raw text is the headline, printed first"
    metrics = json.loads((output / "metrics.json").read_text())
    assert list(metrics).index("test_raw_text") < list(metrics).index("test")
    recorded = metrics["test_raw_text"]["spert"]
    assert recorded["gold_alignment"]["gold_spans"] > 0
    # the same figures as `ner evaluate --protocol raw` on the saved pipeline, to the last digit
    scores = tmp_path / "scores.json"
    evaluated = runner.invoke(
        app,
        ["evaluate", str(output), str(DATA / "toy_dev.json"), "--protocol", "raw", "-o", str(scores)],
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(scores.read_text())["raw"]["spert"] == recorded
