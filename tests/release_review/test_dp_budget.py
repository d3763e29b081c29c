"""Budgets: persisted per (authorization, dataset), charged ledger-first, never overspent.

Every test runs on SQLite and on the real PostgreSQL server (``pg_url``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime, timezone

import pytest

from ledger.log import Log
from release_review.dp import BudgetExhausted, NotRecorded, release_dp
from release_review.dp.budget import BudgetStore, Charge, zcdp_to_epsilon
from tests.release_review.dp_support import SI_MONTHLY, open_lane


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def control_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'control.db'}"
    return request.getfixturevalue("pg_url")


def test_charges_add_up_and_refuse_with_the_remaining_budget(world, tmp_path, control_url) -> None:
    lane = open_lane(world, tmp_path, control_url)
    auth = world.authorizations["row"]
    try:
        first = release_dp(SI_MONTHLY, author="alice", authorization_id=auth, lane=lane.lane)
        second = release_dp(SI_MONTHLY, author="bob", authorization_id=auth, lane=lane.lane)
        assert first.remaining_epsilon == pytest.approx(0.5)
        assert second.remaining_epsilon == pytest.approx(0.0, abs=1e-12)
        with pytest.raises(BudgetExhausted, match="0 of 1 remains") as refused:
            release_dp({**SI_MONTHLY, "epsilon": 0.01}, author="alice", authorization_id=auth,
                       lane=lane.lane)
        assert refused.value.remaining == pytest.approx(0.0, abs=1e-12)
        assert refused.value.total == 1.0
        spent = lane.budgets.spent(auth, "social_insurance")
        assert spent.charges == 2 and spent.epsilon == pytest.approx(1.0)
        assert lane.budgets.spent(auth, "residents").charges == 0  # per dataset
        # the ledger holds both charges before their results, and the refusal
        entries = lane.entries()
        charged = [e for e in entries if e["type"] == "budget.charged"]
        assert [e["release"] for e in charged] == [first.release_id, second.release_id]
        assert [e["type"] for e in entries][-1] == "budget.refused"
        entry = charged[0]
        assert entry["authorization"] == auth and entry["dataset"] == "social_insurance"
        assert entry["details"]["spec"] == first.spec
        assert entry["details"]["result_sha256"] == first.result_sha256 == _sha(first.result_json())
        assert entry["details"]["budget"]["after"]["epsilon"] == pytest.approx(0.5)
        assert first.ledger_index == lane.log.store.head().size - 3
        rows = lane.budgets.charges(auth, "social_insurance")
        assert [r["ledger_index"] for r in rows] == [first.ledger_index, second.ledger_index]
    finally:
        lane.close()


def _sha(obj) -> str:
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_nothing_is_released_or_charged_when_the_ledger_cannot_record(
        world, tmp_path, control_url) -> None:
    lane = open_lane(world, tmp_path, control_url)
    auth = world.authorizations["row"]
    key = lane.config.key_path
    saved = key.read_bytes()
    lane.log.close()
    key.unlink()
    broken = Log.open(lane.config)  # a fresh process: no cached signing key
    lane.lane.budgets = lane.budgets = BudgetStore(control_url, broken)
    lane.log = broken
    try:
        size = broken.store.head().size
        with pytest.raises(NotRecorded, match="nothing was charged or released"):
            release_dp(SI_MONTHLY, author="alice", authorization_id=auth, lane=lane.lane)
        assert lane.budgets.spent(auth, "social_insurance").charges == 0
        assert lane.budgets.charges(auth) == []
        assert broken.store.head().size == size
    finally:
        key.write_bytes(saved)
        key.chmod(0o600)
        lane.close()


def test_concurrent_charges_cannot_overspend(world, tmp_path, control_url) -> None:
    lane = open_lane(world, tmp_path, control_url)
    auth = world.authorizations["agg"]
    at = datetime.now(timezone.utc)
    results: list[object] = []

    def charge(i: int) -> None:
        c = Charge(f"dp-race-{i}", auth, "water_use", "carol", at, 0.3, 0.0, 0.0, "s" * 64, "r" * 64)
        try:
            results.append(lane.budgets.charge(c, 1.0, lambda before, after: {
                "type": "budget.charged", "actor": "carol", "role": "analyst",
                "authorization": auth, "dataset": "water_use", "release": c.release_id,
                "details": {"before": before.to_json(), "after": after.to_json()}}))
        except BudgetExhausted as e:
            results.append(e)

    try:
        threads = [threading.Thread(target=charge, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done = [r for r in results if not isinstance(r, BudgetExhausted)]
        assert len(done) == 3 and len(results) == 8
        spent = lane.budgets.spent(auth, "water_use")
        assert spent.charges == 3 and spent.epsilon == pytest.approx(0.9)
        befores = sorted(r.before.epsilon for r in done)
        assert befores == pytest.approx([0.0, 0.3, 0.6])  # each saw the one before it
        charged = [e for e in lane.entries() if e["type"] == "budget.charged"]
        assert len(charged) == 3
    finally:
        lane.close()


def test_zcdp_spending_is_converted_to_epsilon_by_opendp(world, tmp_path, control_url) -> None:
    assert zcdp_to_epsilon(0.125) == pytest.approx(2.6489617896719335, rel=1e-9)
    lane = open_lane(world, tmp_path, control_url)
    auth = world.authorizations["row"]
    spec = {"dataset": "residents", "group_by": ["sex"], "measures": [{"op": "count"}],
            "rho": 0.005}
    try:
        r1 = release_dp(spec, author="alice", authorization_id=auth, lane=lane.lane)
        r2 = release_dp(spec, author="alice", authorization_id=auth, lane=lane.lane)
        assert r1.rho == 0.005 and r1.epsilon == 0.0
        assert r1.budget_spent == pytest.approx(zcdp_to_epsilon(0.005))
        assert r2.budget_spent == pytest.approx(zcdp_to_epsilon(0.01))  # ρ composes, then converts
        assert r2.charged_epsilon < r1.charged_epsilon
        spent = lane.budgets.spent(auth, "residents")
        assert spent.rho == pytest.approx(0.01) and spent.delta_total == pytest.approx(1e-7)
    finally:
        lane.close()
