"""Issue 12: no input stops a batch run or loses a record (one test per numbered point, and a fuzz test)."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ner.batch import budget
from ner.batch.output import JsonlLog, OutputLocked
from ner.batch.runner import InputError, RunOptions, _load_worker, run
from ner.batch.sources import Skipped, SourceText, count_items, read_items, source_name
from ner.cli import app
from ner.files import write_atomic
from ner.pipeline import build_pipeline, save
from tests.conftest import tiny_model
from tests.pdfs import pdf_bytes, stream

runner = CliRunner()
GOOD = "Angela Merkel met Satya Nadella in Paris. Booth killed Lincoln in Washington."


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pipeline") / "tiny"
    model = tiny_model(bias_entities=-1.5)
    model.heads["spert"].config.relation_threshold = 0.7
    save(build_pipeline(model, name="tiny"), path)
    return path


@pytest.fixture(scope="module")
def sparse_pipeline(tmp_path_factory) -> Path:
    """A random model that keeps few spans, as a trained one does: the fuzz test is about what the
    batch layer does with hostile files, and a random model keeping every span of a long line
    would spend minutes pairing them (bounded, but slow)."""
    path = tmp_path_factory.mktemp("sparse") / "tiny"
    save(build_pipeline(tiny_model(bias_entities=-4.0), name="tiny"), path)
    return path


def _extract(pipeline: Path, output: Path, *inputs: Path, extra: tuple[str, ...] = ()):
    args = ["extract", *map(str, inputs), "-o", str(output), "--pipeline", str(pipeline), "--quiet", *extra]
    return runner.invoke(app, args)


def _records(path: Path) -> list[dict]:
    """The records of a JSONL file: lines end at "\n" only (a raw U+0085 or U+2028 inside a JSON
    string is text, not a line break, as in every reader of our output)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


# ------------------------------------------------------------------ 1. a document the pipeline fails on
def test_a_document_the_pipeline_fails_on_is_listed_and_its_chunk_is_kept(pipeline, tmp_path, monkeypatch):
    """Before: one failing document aborted the run (exit 1) and every good document of its chunk
    was lost. Now the chunk is retried one document at a time and only the bad one is listed."""
    _load_worker(str(pipeline), None)
    from ner.batch.runner import _WORKER

    component = _WORKER["nlp"].get_pipe("ner_extractor")
    original = component.annotate

    def annotate(docs):
        if any("POISON" in doc.text for doc in docs):
            raise RuntimeError("the model broke on this document")
        return original(docs)

    monkeypatch.setattr(component, "annotate", annotate)
    docs = tmp_path / "docs"
    docs.mkdir()
    for number in range(5):
        text = "POISON here." if number == 2 else f"{GOOD} Number {number}."
        (docs / f"{number}.txt").write_text(text, encoding="utf-8")
    output = tmp_path / "out.jsonl"
    summary = run([docs], output, RunOptions(str(pipeline), batch_size=8), progress=False)
    assert summary.documents == 4 and summary.failures == 1
    assert [Path(r["source"]).name for r in _records(output)] == ["0.txt", "1.txt", "3.txt", "4.txt"]
    (error,) = _records(output.with_name("out.jsonl.errors.jsonl"))
    assert Path(error["source"]).name == "2.txt"
    assert "RuntimeError: the model broke on this document" in error["reason"]


