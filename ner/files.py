"""Writing files atomically: a reader sees the old file or the new one, never half of each.

Annotators' projects, exports and ``ner extract --docbin`` outputs must survive a crash at any
moment, so they are replaced whole: written to a temporary file beside the target, flushed to
disk, then renamed over it (``os.replace`` is atomic on POSIX and Windows).

The new file gets the mode the old one had, or for a new file what ``open`` would give under the
umask (``mkstemp`` alone makes every file 0600, unreadable to the group a project is shared
with). Temporary files are named with the writer's process id: one left behind by a killed
writer is removed by the next write to the same path, once that process is gone.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import stat
import tempfile
import threading
from pathlib import Path


def read_json_object(path: Path) -> dict:
    """The JSON object in ``path``, or ``{}`` when it is missing, unreadable, not JSON or not an
    object: for records (metrics, model cards, job state) whose absence only means "not known"."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_atomic(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, all or nothing (the temporary file is removed on failure)."""
    path = Path(path)
    _remove_stale_temporaries(path)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp"
    )
    try:
        os.chmod(temporary, _mode_for(path))
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _mode_for(path: Path) -> int:
    """The mode ``path`` has, or the mode a new file gets under the current umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask (reading it means setting it; the lock keeps threads from seeing 0)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


def _remove_stale_temporaries(path: Path) -> None:
    """Delete ``.<name>.<pid>.*.tmp`` files beside ``path`` whose writer process no longer exists."""
    for temporary in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = temporary.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                temporary.unlink()


def _alive(pid: int) -> bool:
    if os.name == "nt":  # signal 0 is CTRL_C_EVENT there: never probe, keep the file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    return True


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not every platform can open a directory, which is harmless."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
