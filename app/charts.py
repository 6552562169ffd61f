"""Altair charts in the label palette, so a type has the same colour in charts as in the text."""

from __future__ import annotations

import altair as alt
import pandas as pd

from app.palette import colors


def per_type_f1(table: pd.DataFrame) -> alt.Chart:
    """Horizontal F1 bars (0-100), one per row of ``table`` (its ``name``), each in the colour of
    its ``type``, with the value printed."""
    types = list(dict.fromkeys(table["type"]))
    scale = alt.Scale(domain=types, range=list(colors(types).values()))
    base = alt.Chart(table).encode(
        y=alt.Y("name:N", sort=list(table["name"]), title=None, axis=alt.Axis(labelLimit=240)),
        x=alt.X("F1:Q", scale=alt.Scale(domain=[0, 100]), title="F1 (%)"),
        tooltip=["task", "type", "precision", "recall", "F1", "support"],
    )
    bars = base.mark_bar(cornerRadiusEnd=3).encode(color=alt.Color("type:N", scale=scale, legend=None))
    text = base.mark_text(align="left", dx=4).encode(text=alt.Text("F1:Q", format=".1f"))
    return (bars + text).properties(height=30 * len(table) + 60)
