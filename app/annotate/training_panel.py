"""The Train section (on the Models page): train a pipeline on an annotation project, watch it
learn, and let the new pipeline suggest again on the documents not yet done.

Everything shown comes from the run's files (:mod:`app.annotate.training_job`), so a reload, or
another browser, shows the same run; while it runs the section refreshes itself every few seconds.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app import paths, projects, widgets
from app.annotate import session, training_job
from app.pipelines import load
from ner.annotation import AnnotationError, AnnotationStore
from ner.annotation.refresh import refresh_suggestions
from ner.pipeline import DEFAULT_PIPELINE
from ner.project_training import ProjectTraining

PROJECT_KEY = "train_project"  # the Annotate page may set it to its open project's path
REFRESH_SECONDS = 2.0
LISTED = "train_listed"  # the run whose pipeline the page has made sure is listed
DOCUMENTS = {"done": "Documents marked done", "all": "Every document (its accepted annotations)"}


def show() -> None:
    """The whole section: the project, then its latest run or the form to start one."""
    st.subheader("Train on an annotation project")
    data = paths.data_folder()
    saved = projects.saved_projects(data)
    if not saved:
        st.caption("No annotation project yet: open a dataset on the Annotate page first.")
        return
    project = st.selectbox(
        "Project", saved, index=_default_index(saved), format_func=lambda p: p.name, key="train_project_pick"
    )
    job = training_job.latest(data, project)
    if job is not None and job.state() == "running":
        _live(job)
        return
    if job is not None:
        _outcome(job)
    _form(project, data)


def list_finished_runs() -> None:
    """Make a run that has just finished show in the pipeline list now (the list is otherwise
    looked for again only every 30 s): call before the page lists the pipelines."""
    offered = {info.path.resolve() for info in widgets.offered_pipelines()}
    for job in training_job.jobs(paths.data_folder()):
        if job.output.resolve() not in offered and job.state() == "done":
            widgets.discover_cached.clear()
            return


def _default_index(saved: list[Path]) -> int:
    """The project the Annotate page has open (or asked for), else the latest saved."""
    wanted = st.session_state.get(PROJECT_KEY) or (session.current().path if session.current() else None)
    wanted = Path(wanted).resolve() if wanted else None
    return next((i for i, path in enumerate(saved) if path == wanted), 0)


def _form(project: Path, data: Path) -> None:
    pipelines = widgets.offered_pipelines()
    with st.form("train_form", border=True):
        left, middle, right = st.columns(3)
        titles = [p.title for p in pipelines]
        shipped = next(
            (i for i, p in enumerate(pipelines) if p.path.resolve() == DEFAULT_PIPELINE.resolve()), 0
        )
        base = left.selectbox(
            "Start from",
            titles,
            index=shipped,
            key="train_base",
            help="Continued when it already predicts every label of the project; otherwise a fresh head "
            "is trained on its encoder.",
        )
        epochs = middle.number_input("Epochs", min_value=1, max_value=200, value=20, key="train_epochs")
        documents = right.radio("Train on", list(DOCUMENTS), format_func=DOCUMENTS.get, key="train_documents")
        with st.expander("More settings"):
            dev = st.slider("Held out for dev", 0.05, 0.5, 0.2, 0.05, key="train_dev_fraction")
            seed = st.number_input("Seed (of the split and the training)", value=42, step=1, key="train_seed")
            encoder = st.text_input(
                "Or start from an encoder (name, or a folder in the data folder)",
                key="train_encoder",
                help="A fresh model on this encoder instead of a pipeline, e.g. multilingual-e5-small.",
            )
        if st.form_submit_button("Train", icon=":material/model_training:", type="primary"):
            chosen = pipelines[titles.index(base)].path if titles else DEFAULT_PIPELINE
            _start(project, data, encoder.strip(), chosen, int(epochs), documents, float(dev), int(seed))


def _start(
    project: Path,
    data: Path,
    encoder: str,
    pipeline: Path,
    epochs: int,
    documents: str,
    dev: float,
    seed: int,
) -> None:
    try:
        base = _encoder(encoder, data) if encoder else str(pipeline)
        settings = ProjectTraining(base=base, epochs=epochs, documents=documents, dev_fraction=dev, seed=seed)
        training_job.start(project, data, settings)
    except (AnnotationError, paths.PathRefused) as error:
        st.error(f"Cannot train: {error}", icon=":material/error:")
        return
    except OSError as error:
        st.error(f"Cannot start the training: {error.strerror or error}", icon=":material/error:")
        return
    st.rerun()


def _encoder(text: str, data: Path) -> str:
    """An encoder name as is; a folder only inside the data folder (:class:`PathRefused` otherwise)."""
    if (data / text).exists() or Path(text).expanduser().exists():
        return str(paths.confine(text, data))
    return text


@st.fragment(run_every=REFRESH_SECONDS)
def _live(job: training_job.Job) -> None:
    """The running job's progress, refreshed every few seconds; the page reruns when it ends."""
    progress = job.progress()
    if progress.state != "running":
        st.rerun(scope="app")  # the outcome, and the pipeline list with the new pipeline
    _figures(job, progress)
    if st.button("Cancel training", icon=":material/stop_circle:", key="train_cancel"):
        training_job.cancel(job)
        st.rerun(scope="app")


