"""Build, save and locate spaCy pipelines around an :class:`ExtractionModel`."""

from __future__ import annotations

from pathlib import Path

import spacy
from spacy.language import Language

from ner.alignment import Tokenizer
from ner.model import ExtractionModel
from ner.tokenizer import accept_any_text, pipeline_config

# The default pipeline ships inside the package: CoNLL04 SpERT on the offline MiniLM-L6 encoder.
DEFAULT_PIPELINE = Path(__file__).parent / "pretrained" / "conll04_spert"


def blank_pipeline(lang: str) -> Language:
    """A blank ``lang`` pipeline with our tokenizer and length limit (:mod:`ner.tokenizer`): the
    base of every pipeline :func:`build_pipeline` makes, so of every pipeline training saves."""
    return spacy.blank(lang, config=pipeline_config(lang))


def pipeline_tokenizer(lang: str) -> Tokenizer:
    """The tokenizer a pipeline for ``lang`` will have. Training cuts its corpora with it, so the
    model learns on the very tokens ``nlp(text)`` will give it (:mod:`ner.alignment`)."""
    return blank_pipeline(lang).tokenizer


def build_pipeline(
    model: ExtractionModel,
    lang: str = "en",
    name: str = "extractor",
    storage: str = "full",
    dtype: str = "float16",
    meta: dict | None = None,
) -> Language:
    """A blank ``lang`` pipeline with a rule-based sentencizer and the extractor component; its
    tokenizer takes any ``str`` and its length limit is ours (:mod:`ner.tokenizer`)."""
    nlp = blank_pipeline(lang)
    nlp.add_pipe("sentencizer")
    component = nlp.add_pipe("ner_extractor", config={"storage": storage, "dtype": dtype})
    component.model = model
    nlp.meta["name"] = name
    nlp.meta.update(meta or {})
    return nlp


def save(nlp: Language, path: str | Path) -> None:
    """``nlp.to_disk``, creating missing parent folders (spaCy creates only the last one)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(path)


def load(path: str | Path | None = None) -> Language:
    """``spacy.load`` of a pipeline directory; the shipped default when ``path`` is None. A pipeline
    saved before :mod:`ner.tokenizer` existed gets its behaviour too."""
    return accept_any_text(spacy.load(DEFAULT_PIPELINE if path is None else path))


def extractor_model(nlp: Language) -> ExtractionModel:
    """The :class:`ExtractionModel` inside a loaded pipeline."""
    for _, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if isinstance(model, ExtractionModel):
            return model
    raise ValueError("this pipeline has no ner_extractor component")
