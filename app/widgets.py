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
    return _discover(os.environ.get(ENV_PIPELINES, ""), str(Path.cwd()))


@st.cache_data(ttl=30, show_spinner=False)
def _discover(listed: str, cwd: str) -> list[PipelineInfo]:
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


def labelled_table(table: pd.DataFrame, *label_columns: str) -> None:
    """A table whose label cells have their label's colour and whose scores are bars."""
    style = table.style
    for column in label_columns:
        style = style.map(lambda label: f"background-color: {color(label)}; color: #111", subset=[column])
    score = st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.2f")
    st.dataframe(style, hide_index=True, width="stretch", column_config={"score": score})
