"""Reading a safetensors file one tensor (or one block of rows) at a time, with plain reads.

Why not ``safetensors.safe_open``: it memory-maps the file, and every page of the map that a read
touches counts in the process's resident memory until the file is closed, so hashing a 470 MB base
encoder through it costs 470 MB of RSS at the peak. Plain reads go through the page cache, which is
not the process's memory: reading the tensors a model keeps straight into their own storage, and
hashing the rest through one reused buffer, keeps the peak at what the model keeps.

The format (safetensors' documentation): an 8-byte little-endian header length, a JSON header mapping
each name to its ``dtype``, ``shape`` and ``data_offsets`` (relative to the end of the header), then
the data, row-major and little-endian. Only what this module checks is trusted: every tensor's bytes
must lie inside the file and match its dtype and shape; a name may be missing (the caller decides).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
#: bytes hashed at a time for a tensor that is not kept (one buffer, reused)
CHUNK = 8 << 20
MAX_HEADER = 100 << 20  # safetensors' own limit


@dataclass(frozen=True)
class Entry:
    """Where one tensor's bytes are (absolute offsets in the file) and what they hold."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def row_bytes(self) -> int:
        """Bytes of one row (one index of the first dimension)."""
        return math.prod(self.shape[1:]) * self.dtype.itemsize


def tensor_header(name: str, dtype: torch.dtype, shape: tuple[int, ...]) -> bytes:
    """What a state hash (:func:`ner.model.state_sha256`) reads before a tensor's bytes: its name,
    dtype and shape. One helper, so the in-memory and the streamed hash cannot drift apart."""
    return f"{name}\0{dtype}\0{tuple(shape)}\0".encode()


class TensorFile:
    """An open safetensors file: :attr:`entries` from its header, tensors read on demand."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if sys.byteorder != "little":  # the stored bytes are little-endian, read as they are
            raise ValueError(f"{self.path}: reading tensors byte for byte needs a little-endian machine")
        self._stream = self.path.open("rb", buffering=0)
        try:
            self.entries = self._read_header()
        except BaseException:
            self._stream.close()
            raise

    def __enter__(self) -> TensorFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()

    def _read_header(self) -> dict[str, Entry]:
        size = os.fstat(self._stream.fileno()).st_size
        raw = self._stream.read(8)
        (length,) = struct.unpack("<Q", raw) if len(raw) == 8 else (None,)
        if length is None or not 0 < length <= min(MAX_HEADER, size - 8):
            raise ValueError(f"{self.path}: not a safetensors file (header length {length}, {size} bytes)")
        try:
            header = json.loads(self._stream.read(length))
        except ValueError as error:
            raise ValueError(f"{self.path}: unreadable safetensors header: {error}") from error
        start = 8 + length
        entries = {}
        for name, spec in header.items():
            if name == "__metadata__":
                continue
            entries[name] = _entry(self.path, name, spec, start, size)
        return entries

    def read(self, name: str, rows: tuple[int, int] | None = None) -> Tensor:
        """The tensor ``name`` (or its rows ``[start, stop)``) in fresh memory of its own."""
        entry = self.entries[name]
        start, stop = rows if rows is not None else (0, entry.shape[0] if entry.shape else 1)
        shape = (stop - start, *entry.shape[1:]) if entry.shape else ()
        tensor = torch.empty(shape, dtype=entry.dtype)
        self._read_into(tensor, entry.begin + start * entry.row_bytes if entry.shape else entry.begin)
        return tensor

    def _read_into(self, tensor: Tensor, offset: int) -> None:
        view = memoryview(tensor.reshape(-1).view(torch.uint8).numpy())
        done = 0
        while done < len(view):
            count = os.preadv(self._stream.fileno(), [view[done:]], offset + done)
            if count <= 0:
                raise ValueError(f"{self.path}: ends before the tensor bytes its header records")
            done += count

    def hash_bytes(self, name: str, digest: hashlib._Hash) -> None:
        """Feed every byte of ``name`` to ``digest`` through one reused buffer (nothing kept)."""
        entry = self.entries[name]
        buffer = bytearray(min(CHUNK, max(entry.end - entry.begin, 1)))
        view = memoryview(buffer)
        offset = entry.begin
        while offset < entry.end:
            count = os.preadv(self._stream.fileno(), [view[: min(len(view), entry.end - offset)]], offset)
            if count <= 0:
                raise ValueError(f"{self.path}: ends before the tensor bytes its header records")
            digest.update(view[:count])
            offset += count


def _entry(path: Path, name: str, spec: dict, start: int, size: int) -> Entry:
    try:
        dtype = DTYPES[spec["dtype"]]
        shape = tuple(int(n) for n in spec["shape"])
        begin, end = (start + int(n) for n in spec["data_offsets"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: tensor {name!r} has an unreadable header entry: {spec!r}") from error
    if not start <= begin <= end <= size or end - begin != math.prod(shape) * dtype.itemsize:
        raise ValueError(
            f"{path}: tensor {name!r} ({spec['dtype']}, shape {list(shape)}) does not fit bytes "
            f"{begin}-{end} of a {size}-byte file"
        )
    return Entry(dtype, shape, begin, end)
