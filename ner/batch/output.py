"""Append-only JSONL that survives being killed: one whole line per record, resumable by key.

A record is appended with a single ``write`` on a file opened ``O_APPEND`` and flushed to the
operating system at once, so a run killed at any instant (``kill -9`` included) leaves at most
one incomplete last line. Reopening cuts that line off; the keys of the complete lines say which
documents are done, and a resumed run skips exactly those: no duplicates, no gaps.

One writer per file: the file is locked (``flock``, released by the kernel when the process dies,
``kill -9`` included) before it is read or repaired, and a second writer is refused with
:class:`OutputLocked`. Without the lock, a second run would cut off the first one's record in
flight as "incomplete", then both would append every document.

Records are valid UTF-8 whatever they hold: a lone surrogate in a string is written as its JSON
escape (``\\udc80``), which reads back as the same string.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

KEY_FIELDS = ("source", "line", "item", "sha256")


def record_key(record: dict[str, Any]) -> Hashable:
    """What identifies a document across runs: where it came from and its content hash."""
    return tuple(record.get(name) for name in KEY_FIELDS)


class OutputLocked(OSError):
    """Another process is writing to this output."""


def _lock(fd: int, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; one writer is the user's to ensure
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutputLocked(
            f"{path} is being written by another process (another ner extract on the same output?); "
            "wait for it to finish, or choose another --output"
        ) from None


def encode_line(record: dict[str, Any]) -> bytes:
    """One JSON line, valid UTF-8 (lone surrogates as ``\\uXXXX`` escapes, which JSON reads back)."""
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")


class JsonlLog:
    """An append-only JSONL file whose complete records are known on opening."""

    def __init__(self, path: str | Path, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keys: set[Hashable] = set()
        self.records = 0
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        _lock(self._fd, self.path)
        try:
            self._repair_and_index()
        except BaseException:
            self.close()
            raise

    def _repair_and_index(self) -> None:
        """Cut an incomplete last line (a write interrupted by a kill), then index the keys."""
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            logger.warning("%s: dropping an incomplete last record (%d bytes)", self.path, len(data) - end)
            with open(self.path, "r+b") as handle:
                handle.truncate(end)
        for number, line in enumerate(data[:end].splitlines(), start=1):
            try:
                self.keys.add(record_key(json.loads(line)))
            except (ValueError, RecursionError) as error:
                message = f"{self.path}:{number}: not a JSON record ({error}); is this our output file?"
                raise ValueError(message) from None
            self.records += 1

    def __contains__(self, key: Hashable) -> bool:
        return key in self.keys

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line, at once."""
        data = encode_line(record)
        written = os.write(self._fd, data)
        while written < len(data):  # regular files take whole writes; be correct anyway
            written += os.write(self._fd, data[written:])
        if self.fsync:
            os.fsync(self._fd)
        self.keys.add(record_key(record))
        self.records += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JsonlLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