def test_a_text_longer_than_spacys_max_length_is_extracted_whole(pipeline, tmp_path):
    """Before: spaCy's E088 (max_length, 1,000,000 characters) aborted the run with 0 records."""
    text = " ".join([GOOD] * 14_000)  # 1.1 M characters on one line
    assert len(text) > 1_000_000
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    output = tmp_path / "out.jsonl"
    result = _extract(pipeline, output, tmp_path / "long.txt")
    assert result.exit_code == 0, result.output
    (record,) = _records(output)
    assert record["text"] == text and record["entities"]
    for entity in record["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]


# ------------------------------------------------------------------ 2. JSON nested too deeply
@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_deeply_nested_json_is_a_reason_not_a_recursion_error(tmp_path, suffix):
    path = tmp_path / f"nested{suffix}"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert count_items(path) == 1
    (item,) = read_items(path)
    assert isinstance(item, Skipped) and "nested too deeply" in item.reason


def test_a_nested_file_beside_good_ones_does_not_stop_the_run(pipeline, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(GOOD, encoding="utf-8")
    (docs / "nested.jsonl").write_text(json.dumps({"text": GOOD}) + "\n" + "[" * 100_000, encoding="utf-8")
    output = tmp_path / "out.jsonl"
    result = _extract(pipeline, output, docs)
    assert result.exit_code == 1, result.output  # finished, one input skipped
    assert sorted((Path(r["source"]).name, r["line"]) for r in _records(output)) == [
        ("a.txt", None),
        ("nested.jsonl", 1),
    ]


# ------------------------------------------------------------------ 3. lone surrogates
def test_a_lone_surrogate_in_jsonl_becomes_a_replacement_character(pipeline, tmp_path):
    """Before: UnicodeEncodeError in spaCy's string store aborted the run."""
    source = tmp_path / "s.jsonl"
    source.write_text('{"text": "Booth killed \\ud800 Lincoln."}\n{"text": "Paris."}\n', encoding="utf-8")
    (first, _) = read_items(source)
    assert first.text == "Booth killed \ufffd Lincoln."  # one character for one: offsets unchanged
    output = tmp_path / "out.jsonl"
    result = _extract(pipeline, output, source, extra=("--show",))
    assert result.exit_code == 0, result.output
    assert [r["text"] for r in _records(output)] == ["Booth killed \ufffd Lincoln.", "Paris."]


def test_a_surrogate_anywhere_in_a_record_is_written_as_valid_utf8(tmp_path):
    path = tmp_path / "log.jsonl"
    with JsonlLog(path) as log:
        log.append({"source": "odd\udcffname", "text": "x"})
    path.read_bytes().decode("utf-8")  # strict: valid UTF-8
    assert _records(path) == [{"source": "odd\udcffname", "text": "x"}]  # and lossless


# ------------------------------------------------------------------ 4. file names that are not UTF-8
def test_a_file_name_that_is_not_utf8_keeps_show_and_docbin_working(pipeline, tmp_path):
    """Before: the output held surrogate-escaped names and every later --show or --docbin failed."""
    docs = tmp_path / "docs"
    docs.mkdir()
    raw = os.fsencode(docs) + b"/bad\xffname.txt"
    with open(raw, "wb") as handle:
        handle.write(GOOD.encode())
    output, docbin = tmp_path / "out.jsonl", tmp_path / "out.spacy"
    result = _extract(pipeline, output, docs, extra=("--show", "--docbin", str(docbin)))
    assert result.exit_code == 0, result.output
    (record,) = _records(output)
    assert record["source"].endswith("bad\\xffname.txt")
    assert "bad\\xffname.txt" in result.output and "1 documents -> " in result.output
    again = _extract(pipeline, output, docs, extra=("--show", "--docbin", str(docbin)))
    assert again.exit_code == 0 and "(1 already done)" in again.output  # the same name: resumed


def test_source_names_are_stable_valid_strings():
    path = Path(os.fsdecode(b"/tmp/bad\xffname.txt"))
    assert source_name(path) == "/tmp/bad\\xffname.txt"
    source_name(path).encode("utf-8")  # no surrogates left


# ------------------------------------------------------------------ 5. one writer per output
def test_a_second_writer_is_refused_and_the_first_ones_record_in_flight_survives(tmp_path):
    """Before: the second process cut the first one's half-written record off as 'incomplete'."""
    path = tmp_path / "out.jsonl"
    first = JsonlLog(path)
    first.append({"source": "a", "sha256": "1"})
    os.write(first._fd, b'{"source": "b", "sha')  # a record in flight
    with pytest.raises(OutputLocked, match="being written by another process"):
        JsonlLog(path)
    os.write(first._fd, b'256": "2"}\n')
    first.close()
    assert [r["source"] for r in _records(path)] == ["a", "b"]


def test_a_second_ner_extract_on_the_same_output_is_refused(pipeline, tmp_path):
    """Before: both runs exited 0 and wrote every record twice."""
    (tmp_path / "a.txt").write_text(GOOD, encoding="utf-8")
    output = tmp_path / "out.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(output)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = _extract(pipeline, output, tmp_path / "a.txt")
        assert result.exit_code == 2, result.output
        assert "being written by another process" in result.output
        assert output.read_text() == ""
    finally:
        holder.kill()
        holder.wait()
    assert _extract(pipeline, output, tmp_path / "a.txt").exit_code == 0  # a killed holder frees it
    assert len(_records(output)) == 1


_HOLD_LOCK = """
import sys, time
from ner.batch.output import JsonlLog
log = JsonlLog(sys.argv[1])
print("locked", flush=True)
time.sleep(600)
"""


# ------------------------------------------------------------------ 6. inputs that do not exist
def test_a_missing_input_is_refused_before_anything_runs(pipeline, tmp_path):
    """Before: exit 0, nothing done, nothing said."""
    output = tmp_path / "out.jsonl"
    result = _extract(pipeline, output, tmp_path / "no-such-folder")
    assert result.exit_code == 2 and "no such file or folder" in result.output
    assert "no-such-folder" in result.output and not output.exists()
    with pytest.raises(InputError):
        run([tmp_path / "missing.txt"], output, RunOptions(str(pipeline)), progress=False)


# ------------------------------------------------------------------ 8. a time budget per file
def _slow_pdf(pages: int = 100, stream_bytes: int = 20_000_000) -> bytes:
    """A small PDF whose pages all share one content stream of ``stream_bytes`` of whitespace, which
    pypdf parses again for every page (the issue's was 84 KB: 100 pages, 70 MB, 22 s to skip)."""
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages)).encode()
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
        b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>"
    )
    return pdf_bytes(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
            stream(zlib.compress(b" " * stream_bytes, 9), b" /Filter /FlateDecode"),
            *[page] * pages,
        ]
    )


