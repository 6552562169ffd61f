"""The app's shared widgets and charts, as logic: label colours, the per-type F1 chart's encoding,
and the pipeline picker when there is nothing to pick."""

from __future__ import annotations

import pandas as pd
from streamlit.testing.v1 import AppTest

from app.charts import per_type_f1
from app.palette import color, colors
from app.widgets import label_colours


def test_label_colours_follow_the_label_column_and_leave_other_cells_alone():
    frame = pd.DataFrame({"text": ["Paris", "Booth"], "label": ["Loc", "Peop"], "score": [0.9, 0.8]})
    css = label_colours(frame, {"text": "label"})
    assert list(css["text"]) == [
        f"background-color: {color('Loc')}; color: #111",
        f"background-color: {color('Peop')}; color: #111",
    ]
    assert color("Loc") != color("Peop")  # the check above tells the two labels apart
    assert (css["label"] == "").all() and (css["score"] == "").all()


def test_per_type_f1_bars_take_each_types_palette_colour_in_row_order():
    table = pd.DataFrame(
        {
            "name": ["spert: Loc", "spert: Peop", "genes: Gene"],
            "task": ["spert", "spert", "genes"],
            "type": ["Loc", "Peop", "Gene"],
            "precision": [90.0, 80.0, 70.0],
            "recall": [80.0, 70.0, 60.0],
            "F1": [84.7, 74.7, 64.6],
            "support": [10, 20, 30],
        }
    )
    spec = per_type_f1(table).to_dict()
    bars, text = spec["layer"]
    scale = bars["encoding"]["color"]["scale"]
    assert scale["domain"] == ["Loc", "Peop", "Gene"]
    assert scale["range"] == list(colors(["Loc", "Peop", "Gene"]).values())
    assert bars["encoding"]["y"]["sort"] == ["spert: Loc", "spert: Peop", "genes: Gene"]
    assert bars["encoding"]["x"]["scale"]["domain"] == [0, 100]
    assert text["encoding"]["text"]["format"] == ".1f"
    assert spec["height"] == 30 * 3 + 60


def _picker_page() -> None:
    import streamlit as st

    from app.widgets import pipeline_select

    st.write(f"chosen: {pipeline_select('p')}")


def test_the_pipeline_picker_says_so_when_there_is_no_pipeline(monkeypatch):
    monkeypatch.setattr("app.widgets.offered_pipelines", lambda: [])
    page = AppTest.from_function(_picker_page).run()
    assert "No pipeline found" in page.error[0].value
    assert "chosen: None" in page.markdown[0].value
