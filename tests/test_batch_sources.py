"""Batch readers: every format becomes texts or reasons; nothing raises, nothing is dropped silently."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.batch import sources
from ner.batch.sources import (
    Skipped,
    SourceText,
    count_items,
    decode,
    find_files,
    html_to_text,
    read_items,
)
from tests.pdfs import pdf_bytes, stream

FRENCH = (
    "Le président de la République française, Emmanuel Macron, a reçu à l'Élysée le chancelier "
    "allemand. Après la réunion, les deux dirigeants ont déjeuné près de la Seine, où l'été dure."
)


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose content stream shows ``text`` in Helvetica."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    return pdf_bytes(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            stream(content),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def items(path: Path, **options) -> list:
    return list(read_items(path, **options))


def test_text_and_markdown(tmp_path):
    (tmp_path / "a.txt").write_text("Angela Merkel visited Paris.", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Title\n\nSome *text*.", encoding="utf-8")
    assert items(tmp_path / "a.txt") == [
        SourceText(str(tmp_path / "a.txt"), "Angela Merkel visited Paris.", encoding="utf-8")
    ]
    assert items(tmp_path / "b.md")[0].text == "# Title\n\nSome *text*."


def test_latin1_is_detected_and_decoded(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(FRENCH.encode("latin-1"))
    (item,) = items(path)
    assert isinstance(item, SourceText) and item.text == FRENCH and item.encoding != "utf-8"


def test_byte_order_marks_win(tmp_path):
    path = tmp_path / "utf16.txt"
    path.write_bytes(FRENCH.encode("utf-16"))
    assert items(path)[0].text == FRENCH
    path.write_bytes(b"\xef\xbb\xbf" + "Zürich".encode())
    assert items(path)[0].text == "Zürich"


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty"),
        (b"  \n\t ", "empty"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "binary content (NUL bytes)"),
    ],
)
def test_unusable_files_are_skipped_with_a_reason(tmp_path, content, reason):
    path = tmp_path / "x.txt"
    path.write_bytes(content)
    (item,) = items(path)
    assert isinstance(item, Skipped) and reason in item.reason


def test_random_bytes_named_txt_are_not_taken_for_text(tmp_path):
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes(range(256)) * 40)
    (item,) = items(path)
    assert isinstance(item, Skipped)


def test_size_limit_and_unreadable_files(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("word " * 1000)
    assert "over the limit of 100" in items(big, max_bytes=100)[0].reason


def test_a_file_that_cannot_be_opened_is_a_reason(tmp_path, monkeypatch):
    """Root reads any file (and CI runs as root), so the denial is raised at the reader's ``open``:
    the branch runs everywhere, whoever runs the suite."""
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")
    if os.geteuid() != 0:
        locked.chmod(0)
    else:

        def denied(file, *args, **kwargs):
            if Path(file) == locked:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
            return open(file, *args, **kwargs)

        monkeypatch.setattr(sources, "open", denied, raising=False)
    (item,) = items(locked)
    assert isinstance(item, Skipped) and item.reason == "cannot read: Permission denied"


def test_a_two_megabyte_text_is_one_document(tmp_path):
    path = tmp_path / "big.txt"
    text = ("Angela Merkel besuchte Paris. " * 70_000)[:2_000_000]
    path.write_text(text, encoding="utf-8")
    (item,) = items(path)
    assert item.text == text


def test_html_keeps_visible_text_with_paragraph_breaks(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>T</title><style>p {}</style></head><body><h1>News</h1>"
        "<p>Angela&nbsp;Merkel <b>visited</b>\n   Paris.</p><script>var x = 1;</script>"
        "<ul><li>one</li><li>two &amp; three</li></ul></body></html>",
        encoding="utf-8",
    )
    (item,) = items(path)
    assert item.text == "News\n\nAngela Merkel visited Paris.\n\none\n\ntwo & three"


@settings(deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="<>&"), max_size=80))
def test_html_text_without_markup_keeps_its_words(text):
    assert html_to_text(f"<p>{text}</p>").split() == text.split()


def test_jsonl_records_carry_their_line_and_bad_lines_are_reported(tmp_path):
    path = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"text": "First doc.", "id": 1}),
        "",
        "{not json",
        json.dumps({"body": "no text field"}),
        json.dumps({"text": 42}),
        json.dumps({"text": "   "}),
        json.dumps({"text": "Sixth line, second doc."}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = items(path)
    good = [(i.line, i.text) for i in result if isinstance(i, SourceText)]
    assert good == [(1, "First doc."), (7, "Sixth line, second doc.")]
    bad = {i.line: i.reason for i in result if isinstance(i, Skipped)}
    assert set(bad) == {3, 4, 5, 6}
    assert "no 'text' field" in bad[4] and "is a int, not a string" in bad[5] and "empty" in bad[6]
    other = items(path, text_field="body")
    assert [(i.line, i.text) for i in other if isinstance(i, SourceText)] == [(4, "no text field")]


def test_json_arrays_and_objects(tmp_path):
    array = tmp_path / "a.json"
    array.write_text(json.dumps([{"text": "one"}, {"text": "two"}, "three"]), encoding="utf-8")
    result = items(array)
    assert [(i.item, i.text) for i in result if isinstance(i, SourceText)] == [(0, "one"), (1, "two")]
    assert [i.item for i in result if isinstance(i, Skipped)] == [2]
    single = tmp_path / "b.json"
    single.write_text(json.dumps({"content": "only"}), encoding="utf-8")
    assert items(single, text_field="content")[0].text == "only"
    broken = tmp_path / "c.json"
    broken.write_text("[{", encoding="utf-8")
    assert "invalid JSON" in items(broken)[0].reason


def test_pdf_text_and_corrupt_pdfs(tmp_path):
    good = tmp_path / "good.pdf"
    good.write_bytes(minimal_pdf("Angela Merkel visited Paris."))
    (item,) = items(good)
    assert isinstance(item, SourceText) and "Angela Merkel visited Paris." in item.text
    corrupt = tmp_path / "corrupt.pdf"
    corrupt.write_bytes(minimal_pdf("x")[:60])
    (skipped,) = items(corrupt)
    assert isinstance(skipped, Skipped) and "PDF" in skipped.reason
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"this is not a pdf at all")
    assert isinstance(items(garbage)[0], Skipped)


def test_find_files_by_suffix_or_glob(tmp_path):
    for name in ["b.txt", "a.md", "sub/c.html", "sub/d.bin", "e.pdf"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    names = [p.relative_to(tmp_path).as_posix() for p in find_files([tmp_path])]
    assert names == ["a.md", "b.txt", "e.pdf", "sub/c.html"]
    assert [p.name for p in find_files([tmp_path], "**/*.txt")] == ["b.txt"]
    assert find_files([tmp_path / "sub" / "d.bin"]) == [tmp_path / "sub" / "d.bin"]


def test_content_hash_identifies_the_text():
    a, b = SourceText("x", "same"), SourceText("y", "same")
    assert a.sha256 == b.sha256 != SourceText("x", "other").sha256
    assert decode("é".encode()) == ("é", "utf-8")


def test_count_items_predicts_what_read_items_yields(tmp_path):
    """The progress bar's total: one per item, whatever the format, good or bad."""
    files = {
        "a.jsonl": "\n".join([json.dumps({"text": "one"}), "", "{bad", json.dumps({"text": "two"})]) + "\n",
        "b.json": json.dumps([{"text": "x"}, "not an object", {"text": "y"}]),
        "c.json": json.dumps({"text": "single"}),
        "d.json": "[{",
        "e.txt": "plain",
        "f.jsonl": "\n\n",
        "g.html": "<p>Hello</p>",
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
        path = tmp_path / name
        assert count_items(path) == len(items(path)), name
    (tmp_path / "h.json").write_text(json.dumps([]), encoding="utf-8")
    assert count_items(tmp_path / "h.json") == len(items(tmp_path / "h.json")) == 0
    assert (
        count_items(tmp_path / "a.jsonl", max_bytes=3) == len(items(tmp_path / "a.jsonl", max_bytes=3)) == 1
    )
