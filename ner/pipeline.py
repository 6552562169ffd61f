"""Build, save and locate spaCy pipelines around an :class:`ExtractionModel`."""

from __future__ import annotations

from pathlib import Path

import spacy
import srsly
from spacy.language import Language
from spacy.pipeline import Sentencizer

from ner.alignment import Tokenizer
from ner.model import ExtractionModel
from ner.tokenizer import accept_any_text, pipeline_config

PRETRAINED = Path(__file__).parent / "pretrained"

#: The pipelines that ship inside the package, by the short name ``ner.load``, ``ner extract
#: --pipeline`` and the app know them by, to their folder under ``ner/pretrained``. Every one loads
#: offline: its base encoder comes from an installed package and its weights are a compact delta.
SHIPPED: dict[str, str] = {
    "conll04": "conll04_spert",  # SpERT on CoNLL04: 4 entity types, 5 relations (the default)
    "news": "news",  # the same SpERT head plus a CoNLL-2003 tagger feeding doc.ents
    "bio": "bio",  # MT-BioNER: genes, chemicals and diseases, one head per dataset
    "multilingual": "multilingual",  # PER/ORG/LOC/MISC in any language the encoder knows
}
DEFAULT_NAME = "conll04"
# The default pipeline ships inside the package: CoNLL04 SpERT on multilingual-e5-small's bottom 6 layers.
DEFAULT_PIPELINE = PRETRAINED / SHIPPED[DEFAULT_NAME]


def shipped_pipelines() -> dict[str, Path]:
    """The shipped pipelines present in this installation, by short name, the default first."""
    return {name: PRETRAINED / folder for name, folder in SHIPPED.items() if (PRETRAINED / folder).is_dir()}


def resolve(name_or_path: str | Path | None = None) -> Path:
    """The folder of a pipeline given by short name (``"bio"``), by path, or None for the default.

    A short name wins over a folder of the same name in the working directory, as an installed
    package's name does in ``spacy.load``; write ``./bio`` for the folder. Anything else must be an
    existing folder: the message lists the short names, since a typo in one is the common mistake.
    """
    if name_or_path is None:
        return DEFAULT_PIPELINE
    if isinstance(name_or_path, str) and name_or_path in SHIPPED:
        path = PRETRAINED / SHIPPED[name_or_path]
        if not path.is_dir():
            raise FileNotFoundError(f"the shipped pipeline {name_or_path!r} is not installed here ({path})")
        return path
    path = Path(name_or_path)
    if not path.is_dir():
        names = ", ".join(shipped_pipelines())
        raise FileNotFoundError(f"no pipeline {str(name_or_path)!r}: not a folder, nor one of {names}")
    return path


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
    settings: dict | None = None,
) -> Language:
    """A blank ``lang`` pipeline with a rule-based sentencizer and the extractor component; its
    tokenizer takes any ``str`` and its length limit is ours (:mod:`ner.tokenizer`). ``settings``
    are further ``ner_extractor`` config values (``ents_heads``, ``ents_merge``, ...)."""
    nlp = blank_pipeline(lang)
    nlp.add_pipe("sentencizer")
    config = {**(settings or {}), "storage": storage, "dtype": dtype}
    component = nlp.add_pipe("ner_extractor", config=config)
    component.model = model
    nlp.meta["name"] = name
    nlp.meta.update(meta or {})
    return nlp


def save(nlp: Language, path: str | Path) -> None:
    """``nlp.to_disk``, creating missing parent folders (spaCy creates only the last one), with the
    same bytes for the same pipeline: spaCy writes a sentencizer's punctuation set in hash order,
    which changes from one Python process to the next, so a re-saved shipped pipeline would differ."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(path)
    for name, component in nlp.pipeline:
        if isinstance(component, Sentencizer):
            saved = Path(path) / f"{name}.json"
            settings = srsly.read_json(saved)
            srsly.write_json(saved, {**settings, "punct_chars": sorted(settings["punct_chars"])})


#: ``ner_extractor`` settings under which a loaded model holds every weight it was trained with, as
#: training on from a pipeline and re-saving it need: the inference settings a pipeline may ship with
#: (ONNX, rounded or fewer word-embedding rows) drop or round some of them
WHOLE_MODEL = {"backend": "torch", "embedding_dtype": "float32", "vocab_rows": "all"}


def load(name_or_path: str | Path | None = None, *, whole: bool = False) -> Language:
    """``spacy.load`` of a pipeline given by short name (:data:`SHIPPED`) or directory; the shipped
    default when None. A pipeline saved before :mod:`ner.tokenizer` existed gets its behaviour too.
    ``whole``: with every trained weight in memory (:data:`WHOLE_MODEL`), to train on or re-save."""
    folder = resolve(name_or_path)
    overrides = {"components": {name: WHOLE_MODEL for name in saved_extractors(folder)}} if whole else {}
    return accept_any_text(spacy.load(folder, config=overrides))


def saved_extractors(folder: Path) -> dict[str, dict]:
    """A saved pipeline's ``ner_extractor`` components, name -> config block (its config.cfg)."""
    components = spacy.util.load_config(folder / "config.cfg")["components"]
    return {name: dict(c) for name, c in components.items() if c.get("factory") == "ner_extractor"}


def extractor_model(nlp: Language) -> ExtractionModel:
    """The :class:`ExtractionModel` inside a loaded pipeline."""
    for _, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if isinstance(model, ExtractionModel):
            return model
    raise ValueError("this pipeline has no ner_extractor component")


def extractor_settings(folder: Path) -> dict:
    """The ``ner_extractor`` config values of a saved pipeline other than its storage form, so that
    re-saving it (``ner compact``) keeps how it merges heads into ``doc.ents``, cuts segments and
    holds its embeddings (read from disk: a pipeline loaded ``whole`` has other values in memory)."""
    blocks = list(saved_extractors(folder).values())
    if not blocks:
        raise ValueError("this pipeline has no ner_extractor component")
    return {k: v for k, v in blocks[0].items() if k not in ("factory", "storage", "dtype")}
