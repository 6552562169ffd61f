"""The Annotate page with a model's overlapping suggestions, under AppTest: only the pipeline's
resolved entities are shown until asked for the rest; "Accept all" never makes overlaps that
the project's export formats cannot hold, and says which suggestions it left and why; a format
that cannot hold the data says so beside its download, and an export to a folder is refused
before anything is written. Labels come in the same order in every project; relation rows draw
each entity in its own status and tell same-text entities apart."""

from __future__ import annotations

import json
from pathlib import Path

from app.annotate.editing import SHOW_ALL
from tests.test_app_annotate import (
    annotate_page,
    button,
    open_path,
    saved,
    workdir,  # noqa: F401 (a fixture)
)

TEXT = "Composer Thomas moved to Chisholm , Minn . in 1990."
VARIANTS = [  # (words, label, score), as SpERT suggests them: every kept span
    ("Composer Thomas", "Peop", 0.9),
    ("Thomas", "Peop", 0.8),
    ("Chisholm", "Loc", 0.7),
    ("Chisholm , Minn", "Loc", 0.95),
    ("Chisholm , Minn .", "Loc", 0.6),
]


def entity(text: str, words: str, label: str, score: float | None = None, at: int = 0) -> dict:
    start = text.index(words, at)
    return {"start": start, "end": start + len(words), "label": label, "score": score, "head": "spert"}