def test_a_pdf_that_takes_too_long_is_skipped_within_its_budget(tmp_path):
    """Before: an 84 KB PDF took 22 s to be skipped; the budget bounds what any file costs."""
    path = tmp_path / "slow.pdf"
    path.write_bytes(_slow_pdf())
    assert path.stat().st_size < 200_000
    (item,) = read_items(path, max_seconds=0.5)
    assert isinstance(item, Skipped) and "reading took over 0.5 s" in item.reason


def test_the_budget_is_kept_off_the_main_thread_too(tmp_path):
    """Threads (Streamlit's pages) cannot use SIGALRM: the PDF reader checks the budget per page."""
    path = tmp_path / "slow.pdf"
    path.write_bytes(_slow_pdf(pages=40))
    found: list = []
    thread = threading.Thread(target=lambda: found.extend(read_items(path, max_seconds=0.3)))
    thread.start()
    thread.join()
    assert isinstance(found[0], Skipped) and "reading took over" in found[0].reason


def test_the_alarm_interrupts_any_python_code_and_is_restored():
    with pytest.raises(budget.OverBudget), budget.time_budget(0.2):
        while True:
            sum(range(1000))
    import signal

    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    with budget.time_budget(5):  # a block that ends in time is untouched
        assert sum(range(10)) == 45


