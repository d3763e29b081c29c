"""release_dp end to end on the real domain: what a release contains, and that its intervals hold."""

from __future__ import annotations

import pytest

from release_review.dp import calibration as cal
from release_review.dp import release_dp
from release_review.dp.engine import plan, release_groups
from tests.release_review.dp_support import checked, open_lane


def test_a_release_with_public_keys_has_every_group_with_intervals(world, tmp_path) -> None:
    lane = open_lane(world, tmp_path)
    spec = {"dataset": "social_insurance", "group_by": ["payment_status"], "epsilon": 0.6,
            "max_rows_per_person": 12,
            "measures": [{"op": "count"}, {"op": "mean", "column": "wage", "bounds": [0, 30000]},
                         {"op": "quantile", "column": "wage", "bounds": [0, 30000]}]}
    try:
        r = release_dp(spec, author="alice", authorization_id=world.authorizations["row"],
                       lane=lane.lane, request_id="req-1")
        assert [row["key"]["payment_status"] for row in r.rows] == ["正常", "补缴", "欠缴"]
        for row in r.rows:
            assert set(row["values"]) == {"count", "mean_wage", "q0.5_wage"}
            lo, hi = row["ci95"]["count"]
            assert lo < row["values"]["count"] < hi
            assert 0 <= row["ci95"]["mean_wage"][0] <= row["ci95"]["mean_wage"][1] <= 30000
            assert 0 <= row["values"]["q0.5_wage"] <= 30000
            assert row["ci95"]["q0.5_wage"]["rank_error"] > 0
        assert r.keys == {"kind": "public", "sources": {"payment_status": "社会保险缴费状态"},
                          "groups": 3}
        assert r.privacy_unit["column"] == "resident_id"
        assert [m["distribution"] for m in r.mechanisms] == [
            "Integer Laplace", "Integer Laplace", "ExponentialMin"]
        assert r.mechanisms[1]["unit"] == 0.01  # wages summed exactly in cents
        assert r.epsilon == 0.6 and r.delta == 0.0 and r.remaining_epsilon == pytest.approx(0.4)
        entry = lane.entries()[r.ledger_index]
        assert entry["type"] == "budget.charged" and entry["details"]["request"] == "req-1"
        assert r.to_json()["budget"]["remaining_epsilon"] == pytest.approx(0.4)
    finally:
        lane.close()


def test_private_keys_are_thresholded_with_delta(world, tmp_path) -> None:
    lane = open_lane(world, tmp_path)
    spec = {"dataset": "water_use", "group_by": ["month"], "epsilon": 0.5, "delta": 1e-7,
            "max_rows_per_person": 12, "measures": [{"op": "count"}]}
    try:
        r = release_dp(spec, author="carol", authorization_id=world.authorizations["agg"],
                       lane=lane.lane)
        assert r.keys["kind"] == "thresholded" and r.keys["threshold"] > 12
        assert 0 < r.delta < 1e-7
        # every month has about a thousand households, far above the threshold
        assert len(r.rows) == 12
        assert all(row["values"]["count"] >= r.keys["threshold"] for row in r.rows)
    finally:
        lane.close()


def test_intervals_cover_the_exact_values_95_percent_of_the_time(world, tmp_path) -> None:
    """Resample the cached OpenDP measurements: coverage of the 95% intervals is about 95%."""
    query = checked(world, {"dataset": "residents", "group_by": ["district"], "epsilon": 0.2,
                            "measures": [{"op": "count"},
                                         {"op": "sum", "column": "birth_year",
                                          "bounds": [1920, 2025]}]})
    lane = open_lane(world, tmp_path)
    try:
        p = plan(query)
        c = cal.calibrate(p.shape)
        groups, _ = lane.engine.exact_groups(query, p)
        truth = {g.key[0]: g for g in groups}
        hits = total = 0
        for _ in range(60):
            for row in release_groups(query, p, c, groups):
                g = truth[row["key"]["district"]]
                for name, exact in (("count", g.count), ("sum_birth_year", g.sums[0])):
                    lo, hi = row["ci95"][name]
                    hits += lo <= exact <= hi
                    total += 1
        assert total == 60 * 14 * 2
        assert 0.93 <= hits / total <= 0.97  # 1680 draws: ±2% is > 4 standard errors
    finally:
        lane.close()


def test_contributions_are_bounded_per_person(world, tmp_path) -> None:
    """With k = 1 each resident keeps one of their monthly rows: the group counts add up to
    the number of distinct residents, not rows (and the engine says it truncated)."""
    from hub.domain import open_readonly

    query = checked(world, {"dataset": "social_insurance", "group_by": ["payment_status"],
                            "epsilon": 0.1, "max_rows_per_person": 1,
                            "filters": [{"column": "month", "op": "<=", "value": "2025-06-01"}],
                            "measures": [{"op": "count"}]})
    lane = open_lane(world, tmp_path)
    con = open_readonly(world.settings.domain_dir)
    try:
        assert lane.engine.max_rows_per_unit(query) > 1
        groups, truncated = lane.engine.exact_groups(query, plan(query))
        people, rows = con.execute(
            "SELECT count(DISTINCT resident_id), count(*) FROM social_insurance "
            "WHERE month <= DATE '2025-06-01'").fetchone()
        assert truncated and sum(g.count for g in groups) == people < rows
        wider = checked(world, {**query.spec.to_json(), "max_rows_per_person": 1000})
        groups, truncated = lane.engine.exact_groups(wider, plan(wider))
        assert not truncated and sum(g.count for g in groups) == rows  # identity: skipped
    finally:
        con.close()
        lane.close()
