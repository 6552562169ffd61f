"""Annotate: open a dataset, correct it document by document, export training data."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import streamlit as st

from app import annotating, projects, widgets
from app.extraction import MAX_UPLOAD_BYTES
from app.pipelines import load
from app.rendering import chip_html, legend_html, page_html
from app.span_selector import span_selector
from ner.annotation import (
    AnnotationError,
    AnnotationStore,
    accept,
    accept_all,
    add_label,
    add_relation,
    delete_relation,
    delete_span,
    export,
    export_bytes,
    reject,
    reject_all,
    relabel_span,
    set_done,
)

FORMATS = {
    "auto": "Detect from the file",
    "jsonl": "JSONL records of ner extract",
    "spert_json": "SpERT JSON",
    "conll": "CoNLL / IOB columns",
    "text": "Plain text (one document)",
}
EXPORTS = {  # format: (button label, file suffix, MIME type)
    "spert_json": ("SpERT JSON", ".spert.json", "application/json"),
    "conll": ("CoNLL IOB2", ".conll", "text/plain"),
    "jsonl": ("JSONL records", ".jsonl", "application/json"),
    "docbin": ("spaCy DocBin", ".spacy", "application/octet-stream"),
}
UPLOAD_SUFFIXES = ["jsonl", "json", "conll", "iob", "bio", "tsv", "txt"]


# ------------------------------------------------------------------------------------- opening
def open_dataset(dataset: Path, folder: Path | None, options: dict) -> None:
    """Open (or continue) the project of ``dataset``; problems are shown, never raised."""
    try:
        nlp = load(str(options["pipeline"].path)) if options["pipeline"] else None
        with st.spinner("Opening the dataset…" if nlp is None else "Opening and pre-annotating…"):
            store, continued = projects.open_dataset(
                dataset, folder, format=options["format"], text_field=options["text_field"], nlp=nlp
            )
    except AnnotationError as error:
        st.error(f"Cannot open this dataset: {error}", icon=":material/error:")
        return
    except OSError as error:
        st.error(
            f"Cannot save the project for {dataset.name}: {error.strerror or error}. "
            "Start the app with `ner app --data-dir DIR` to keep projects in a writable folder.",
            icon=":material/error:",
        )
        return
    done, total = store.project.progress()
    note = (
        f"Continuing {store.path.name}: {done} of {total} done" if continued else f"Created {store.path.name}"
    )
    annotating.use(store, note)
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
    folder = projects.data_dir()
    saved = projects.saved_projects(projects.work_folder())
    by_path, upload, continued = st.tabs(["Dataset on the server", "Upload a dataset", "Saved projects"])
    with by_path, st.form("open_path"):
        path = st.text_input(
            "Dataset file or folder",
            placeholder="/data/conll04/dev.json, extractions.jsonl, train.conll or a folder of .txt files",
        )
        options = dataset_options("path")
        if st.form_submit_button("Open dataset", type="primary", icon=":material/folder_open:"):
            if path.strip():
                open_dataset(Path(path.strip()).expanduser(), folder, options)
            else:
                st.error("Enter the path of a dataset file or folder.", icon=":material/error:")
    with upload, st.form("open_upload"):
        file = st.file_uploader(
            "Dataset file", type=UPLOAD_SUFFIXES, help="Up to 5 MB; open larger ones by path."
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
        folder = projects.work_folder()
        open_dataset(projects.save_upload(file.name, file.getvalue(), folder), folder, options)


def show_saved(saved: list[Path]) -> None:
    if not saved:
        st.caption(f"No saved project in {projects.work_folder()} yet.")
        return
    names = {
        str(p): f"{p.name} (saved {datetime.fromtimestamp(p.stat().st_mtime):%Y-%m-%d %H:%M})" for p in saved
    }
    chosen = st.selectbox("Project", list(names), format_func=names.get)
    if st.button("Continue", type="primary", icon=":material/play_arrow:"):
        resume(Path(chosen))


def resume(path: Path) -> None:
    try:
        store = projects.resume(path)
    except AnnotationError as error:
        st.error(f"Cannot continue this project: {error}", icon=":material/error:")
        return
    annotating.use(store)
    st.rerun()


def restore_from_url() -> None:
    """After a reload, reopen the project named in the URL."""
    path = st.query_params.get("project")
    if path and annotating.current() is None:
        try:
            annotating.use(projects.resume(Path(path)))
        except AnnotationError as error:
            st.query_params.pop("project", None)
            st.warning(f"The last project could not be reopened: {error}", icon=":material/warning:")


# ------------------------------------------------------------------------------------- sidebar
def sidebar(store: AnnotationStore) -> None:
    project = store.project
    with st.sidebar:
        st.subheader(project.name)
        st.caption(f"Saved after every change to `{store.path}`")
        done, total = project.progress()
        st.progress(done / total if total else 0.0, text=f"{done} of {total} documents done")
        labels(store)
        exports(store)
        st.button("Close project", icon=":material/close:", on_click=annotating.close, width="stretch")


def labels(store: AnnotationStore) -> None:
    project = store.project
    st.markdown("**Entity labels**")
    st.html(page_html(legend_html(project.entity_labels)))
    if project.relation_labels:
        st.markdown("**Relation labels**")
        st.html(page_html(legend_html(project.relation_labels)))
    with st.form("new_label", clear_on_submit=True, border=False):
        name, kind = st.columns([3, 2], vertical_alignment="bottom")
        label = name.text_input("New label", placeholder="e.g. Drug")
        which = kind.selectbox("for", ["entities", "relations"], label_visibility="collapsed")
        if st.form_submit_button("Add label", icon=":material/add:"):
            annotating.act(add_label, project, "span" if which == "entities" else "relation", label.strip())
            st.rerun()


def exports(store: AnnotationStore) -> None:
    project = store.project
    st.markdown("**Export** (accepted annotations, ready for `ner train`)")
    only_done = st.checkbox("Only documents marked done", key="export_only_done")
    for format, (label, suffix, mime) in EXPORTS.items():
        st.download_button(
            label,
            data=lambda format=format: export_bytes(project, format, only_done=only_done),
            file_name=f"{project.name}{suffix}",
            mime=mime,
            icon=":material/download:",
            key=f"download_{format}",
            width="stretch",
            on_click="ignore",
        )
    with st.form("export_folder", border=False):
        folder = st.text_input("Or write all four to a folder on the server", placeholder="/data/exports")
        if st.form_submit_button("Export to folder", icon=":material/save:"):
            export_to_folder(project, folder.strip(), only_done)


def export_to_folder(project, folder: str, only_done: bool) -> None:
    if not folder:
        st.error("Enter a folder to export to.", icon=":material/error:")
        return
    target = Path(folder).expanduser()
    try:
        target.mkdir(parents=True, exist_ok=True)
        for format, (_, suffix, _) in EXPORTS.items():
            export(project, format, target / f"{project.name}{suffix}", only_done=only_done)
        export(project, "spert_types", target / f"{project.name}.types.json", only_done=only_done)
    except AnnotationError as error:
        st.error(f"Export stopped: {error}", icon=":material/error:")
    except OSError as error:
        st.error(f"Cannot write to {target}: {error.strerror or error}", icon=":material/error:")
    else:
        st.success(f"Exported to {target}", icon=":material/check_circle:")


# ------------------------------------------------------------------------------------ document
def navigation(store: AnnotationStore) -> None:
    project = store.project
    doc, index, total = project.current, project.cursor, len(project.docs)
    row = st.columns([1.2, 1.6, 1.2, 1.6, 1.5, 1.5], vertical_alignment="center")
    row[0].button(
        "Previous",
        icon=":material/chevron_left:",
        shortcut="P",
        help="Previous document (P)",
        on_click=annotating.move,
        args=(store.previous,),
        disabled=index == 0,
        width="stretch",
    )
    row[1].number_input(
        f"Document of {total}",
        1,
        total,
        value=index + 1,
        key=f"goto_{index}",
        label_visibility="collapsed",
        on_change=lambda: annotating.move(lambda: store.goto(st.session_state[f"goto_{index}"] - 1)),
    )
    row[2].button(
        "Next",
        icon=":material/chevron_right:",
        shortcut="N",
        help="Next document (N)",
        on_click=annotating.move,
        args=(store.next,),
        disabled=index == total - 1,
        width="stretch",
    )
    row[3].button(
        "Done, next",
        icon=":material/done_all:",
        type="primary",
        shortcut="D",
        help="Mark this document done and go to the next (D)",
        on_click=done_next,
        args=(store,),
        width="stretch",
    )
    suggested = sum(s.status == "suggested" for s in doc.spans) + sum(
        r.status == "suggested" for r in doc.relations
    )
    row[4].button(
        "Accept all",
        icon=":material/check:",
        shortcut="A",
        help="Accept every suggestion here (A)",
        on_click=annotating.act,
        args=(accept_all, doc),
        disabled=not suggested,
        width="stretch",
    )
    row[5].button(
        "Reject all",
        icon=":material/block:",
        help="Reject every suggestion in this document",
        on_click=annotating.act,
        args=(reject_all, doc),
        disabled=not suggested,
        width="stretch",
    )


def done_next(store: AnnotationStore) -> None:
    annotating.act(set_done, store.project.current, True)
    annotating.move(store.next)


def document(store: AnnotationStore) -> None:
    project = store.project
    doc = project.current
    state = "done" if doc.done else "to do"
    head, toggle = st.columns([5, 1], vertical_alignment="bottom")
    head.markdown(f"**{doc.id}** · {state}")
    toggle.toggle(
        "Done",
        value=doc.done,
        key=f"done_{project.cursor}_{doc.done}",
        on_change=lambda: annotating.act(set_done, doc, not doc.done),
    )
    if project.entity_labels:
        st.pills(
            "Label for new spans",
            project.entity_labels,
            key=annotating.LABEL,
            default=project.entity_labels[0],
        )
    else:
        st.info("Add an entity label in the sidebar, then select words in the text to annotate them.")
    st.caption("Select words with the mouse to add a span with this label; click an entity to link it below.")
    with st.container(border=True):
        span_selector(
            doc.text,
            annotating.marks(doc),
            key=f"selector_{project.cursor}",
            on_select=lambda start, end: annotating.add_selected(doc, project, start, end),
            on_click=lambda index: pick_for_relation(project.cursor, index),
        )
    add_by_words(store)


def add_by_words(store: AnnotationStore) -> None:
    """The keyboard-only way to add a span: first and last word, and a label."""
    project = store.project
    doc = project.current
    bounds = annotating.words(doc, project.lang)
    if not bounds or not project.entity_labels:
        return
    with st.expander("Add a span by words (keyboard)"), st.form(f"by_words_{project.cursor}", border=False):
        first, last, label = st.columns([2, 2, 1])
        name = lambda i: f"{i + 1}: {doc.text[bounds[i][0] : bounds[i][1]]}"  # noqa: E731
        start = first.selectbox("From word", range(len(bounds)), format_func=name)
        end = last.selectbox("To word", range(len(bounds)), format_func=name)
        chosen = label.selectbox("Label", project.entity_labels)
        if st.form_submit_button("Add span", icon=":material/add:"):
            if end < start:
                st.error("The last word comes before the first one.", icon=":material/error:")
            else:
                annotating.add_labelled(doc, project, bounds[start][0], bounds[end][1], chosen)
                st.rerun()


def pick_for_relation(cursor: int, index: int) -> None:
    """A click on an entity fills the relation's "from", then its "to"."""
    head_key, tail_key = f"rel_head_{cursor}", f"rel_tail_{cursor}"  # the keys of add_relation_form
    if st.session_state.get(head_key) is None or st.session_state.get(tail_key) is not None:
        st.session_state[head_key], st.session_state[tail_key] = index, None
    else:
        st.session_state[tail_key] = index


