"""Cross-check every number in BENCHMARKS.md's tables against the committed JSON it came from.

    python benchmarks/check_figures.py [--benchmarks BENCHMARKS.md] [--figures benchmarks/figures.toml]
    python benchmarks/check_figures.py --rows      # print each table's row labels and column headers

A figure copied by hand drifts from its measurement: a rerun, a rounding slip, a table edited
for another reason. So every table in BENCHMARKS.md says where its numbers come from, and this
script recomputes each printed number from that source. It prints every mismatch with its line
number and exits 1; it exits 0 only when every number of every table is accounted for.

**In BENCHMARKS.md**, the line right above each table names the table and its source JSON:

    <!-- figures: raw-text; benchmarks/results/raw_text_conll04.json -->
    <!-- figures: bioner-dev; not traced -->          (no JSON: every number in it is untraced)

**In benchmarks/figures.toml**, a section per table says where each cell's numbers are::

    [raw-text]
    key = 2                                   # the row label is the first 2 cells, "raw text / entities"
    rows.'raw text / entities' = "scores.raw.spert.entities"
    columns.'micro P' = "<row>.micro.precision"
    cells.'raw text / entities | SpERT paper (BERT-base), micro F1' = "paper: SpERT, Table 2"

A cell's spec is its ``cells`` entry ("row label | column header") if it has one, else the
column's template with ``<row>`` replaced by the row's value (or the row's template with
``<col>`` replaced by the column's value). Labels and headers match exactly or by a unique
prefix, after dropping Markdown's ``**`` and backticks; an empty label cell repeats the one above.
A spec is one of:

- a JSON path, ``pipelines[0].accuracy.entities.micro_f1``, into the table's first source, or
  ``other.json:path`` into another of the sources the comment names;
- an expression over paths in braces, ``{accuracy.multi_task.bc2gm} - {accuracy.single_task.bc2gm}``
  (``+ - * /``, numbers, ``mean(...)``), for a difference or a unit the JSON does not store;
- ``paper: <citation>``: a published figure we compare with, not measured here;
- ``text: <why>``: a number that is part of the wording (a size cap), not a result;
- ``untraced``: measured before results were kept; the table's ``untraced`` reason must then be
  printed in BENCHMARKS.md after the table as ``not traced (<reason>)``.

A cell with several numbers ("895 MB per worker, 281 MB main") takes a list of specs, in order.
A printed number must equal ``round(value, decimals printed)`` exactly; ``36:40`` is minutes and
seconds, ``22.6M`` a number followed by a unit. A JSON string matches when it contains the printed
number as written. Numbers in the row-label cells name the row and are checked only when a spec
is given for them. Headers are not checked.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import operator
import re
import sys
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMENT = re.compile(r"^<!-- figures: (?P<id>[\w-]+); (?P<sources>.+?) -->$")
#: a printed number: not part of a word ("L6", "CoNLL-2003", "1e-4"), with thousands separators,
#: a sign (the typographic minus too) or as m:ss; a unit letter may follow only as "M" (millions)
NUMBER = re.compile(
    r"(?<![\w.,:+\-−])(?P<sign>[+\-−]?)"
    r"(?P<body>\d+(?::\d\d)+|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?!\.\d)(?:(?=M(?![A-Za-z]))|(?![\w]))"
)
NOT_MEASURED = ("paper:", "text:")
UNTRACED = "untraced"


@dataclass
class Printed:
    """One number as BENCHMARKS.md prints it."""

    text: str
    value: Decimal
    decimals: int


@dataclass
class Row:
    line: int
    cells: list[str]
    label: str = ""


@dataclass
class Table:
    id: str
    sources: list[str]
    comment_line: int
    header: list[str]
    rows: list[Row] = field(default_factory=list)
    end_line: int = 0


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    untraced: list[str] = field(default_factory=list)
    checked: int = 0
    not_measured: int = 0

    def error(self, path: Path, line: int, message: str) -> None:
        self.errors.append(f"{path.name}:{line}: {message}")


def numbers(text: str) -> list[Printed]:
    """The numbers printed in ``text``, in order."""
    found = []
    for match in NUMBER.finditer(text):
        body = match["body"].replace(",", "")
        sign = "-" if match["sign"] in ("-", "−") else ""
        if ":" in body:
            seconds = 0
            for part in body.split(":"):
                seconds = seconds * 60 + int(part)
            found.append(Printed(match[0], Decimal(sign + str(seconds)), 0))
        else:
            decimals = len(body.split(".")[1]) if "." in body else 0
            found.append(Printed(match[0], Decimal(sign + body), decimals))
    return found


def _plain(cell: str) -> str:
    return " ".join(cell.replace("**", "").replace("`", "").split())


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def read_tables(path: Path, report: Report) -> list[Table]:
    """Every Markdown table of ``path`` with the figures comment right above it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    tables: list[Table] = []
    index = 0
    while index < len(lines):
        if not lines[index].startswith("|"):
            index += 1
            continue
        start = index
        while index < len(lines) and lines[index].startswith("|"):
            index += 1
        comment = COMMENT.match(lines[start - 1]) if start else None
        if not comment:
            report.error(path, start + 1, "table without a '<!-- figures: ID; SOURCES -->' line above it")
            continue
        sources = [s.strip() for s in comment["sources"].split(",")]
        table = Table(
            comment["id"], [] if sources == ["not traced"] else sources, start, _cells(lines[start])
        )
        table.end_line = index
        table.rows = [Row(number + 1, _cells(lines[number])) for number in range(start + 2, index)]
        tables.append(table)
    return tables


