"""Task heads: ``torch.nn.Module``s that read a shared :class:`ner.encoder.Encoding`.

Every head offers ``targets(docs, rng)`` (training samples), ``loss(encoding, targets)`` and
``decode(encoding)``; none of them loads or runs the encoder. The registry maps the ``type``
of a head's config to its class, so configs and saved models name heads by string.
"""

from __future__ import annotations

from pydantic import BaseModel
from torch import nn

from ner.documents import Schema
from ner.heads.spert import SpertConfig, SpertHead
from ner.heads.tagger import TaggerConfig, TaggerHead

HEAD_TYPES: dict[str, tuple[type[BaseModel], type[nn.Module]]] = {
    "spert": (SpertConfig, SpertHead),
    "tagger": (TaggerConfig, TaggerHead),
}


def build_head(config: BaseModel, hidden_size: int, schema: Schema) -> nn.Module:
    """Instantiate the head class registered for ``config.type``."""
    _, head_class = HEAD_TYPES[config.type]
    return head_class(hidden_size, schema, config)


def parse_head_config(data: dict) -> BaseModel:
    """Validate a head config dictionary against the class registered for its ``type``."""
    head_type = data.get("type", "spert")
    if head_type not in HEAD_TYPES:
        raise ValueError(f"unknown head type {head_type!r}; known: {sorted(HEAD_TYPES)}")
    config_class, _ = HEAD_TYPES[head_type]
    return config_class.model_validate(data)
