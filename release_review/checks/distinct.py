"""Distinct values of a table column and distinct combinations of several, without Python per
cell.

The checks look at values, not cells: a column of 1M cells with 12 district names needs 12
look-ups, not 1M. Parquet columns written from categoricals arrive dictionary-encoded, and their
distinct values are in the dictionaries; other columns are deduplicated by hashing when a sample
says it pays off.

Terms: *weights* are how many cells each distinct value stands for (nulls are no value). The
*row groups* of a table over some columns are its rows grouped by their values on those columns
(nulls equal to each other), each group numbered: a join with the raw data then runs once per
group, not once per row, and a group's size is the row's equivalence class in the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SAMPLE = 20_000  # cells sampled to decide whether deduplicating a column pays off


def is_text(typ: pa.DataType) -> bool:
    return (pa.types.is_string(typ) or pa.types.is_large_string(typ)
            or pa.types.is_string_view(typ))


def dictionary_values(col: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(distinct non-null values, weights) of a dictionary-encoded column: the dictionary
    entries that some cell uses, merged over chunks (whose dictionaries may differ)."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    values, weights = [], []
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        idx = np.asarray(chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)
        counts = np.bincount(idx[idx >= 0], minlength=len(chunk.dictionary))
        used = np.flatnonzero(counts)
        values.append(chunk.dictionary.take(pa.array(used)))
        weights.append(counts[used])
    value_type = col.type.value_type
    if not values:
        return pa.array([], value_type), np.zeros(0, np.int64)
    merged = pa.concat_arrays(values)
    counts = np.concatenate(weights)
    if len(values) == 1 and merged.null_count == 0:
        return merged, counts  # one dictionary: its entries are distinct already
    encoded = merged.dictionary_encode()
    codes = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)
    keep = codes >= 0
    total = np.bincount(codes[keep], weights=counts[keep], minlength=len(encoded.dictionary))
    return encoded.dictionary, total.astype(np.int64)


def text_values(col: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray | None]:
    """The values of a text column to scan and their weights (None: one cell each, the column
    itself, nulls included). Distinct values only when there are few (a sample decides)."""
    if pa.types.is_dictionary(col.type):
        return dictionary_values(col)
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if len(arr) <= SAMPLE or len(arr.slice(0, SAMPLE).unique()) > SAMPLE // 4:
        return arr, None
    encoded = arr.dictionary_encode()
    indices = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False))
    weights = np.bincount(indices[indices >= 0], minlength=len(encoded.dictionary))
    return encoded.dictionary, weights


def unique_text(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The distinct non-null values of a text column (dictionary or not), as strings."""
    if pa.types.is_dictionary(col.type):
        values = dictionary_values(col)[0]
    else:
        values = pc.unique(col)
    return values.cast(pa.string()).drop_null()


def sorted_distinct(ints: np.ndarray) -> np.ndarray:
    """The sorted distinct values of an int array (np.unique hashes, which is far slower for
    the arrays here: mostly sorted already, one entry per cell)."""
    if len(ints) < 2 or bool((ints[1:] > ints[:-1]).all()):
        return ints
    s = np.sort(ints)
    return s[np.concatenate(([True], s[1:] != s[:-1]))]


# --- combinations of columns -------------------------------------------------------------------


@dataclass(frozen=True)
class RowGroups:
    of_row: np.ndarray  # the group number of each row (int64)
    first: np.ndarray  # the first row of each group, by group number
    size: np.ndarray  # how many rows each group has

    def __len__(self) -> int:
        return len(self.first)


def row_groups(table: pa.Table, columns: list[str]) -> RowGroups:
    """The rows of `table` grouped by their values on `columns`.

    Each column's values become integer codes (dictionary indices, or a hash encoding), the
    codes of a row one integer in mixed radix, and the groups the distinct integers (a hash
    encoding again), numbered in order of first appearance."""
    key, card = np.zeros(table.num_rows, np.int64), 1
    for name in columns:
        codes, k = _codes(table[name])
        if card * k >= 2**62:  # renumber what we have densely first; card <= rows then
            key = _dense(key)[0]
            card = int(key.max()) + 1 if len(key) else 1
        key = key * k + codes
        card *= k
    of_row, first = _dense(key)
    return RowGroups(of_row, first, np.bincount(of_row, minlength=len(first)))


def _codes(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, int]:
    """Codes 0..k-1 of a column's values (equal values, equal codes; nulls the last code)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_dictionary(arr.type):
        try:
            arr = pc.dictionary_encode(arr)
        except pa.ArrowNotImplementedError:
            arr = pc.dictionary_encode(arr.cast(pa.string()))
    k = len(arr.dictionary)
    codes = np.asarray(arr.indices.fill_null(k).to_numpy(zero_copy_only=False), np.int64)
    return codes, k + 1


def _dense(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group of each entry, first entry of each group) for the distinct values of `key`.

    Arrow's hash encoding numbers values in order of first appearance, so a group's first entry
    is where its number first exceeds every number before it (no sort)."""
    codes = np.asarray(pc.dictionary_encode(pa.array(key, pa.int64())).indices
                       .to_numpy(zero_copy_only=False), np.int64)
    if not len(codes):
        return codes, codes
    new = np.empty(len(codes), bool)
    new[0] = True
    np.greater(codes[1:], np.maximum.accumulate(codes)[:-1], out=new[1:])
    return codes, np.flatnonzero(new)


def first_smallest(key: np.ndarray, k: int) -> np.ndarray:
    """The positions of the `k` smallest entries of `key`, smallest first, ties in position
    order: ``np.argsort(key, kind="stable")[:k]`` in at most `k` passes instead of a sort."""
    chosen: list[np.ndarray] = []
    taken, below = 0, None
    while taken < k and len(key):
        if below is None:
            least = key.min()
        else:
            above = key > below
            if not above.any():
                break
            least = np.min(key, where=above, initial=key.max())
        found = np.flatnonzero(key == least)[:k - taken]
        chosen.append(found)
        taken += len(found)
        below = least
    return np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
