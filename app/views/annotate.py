"""Annotate: open a dataset, correct it document by document, export training data."""

import streamlit as st

from app.annotate import editing, opening, session, sidebar

st.title("Annotate")
st.caption(
    "Correct what the models found, document by document: every change is saved at once, and "
    "the export is training data for `ner train`."
)
opening.restore_from_url()
session.show_message()
store = session.current()
if store is None:
    opening.open_panel()
else:
    session.remember(store)  # in the URL again after a visit to another page: a reload reopens it
    opening.show_unreadable(store)
    sidebar.show(store)
    editing.navigation(store)
    editing.document(store)
    entities, relations = st.columns([11, 9], gap="large")
    with entities:
        editing.spans_table(store.project)
    with relations:
        editing.relations_table(store.project)
