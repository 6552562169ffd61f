"""Opening a dataset (by path, by upload) or a saved project, as the Annotate page's first step.

Problems with the input (a path outside the data folder, a missing path, a malformed dataset, a
file too large, a folder that cannot be written) are shown as messages on the page; the project
already open, and every saved project file, stay as they were. Every path goes through
:func:`app.paths.confine` (inside :mod:`app.projects`) before anything is read or written.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from app import paths, projects, widgets
from app.annotate import session
from app.extraction import plain_reason
from app.pipelines import load
from app.serving import MAX_UPLOAD_BYTES
from ner.annotation import AnnotationError, AnnotationStore

FORMATS = {
    "auto": "Detect from the file",
    "jsonl": "JSONL records of ner extract",
    "spert_json": "SpERT JSON",
    "conll": "CoNLL / IOB columns",
    "text": "Plain text (one document)",
}
UPLOAD_SUFFIXES = ["jsonl", "json", "conll", "iob", "bio", "tsv", "txt"]


def open_dataset(dataset: str | Path, folder: Path, options: dict) -> None:
    """Open (or continue) the project of ``dataset`` (a path in ``folder``); problems are shown,
    never raised."""
    try:
        dataset = projects.dataset_path(dataset, folder)  # refused before a pipeline is loaded
        nlp = load(str(options["pipeline"].path)) if options["pipeline"] else None
        with st.spinner("Opening the dataset…" if nlp is None else "Opening and pre-annotating…"):
            store, continued = projects.open_dataset(
                dataset, folder, format=options["format"], text_field=options["text_field"], nlp=nlp
            )
    except paths.PathRefused as error:
        st.error(str(error), icon=":material/block:")
        return
    except AnnotationError as error:
        st.error(f"Cannot open this dataset: {error}", icon=":material/error:")
        return
    except OSError as error:
        st.error(
            f"Cannot save the project for {Path(dataset).name}: {error.strerror or error}. "
            "Start the app with `ner app --data-dir DIR` to keep projects in a writable folder.",
            icon=":material/error:",
        )
        return
    except Exception as error:  # e.g. a pipeline folder that does not load: a message, not a traceback
        st.error(f"Cannot open {Path(dataset).name}: {error}", icon=":material/error:")
        return
    done, total = store.project.progress()
    note = (
        f"Continuing {store.path.name}: {done} of {total} done" if continued else f"Created {store.path.name}"
    )  # the files left out, if any, are listed on the page (show_unreadable)
    session.use(store, note)
    st.rerun()


def dataset_options(key: str) -> dict:
    """Format, text field and pre-annotation choices, inside an open form."""
    left, middle = st.columns(2)
    format = left.selectbox("Format", list(FORMATS), format_func=FORMATS.get, key=f"{key}_format")
    text_field = middle.text_input("Text field (JSONL)", value="text", key=f"{key}_field")
    pipelines = widgets.offered_pipelines()
    choice = st.selectbox(
        "Pre-annotate with",
        ["No pipeline", *(p.title for p in pipelines)],
        key=f"{key}_pipeline",
        help="The pipeline's entities and relations become suggestions to accept or reject.",
    )
    pipeline = next((p for p in pipelines if p.title == choice), None)
    return {"format": format, "text_field": text_field or "text", "pipeline": pipeline}


def open_panel() -> None:
    """Three ways in: a dataset on the server, an uploaded one, or a saved project."""
    folder = paths.data_folder()
    saved = projects.saved_projects(folder)
    by_path, upload, continued = st.tabs(["Dataset on the server", "Upload a dataset", "Saved projects"])
    with by_path, st.form("open_path"):
        path = st.text_input(
            "Dataset file or folder",
            placeholder="conll04/dev.json, extractions.jsonl, train.conll or a folder of .txt files",
            help=f"A path in the data folder {folder} (relative to it, or absolute); "
            "paths outside it are refused. Start the app with `ner app --data-dir DIR` to use another.",
        )
        options = dataset_options("path")
        if st.form_submit_button("Open dataset", type="primary", icon=":material/folder_open:"):
            if path.strip():
                open_dataset(path.strip(), folder, options)
            else:
                st.error("Enter the path of a dataset file or folder.", icon=":material/error:")
    with upload, st.form("open_upload"):
        file = st.file_uploader(
            "Dataset file",
            type=UPLOAD_SUFFIXES,
            help=f"Up to {MAX_UPLOAD_BYTES // 10**6} MB; open larger ones by path.",
        )
        options = dataset_options("upload")
        if st.form_submit_button("Open dataset", type="primary", icon=":material/upload:"):
            open_upload(file, options)
    with continued:
        show_saved(saved)


def open_upload(file, options: dict) -> None:
    if file is None:
        st.error("Choose a dataset file to upload first.", icon=":material/error:")
    elif file.size > MAX_UPLOAD_BYTES:
        st.error(
            f"{file.name} is {file.size / 1e6:.1f} MB; uploads up to {MAX_UPLOAD_BYTES // 10**6} MB can be "
            "used. Open a larger dataset by its path on the server.",
            icon=":material/error:",
        )
    else:
        folder = paths.data_folder()
        try:
            saved = projects.save_upload(file.name, file.getvalue(), folder)
        except paths.PathRefused as error:
            st.error(str(error), icon=":material/block:")
            return
        except OSError as error:
            st.error(
                f"Cannot keep the upload in {folder}: {error.strerror or error}",
                icon=":material/error:",
            )
            return
        open_dataset(saved, folder, options)


def show_saved(saved: list[Path]) -> None:
    if not saved:
        st.caption(f"No saved project in {paths.data_folder()} yet.")
        return
    names = {
        str(p): f"{p.name} (saved {datetime.fromtimestamp(p.stat().st_mtime):%Y-%m-%d %H:%M})" for p in saved
    }
    chosen = st.selectbox("Project", list(names), format_func=names.get)
    if st.button("Continue", type="primary", icon=":material/play_arrow:"):
        resume(Path(chosen))


def resume(path: Path) -> None:
    try:
        store = projects.resume(path, paths.data_folder())
    except (paths.PathRefused, AnnotationError) as error:
        st.error(f"Cannot continue this project: {error}", icon=":material/error:")
        return
    session.use(store)
    st.rerun()


def restore_from_url() -> None:
    """After a reload, reopen the project named in the URL."""
    path = st.query_params.get(session.PROJECT)
    if path and session.current() is None:
        try:
            session.use(projects.resume(path, paths.data_folder()))
        except (paths.PathRefused, AnnotationError) as error:
            st.query_params.pop(session.PROJECT, None)
            st.warning(f"The last project could not be reopened: {error}", icon=":material/warning:")


def show_unreadable(store: AnnotationStore) -> None:
    """The files of the dataset folder that were left out, each with its reason (kept in the
    project file, so they are listed again after a reload or when the project is continued)."""
    if not store.unreadable:
        return
    count = len(store.unreadable)
    files = "file was" if count == 1 else "files were"
    st.warning(
        f"{count} {files} left out of {Path(store.dataset or store.path).name}: the other "
        f"{len(store.project.docs)} opened. Fix or convert them, then open the folder as a new project.",
        icon=":material/warning:",
    )
    with st.expander(f"Files left out ({count})", expanded=count <= 10):
        rows = [{"file": u.name, "reason": plain_reason(u.reason)} for u in store.unreadable]
        st.table(pd.DataFrame(rows))