def label_rows(table: Table, key: int) -> None:
    """Each row's label: its first ``key`` cells, an empty one repeating the cell above."""
    above = [""] * key
    for row in table.rows:
        parts = []
        for position in range(key):
            cell = _plain(row.cells[position]) if position < len(row.cells) else ""
            above[position] = cell or above[position]
            parts.append(above[position])
        row.label = " / ".join(parts)


def find(name: str, candidates: list[str]) -> int | None:
    """Index of ``name`` in ``candidates``: exact, else the one candidate it is a prefix of."""
    name = _plain(name)
    exact = [i for i, c in enumerate(candidates) if c == name]
    if exact:
        return exact[0] if len(exact) == 1 else None
    prefixed = [i for i, c in enumerate(candidates) if c.startswith(name)]
    return prefixed[0] if len(prefixed) == 1 else None


class Sources:
    """The JSON files a table declares, loaded once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loaded: dict[str, object] = {}

    def load(self, relative: str) -> object:
        if relative not in self.loaded:
            self.loaded[relative] = json.loads((self.root / relative).read_text(encoding="utf-8"))
        return self.loaded[relative]


def lookup(document: object, path: str) -> object:
    """The value at ``path`` (``a.b[0].c``; keys may hold spaces) in a parsed JSON document."""
    value = document
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if index:
            value = value[int(index)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            raise KeyError(f"no key {key!r}")
    return value


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(expression: str, values: dict[str, float]) -> float:
    """``expression`` (``+ - * /``, numbers, ``mean(...)``, names bound in ``values``), nothing else."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.Name) and node.id in values:
            return values[node.id]
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "mean" and node.args:
            return sum(walk(argument) for argument in node.args) / len(node.args)
        raise ValueError(f"not allowed in an expression: {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval"))


def resolve(spec: str, table: Table, sources: Sources, used: set[str]) -> tuple[object, str]:
    """The value a spec names, and where it was found (for messages)."""

    def one(reference: str) -> tuple[object, str]:
        name, _, path = reference.rpartition(":")
        matches = [s for s in table.sources if Path(s).name == name] if name else table.sources[:1]
        if not matches:
            raise KeyError(f"{name or 'a source'} is not among the table's sources {table.sources}")
        used.add(matches[0])
        return lookup(sources.load(matches[0]), path.strip()), f"{matches[0]} {path.strip()}"

    spec = " ".join(spec.split())  # a long expression may span lines in the figures file
    if "{" not in spec:
        return one(spec)
    values, where = {}, []
    for number, reference in enumerate(re.findall(r"\{([^}]*)\}", spec)):
        value, place = one(reference)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"{place} is {value!r}, not a number")
        values[f"_v{number}"] = value
        where.append(f"{place} = {value!r}")
    counter = itertools.count()
    expression = re.sub(r"\{[^}]*\}", lambda _: f"_v{next(counter)}", spec)
    return evaluate(expression, values), f"{spec} with " + "; ".join(where)


