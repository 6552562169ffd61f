"""Tasks: a dataset's files, format and labels turned into gold documents and a head schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

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
