"""Models: each pipeline's heads, training data and scores, type by type."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, model_cards, widgets


def show_scores(scores: dict[str, dict]) -> None:
    for task, kinds in scores.items():
        st.markdown(f"#### Task `{task}`")
        for kind, title in model_cards.KINDS.items():
            if kind not in kinds:
                continue
            chart, tables = st.columns([3, 2], gap="large")
            with chart:
                st.markdown(f"**{title}**: F1 per type")
                st.altair_chart(charts.per_type_f1(model_cards.per_type_table(kinds[kind])), width="stretch")
            with tables:
                st.dataframe(model_cards.summary_table(kinds[kind]), hide_index=True, width="stretch")
                st.dataframe(model_cards.per_type_table(kinds[kind]), hide_index=True, width="stretch")


st.title("Models")
st.caption(
    "What each pipeline was trained on and how well it scores, type by type: "
    "where to trust it and where to look twice."
)
pipelines = widgets.offered_pipelines()
overview = [model_cards.overview_row(p, model_cards.read_metrics(p.path)) for p in pipelines]
st.dataframe(
    pd.DataFrame(overview),
    hide_index=True,
    width="stretch",
    column_config={
        "entity F1": st.column_config.NumberColumn(format="%.2f", help="micro F1, mean over tasks"),
        "relation F1": st.column_config.NumberColumn(format="%.2f", help="typed relations, micro F1"),
    },
)
info = widgets.pipeline_select("models_pipeline", where=st)
if info is not None:
    metrics = model_cards.read_metrics(info.path)
    for column, (label, value) in zip(st.columns(6), model_cards.facts(info, metrics).items()):
        column.metric(label, value)
    heads, data = st.columns(2, gap="large")
    heads.markdown("**Heads**")
    heads.dataframe(model_cards.heads_table(info), hide_index=True, width="stretch")
    data.markdown("**Training data**")
    data.dataframe(model_cards.tasks_table(info, metrics), hide_index=True, width="stretch")
    default_task = info.heads[0].name if info.heads else ""
    splits = model_cards.available_splits(metrics, default_task)
    if not splits:
        st.info("This pipeline has no scores: its folder holds no metrics.json from training.")
    else:
        split = st.segmented_control(
            "Scores on", splits, default=splits[0], format_func=model_cards.SPLITS.get, key="models_split"
        )
        show_scores(model_cards.split_scores(metrics, split or splits[0], default_task))
