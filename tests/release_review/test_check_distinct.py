"""Distinct values and row groups the checks rely on, against plain-Python counting."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pytest

from release_review.checks.distinct import (
    SAMPLE, dictionary_values, first_smallest, row_groups, sorted_distinct, text_values,
)


def random_table(seed: int, rows: int) -> pa.Table:
    rng = random.Random(seed)
    words = ["五华区", "盘龙区", "官渡区", None, "a", "b "]
    first = [rng.choice(words) for _ in range(rows)]
    half = rows // 2
    return pa.table({
        # dictionary chunks whose dictionaries differ (and hold entries no cell uses)
        "district": pa.chunked_array([
            pa.DictionaryArray.from_arrays(
                pa.array([None if w is None else ["x", "五华区", "盘龙区", "官渡区", "a", "b "].index(w)
                          for w in first[:half]], pa.int32()),
                pa.array(["x", "五华区", "盘龙区", "官渡区", "a", "b "])),
            pa.array(first[half:], pa.string()).dictionary_encode()]),
        "born": pa.array([None if rng.random() < 0.05 else date(1990, 1, 1) + timedelta(
            days=rng.randrange(40)) for _ in range(rows)], pa.date32()),
        "amount": pa.array([rng.choice([1.5, 2.0, None, float("nan"), -0.0, 3.25])
                            for _ in range(rows)], pa.float64()),
        "n": pa.array([rng.randrange(5) for _ in range(rows)], pa.int64()),
    })


def python_groups(table: pa.Table, columns: list[str]) -> list[tuple]:
    rows = table.select(columns).to_pylist()
    return [tuple(("nan" if isinstance(v, float) and math.isnan(v) else v) for v in r.values())
            for r in rows]


@pytest.mark.parametrize("columns", [["district"], ["district", "born"],
                                     ["amount", "n", "district", "born"], ["n"]])
def test_row_groups_are_the_distinct_combinations(columns):
    table = random_table(7, 3000)
    g = row_groups(table, columns)
    keys = python_groups(table, columns)
    # rows share a group exactly when they share the values (nulls equal to each other)
    by_group: dict[int, set] = {}
    for grp, key in zip(g.of_row.tolist(), keys):
        by_group.setdefault(grp, set()).add(key)
    assert all(len(v) == 1 for v in by_group.values())
    assert len(g) == len(set(keys)) == len(by_group)
    assert g.first.tolist() == sorted(keys.index(k) for k in set(keys))
    assert g.of_row[g.first].tolist() == list(range(len(g)))
    assert g.size.tolist() == [Counter(g.of_row.tolist())[i] for i in range(len(g))]


def test_row_groups_when_the_codes_outgrow_one_integer():
    rng = np.random.default_rng(3)
    cols = {f"c{i}": rng.integers(0, 60_000, 5000) for i in range(5)}  # 60,001^5 > 2^62
    for values in cols.values():
        values[100:200] = values[:100]  # rows 100..199 repeat rows 0..99
    table = pa.table(cols)
    g = row_groups(table, list(cols))
    assert len(g) == 4900
    assert (g.of_row[100:200] == g.of_row[:100]).all()


def test_first_smallest_is_a_stable_sort_cut_short():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        key = rng.integers(0, int(rng.integers(1, 8)), int(rng.integers(0, 40)))
        k = int(rng.integers(1, 12))
        assert first_smallest(key, k).tolist() == np.argsort(key, kind="stable")[:k].tolist()


def test_sorted_distinct():
    assert sorted_distinct(np.array([3, 1, 3, 2, 1])).tolist() == [1, 2, 3]
    assert sorted_distinct(np.array([1, 2, 5])).tolist() == [1, 2, 5]
    assert sorted_distinct(np.array([], np.int64)).tolist() == []


def test_dictionary_values_count_cells_over_chunks():
    table = random_table(11, 2000)
    values, weights = dictionary_values(table["district"])
    got = dict(zip(values.to_pylist(), weights.tolist()))
    expected = Counter(v for v in table["district"].to_pylist() if v is not None)
    assert got == dict(expected)  # unused dictionary entries ("x") and nulls left out


def test_dictionary_values_with_a_null_entry():
    arr = pa.DictionaryArray.from_arrays(pa.array([0, 1, 1, None, 2], pa.int32()),
                                         pa.array(["13812345678", None, "甲"]))
    values, weights = dictionary_values(arr)
    assert dict(zip(values.to_pylist(), weights.tolist())) == {"13812345678": 1, "甲": 1}


def test_text_values_deduplicate_only_repetitive_columns():
    repetitive = pa.array(["甲", "乙", None] * (SAMPLE // 2))
    values, weights = text_values(repetitive)
    assert dict(zip(values.to_pylist(), weights.tolist())) == {"甲": SAMPLE // 2,
                                                               "乙": SAMPLE // 2}
    varied = pa.array([f"v{i}" for i in range(SAMPLE + 10)])
    values, weights = text_values(varied)
    assert weights is None and len(values) == SAMPLE + 10
