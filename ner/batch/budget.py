"""A time budget for reading one file, so that a hostile file costs seconds, not minutes.

A small PDF can make a reader spend minutes (100 pages sharing one 70 MB stream of whitespace:
each page decodes the stream again), and so can pathological HTML. The batch run must go on, so
each file gets a wall-clock budget; a file over it is skipped with a reason.

On the main thread of a POSIX process the budget is enforced by ``SIGALRM``: the reader is
interrupted wherever it is, in Python code (a C call such as ``zlib.decompress`` finishes first).
Elsewhere (Streamlit runs pages in threads; Windows has no ``SIGALRM``) signals cannot be used,
and the budget is checked cooperatively with :func:`check`, which readers call between units of
work (PDF pages).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

DEFAULT_READ_SECONDS = 20.0
_local = threading.local()  # per thread: the stack of budgets' ends, on the monotonic clock


def _deadlines() -> list[float]:
    if not hasattr(_local, "ends"):
        _local.ends = []
    return _local.ends


class OverBudget(Exception):
    """Reading took longer than its budget."""


def check() -> None:
    """Raise :class:`OverBudget` if the current budget is spent (the cooperative path)."""
    ends = _deadlines()
    if ends and time.monotonic() > ends[-1]:
        raise OverBudget


@contextlib.contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Run the block within ``seconds`` (None or 0: no budget); raises :class:`OverBudget`."""
    if not seconds or seconds <= 0:
        yield
        return
    _deadlines().append(time.monotonic() + seconds)
    use_alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    previous = None
    if use_alarm and signal.getitimer(signal.ITIMER_REAL)[0] == 0:  # never override someone's timer
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        _deadlines().pop()


def _on_alarm(signum, frame) -> None:
    raise OverBudget
