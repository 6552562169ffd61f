"""The Models page under AppTest: every offered pipeline's description and scores, per type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import model_cards
from ner.pipeline import DEFAULT_PIPELINE, shipped_pipelines

MAIN = str(Path(__file__).parents[1] / "app" / "main.py")
SHIPPED = json.loads((DEFAULT_PIPELINE / "metrics.json").read_text())  # what the page must show


@pytest.fixture()
def app(tmp_path, monkeypatch) -> AppTest:
    """The Models page with the shipped pipeline and a scoreless copy of its description."""
    bare = tmp_path / "runs" / "bare"
    bare.mkdir(parents=True)
    (bare / "config.cfg").write_text("[nlp]\n")
    (bare / "meta.json").write_text(json.dumps({"name": "bare", "description": "A model without scores"}))
    monkeypatch.delenv("NER_APP_PIPELINES", raising=False)
    monkeypatch.chdir(tmp_path)
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    return at.switch_page("views/models.py").run()


SCORE_CHARTS = 3  # F1 per type: entities, relations, relations with entity types
CURVE_CHARTS = int(model_cards.learning_curve() is not None)  # benchmarks/results/learning_curve.json


def test_overview_and_scores_of_the_shipped_pipeline(app):
    assert not app.exception
    assert app.title[0].value == "Models"
    overview = app.dataframe[0].value
    shipped = [json.loads((p / "meta.json").read_text())["name"] for p in shipped_pipelines().values()]
    assert list(overview["pipeline"]) == [*shipped, "bare"]  # every shipped pipeline, the default first
    test = SHIPPED["test_raw_text"]["spert"]  # raw text is the headline, and the scores shown first
    entity_f1, relation_f1 = (f"{test[k]['micro']['f1']:.2f}" for k in ("entities", "relations_with_types"))
    assert overview["entity F1"][0] == entity_f1 and overview["relation F1"][0] == relation_f1
    assert overview["entity F1"].iloc[-1] == "–"  # the bare one has no scores
    facts = {m.label: m.value for m in app.metric}
    best = f"{SHIPPED['best_epoch']} of {len(SHIPPED['epochs'])}"
    assert facts["version"] == "0.0.0" and facts["best epoch"] == best and facts["language"] == "en"
    charts = app.get("vega_lite_chart")
    assert len(charts) == SCORE_CHARTS + CURVE_CHARTS  # entities, relations, typed; the learning curve
    tables = [t.value for t in app.dataframe]
    per_type = next(t for t in tables if "support" in t.columns and "Peop" in set(t["type"]))
    assert list(per_type.columns) == ["task", "type", "precision", "recall", "F1", "support"]
    peop = test["entities"]["per_type"]["Peop"]["f1"]
    assert per_type.set_index("type").loc["Peop", "F1"] == round(peop, 2)


def test_dev_scores_and_a_pipeline_without_metrics(app):
    app.button_group(key="models_split").set_value("dev").run()
    assert not app.exception and len(app.get("vega_lite_chart")) == SCORE_CHARTS + CURVE_CHARTS
    app.selectbox(key="models_pipeline").select("bare").run()
    assert not app.exception
    assert [i.value for i in app.info] == [
        "This pipeline has no scores: its folder holds no metrics.json from training."
    ]
    assert "A model without scores" in [c.value for c in app.caption]
