"""SpERT JSON: a list of ``{"tokens", "entities": [{type, start, end}], "relations": [{type, head, tail}]}``.

``end`` is exclusive and relation ``head``/``tail`` index the sentence's entity list. The
companion ``types.json`` lists entity types and relation types with a ``symmetric`` flag.
"""

from __future__ import annotations

import json
from pathlib import Path

from ner.corpora.text import CorpusError, read_json
from ner.documents import Document, Entity, Relation, RelationType, Schema, canonical_pair

__all__ = ["CorpusError", "read_spert_json", "read_spert_types", "write_spert_json"]


def read_spert_types(path: str | Path, encoding: str | None = None) -> Schema:
    """Read a SpERT ``types.json`` into a :class:`Schema`; it must declare at least one entity type
    (a head without labels would train on nothing and predict nothing)."""
    data = read_json(path, encoding, "SpERT types file")
    try:
        entities = tuple(_type_name(label) for label in data["entities"])
        relations = tuple(
            RelationType(label, bool(spec.get("symmetric", False)))
            for label, spec in data["relations"].items()
        )
    except (KeyError, AttributeError, TypeError) as error:
        raise CorpusError(
            f"{path}: expected {{'entities': {{...}}, 'relations': {{...}}}}: {error}"
        ) from error
    if not entities:
        raise CorpusError(f"{path}: the types file declares no entity types")
    return Schema(entity_labels=entities, relation_types=relations)


def _type_name(label: object) -> str:
    if not isinstance(label, str) or not label:
        raise TypeError(f"an entity type must be a non-empty string, not {label!r}")
    return label


def read_spert_json(
    path: str | Path, schema: Schema | None = None, encoding: str | None = None
) -> list[Document]:
    """Read a SpERT JSON file; symmetric relations are put in canonical (positional) order.

    The file is decoded strictly (UTF-8 unless ``encoding`` says otherwise, see
    :mod:`ner.corpora.text`); any problem is a :class:`CorpusError` naming the file.
    """
    path = Path(path)
    records = read_json(path, encoding, "SpERT JSON corpus")
    if not isinstance(records, list):
        raise CorpusError(f"{path}: expected a JSON list of sentences, got {type(records).__name__}")
    symmetric = schema.symmetric_relations if schema else frozenset()
    return [_parse_record(record, symmetric, f"{path}[{index}]") for index, record in enumerate(records)]


def _parse_record(record: dict, symmetric: frozenset[str], where: str) -> Document:
    try:
        if not isinstance(record["tokens"], list):
            raise TypeError(f"'tokens' must be a list, not {type(record['tokens']).__name__}")
        words = [str(token) for token in record["tokens"]]
        entities = [
            Entity(int(e["start"]), int(e["end"]), str(e["type"])) for e in record.get("entities", [])
        ]
        relations = [
            Relation(int(r["head"]), int(r["tail"]), str(r["type"])) for r in record.get("relations", [])
        ]
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as error:
        raise CorpusError(
            f"{where}: malformed record, not SpERT JSON's {{tokens, entities, relations}}: {error!r}"
        ) from error
    _check_encodable(words, where)
    for entity in entities:
        if not 0 <= entity.start < entity.end <= len(words):
            raise CorpusError(f"{where}: entity {entity} outside the {len(words)} tokens")
    relations = [_canonical(r, entities, symmetric, where) for r in relations]
    doc_id = record.get("orig_id")
    return Document.from_words(
        words, entities=entities, relations=relations, id=None if doc_id is None else str(doc_id)
    )


def _check_encodable(words: list[str], where: str) -> None:
    """JSON escapes can spell lone surrogates (``"\\ud800"``), which no tokenizer or spaCy accepts."""
    try:
        "".join(words).encode("utf-8")
    except UnicodeEncodeError:
        index, word = next((i, w) for i, w in enumerate(words) if not _encodable(w))
        raise CorpusError(f"{where}: token {index} {word!r} holds a lone surrogate, not text") from None


def _encodable(word: str) -> bool:
    try:
        word.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _canonical(relation: Relation, entities: list[Entity], symmetric: frozenset[str], where: str) -> Relation:
    if not (0 <= relation.head < len(entities) and 0 <= relation.tail < len(entities)):
        raise CorpusError(f"{where}: relation {relation} points outside the {len(entities)} entities")
    head, tail = canonical_pair(entities[relation.head], entities[relation.tail], relation.label in symmetric)
    if head is entities[relation.head]:
        return relation
    return Relation(relation.tail, relation.head, relation.label, relation.score)


def write_spert_json(documents: list[Document], path: str | Path) -> None:
    """Write documents back as SpERT JSON (the inverse of :func:`read_spert_json`)."""
    records = [
        {
            "tokens": doc.words,
            "entities": [{"type": e.label, "start": e.start, "end": e.end} for e in doc.entities],
            "relations": [{"type": r.label, "head": r.head, "tail": r.tail} for r in doc.relations],
            **({"orig_id": doc.id} if doc.id is not None else {}),
        }
        for doc in documents
    ]
    Path(path).write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
