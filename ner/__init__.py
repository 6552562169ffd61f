"""Named entities and relations from raw text: one shared encoder, many heads, spaCy components."""


def load(name_or_path=None):
    """A ready pipeline: ``ner.load("bio")``, ``ner.load("multilingual")``, ``ner.load("news")``, a
    pipeline directory, or the shipped default (``"conll04"``) with no argument. Imported on call, so
    ``import ner`` stays light."""
    from ner.pipeline import load as load_pipeline

    return load_pipeline(name_or_path)
