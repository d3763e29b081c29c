"""Calibrate once: the lane's noise equals OpenDP's default Context path for the same query.

Each case runs the query through ``dp.Context`` (``reference.run_context``) on the same bounded
data and compares: every noise scale (equal to 1e-9 relative: both are the smallest float whose
OpenDP privacy map passes the budget), the distributions, the threshold of private key sets,
and the released values, which must agree with each other and with the exact aggregates within
OpenDP's own accuracy at 1 − 1e-9.
"""

from __future__ import annotations

import math

import pytest

from release_review.dp import calibration as cal
from release_review.dp.engine import plan
from release_review.dp.reference import run_context
from tests.release_review.dp_support import checked, open_lane

CASES = {
    "pure, public keys, count + sum": {
        "dataset": "social_insurance", "group_by": ["payment_status"], "epsilon": 1.0,
        "max_rows_per_person": 12,
        "measures": [{"op": "count"}, {"op": "sum", "column": "wage", "bounds": [0, 50000]}]},
    "zCDP, two public key sets, filter": {
        "dataset": "residents", "group_by": ["district", "sex"], "rho": 0.05,
        "filters": [{"column": "birth_year", "op": ">=", "value": 1980}],
        "measures": [{"op": "count"}]},
    "approximate DP, private keys (threshold)": {
        "dataset": "social_insurance", "group_by": ["month"], "epsilon": 1.0, "delta": 1e-7,
        "max_rows_per_person": 2,
        "measures": [{"op": "count"}, {"op": "mean", "column": "wage", "bounds": [0, 50000]}]},
    "approximate zCDP, private keys, quantile": {
        "dataset": "water_use", "group_by": ["month"], "rho": 0.05, "delta": 1e-8,
        "max_rows_per_person": 3,
        "measures": [{"op": "count"}, {"op": "sum", "column": "usage_m3", "bounds": [0, 60]},
                     {"op": "quantile", "column": "usage_m3", "bounds": [0, 60], "alpha": 0.9}]},
}


@pytest.mark.parametrize("name", list(CASES))
def test_scales_and_thresholds_equal_the_context_path(world, tmp_path, name) -> None:
    spec = CASES[name]
    auth, user = ("agg", "carol") if spec["dataset"] == "water_use" else ("row", "alice")
    query = checked(world, spec, user, auth)
    lane = open_lane(world, tmp_path)
    try:
        p = plan(query)
        ours = cal.calibrate(p.shape)
        ref = run_context(lane.engine, query)
        assert len(ref.scales) == len(ours.noises)
        for noise, scale, dist in zip(ours.noises, ref.scales, ref.distributions):
            assert noise.distribution == dist
            assert math.isclose(noise.scale, scale, rel_tol=1e-9), (noise.primitive, scale)
        assert ours.threshold == ref.threshold
        assert cal.calibrate(p.shape) is ours  # cached: calibrated once per shape
        if spec.get("delta") is None:
            assert ours.loss <= spec.get("epsilon", spec.get("rho"))
        _consistent(lane, query, ours, ref)
    finally:
        lane.close()


def _consistent(lane, query, ours, ref) -> None:
    """Both releases lie within OpenDP's 1 − 1e-9 accuracy of the exact aggregates."""
    p = plan(query)
    groups, _ = lane.engine.exact_groups(query, p)
    exact = {tuple(str(v) for v in g.key): g for g in groups}
    width = {i: cal.accuracy(n, 1e-9) for i, n in enumerate(ours.noises)}
    computation = lane.engine.compute(query)
    for row in computation.rows:
        key = tuple(str(v) for v in row["key"].values())
        g = exact.get(key)
        count = g.count if g else 0
        assert abs(row["values"]["count"] - count) <= width[p.len_index]
        if key in ref.rows and p.len_index is not None:
            assert abs(ref.rows[key]["len"] - count) <= width[p.len_index]
    for key, values in ref.rows.items():
        g = exact.get(tuple(str(v) for v in key))
        for i, m in enumerate(p.sum_columns):
            truth = g.sums[i] if g else 0
            assert abs(values[f"sum{i}"] - truth) <= width[p.by_measure[m.name]]
