"""The DP query spec: structure (parse_spec) and the checks against the catalog and the grant."""

from __future__ import annotations

import copy

import pytest

from release_review.dp.exceptions import NotAuthorized, SpecInvalid
from release_review.dp.spec import parse_spec
from tests.release_review.dp_support import SI_MONTHLY, checked, open_lane


def variant(**changes):
    spec = copy.deepcopy(SI_MONTHLY)
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


STRUCTURE = [
    (variant(epsilon=0), "epsilon must be greater than 0"),
    (variant(epsilon=-1.0), "epsilon must be greater than 0"),
    (variant(epsilon=True), "epsilon must be a number"),
    (variant(rho=0.1), "exactly one privacy budget"),
    (variant(epsilon=None), "exactly one privacy budget"),
    (variant(delta=0.01), "delta must be greater than 0 and at most 1e-05"),
    (variant(measures=[]), "at least one measure"),
    (variant(measures=[{"op": "sum", "column": "wage"}]), "needs bounds"),
    (variant(measures=[{"op": "median", "column": "wage"}]), "is not one of count, sum"),
    (variant(measures=[{"op": "count", "column": "wage"}]), "does not take column"),
    (variant(measures=[{"op": "count"}, {"op": "count"}]), "used twice: count"),
    (variant(measures=[{"op": "quantile", "column": "wage", "bounds": [0, 1], "alpha": 1.5}]),
     "alpha must be a number strictly between 0 and 1"),
    (variant(filters=[{"column": "month", "op": "like", "value": "x"}]), "is not one of ="),
    (variant(filters=[{"column": "month", "op": "between", "value": "2025-01-01"}]),
     "must be a list \\[low, high\\]"),
    (variant(filters=[{"column": "month", "op": "in", "value": []}]), "at least one value"),
    (variant(group_by=["month", "month"]), "names a column twice"),
    (variant(keys={"district": ["五华区"]}), "not in group_by"),
    (variant(max_rows_per_person=0), "max_rows_per_person must be an integer from 1"),
    (variant(sql="SELECT 1"), "unknown field\\(s\\) in the spec: sql"),
    ("{not json", "not valid JSON"),
    ([1, 2], "must be a JSON object"),
]


@pytest.mark.parametrize("raw, message", STRUCTURE)
def test_structural_errors_say_what_is_wrong(raw, message) -> None:
    with pytest.raises(SpecInvalid, match=message):
        parse_spec(raw)


CATALOG = [
    (variant(measures=[{"op": "sum", "column": "salary", "bounds": [0, 1]}]),
     "has no column 'salary'"),
    (variant(group_by=["wage"]), "cannot be a group-by key"),
    (variant(group_by=["resident_id"]), "direct identifier"),
    (variant(filters=[{"column": "credit_code", "op": "=", "value": "x"}]), "direct identifier"),
    (variant(measures=[{"op": "sum", "column": "payment_status", "bounds": [0, 1]}]),
     "is not numeric"),
    (variant(filters=[{"column": "month", "op": "=", "value": 202501}]),
     "must be a date as 'YYYY-MM-DD'"),
    (variant(filters=[{"column": "wage", "op": ">", "value": "high"}]), "must be a number"),
    (variant(measures=[{"op": "sum", "column": "wage", "bounds": [5, 1]}]),
     "lower bound 5 must be below the upper bound 1"),
    (variant(measures=[{"op": "quantile", "column": "wage", "bounds": [0, 10],
                        "candidates": [5, 2]}]), "strictly increasing"),
    (variant(group_by=["month"]), "have no public key set.*give 'delta'"),
]


@pytest.mark.parametrize("raw, message", CATALOG)
def test_catalog_errors_say_what_is_wrong(world, raw, message) -> None:
    with pytest.raises(SpecInvalid, match=message):
        checked(world, raw)


def test_columns_outside_the_scope_are_refused(world) -> None:
    # the "row" agreement gives residents without name, mobile or address
    spec = {"dataset": "residents", "group_by": ["district"], "epsilon": 0.1,
            "measures": [{"op": "count"}],
            "filters": [{"column": "relation_to_head", "op": "=", "value": "户主"}]}
    with pytest.raises(NotAuthorized, match="relation_to_head are outside the scope"):
        checked(world, spec)


def test_unauthorized_authors_are_refused_with_the_catalogs_reason(world, tmp_path) -> None:
    lane = open_lane(world, tmp_path)
    try:
        with pytest.raises(NotAuthorized, match="does not give erin access"):
            lane.lane.check(SI_MONTHLY, author="erin", authorization_id=world.authorizations["row"])
        with pytest.raises(NotAuthorized, match="does not give carol access"):
            lane.lane.check(SI_MONTHLY, author="carol", authorization_id=world.authorizations["row"])
        with pytest.raises(NotAuthorized, match="starts at"):
            lane.lane.check({**SI_MONTHLY, "dataset": "enterprises", "group_by": ["status"],
                             "measures": [{"op": "count"}]},
                            author="dave", authorization_id=world.authorizations["late"])
        with pytest.raises(NotAuthorized, match="outside the scope"):
            lane.lane.check({"dataset": "residents", "measures": [{"op": "count"}],
                             "group_by": ["relation_to_head"], "epsilon": 1.0, "delta": 1e-7},
                            author="alice", authorization_id=world.authorizations["row"])
        assert lane.entries()[1:] == []  # refusals before any budget step write nothing
    finally:
        lane.close()


def test_public_keys_come_from_code_lists_or_the_spec(world) -> None:
    q = checked(world, {"dataset": "residents", "group_by": ["district", "sex"],
                        "measures": [{"op": "count"}], "rho": 0.01})
    assert q.keys is not None and len(q.keys.values) == 14 * 2
    assert q.keys.sources == ("GB/T 2260 (昆明市)", "GB/T 2261.1")
    assert q.unit_column == "resident_id" and q.contributions == 1
    months = [f"2025-{m:02d}-01" for m in range(1, 13)]
    q = checked(world, variant(group_by=["month"], keys={"month": months}))
    assert q.keys is not None and q.keys.sources == ("spec",) and len(q.keys.values) == 12
    q = checked(world, variant(group_by=["month"], delta=1e-7))
    assert q.keys is None  # private keys: DP thresholding


def test_the_normalized_spec_fills_defaults_and_hashes_stably() -> None:
    a = parse_spec({"dataset": "residents", "measures": [{"op": "count"}], "epsilon": 1})
    b = parse_spec('{"epsilon": 1, "measures": [{"op": "count", "name": "count"}], '
                   '"dataset": "residents", "max_rows_per_person": 1}')
    assert a.to_json() == b.to_json()
    assert a.sha256() == b.sha256()
    assert a.to_json()["measures"] == [{"name": "count", "op": "count"}]
