"""Widgets more than one page uses."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from app.palette import color
from app.pipelines import ENV_PIPELINES, PipelineInfo, discover


def offered_pipelines() -> list[PipelineInfo]:
    """The pipelines on offer; looked for again every 30 s, so a training run that finishes shows up."""
    return discover_cached(os.environ.get(ENV_PIPELINES, ""), str(Path.cwd()))


@st.cache_data(ttl=30, show_spinner=False)
def discover_cached(listed: str, cwd: str) -> list[PipelineInfo]:
    """``discover`` for 30 s per (listed, cwd); a page that knows a run has just finished calls
    ``discover_cached.clear()`` so that it shows up now."""
    return discover({ENV_PIPELINES: listed}, Path(cwd))


def pipeline_select(key: str, where=st.sidebar) -> PipelineInfo | None:
    """A pipeline chosen by its name, with its description under it; None (and a message) when
    there is none to choose."""
    pipelines = offered_pipelines()
    if not pipelines:
        st.error("No pipeline found. Start the app with `ner app --pipeline DIR`.")
        return None
    titles = [p.title for p in pipelines]
    title = where.selectbox("Pipeline", titles, key=key, help="Shipped, given to `ner app`, or under runs/")
    info = pipelines[titles.index(title)]
    where.caption(info.summary)
    return info


def labelled_table(table: pd.DataFrame, colour_by: dict[str, str], shown: list[str] | None = None) -> None:
    """A table whose cells in ``colour_by``'s keys take the colour of the label in the column it
    names (``{"head": "head label"}``), with scores as bars; ``shown`` columns only, if given."""
    score = st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.2f")
    st.dataframe(
        table.style.apply(label_colours, axis=None, colour_by=colour_by),
        hide_index=True,
        width="stretch",
        column_order=shown,
        column_config={"score": score},
    )


def label_colours(frame: pd.DataFrame, colour_by: dict[str, str]) -> pd.DataFrame:
    """The CSS of each cell of ``frame``: the columns in ``colour_by`` take the colour of the label in
    the column each names (the label's colour in the text too); every other cell none."""
    css = pd.DataFrame("", index=frame.index, columns=frame.columns)
    for column, label_column in colour_by.items():
        css[column] = [f"background-color: {color(label)}; color: #111" for label in frame[label_column]]
    return css
