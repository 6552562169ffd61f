"""Where a saved pipeline came from: the command, the code's commit and the machine.

Saved with a pipeline's meta (``ner train``, ``ner compact``), so that a shipped pipeline says
which command made its bytes, and a reader can rerun it. Only the standard library is used: this
is a utility below every other layer.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]


def provenance(argv: list[str] | None = None) -> dict:
    """The command line (``argv``, else this process's), the git commit of the code and whether
    tracked files had uncommitted changes (``None`` outside a git checkout), and the machine."""
    argv = sys.argv if argv is None else argv
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "command": " ".join([Path(argv[0]).name if argv else "python", *argv[1:]]),
        "git_commit": commit,
        "uncommitted_changes": None if commit is None else bool(status),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "python": platform.python_version(),
    }


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MB so far (``None`` where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)  # bytes on macOS


def _git(*arguments: str) -> str | None:
    """``git ARGUMENTS`` in the checkout this module lives in; ``None`` when that is not possible
    (an installed wheel, no git)."""
    try:
        done = subprocess.run(
            ["git", *arguments], cwd=_ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
