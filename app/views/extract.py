"""Extract: run a pipeline on pasted text or an uploaded file and look at what it found."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app import widgets
from app.extraction import (
    MAX_UPLOAD_BYTES,
    PASTED,
    UPLOAD_TYPES,
    above_threshold,
    download_name,
    extract,
    read_upload,
)
from app.pipelines import load
from app.rendering import Mark, highlight_html, legend_html, relation_graph, relation_rows
from ner.batch.sources import SourceText

PASTE, UPLOAD = "Paste text", "Upload a file"
GRAPH_LIMIT = 80


@st.cache_data(show_spinner="Extracting…", max_entries=64)
def run_pipeline(pipeline: str, text: str, source: str) -> dict:
    """Cached by pipeline and text, so moving the threshold slider does not run the model again."""
    return extract(load(pipeline), text, source)


def read_input(mode: str, text: str, upload, text_field: str) -> None:
    """Put the submitted documents (or what was wrong with the input) in the session."""
    documents, problems = [], []
    if mode == PASTE:
        if text.strip():
            documents = [SourceText(PASTED, text)]
        else:
            problems = ["The text is empty: paste some text, then press Extract."]
    elif upload is None:
        problems = ["No file chosen: upload a file, then press Extract."]
    else:
        result = read_upload(upload.name, upload.getvalue(), text_field or "text")
        documents, problems = result.documents, result.problems
    st.session_state.extract_documents = documents
    st.session_state.extract_problems = problems


def document_name(doc: SourceText) -> str:
    where = f", line {doc.line}" if doc.line else f", item {doc.item}" if doc.item is not None else ""
    return f"{doc.source}{where}: {doc.text[:60].strip()}…" if len(doc.text) > 60 else f"{doc.source}{where}"


def show_entities(record: dict, show_heads: bool) -> None:
    entities = record["entities"]
    labels = sorted({e["label"] for e in entities})
    marks = [Mark(e["start"], e["end"], e["label"], e["score"], e["head"]) for e in entities]
    st.html(legend_html(labels) + highlight_html(record["text"], marks, show_heads=show_heads))
    if not entities:
        st.info("No entity above the score threshold.")
        return
    table = pd.DataFrame(entities, columns=["text", "label", "score", "head", "start", "end"])
    table = table.sort_values(["start", "end", "head"], kind="stable")
    widgets.labelled_table(table, {"label": "label"})


def show_relations(record: dict, extracts_relations: bool) -> None:
    if not extracts_relations:
        st.caption("This pipeline extracts entities only.")
        return
    rows = relation_rows(record)
    if not rows:
        st.info("No relation above the score threshold.")
        return
    colours = {"head": "head label", "relation": "relation", "tail": "tail label"}
    widgets.labelled_table(pd.DataFrame(rows), colours, shown=["head", "relation", "tail", "score"])
    if len(rows) > GRAPH_LIMIT:
        st.caption(f"The graph shows the {GRAPH_LIMIT} highest-scored of the {len(rows)} relations.")
    st.graphviz_chart(relation_graph(record, GRAPH_LIMIT), width="content")


def show_result(doc: SourceText, info, threshold: float) -> None:
    try:
        record = run_pipeline(str(info.path), doc.text, doc.source)
    except Exception as error:  # a broken pipeline folder must not put a traceback on the page
        st.error(f"The pipeline {info.title} could not process this text: {error}")
        return
    shown = above_threshold(record, threshold)
    head, download = st.columns([4, 1], vertical_alignment="bottom")
    head.subheader("Entities")
    head.caption(
        f"{len(shown['entities'])} entities and {len(shown['relations'])} relations scored {threshold:.2f}"
        f" or more, by {info.title} (hover over an entity for its score and head)"
    )
    download.download_button(
        "Download JSON",
        data=json.dumps(shown, ensure_ascii=False) + "\n",
        file_name=download_name(doc),
        mime="application/json",
        icon=":material/download:",
        help="This result as one record of `ner extract`'s JSONL; the Annotate page opens it.",
        width="stretch",
    )
    show_entities(shown, show_heads=len(info.heads) > 1)
    st.subheader("Relations")
    show_relations(shown, bool(info.relation_labels))


st.title("Extract")
st.caption(
    "Run a pipeline on text: entities with their labels, scores and heads, and the relations between them."
)
info = widgets.pipeline_select("extract_pipeline")
threshold = st.sidebar.slider(
    "Score threshold", 0.0, 1.0, 0.5, 0.05, help="Hide entities and relations scored below this."
)
mode = st.segmented_control("Input", [PASTE, UPLOAD], default=PASTE, label_visibility="collapsed") or PASTE
with st.form("extract_form", border=False):
    text, upload, text_field = "", None, "text"
    if mode == PASTE:
        text = st.text_area("Text", height=160, placeholder="Paste some text…")
    else:
        upload = st.file_uploader(
            "File",
            type=UPLOAD_TYPES,
            help=f"Text, Markdown, HTML, JSON/JSONL records or PDF, up to {MAX_UPLOAD_BYTES // 10**6} MB.",
        )
        text_field = st.text_input("Text field of JSON/JSONL records", value="text")
    if st.form_submit_button("Extract", type="primary", icon=":material/play_arrow:"):
        read_input(mode, text, upload, text_field)

for problem in st.session_state.get("extract_problems", []):
    st.error(problem, icon=":material/error:")
documents = st.session_state.get("extract_documents", [])
if info is None:
    pass
elif not documents:
    if not st.session_state.get("extract_problems"):
        st.info("Paste some text or upload a file, then press **Extract**.", icon=":material/info:")
else:
    chosen = documents[0]
    if len(documents) > 1:
        label = f"Document ({len(documents)} in the file)"
        chosen = st.selectbox(label, documents, format_func=document_name)
    show_result(chosen, info, threshold)