def _figures(job: training_job.Job, progress: training_job.Progress) -> None:
    split = progress.split
    if split:
        st.caption(f"{split['train']} documents to train on, {split['dev']} for dev; {split['base']}.")
    left = f" · about {_duration(progress.seconds_left)} left" if progress.seconds_left is not None else ""
    if progress.epoch:
        text = f"Epoch {progress.epoch} of {progress.epochs} · step {progress.done} of {progress.total}{left}"
    else:
        text = "Preparing the data and the model…"
    st.progress(progress.fraction, text=text)
    if progress.history:
        table = pd.DataFrame(progress.history).set_index("epoch")
        chart, losses = st.columns(2)
        chart.markdown("**Dev F1 per epoch**")
        chart.line_chart(table[["dev entity F1", "dev relation F1"]], x_label="epoch", y_label="F1 (%)")
        losses.markdown("**Training loss per epoch**")
        losses.line_chart(table[["loss"]], x_label="epoch", y_label="loss")


def _outcome(job: training_job.Job) -> None:
    """How the latest run on the project ended, and what can be done with its pipeline."""
    progress = job.progress()
    offered = {info.path.resolve() for info in widgets.offered_pipelines()}
    if (
        progress.state == "done"
        and job.output.resolve() not in offered
        and st.session_state.get(LISTED) != job.id
    ):
        st.session_state[LISTED] = job.id  # once: it ended after the page listed the pipelines
        widgets.discover_cached.clear()
        st.rerun()
    if progress.state == "done":
        st.success(
            f"Trained `{job.output.name}`: it is in the pipeline list above.", icon=":material/check_circle:"
        )
        _figures(job, progress)
        label = "Pre-annotate the unfinished documents with it"
        if st.button(label, icon=":material/auto_fix_high:", key="train_preannotate"):
            _preannotate(job)
    elif progress.state == "cancelled":
        st.info(f"The training {job.id} was cancelled; the project was not changed.", icon=":material/info:")
    else:
        st.error(f"The training {job.id} failed: {progress.message}", icon=":material/error:")


def _preannotate(job: training_job.Job) -> None:
    """Replace the unfinished documents' suggestions with the new pipeline's, through the open
    project's store when the Annotate page has it open (so it does not save over this)."""
    open_store = session.current()
    try:
        store = (
            open_store if open_store and open_store.path == job.project else AnnotationStore.open(job.project)
        )
        with st.spinner("Pre-annotating…"):
            count = store.apply(refresh_suggestions, store.project, load(str(job.output)))
    except AnnotationError as error:
        st.error(f"Cannot pre-annotate: {error}", icon=":material/error:")
        return
    except OSError as error:
        st.error(f"Cannot save {job.project.name}: {error.strerror or error}", icon=":material/error:")
        return
    st.success(
        f"{job.output.name} suggested again on {count} unfinished documents of {job.project.name}.",
        icon=":material/check_circle:",
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
