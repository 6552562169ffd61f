"""Rules the suite keeps about itself: no Hypothesis test runs under a wall-clock deadline."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def _name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def _without_deadline_none(path: Path) -> list[str]:
    """The ``@given`` tests of ``path`` whose ``@settings`` do not set ``deadline=None``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        names = [_name(d) for d in node.decorator_list]
        if "given" not in names:
            continue
        settings = [d for d in node.decorator_list if isinstance(d, ast.Call) and _name(d) == "settings"]
        keywords = {k.arg: k.value for s in settings for k in s.keywords}
        deadline = keywords.get("deadline")
        if not (isinstance(deadline, ast.Constant) and deadline.value is None):
            found.append(f"{path.name}:{node.lineno} {node.name}")
    return found


def test_every_hypothesis_test_sets_deadline_none():
    """Hypothesis's default 200 ms deadline fails tests on a loaded machine: a timing test by accident."""
    offenders = [name for path in sorted(TESTS.glob("test_*.py")) for name in _without_deadline_none(path)]
    assert offenders == []
