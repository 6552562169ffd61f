"""Models: each pipeline's heads, training data and scores, type by type."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, model_cards, widgets
from app.annotate import training_panel

PERCENT = {name: st.column_config.NumberColumn(format="%.1f") for name in ("precision", "recall", "F1")}
TABLE = {"hide_index": True, "width": "stretch", "column_config": PERCENT}


def show_scores(tasks: dict[str, dict]) -> None:
    """Per kind (entities, relations): F1 by type in a chart, P/R/F1 averages and per type in tables."""
    for kind, title in model_cards.KINDS.items():
        per_type = model_cards.per_type_table(tasks, kind)
        if per_type.empty:
            continue
        st.markdown(f"#### {title}")
        chart, tables = st.columns(2, gap="large")
        chart.altair_chart(charts.per_type_f1(per_type), width="stretch")
        with tables:
            st.dataframe(model_cards.summary_table(tasks, kind), **TABLE)
            st.dataframe(per_type.drop(columns="name"), **TABLE)


st.title("Models")
st.caption(
    "What each pipeline was trained on and how well it scores, type by type: "
    "where to trust it and where to look twice."
)
training_panel.list_finished_runs()
pipelines = widgets.offered_pipelines()
overview = [model_cards.overview_row(p, model_cards.read_metrics(p.path)) for p in pipelines]
st.dataframe(
    pd.DataFrame(overview),
    hide_index=True,
    width="stretch",
    column_config={
        "entity F1": st.column_config.TextColumn(help="micro F1 (%), mean over tasks"),
        "relation F1": st.column_config.TextColumn(help="relations with entity types, micro F1 (%)"),
    },
)
info = widgets.pipeline_select("models_pipeline", where=st)
if info is not None:
    metrics = model_cards.read_metrics(info.path)
    st.caption(f"Encoder **{info.encoder}**, pipeline folder `{info.path.name}`")
    if model_cards.project_note(metrics):
        st.caption(model_cards.project_note(metrics))
    for column, (label, value) in zip(st.columns(5), model_cards.facts(info, metrics).items()):
        column.metric(label, value)
    st.markdown("**Heads**")
    st.dataframe(model_cards.heads_table(info), hide_index=True, width="stretch")
    st.markdown("**Training data**")
    st.dataframe(model_cards.tasks_table(info, metrics), hide_index=True, width="stretch")
    default_task = info.heads[0].name if info.heads else ""
    splits = model_cards.available_splits(metrics, default_task)
    if not splits:
        st.info("This pipeline has no scores: its folder holds no metrics.json from training.")
    else:
        split = st.segmented_control(
            "Scores on", splits, default=splits[0], format_func=model_cards.SPLITS.get, key="models_split"
        )
        show_scores(model_cards.split_scores(metrics, split or splits[0], default_task))
curve = model_cards.learning_curve()
if curve is not None:
    st.subheader("How many annotated documents beat the shipped model")
    st.caption(
        "CoNLL04 test, raw text: models trained as the Train section does on the first N documents "
        "of CoNLL04 train (benchmarks/learning_curve.py); dashed, the shipped model."
    )
    st.altair_chart(model_cards.learning_curve_chart(*curve), width="stretch")
st.divider()
training_panel.show()