def test_special_files_are_skipped_not_read(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    (item,) = read_items(fifo)  # would block forever if it were opened
    assert isinstance(item, Skipped) and "not a regular file" in item.reason


# ------------------------------------------------------------------ 14. the output cannot be written
def test_a_full_disk_is_a_message_and_the_records_so_far_are_kept(pipeline, tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    for number in range(4):
        (docs / f"{number}.txt").write_text(f"{GOOD} {number}", encoding="utf-8")
    import ner.batch.output as output_module

    real_write, writes = os.write, []

    def write(fd, data):  # two records fit on the disk, the third does not
        if len(writes) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(output_module.os, "write", write)
    output = tmp_path / "out.jsonl"
    result = _extract(pipeline, output, docs, extra=("--batch-size", "1"))
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.output and "a rerun resumes" in result.output
    assert "Traceback" not in result.output
    monkeypatch.undo()
    assert len(_records(output)) == 2
    assert _extract(pipeline, output, docs).exit_code == 0
    assert len(_records(output)) == 4


def test_an_output_that_cannot_be_opened_is_a_message(pipeline, tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text(GOOD, encoding="utf-8")
    import ner.batch.output as output_module

    def refuse(path, *args):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(output_module.os, "open", refuse)
    result = _extract(pipeline, tmp_path / "out.jsonl", tmp_path / "a.txt")
    assert result.exit_code == 2 and "out.jsonl: Permission denied" in result.output
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ minor points
def test_atomic_writes_follow_the_umask_and_keep_an_existing_mode(tmp_path):
    previous = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.json", b"{}")
        assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o644  # was 0600
        (tmp_path / "kept.json").write_bytes(b"{}")
        os.chmod(tmp_path / "kept.json", 0o640)
        write_atomic(tmp_path / "kept.json", b"[]")
        assert (tmp_path / "kept.json").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(previous)


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".out.spacy.{dead_pid}.abc123.tmp"
    stale.write_bytes(b"half a docbin")
    live = tmp_path / f".out.spacy.{os.getpid()}.def456.tmp"  # a writer still running: kept
    live.write_bytes(b"in progress")
    write_atomic(tmp_path / "out.spacy", b"whole")
    assert not stale.exists() and live.exists()
    assert (tmp_path / "out.spacy").read_bytes() == b"whole"


def test_an_unwritable_docbin_is_refused_before_the_extraction(pipeline, tmp_path):
    (tmp_path / "a.txt").write_text(GOOD, encoding="utf-8")
    output = tmp_path / "out.jsonl"
    for docbin in (tmp_path / "missing-folder" / "out.spacy", tmp_path):
        result = _extract(pipeline, output, tmp_path / "a.txt", extra=("--docbin", str(docbin)))
        assert result.exit_code == 2, result.output
        assert not output.exists(), "refused before extracting anything"


def test_a_newline_in_a_file_name_cannot_forge_lines(pipeline, tmp_path, caplog):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a\n== forged.txt").write_text(GOOD, encoding="utf-8")
    (docs / "b\nWARNING forged.txt").write_bytes(b"")
    output = tmp_path / "out.jsonl"
    with caplog.at_level(logging.WARNING):
        result = _extract(pipeline, output, docs, extra=("--show",))
    assert result.exit_code == 1, result.output
    assert "a\\n== forged.txt" in result.output
    assert not any(line.startswith("== forged") for line in result.output.splitlines())
    assert all("\n" not in record.getMessage() for record in caplog.records)
    assert any("b\\nWARNING forged.txt" in record.getMessage() for record in caplog.records)


# ------------------------------------------------------------------ the budget changes nothing for good files
def test_reading_a_good_file_under_a_budget_gives_the_same_items(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"{GOOD} {i}"}) for i in range(50)), encoding="utf-8")
    items = list(read_items(path, max_seconds=30))
    assert items == list(read_items(path, max_seconds=None))
    assert len(items) == 50 and all(isinstance(item, SourceText) for item in items)