def agrees(printed: Printed, value: object) -> tuple[bool, str]:
    """Whether ``printed`` is ``value`` rounded to the decimals printed (or, for text, in it)."""
    if isinstance(value, str):
        return any(n.value == printed.value for n in numbers(value)), repr(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False, f"{value!r}, not a number"
    rounded = round(value, printed.decimals)
    return Decimal(repr(rounded)) == printed.value, f"{value!r}, which rounds to {rounded!r}"


def check_cell(table: Table, row: Row, column: int, specs: list[str], context: Context) -> None:
    cell = row.cells[column] if column < len(row.cells) else ""
    printed = numbers(cell)
    where = f"table {table.id}, row {row.label!r}, column {_plain(table.header[column])!r}"
    if not printed:
        return
    if len(printed) != len(specs):
        context.report.error(
            context.path, row.line, f"{where}: {len(printed)} number(s) in {cell!r}, {len(specs)} spec(s)"
        )
        return
    for number, spec in zip(printed, specs):
        if spec.startswith(NOT_MEASURED):
            context.report.not_measured += 1
        elif spec == UNTRACED:
            context.report.untraced.append(
                f"{context.path.name}:{row.line}: {number.text} ({where}): not traced ({context.reason})"
            )
        else:
            check_number(table, row, number, spec, where, context)


def check_number(table: Table, row: Row, number: Printed, spec: str, where: str, context: Context) -> None:
    try:
        value, place = resolve(spec, table, context.sources, context.used)
    except (KeyError, IndexError, TypeError, ValueError, OSError, SyntaxError) as error:
        context.report.error(context.path, row.line, f"{where}: {spec!r}: {error}")
        return
    context.report.checked += 1
    ok, shown = agrees(number, value)
    if not ok:
        context.report.error(
            context.path,
            row.line,
            f"{where}: printed {number.text}{_seconds(number)}, but {place} is {shown}",
        )


def _seconds(number: Printed) -> str:
    return f" ({number.value} s)" if ":" in number.text else ""


@dataclass
class Context:
    """What checking one table needs besides the table."""

    path: Path
    report: Report
    sources: Sources
    reason: str = ""
    used: set[str] = field(default_factory=set)


def _as_list(spec: str | list[str]) -> list[str]:
    return [spec] if isinstance(spec, str) else list(spec)


def cell_specs(table: Table, mapping: dict, context: Context) -> dict[tuple[int, int], list[str]]:
    """(row index, column index) -> specs, from the section's cells, rows and columns."""
    headers = [_plain(h) for h in table.header]
    labels = [row.label for row in table.rows]
    specs: dict[tuple[int, int], list[str]] = {}
    row_values: dict[int, str] = {}
    for label, value in mapping.get("rows", {}).items():
        index = find(label, labels)
        if index is None:
            context.report.error(
                context.path, table.comment_line, f"table {table.id}: no single row {label!r}"
            )
        else:
            row_values[index] = value
    for header, template in mapping.get("columns", {}).items():
        column = find(header, headers)
        if column is None:
            context.report.error(context.path, table.comment_line, f"table {table.id}: no column {header!r}")
            continue
        for index, value in row_values.items():
            specs[index, column] = _combine(template, value)
    for key, value in mapping.get("cells", {}).items():
        label, _, header = key.rpartition(" | ")
        index, column = find(label, labels), find(header, headers)
        if index is None or column is None:
            context.report.error(context.path, table.comment_line, f"table {table.id}: no cell {key!r}")
        else:
            specs[index, column] = _as_list(value)
    return specs


def _combine(column: str | list[str], row: str) -> list[str]:
    """A column template with ``<row>`` filled in, or a row template with ``<col>`` filled in."""
    if "<col>" in row:
        return [row.replace("<col>", c) for c in _as_list(column)]
    return [c.replace("<row>", row) for c in _as_list(column)]


def check_table(table: Table, mapping: dict | None, context: Context, lines: list[str]) -> None:
    if mapping is None:
        context.report.error(
            context.path, table.comment_line, f"table {table.id}: no [{table.id}] in figures"
        )
        return
    label_rows(table, mapping.get("key", 1))
    context.reason = mapping.get("untraced", "")
    after = "\n".join(lines[table.end_line :]).split("<!-- figures:")[0]  # up to the next table
    if context.reason and f"not traced ({context.reason})" not in after:
        message = f"table {table.id}: 'not traced ({context.reason})' is not printed after it"
        context.report.error(context.path, table.end_line, message)
    for source in table.sources:
        if not (context.sources.root / source).is_file():
            context.report.error(
                context.path, table.comment_line, f"table {table.id}: {source} does not exist"
            )
            return
    whole = [UNTRACED] if not table.sources else None
    specs = cell_specs(table, mapping, context)
    key = mapping.get("key", 1)
    for index, row in enumerate(table.rows):
        for position, header in enumerate(table.header):
            given = specs.get((index, position))
            cell = row.cells[position] if position < len(row.cells) else ""
            if given is None and whole and position >= key and numbers(cell):
                given = whole * len(numbers(cell))
            if given is None:
                if position >= key and numbers(cell):
                    context.report.error(
                        context.path, row.line, f"table {table.id}, row {row.label!r}, column "
                        f"{_plain(header)!r}: {cell!r} has numbers and no spec in the figures file"
                    )  # fmt: skip
                continue
            check_cell(table, row, position, given, context)
    for source in table.sources:
        if source not in context.used:
            context.report.error(
                context.path, table.comment_line, f"table {table.id}: {source} is never used"
            )


def check(benchmarks: Path, figures: Path, root: Path = ROOT) -> Report:
    """Check every table of ``benchmarks`` against the sources ``figures`` maps it to."""
    report = Report()
    mappings = tomllib.loads(figures.read_text(encoding="utf-8"))
    lines = benchmarks.read_text(encoding="utf-8").splitlines()
    tables = read_tables(benchmarks, report)
    sources = Sources(root)
    seen = set()
    for table in tables:
        if table.id in seen:
            report.error(benchmarks, table.comment_line, f"table id {table.id} used twice")
        seen.add(table.id)
        check_table(table, mappings.get(table.id), Context(benchmarks, report, sources), lines)
    for name in sorted(set(mappings) - seen):
        report.errors.append(f"{figures.name}: [{name}] maps no table of {benchmarks.name}")
    return report


def show_rows(benchmarks: Path, figures: Path) -> None:
    """Print each table's labels and headers as the figures file must name them."""
    mappings = tomllib.loads(figures.read_text(encoding="utf-8"))
    for table in read_tables(benchmarks, Report()):
        label_rows(table, mappings.get(table.id, {}).get("key", 1))
        print(f"[{table.id}] line {table.comment_line}: columns {[_plain(h) for h in table.header]}")
        for row in table.rows:
            print(f"  {row.line}: {row.label!r}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--benchmarks", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--figures", type=Path, default=ROOT / "benchmarks" / "figures.toml")
    parser.add_argument("--rows", action="store_true", help="print the tables' row labels and headers")
    args = parser.parse_args()
    if args.rows:
        show_rows(args.benchmarks, args.figures)
        return
    report = check(args.benchmarks, args.figures)
    if report.untraced:
        print(f"{len(report.untraced)} figures not traced to any JSON:")
        print("\n".join(f"  {line}" for line in report.untraced))
    if report.errors:
        print(f"{len(report.errors)} errors:")
        print("\n".join(report.errors))
    print(
        f"{report.checked} figures checked against their JSON, {report.not_measured} from papers or "
        f"wording, {len(report.untraced)} untraced, {len(report.errors)} errors"
    )
    sys.exit(1 if report.errors else 0)


if __name__ == "__main__":
    main()