def spans_table(store: AnnotationStore) -> None:
    project = store.project
    doc = project.current
    st.markdown(f"**Entities** ({len(doc.spans)})")
    if not doc.spans:
        st.caption("No entity yet.")
        return
    for i, span in enumerate(doc.spans):
        key = f"{project.cursor}_{i}_{span.start}_{span.end}_{span.label}_{span.status}"
        text, label, status, yes, no = st.columns([4, 3, 3, 1, 1], vertical_alignment="center")
        text.html(chip_html(doc.span_text(i), span.label, span.status == "suggested"))
        labels = (
            project.entity_labels
            if span.label in project.entity_labels
            else [*project.entity_labels, span.label]
        )
        label.selectbox(
            "Label",
            labels,
            index=labels.index(span.label),
            key=f"label_{key}",
            label_visibility="collapsed",
            on_change=lambda i=i, key=key: annotating.act(
                relabel_span, doc, i, st.session_state[f"label_{key}"]
            ),
        )
        status.caption(annotating.status_line(span.score, span.head, span.status))
        row_actions(yes, no, doc, "span", i, span.status, key)


def row_actions(yes, no, doc, kind: str, index: int, status: str, key: str) -> None:
    """Accept (for a suggestion) and reject-or-delete buttons of one table row."""
    suggested = status == "suggested"
    yes.button(
        "",
        icon=":material/check:",
        key=f"accept_{kind}_{key}",
        help="Accept this suggestion",
        disabled=not suggested,
        on_click=annotating.act,
        args=(accept, doc, kind, index),
    )
    remove = reject if suggested else (delete_span if kind == "span" else delete_relation)
    args = (doc, kind, index) if suggested else (doc, index)
    no.button(
        "",
        icon=":material/close:",
        key=f"remove_{kind}_{key}",
        help="Reject this suggestion" if suggested else f"Delete this {kind}",
        on_click=annotating.act,
        args=(remove, *args),
    )


