"""Altair charts in the label palette, so a type has the same colour in charts as in the text."""

from __future__ import annotations

import altair as alt
import pandas as pd

from app.palette import colors


def per_type_f1(table: pd.DataFrame) -> alt.Chart:
    """Horizontal F1 bars per type (0-100), each in its label's colour, with the value printed."""
    labels = list(table["type"])
    scale = alt.Scale(domain=labels, range=list(colors(labels).values()))
    base = alt.Chart(table).encode(
        y=alt.Y("type:N", sort=labels, title=None),
        x=alt.X("F1:Q", scale=alt.Scale(domain=[0, 100]), title="F1 (%)"),
        tooltip=["type", "precision", "recall", "F1", "support"],
    )
    bars = base.mark_bar(cornerRadiusEnd=3).encode(color=alt.Color("type:N", scale=scale, legend=None))
    text = base.mark_text(align="left", dx=4).encode(text=alt.Text("F1:Q", format=".1f"))
    return (bars + text).properties(height=36 * len(labels) + 30)
