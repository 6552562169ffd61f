"""The app's shared widgets and charts, as logic: label colours and the per-type F1 chart's encoding.

(No ``AppTest.from_function`` here: it leaves its temporary script as the ``__main__`` that
spawned worker processes re-run, and a later ``ner extract --workers 2`` test then hangs.)"""

from __future__ import annotations

import pandas as pd

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
