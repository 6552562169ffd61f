"""The Annotate page's sidebar: the project, its progress, its labels and the exports."""

from __future__ import annotations

import streamlit as st

from app import paths
from app.annotate import session, training_panel
from app.rendering import legend_html
from ner.annotation import AnnotationError, AnnotationStore, Project, add_label, export_bytes
from ner.annotation.edits import set_overlaps
from ner.annotation.export import export_folder, problem
from ner.annotation.model import label_order

EXPORTS = {  # format: (button label, file suffix, MIME type)
    "spert_json": ("SpERT JSON", ".spert.json", "application/json"),
    "conll": ("CoNLL IOB2", ".conll", "text/plain"),
    "jsonl": ("JSONL records", ".jsonl", "application/json"),
    "docbin": ("spaCy DocBin", ".spacy", "application/octet-stream"),
}
OVERLAPS = {  # Project.overlaps: what the annotator is told it means
    False: "Every format: no overlapping entities (CoNLL IOB2 cannot hold them)",
    True: "SpERT JSON, JSONL, DocBin: overlapping entities allowed",
}


def show(store: AnnotationStore) -> None:
    project = store.project
    with st.sidebar:
        st.subheader(project.name)
        st.caption(f"Saved after every change to `{store.path}`")
        done, total = project.progress()
        st.progress(done / total if total else 0.0, text=f"{done} of {total} documents done")
        labels(store)
        exports(store)
        if st.button("Train a model on this project", icon=":material/model_training:", width="stretch"):
            st.session_state[training_panel.PROJECT_KEY] = str(store.path)
            st.session_state.pop("train_project_pick", None)
            st.switch_page("views/models.py")
        st.button("Close project", icon=":material/close:", on_click=session.close, width="stretch")


def labels(store: AnnotationStore) -> None:
    project = store.project
    st.markdown("**Entity labels**")
    st.html(legend_html(label_order(project.entity_labels)))
    if project.relation_labels:
        st.markdown("**Relation labels**")
        st.html(legend_html(label_order(project.relation_labels)))
    with st.form("new_label", clear_on_submit=True, border=False):
        label = st.text_input("New label", placeholder="e.g. Drug")
        which = st.radio("for", ["entities", "relations"], horizontal=True, label_visibility="collapsed")
        if st.form_submit_button("Add label", icon=":material/add:"):
            session.act(add_label, project, "span" if which == "entities" else "relation", label.strip())
            st.rerun()


def exports(store: AnnotationStore) -> None:
    project = store.project
    st.markdown("**Export** (accepted annotations, ready for `ner train`)")
    st.radio(
        "Accept all keeps the entities exportable to",
        list(OVERLAPS),
        index=int(project.overlaps),
        format_func=OVERLAPS.get,
        key=f"overlaps_{project.overlaps}",
        on_change=lambda: session.act(set_overlaps, project, not project.overlaps),
    )
    only_done = st.checkbox("Only documents marked done", key="export_only_done")
    for format, (label, suffix, mime) in EXPORTS.items():
        reason = problem(project, format, only_done=only_done)
        st.download_button(
            label,
            data=lambda format=format: export_bytes(project, format, only_done=only_done),
            file_name=f"{project.name}{suffix}",
            mime=mime,
            icon=":material/download:",
            key=f"download_{format}",
            width="stretch",
            on_click="ignore",
            disabled=reason is not None,
        )
        if reason:  # said before anything is generated: the download itself cannot show a message
            st.warning(f"{label} cannot hold this project: {reason}", icon=":material/block:")
    with st.form("export_folder", border=False):
        folder = st.text_input(
            "Or write all four to a folder on the server",
            placeholder="exports",
            help=f"A folder in the data folder {paths.data_folder()} (created if missing); "
            "folders outside it are refused.",
        )
        if st.form_submit_button("Export to folder", icon=":material/save:"):
            export_to_folder(project, folder.strip(), only_done)


def export_to_folder(project: Project, folder: str, only_done: bool) -> None:
    """The four exports and the types file, written to ``folder`` in the data folder, all or
    nothing; a folder outside it (or a file in it that is a symlink leading out), or a format that
    cannot hold the data, is refused before anything is written."""
    if not folder:
        st.error("Enter a folder to export to.", icon=":material/error:")
        return
    root = paths.data_folder()
    suffixes = {format: suffix for format, (_, suffix, _) in EXPORTS.items()} | {"spert_types": ".types.json"}
    try:
        target = paths.confine(folder, root)
        files = {
            format: paths.confine(target / f"{project.name}{end}", root) for format, end in suffixes.items()
        }
    except paths.PathRefused as error:
        st.error(str(error), icon=":material/block:")
        return
    try:
        export_folder(
            project, target, {format: path.name for format, path in files.items()}, only_done=only_done
        )
    except AnnotationError as error:
        st.error(f"Nothing was written: {error}", icon=":material/error:")
    except OSError as error:
        st.error(
            f"Cannot write to {target}: {error.strerror or error}. Nothing was written.",
            icon=":material/error:",
        )
    else:
        st.success(f"Exported to {target}", icon=":material/check_circle:")
