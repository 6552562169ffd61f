"""The Annotate page's session: the open project, and edits that always go through its store.

Every change calls :meth:`AnnotationStore.apply` (or a cursor method), which saves the project
atomically before the page shows the result; a refused edit or a failed save becomes a message
on the page, never a traceback, and leaves the saved file as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from app import paths
from ner.annotation import AnnotatedDoc, AnnotationError, AnnotationStore, Project, add_span
from ner.annotation.tokens import word_bounds

STORE = "annotate_store"
MESSAGE = "annotate_message"
LABEL = "annotate_label"
PROJECT = "project"  # the query parameter that names the open project


def current() -> AnnotationStore | None:
    return st.session_state.get(STORE)


def use(store: AnnotationStore, note: str | None = None) -> None:
    """Make ``store`` the open project (and remember it in the URL, so a reload reopens it)."""
    st.session_state[STORE] = store
    remember(store)
    if note:
        flash("success", note)


def remember(store: AnnotationStore) -> None:
    """Name the open project in the URL (``?project=docs.annotations.json``), on every run of the
    page: going to another page drops the query, and a reload after coming back must still find
    the project. The name is relative to the data folder, which is where it is looked up."""
    name = url_name(store.path)
    if st.query_params.get(PROJECT) != name:
        st.query_params[PROJECT] = name


def url_name(path: Path) -> str:
    """``path`` relative to the data folder (projects live there), else in full."""
    folder = paths.data_folder()
    return str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)


def close() -> None:
    st.session_state.pop(STORE, None)
    st.query_params.pop(PROJECT, None)


def flash(kind: str, text: str) -> None:
    """A message for the next run of the page (callbacks run before it)."""
    st.session_state[MESSAGE] = (kind, text)


def show_message() -> None:
    kind, text = st.session_state.pop(MESSAGE, (None, None))
    if kind == "error":
        st.error(text, icon=":material/error:")
    elif kind == "warning":
        st.warning(text, icon=":material/warning:")
    elif kind == "success":
        st.toast(text, icon=":material/check_circle:")


def act(edit: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Apply ``edit`` to the open project and save it; a refusal or a failed save is a message."""
    store = current()
    if store is None:
        return
    try:
        store.apply(edit, *args, **kwargs)
    except AnnotationError as error:
        flash("error", str(error))
    except OSError as error:
        flash("error", f"Could not save {store.path}: {error.strerror or error}. Nothing was lost on disk.")


def move(step: Callable[[], int]) -> None:
    """Go to another document (the cursor is saved too, so reopening continues there)."""
    try:
        step()
    except (AnnotationError, OSError) as error:
        flash("error", str(error))


def add_selected(doc: AnnotatedDoc, project: Project, start: int, end: int) -> None:
    """A span from a mouse selection, with the label chosen above the text."""
    label = st.session_state.get(LABEL)
    if not label:
        flash("warning", "Choose the label for new spans first.")
        return
    add_labelled(doc, project, start, end, label)


def add_labelled(doc: AnnotatedDoc, project: Project, start: int, end: int, label: str) -> None:
    act(add_span, doc, start, end, label, lang=project.lang)


def status_line(score: float | None, head: str | None, status: str) -> str:
    """``suggested · 0.93 · spert`` or ``accepted``."""
    parts = [status]
    if score is not None:
        parts.append(f"{score:.2f}")
    if head:
        parts.append(head)
    return " · ".join(parts)


def words(doc: AnnotatedDoc, lang: str) -> list[tuple[int, int]]:
    """The document's words (character ranges), for adding a span without the mouse."""
    return list(word_bounds(doc.text, lang))
