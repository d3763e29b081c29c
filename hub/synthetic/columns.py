"""Build Arrow columns straight from numpy arrays, without a Python loop per row.

Generators describe text as *parts*: a vocabulary indexed by integer codes, zero-padded
numbers, or fixed-width ASCII matrices. ``concat`` lays the parts' UTF-8 bytes side by side in
one Arrow string buffer. Low-cardinality text becomes a dictionary column (``categorical``),
money becomes a DECIMAL column from integer cents (``decimal``). All of it is deterministic:
the same inputs give the same Arrow buffers, hence the same Parquet bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Vocab:
    """Strings as a padded UTF-8 byte matrix, so they can be gathered by code in bulk."""

    words: tuple[str, ...]
    matrix: np.ndarray  # (len(words), max_bytes) uint8
    lengths: np.ndarray  # (len(words),) int64

    @classmethod
    def of(cls, words: Sequence[str]) -> Vocab:
        encoded = [w.encode("utf-8") for w in words]
        width = max((len(e) for e in encoded), default=0)
        matrix = np.zeros((len(encoded), max(width, 1)), dtype=np.uint8)
        for i, e in enumerate(encoded):
            matrix[i, : len(e)] = np.frombuffer(e, dtype=np.uint8)
        return cls(tuple(words), matrix, np.array([len(e) for e in encoded], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.words)


Part = tuple[Vocab, np.ndarray] | np.ndarray | str
"""One piece of a text column: (vocab, codes), an (n, w) uint8 ASCII matrix, or a constant."""


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as an (n, width) uint8 matrix."""
    v = np.array(values, dtype=np.int64)  # a copy: divided in place below
    if v.size and (v.min() < 0 or v.max() >= 10**width):
        raise ValueError(f"values do not fit in {width} digits")
    out = np.empty((v.size, width), dtype=np.uint8)
    for j in range(width - 1, -1, -1):
        out[:, j] = v % 10
        v //= 10
    out += ord("0")
    return out


def ascii_strings(matrix: np.ndarray) -> pa.Array:
    """An Arrow string column from an (n, w) uint8 matrix: every value is w ASCII characters."""
    m = np.ascontiguousarray(matrix, dtype=np.uint8)
    n, w = m.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(m)])


def concat(parts: Sequence[Part], n: int, valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow string column whose row i is the concatenation of every part's row i.

    ``valid`` (bool, length n) marks rows that are present; the others become NULL.
    """
    pieces = [_piece(p, n) for p in parts]
    lengths = np.zeros(n, dtype=np.int64)
    for _, piece_len in pieces:
        lengths += piece_len
    if valid is not None:
        lengths = np.where(valid, lengths, 0)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError("text column exceeds 2 GiB; generate a smaller scale")
    data = np.zeros(int(offsets[-1]), dtype=np.uint8)
    start = offsets[:-1].copy()
    for (matrix, codes), piece_len in pieces:
        piece_len = piece_len if valid is None else np.where(valid, piece_len, 0)
        for j in range(matrix.shape[1]):
            rows = np.flatnonzero(piece_len > j)
            if rows.size:
                source = matrix[codes[rows], j] if codes is not None else matrix[rows, j]
                data[start[rows] + j] = source
        start += piece_len
    validity = None
    if valid is not None and not valid.all():
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.string(), n, [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
    )


def _piece(part: Part, n: int) -> tuple[tuple[np.ndarray, np.ndarray | None], np.ndarray]:
    if isinstance(part, str):
        vocab = Vocab.of([part])
        return (vocab.matrix, np.zeros(n, dtype=np.int64)), np.full(n, vocab.lengths[0])
    if isinstance(part, tuple):
        vocab, codes = part
        codes = np.asarray(codes, dtype=np.int64)
        return (vocab.matrix, codes), vocab.lengths[codes]
    matrix = np.asarray(part, dtype=np.uint8)
    if matrix.shape[0] != n:
        raise ValueError(f"part has {matrix.shape[0]} rows, expected {n}")
    return (matrix, None), np.full(n, matrix.shape[1], dtype=np.int64)


def categorical(vocab: Sequence[str], codes: np.ndarray) -> pa.Array:
    """A dictionary-encoded string column (stored as plain text by readers such as DuckDB)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(codes, dtype=np.int32)), pa.array(list(vocab), type=pa.string())
    )


def decimal(cents: np.ndarray, precision: int, scale: int = 2) -> pa.Array:
    """A DECIMAL(precision, scale) column from integers in units of 10^-scale (no copy)."""
    v = np.ascontiguousarray(cents, dtype=np.int64)
    if precision > 18:
        raise ValueError("decimal columns here hold at most 18 digits")
    if v.size and max(-int(v.min()), int(v.max())) >= 10**precision:
        raise ValueError(f"values do not fit DECIMAL({precision},{scale})")
    return pa.Array.from_buffers(pa.decimal64(precision, scale), v.size, [None, pa.py_buffer(v)])


def dates(days: np.ndarray) -> pa.Array:
    """A DATE column from numpy datetime64[D] values."""
    return pa.array(np.asarray(days, dtype="datetime64[D]").astype(np.int32), type=pa.date32())


def timestamps(seconds: np.ndarray) -> pa.Array:
    """A TIMESTAMP (microseconds, no zone: local time) column from seconds since the epoch."""
    micros = np.asarray(seconds, dtype=np.int64) * 1_000_000
    return pa.array(micros, type=pa.timestamp("us"))