# ------------------------------------------------------------------ fuzz: hostile folders
_WORDS = ["Angela", "Merkel", "visited", "Paris", "Booth", "killed", "Lincoln", "in", "Redmond", "and"]
_SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
_GOOD_TEXT = st.builds(
    lambda words, junk: " ".join(words) + " " + junk + ".",
    st.lists(st.sampled_from(_WORDS), min_size=1, max_size=12),
    _SAFE_TEXT,
)
_NAME = st.one_of(
    st.text(
        st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1, max_size=20
    ),
    st.sampled_from(["a\nb", "-rf", " spaced ", "ünï", "dots..", "\x1b[31mred"]),
).map(lambda name: name.encode("utf-8"))
_ODD_NAME = st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\x00" not in b)
_JSONL_LINE = st.one_of(
    st.tuples(st.just("good"), _GOOD_TEXT.map(lambda t: json.dumps({"text": t}))),
    st.tuples(st.just("good"), _GOOD_TEXT.map(lambda t: json.dumps({"text": t}).replace(".", "\\ud800", 1))),
    st.tuples(
        st.just("bad"), st.sampled_from(["{broken", "[1, 2]", '{"text": 3}', '{"other": "x"}', "[" * 5000])
    ),
    st.tuples(st.just("bad"), st.just(json.dumps({"text": "   "}))),
)
_FILE = st.one_of(
    st.tuples(st.just(".txt"), st.just("good"), _GOOD_TEXT.map(lambda t: t.encode("utf-8"))),
    st.tuples(
        st.just(".txt"),
        st.just("good"),
        st.just(("Café à Genève, où Hélène travaille. " * 3).encode("cp1252")),
    ),
    st.tuples(
        st.just(".txt"),
        st.just("good"),
        st.integers(300, 3_000).map(lambda n: " ".join(_WORDS[i % len(_WORDS)] for i in range(n)).encode()),
    ),  # a long line without a full stop
    st.tuples(st.just(".txt"), st.just("bad"), st.sampled_from([b"", b"  \n\t ", b"\x00\x01\x02binary"])),
    st.tuples(st.sampled_from([".json", ".jsonl"]), st.just("bad"), st.just(b"[" * 100_000 + b"]" * 100_000)),
    st.tuples(st.just(".jsonl"), st.just("lines"), st.lists(_JSONL_LINE, min_size=1, max_size=5)),
)


def _write_folder(root: Path, files: list) -> tuple[set, set]:
    """Write ``files`` under ``root`` (some in a subfolder); the keys of the good and bad documents."""
    good, bad = set(), set()
    for number, (name, odd, (suffix, kind, content)) in enumerate(files):
        folder = os.fsencode(root) + (b"/sub" if number % 3 == 2 else b"")
        os.makedirs(folder, exist_ok=True)
        raw = folder + b"/" + b"%d-" % number + (odd if odd else name) + suffix.encode()
        source = source_name(Path(os.fsdecode(raw)))
        if kind == "lines":
            lines = [line for _, line in content]
            with open(raw, "wb") as handle:
                handle.write("\n".join(lines).encode("utf-8"))
            for line_number, (line_kind, _) in enumerate(content, start=1):
                (good if line_kind == "good" else bad).add((source, line_number))
            continue
        with open(raw, "wb") as handle:
            handle.write(content)
        line = 1 if suffix == ".jsonl" and kind == "bad" else None  # a JSONL file's reasons are per line
        (good if kind == "good" else bad).add((source, line))
    return good, bad


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(files=st.lists(st.tuples(_NAME, st.one_of(st.none(), _ODD_NAME), _FILE), min_size=1, max_size=6))
def test_hostile_folders_every_good_document_once_every_bad_one_listed(
    sparse_pipeline, tmp_path_factory, files
):
    root = tmp_path_factory.mktemp("hostile")
    good, bad = _write_folder(root / "docs", files)
    output = root / "out.jsonl"
    for _ in range(2):  # a rerun resumes: nothing doubled, nothing lost
        result = _extract(sparse_pipeline, output, root / "docs", extra=("--show", "--batch-size", "3"))
        assert result.exit_code == (1 if bad else 0), result.output
        assert "Traceback" not in result.output
        records = _records(output)
        keys = [(r["source"], r["line"]) for r in records]
        assert sorted(keys) == sorted(good), "every good document exactly once"
        for record in records:
            for entity in record["entities"]:
                assert record["text"][entity["start"] : entity["end"]] == entity["text"]
        errors = _records(output.with_name("out.jsonl.errors.jsonl")) if bad else []
        assert sorted((e["source"], e["line"]) for e in errors) == sorted(bad)
        assert all(e["reason"] for e in errors)
        output.read_bytes().decode("utf-8")  # strictly valid UTF-8, whatever the names and texts


def test_a_failed_document_crosses_the_ray_boundary_as_a_failure():
    from ner.batch.ray_engine import _from_row, _row

    failed = Skipped("a.txt", "extraction failed: RuntimeError: boom", line=3)
    assert _from_row(json.loads(json.dumps(_row(failed)))) == failed
    record = {"source": "a.txt", "entities": [], "relations": []}
    assert _from_row(json.loads(json.dumps(_row(record)))) == record
