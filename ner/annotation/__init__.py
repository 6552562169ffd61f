"""The core of the annotation tool, free of any UI: a project model, validated edits, an atomically
saved store, dataset loaders (with model pre-annotation) and training-data exports."""

from ner.annotation.datasets import load_dataset, preannotate, project_from_texts
from ner.annotation.edits import (
    accept,
    accept_all,
    add_label,
    add_relation,
    add_span,
    delete_relation,
    delete_span,
    reject,
    reject_all,
    relabel_span,
    set_done,
)
from ner.annotation.export import export, export_bytes
from ner.annotation.model import AnnotatedDoc, AnnotationError, Link, Project, Span
from ner.annotation.store import AnnotationStore

__all__ = [
    "AnnotatedDoc",
    "AnnotationError",
    "AnnotationStore",
    "Link",
    "Project",
    "Span",
    "accept",
    "accept_all",
    "add_label",
    "add_relation",
    "add_span",
    "delete_relation",
    "delete_span",
    "export",
    "export_bytes",
    "load_dataset",
    "preannotate",
    "project_from_texts",
    "reject",
    "reject_all",
    "relabel_span",
    "set_done",
]