def write_records(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def overlapping(tmp_path: Path) -> Path:
    record = {
        "id": "c",
        "text": TEXT,
        "entities": [entity(TEXT, *variant) for variant in VARIANTS],
        "relations": [{"head": 0, "tail": 3, "label": "Live_In", "score": 0.9}],
    }
    return write_records(tmp_path / "overlapping.jsonl", [record])


def statuses(dataset: Path) -> list[tuple[str, str]]:
    doc = saved(dataset).project.docs[0]
    return [(doc.span_text(i), span.status) for i, span in enumerate(doc.spans)]


def span_buttons(at) -> set[str]:
    return {b.key for b in at.button if (b.key or "").startswith("accept_span_")}


def test_accept_all_accepts_the_resolved_entities_and_says_what_it_left(tmp_path, workdir):  # noqa: F811
    dataset = overlapping(tmp_path)
    at = open_path(annotate_page(), dataset)
    assert not at.exception and not at.error
    assert span_buttons(at) == {  # only the pipeline's choice of each overlapping group
        "accept_span_0_0_0_15_Peop_suggested",
        "accept_span_0_3_25_40_Loc_suggested",
    }
    assert at.toggle(key=SHOW_ALL).label.startswith("Show overlapping suggestions (3 hidden")

    button(at, "Accept all").click().run()
    assert not at.warning and not at.error
    assert [status for _, status in statuses(dataset)] == [
        "accepted", "suggested", "suggested", "accepted", "suggested",
    ]  # fmt: skip
    assert saved(dataset).project.docs[0].relations[0].status == "accepted"

    at.toggle(key=SHOW_ALL).set_value(True).run()  # the rest, then Accept all meets the overlaps
    assert len(span_buttons(at)) == 5
    button(at, "Accept all").click().run()
    assert [status for _, status in statuses(dataset)] == [
        "accepted", "suggested", "suggested", "accepted", "suggested",
    ]  # fmt: skip
    warning = at.warning[0].value
    assert warning.startswith("Accept all left 3 suggestions: entities of this project must not overlap")
    for note in [
        "'Thomas' (Peop) overlaps 'Composer Thomas' (Peop)",
        "'Chisholm' (Loc) overlaps 'Chisholm , Minn' (Loc)",
        "'Chisholm , Minn .' (Loc) overlaps 'Chisholm , Minn' (Loc)",
    ]:
        assert note in warning
    assert not download(at, "CoNLL IOB2").disabled


def download(at, label: str):
    return next(b for b in at.sidebar.get("download_button") if b.proto.label == label)


def sidebar_warnings(at) -> list[str]:
    return [w.value for w in at.sidebar.warning]


def test_with_overlaps_allowed_accept_all_takes_them_and_conll_says_why_it_cannot(tmp_path, workdir):  # noqa: F811
    dataset = overlapping(tmp_path)
    at = open_path(annotate_page(), dataset)
    at.radio(key="overlaps_False").set_value(True).run()
    assert saved(dataset).project.overlaps is True
    at.toggle(key=SHOW_ALL).set_value(True).run()
    button(at, "Accept all").click().run()
    assert not at.main.warning and {status for _, status in statuses(dataset)} == {"accepted"}
    assert download(at, "CoNLL IOB2").disabled and not download(at, "SpERT JSON").disabled
    assert sidebar_warnings(at) == [
        "CoNLL IOB2 cannot hold this project: document 'c': 'Composer Thomas' (Peop) and 'Thomas' "
        "(Peop) overlap; CoNLL cannot hold nested entities: delete one of them or export SpERT JSON"
    ]


def test_an_export_that_cannot_be_written_whole_writes_nothing(tmp_path, workdir):  # noqa: F811
    """Gold nested entities: CoNLL cannot hold them, so no file of the export is written (the old
    export left a lone docs.spert.json)."""
    tokens = ["Composer", "Thomas", "moved", "to", "Chisholm", "."]
    gold = [
        {
            "tokens": tokens,
            "entities": [
                {"type": "Peop", "start": 0, "end": 2},
                {"type": "Peop", "start": 1, "end": 2},
                {"type": "Loc", "start": 4, "end": 5},
            ],
            "relations": [{"type": "Live_In", "head": 0, "tail": 2}],
        }
    ]
    dataset = tmp_path / "gold.json"
    dataset.write_text(json.dumps(gold), encoding="utf-8")
    at = open_path(annotate_page(), dataset)
    assert not at.exception and not at.error
    assert download(at, "CoNLL IOB2").disabled
    assert sidebar_warnings(at)[0].startswith("CoNLL IOB2 cannot hold this project: document 'gold.json[0]'")
    before = sorted(p.name for p in tmp_path.iterdir())

    field = next(t for t in at.sidebar.text_input if t.label.startswith("Or write"))
    field.input("exports")
    button(at, "Export to folder").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Nothing was written: document 'gold.json[0]': 'Composer Thomas' (Peop) and 'Thomas' (Peop) "
        "overlap; CoNLL cannot hold nested entities: delete one of them or export SpERT JSON"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no exports/, no temporary folder


def test_labels_come_in_the_same_order_in_every_project(tmp_path, workdir):  # noqa: F811
    text = "Ann of IBM saw Rome and Zeus."
    parts = {"Peop": "Ann", "Org": "IBM", "Loc": "Rome", "Other": "Zeus"}
    orders = []
    for name, labels in [("one", ["Peop", "Loc", "Other", "Org"]), ("two", ["Peop", "Loc", "Org", "Other"])]:
        record = {"text": text, "entities": [entity(text, parts[label], label) for label in labels]}
        at = open_path(annotate_page(), write_records(tmp_path / f"{name}.jsonl", [record]))
        assert not at.exception and not at.error
        orders.append(at.button_group[0].options)
        assert at.button_group[0].value == "Loc"  # the first, which number key 1 picks
    assert orders[0] == orders[1] == ["Loc", "Org", "Other", "Peop"]


def test_relation_rows_draw_each_entity_in_its_own_status_and_tell_them_apart(tmp_path, workdir):  # noqa: F811
    text = "Washington told Washington about Washington ."
    record = {
        "text": text,
        "entities": [
            entity(text, "Washington", "Peop", 0.9),
            entity(text, "Washington", "Loc", 0.8, at=5),
            entity(text, "Washington", "Loc", 0.7, at=20),
        ],
        "relations": [{"head": 0, "tail": 1, "label": "Live_In", "score": 0.6}],
    }
    dataset = write_records(tmp_path / "same.jsonl", [record])
    at = open_path(annotate_page(), dataset)
    at.button(key="accept_span_0_0_0_10_Peop_suggested").click().run()
    assert saved(dataset).project.docs[0].relations[0].status == "suggested"
    row = next(h.value for h in at.get("html") if "Live_In →" in h.value)
    head, tail = row.split("Live_In →")
    assert 'class="ner-mark"' in head and "ner-suggested" not in head  # accepted: solid
    assert head.endswith('Washington<span class="ner-label">Peop</span></mark> <span class="ner-arrow">')
    assert "ner-suggested" in tail and 'Washington<span class="ner-label">Loc @16–26</span>' in tail
    assert at.selectbox(key="relation_head_0").options == [
        "Washington (Peop)", "Washington (Loc) @16–26", "Washington (Loc) @33–43",
    ]  # fmt: skip
