"""BENCHMARKS.md's tables against the committed JSON (benchmarks/check_figures.py), and the checker
itself: a wrong figure, a rounding slip, a table or a number nobody mapped must each be caught."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "check_figures.py"
_SPEC = importlib.util.spec_from_file_location("check_figures", SCRIPT)
check_figures = importlib.util.module_from_spec(_SPEC)
sys.modules["check_figures"] = check_figures  # its dataclasses look their module up there
_SPEC.loader.exec_module(check_figures)


def _run(benchmarks: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT)]
    if benchmarks:
        command += ["--benchmarks", str(benchmarks)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)


def _edited(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    """A copy of BENCHMARKS.md with ``old`` (once in it) replaced, and the 1-based line it is on."""
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    copy = tmp_path / "BENCHMARKS.md"
    copy.write_text(text.replace(old, new), encoding="utf-8")
    return copy, text[: text.index(old)].count("\n") + 1


def test_every_figure_in_benchmarks_md_matches_its_json():
    result = _run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 errors" in result.stdout


def test_untraced_figures_are_listed_with_their_lines():
    result = _run()
    untraced = [line for line in result.stdout.splitlines() if "): not traced (" in line]
    assert any("table bioner-dev" in line and "58.06" in line for line in untraced)
    assert all(line.strip().startswith("BENCHMARKS.md:") for line in untraced)


def test_a_wrong_figure_is_caught_with_its_line(tmp_path):
    row = "| **raw text** | entities | "  # the shipped default's micro P, whatever it is today
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    printed = text.split(row, 1)[1].split(" |", 1)[0]
    wrong = f"{Decimal(printed) + Decimal('0.01')}"
    copy, line = _edited(tmp_path, f"{row}{printed} |", f"{row}{wrong} |")
    result = _run(copy)
    assert result.returncode == 1
    assert (
        f"BENCHMARKS.md:{line}: table raw-text, row 'raw text / entities', column 'micro P': "
        in result.stdout
    )
    assert f"printed {wrong}" in result.stdout


def test_a_rounding_slip_is_caught(tmp_path):
    """53.6498 printed as 53.7 (the slip issue 18 found): round(value, digits printed) must match."""
    copy, line = _edited(tmp_path, "| 40.3 | 53.6 | 62.8 |", "| 40.3 | 53.7 | 62.8 |")
    result = _run(copy)
    assert result.returncode == 1
    assert f"BENCHMARKS.md:{line}:" in result.stdout and "rounds to 53.6" in result.stdout


def test_a_table_without_a_source_is_caught(tmp_path):
    copy, line = _edited(
        tmp_path, "## Batch extraction", "| a | b |\n|---|---|\n| x | 1.5 |\n\n## Batch extraction"
    )
    result = _run(copy)
    assert result.returncode == 1
    assert f"BENCHMARKS.md:{line}: table without a '<!-- figures:" in result.stdout


def test_a_number_with_no_mapping_is_caught(tmp_path):
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    row = next(r for r in text.splitlines() if r.startswith("| **raw text** | entities |"))
    assert row.endswith("| – |"), "the SpERT paper column has no raw-text figure"
    copy, line = _edited(tmp_path, row, row.removesuffix("| – |") + "| 70.00 |")
    result = _run(copy)
    assert result.returncode == 1
    assert f"BENCHMARKS.md:{line}:" in result.stdout and "has numbers and no spec" in result.stdout


def test_an_untraced_table_must_say_so_in_the_text(tmp_path):
    copy, _ = _edited(tmp_path, "These dev figures are not traced (", "These dev figures are untraced (")
    result = _run(copy)
    assert result.returncode == 1
    assert "table bioner-dev: 'not traced (" in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("**85.78**", [("85.78", 2)]),
        ("2,206", [("2206", 0)]),
        ("−5.5", [("-5.5", 1)]),
        ("+0.93", [("0.93", 2)]),
        ("36:40, peak RSS 7.2 GB", [("2200", 0), ("7.2", 1)]),
        ("22.6M", [("22.6", 1)]),
        ("CoNLL-2003 English, all-MiniLM-L6-v2, lr 1e-4, fp16", []),
        ("895 MB per worker, 281 MB main", [("895", 0), ("281", 0)]),
    ],
)
def test_printed_numbers_are_read_with_their_decimals(text, expected):
    found = [(n.value, n.decimals) for n in check_figures.numbers(text)]
    assert found == [(Decimal(value), decimals) for value, decimals in expected]


def test_expressions_allow_arithmetic_only():
    assert check_figures.evaluate("mean(_v0, _v1) - 1", {"_v0": 2.0, "_v1": 4.0}) == 2.0
    with pytest.raises(ValueError):
        check_figures.evaluate("__import__('os')", {})