def relations_table(store: AnnotationStore) -> None:
    project = store.project
    doc = project.current
    st.markdown(f"**Relations** ({len(doc.relations)})")
    if not doc.relations:
        st.caption("No relation yet.")
    for i, link in enumerate(doc.relations):
        key = f"{project.cursor}_{i}_{link.head}_{link.tail}_{link.label}_{link.status}"
        head, label, tail, status, yes, no = st.columns([3, 2, 3, 2, 1, 1], vertical_alignment="center")
        head.html(chip_html(doc.span_text(link.head), doc.spans[link.head].label))
        label.markdown(f"→ **{link.label}** →")
        tail.html(chip_html(doc.span_text(link.tail), doc.spans[link.tail].label))
        status.caption(annotating.status_line(link.score, None, link.status))
        row_actions(yes, no, doc, "relation", i, link.status, key)
    add_relation_form(store)


def add_relation_form(store: AnnotationStore) -> None:
    project = store.project
    doc = project.current
    if len(doc.spans) < 2:
        return
    if not project.relation_labels:
        st.caption("Add a relation label in the sidebar to link entities.")
        return
    keys = {part: f"rel_{part}_{project.cursor}" for part in ("head", "label", "tail")}
    for part in ("head", "tail"):  # a span deleted since it was picked
        if (st.session_state.get(keys[part]) or 0) >= len(doc.spans):
            st.session_state[keys[part]] = None
    head, label, tail, add = st.columns([3, 2, 3, 2], vertical_alignment="bottom")
    spans = list(range(len(doc.spans)))
    name = lambda i: annotating.span_name(doc, i)  # noqa: E731
    head.selectbox(
        "From", spans, format_func=name, index=None, key=keys["head"], placeholder="click an entity"
    )
    label.selectbox("Relation", project.relation_labels, key=keys["label"])
    tail.selectbox("To", spans, format_func=name, index=None, key=keys["tail"], placeholder="then another")
    picked = None not in (st.session_state.get(keys["head"]), st.session_state.get(keys["tail"]))
    add.button(
        "Add relation",
        icon=":material/add_link:",
        width="stretch",
        disabled=not picked,
        on_click=link_picked,
        args=(doc, keys),
    )


def link_picked(doc, keys: dict[str, str]) -> None:
    """Add the relation picked in the selects, then clear them for the next one."""
    state = st.session_state
    annotating.act(add_relation, doc, state[keys["head"]], state[keys["tail"]], state[keys["label"]])
    state[keys["head"]] = state[keys["tail"]] = None


# ---------------------------------------------------------------------------------------- page
st.title("Annotate")
st.caption(
    "Correct what the models found, document by document: every change is saved at once, and "
    "the export is training data for `ner train`."
)
restore_from_url()
annotating.show_message()
store = annotating.current()
if store is None:
    open_panel()
else:
    sidebar(store)
    navigation(store)
    document(store)
    entities, relations = st.columns(2, gap="large")
    with entities:
        spans_table(store)
    with relations:
        relations_table(store)
