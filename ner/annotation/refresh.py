"""Suggestions again, from a newer model: the "correct" step of the annotate → train → correct loop.

:func:`~ner.annotation.datasets.preannotate` suggests only to documents that never had
suggestions, so that rejected suggestions do not come back. After a model has been trained on the
project, the annotator wants the unfinished documents suggested to again by that model: this
drops their unreviewed suggestions (what they accepted stays) and pre-annotates them anew.
"""

from __future__ import annotations

from spacy.language import Language

from ner.annotation.datasets import preannotate
from ner.annotation.edits import reject_all
from ner.annotation.model import Project


def refresh_suggestions(project: Project, nlp: Language, batch_size: int = 32) -> int:
    """Replace the suggestions of every document not marked done with ``nlp``'s; returns how
    many documents were pre-annotated. Accepted spans and relations are kept as they are, and a
    suggestion identical to an accepted span is not added twice."""
    for doc in project.docs:
        if not doc.done:
            reject_all(doc)
            doc.meta.pop("pipeline", None)
    return preannotate(project, nlp, batch_size)
