"""Tasks: a dataset's files, format and labels turned into gold documents and a head schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ner.corpora import CorpusError
from ner.pipeline import pipeline_tokenizer
from ner.tasks import TaskData, TaskError, TaskSettings, labels_in, read_split

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _task(**fields) -> TaskSettings:
    return TaskSettings.model_validate(
        {"name": "t", "format": "crichton_iob", "train": "toy_chem_train.tsv", **fields}
    )


def test_untyped_files_take_the_tasks_entity_type():
    task = _task(
        format="biobert_tsv", entity_type="Gene", train="toy_genes_train.tsv", dev="toy_genes_dev.tsv"
    )
    data = TaskData(task, DATA)
    assert data.schema.entity_labels == ("Gene",) and data.schema.relation_types == ()
    assert labels_in(data.train) == ["Gene"] and len(data.train) == 12 and len(data.dev) == 4
    assert data.test == [] and read_split(task, "test", DATA) == []


def test_spert_tasks_read_their_types_file():
    task = _task(format="spert_json", train="toy_train.json", types="toy_types.json", head={"type": "spert"})
    data = TaskData(task, DATA, splits=("train",))
    assert set(data.schema.entity_labels) >= set(labels_in(data.train))
    assert any(doc.relations for doc in data.train)
    with pytest.raises(TaskError, match="differ from toy_types.json"):
        TaskData(task.model_copy(update={"labels": ["Nope"]}), DATA)


def test_declared_labels_fix_the_inventory_and_its_order():
    data = TaskData(_task(labels=["Drug", "Chemical"]), DATA)
    assert data.schema.entity_labels == ("Drug", "Chemical")


def test_a_split_with_labels_the_head_does_not_know_is_named(tmp_path):
    (tmp_path / "train.tsv").write_text("aspirin\tB-Chemical\n")
    (tmp_path / "dev.tsv").write_text("BRCA1\tB-Gene\n")
    task = _task(train="train.tsv", dev="dev.tsv")
    with pytest.raises(TaskError, match=r"dev.tsv has labels \['Gene'\].*\['Chemical'\]"):
        TaskData(task, tmp_path)


def test_a_train_set_without_entities_is_rejected(tmp_path):
    (tmp_path / "train.tsv").write_text("nothing\tO\n")
    with pytest.raises(TaskError, match="holds no entities"):
        TaskData(_task(train="train.tsv"), tmp_path)


def test_limits_cut_train_and_dev_but_not_test():
    task = _task(
        format="biobert_tsv",
        entity_type="Gene",
        train="toy_genes_train.tsv",
        dev="toy_genes_dev.tsv",
        test="toy_genes_dev.tsv",
    )
    data = TaskData(task, DATA, max_train_docs=5, max_dev_docs=2)
    assert (len(data.train), len(data.dev), len(data.test)) == (5, 2, 4)


def test_settings_reject_format_mismatches():
    with pytest.raises(ValidationError, match="only for spert_json"):
        _task(types="x.json")
    with pytest.raises(ValidationError, match="only for untyped column formats"):
        _task(format="spert_json", types="x.json", entity_type="Gene")


@pytest.mark.skipif(not (SHARED / "bc5cdr").is_dir(), reason="shared corpora not available")
def test_the_typed_bc5cdr_corpus_gives_a_two_type_head():
    task = _task(train="bc5cdr/train.tsv", dev="bc5cdr/dev.tsv")
    data = TaskData(task, SHARED, splits=("train",))
    assert data.schema.entity_labels == ("Chemical", "Disease")


def test_several_train_files_are_pooled():
    task = _task(train=["toy_chem_train.tsv", "toy_chem_dev.tsv"])
    data = TaskData(task, DATA, splits=("train",))
    assert len(data.train) == 10 + 4
    assert [role for role, _ in task.files()] == ["train", "train"]


TYPES = '{"entities": ["Chemical", "Gene"], "relations": {"Binds": {}}}'
CHEMICAL = '[{"tokens": ["aspirin", "works"], "entities": [{"type": "Chemical", "start": 0, "end": 1}]}]'


@pytest.mark.parametrize(
    ("split", "hint"),
    [("train", "nothing to train on"), ("dev", "no epoch can be selected"), ("test", "nothing to score")],
)
def test_a_configured_file_without_documents_is_refused(tmp_path, split, hint):
    """An empty train file trained 0 steps and still saved a pipeline with test scores."""
    (tmp_path / "types.json").write_text(TYPES)
    (tmp_path / "full.json").write_text(CHEMICAL)
    (tmp_path / "empty.json").write_text("[]")
    files = {"train": "full.json", "dev": "full.json", "test": "full.json", split: "empty.json"}
    task = _task(format="spert_json", types="types.json", head={"type": "spert"}, **files)
    with pytest.raises(TaskError, match=rf"the {split} file .*empty\.json holds no documents; {hint}"):
        TaskData(task, tmp_path)
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(CorpusError, match=r"empty\.json: the SpERT JSON corpus is empty"):
        TaskData(task, tmp_path)


def test_an_empty_column_file_is_refused_even_among_several(tmp_path):
    (tmp_path / "empty.tsv").write_text("-DOCSTART-\tO\n\n")
    with pytest.raises(TaskError, match=r"train file .*empty\.tsv holds no documents"):
        TaskData(_task(train=["toy_chem_train.tsv", str(tmp_path / "empty.tsv")]), DATA)


def test_a_train_set_without_entities_is_refused_whatever_defines_the_labels(tmp_path):
    (tmp_path / "types.json").write_text(TYPES)
    (tmp_path / "train.json").write_text('[{"tokens": ["nothing", "here"]}]')
    (tmp_path / "train.tsv").write_text("nothing\tO\n")
    spert = _task(format="spert_json", train="train.json", types="types.json", head={"type": "spert"})
    for task in (spert, _task(train="train.tsv", labels=["Chemical"])):
        with pytest.raises(TaskError, match="the 1 training documents of train.* hold no entities"):
            TaskData(task, tmp_path)


def test_a_limit_that_keeps_no_entity_says_so(tmp_path):
    (tmp_path / "train.tsv").write_text("nothing\tO\n\naspirin\tB-Chemical\n")
    with pytest.raises(TaskError, match=r"training documents \(the first training.max_train_docs of them\)"):
        TaskData(_task(train="train.tsv"), tmp_path, max_train_docs=1)


def test_labels_the_train_set_never_shows_and_an_entity_free_dev_set_are_warned_about(tmp_path, caplog):
    (tmp_path / "types.json").write_text(TYPES)
    (tmp_path / "train.json").write_text(CHEMICAL)
    (tmp_path / "dev.json").write_text('[{"tokens": ["nothing"]}]')
    task = _task(
        format="spert_json", train="train.json", dev="dev.json", types="types.json", head={"type": "spert"}
    )
    with caplog.at_level("WARNING", logger="ner.tasks"):
        TaskData(task, tmp_path)
    assert "no training entity of type ['Gene']" in caplog.text
    assert "no training relation of type ['Binds']" in caplog.text
    assert "the dev set dev.json holds no entities" in caplog.text


def test_a_declared_encoding_reads_latin1_files(tmp_path):
    (tmp_path / "esp.train").write_bytes("Perú\tB-LOC\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"esp\.train:1:4: this corpus file is not utf-8"):
        TaskData(_task(train="esp.train", format="conll2002"), tmp_path)
    data = TaskData(_task(train="esp.train", format="conll2002", encoding="latin-1"), tmp_path)
    assert data.train[0].words == ["Perú"]
    with pytest.raises(ValidationError, match="unknown text encoding"):
        _task(encoding="latin-9000")


def test_a_tokenizer_moves_every_file_of_every_split_onto_its_tokens(tmp_path):
    """Column corpora (the taggers' data) are aligned per file like SpERT's, and the first N
    training documents are taken across the pooled files before aligning."""
    (tmp_path / "a.tsv").write_text("He\tO\nleft\tO\nKentucky.\tB-Loc\n\nGone\tO\n")
    (tmp_path / "b.tsv").write_text("Knight-Ridder\tB-Org\nrose\tO\n\nNot\tO\nread\tO\n")
    task = _task(train=["a.tsv", "b.tsv"], dev="b.tsv")
    data = TaskData(task, tmp_path, max_train_docs=3, tokenizer=pipeline_tokenizer("en"))
    assert [doc.words for doc in data.train] == [
        ["He", "left", "Kentucky", "."],
        ["Gone"],
        ["Knight", "-", "Ridder", "rose"],
    ]
    assert [doc.span_text(e.start, e.end) for doc in data.train for e in doc.entities] == [
        "Kentucky",
        "Knight-Ridder",
    ]
    assert [(r["split"], r["file"], r["spans"], r["normalised"]) for r in data.alignment] == [
        ("train", "a.tsv", 1, 1),
        ("train", "b.tsv", 1, 0),
        ("dev", "b.tsv", 1, 0),
    ]
    assert TaskData(task, tmp_path).train[0].words == ["He", "left", "Kentucky."], "no tokenizer: corpus"
