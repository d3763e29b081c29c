"""``release_dp``: the one entry point the review workflow calls for a DP release.

Order of work (each step can refuse; a refusal leaves budgets and ledger as they were, except
for a best-effort ``budget.refused`` entry when the budget is what refused):

1. parse the spec (``SpecInvalid``);
2. the catalog's query-time check for the author, the dataset, the columns the spec names and
   the authorization (``NotAuthorized`` with the catalog's reason: not in scope, suspended,
   expired, dataset withdrawn…), then the spec against the catalog (``SpecInvalid``);
3. calibrate (cached) and check the budget without locking (``BudgetExhausted`` early);
4. compute on the raw data (``engine.py``);
5. charge: ledger ``budget.charged`` first, then the control database (``budget.py``); if the
   ledger cannot be written nothing is charged and the computed values are discarded;
6. return the :class:`DpRelease`: values with 95% intervals, the noise mechanisms and scales,
   ε/ρ/δ spent, the remaining budget and the ledger index of the charge.

``budget.charged`` details hold the normalized spec and its sha256, the sha256 of the released
result (``DpRelease.result_json()``), the privacy unit, each mechanism's distribution and scale,
the threshold, the key sources, and the budget before and after (self-contained for auditors).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Protocol, Sequence

from hub.catalog.events import format_at
from hub.catalog.exceptions import NotFound, QueryNotAuthorized
from hub.catalog.records import DatasetRecord, Grant
from release_review.dp import calibration as cal
from release_review.dp.budget import BudgetStore, Charge, Receipt, Spent, remaining_of
from release_review.dp.engine import ALPHA, Computation, DpEngine, plan
from release_review.dp.exceptions import BudgetExhausted, NotAuthorized, SpecInvalid
from release_review.dp.keysets import PublicKeySets
from release_review.dp.spec import (
    CheckedQuery,
    QuerySpec,
    check_columns_exist,
    check_spec,
    parse_spec,
)

Clock = Callable[[], datetime]


class Catalog(Protocol):
    """What the lane needs of the catalog (``hub.catalog.CatalogService`` provides it)."""

    def check_user_can_query(self, user: str, dataset: str, columns: Sequence[str] = (),
                             at: datetime | None = None,
                             authorization: str | None = None) -> Grant: ...

    def get_dataset(self, name: str) -> DatasetRecord: ...


@dataclass(frozen=True)
class DpRelease:
    """A released set of DP statistics and everything a reviewer or auditor needs about it."""

    release_id: str
    dataset: str
    authorization: str
    author: str
    at: datetime
    spec: dict[str, Any]
    spec_sha256: str
    group_by: tuple[str, ...]
    rows: list[dict[str, Any]]  # {"key": {...}, "values": {...}, "ci95": {...}}
    mechanisms: list[dict[str, Any]]  # {"aggregate", "distribution", "scale", "accuracy95"}
    keys: dict[str, Any]  # {"kind": "public"|"thresholded", "sources", "threshold"}
    privacy_unit: dict[str, Any]
    epsilon: float  # spent by this release (pure/approximate DP part)
    rho: float  # spent by this release (zCDP part)
    delta: float  # spent by this release (thresholding)
    charged_epsilon: float  # ε-equivalent added to the budget
    budget_total: float
    budget_spent: float  # ε-equivalent after this release
    remaining_epsilon: float
    ledger_index: int
    result_sha256: str

    def result_json(self) -> dict[str, Any]:
        """The released statistics alone (what ``result_sha256`` hashes)."""
        return {"release": self.release_id, "dataset": self.dataset,
                "group_by": list(self.group_by), "rows": self.rows}

    def to_json(self) -> dict[str, Any]:
        return {
            **self.result_json(),
            "authorization": self.authorization, "author": self.author,
            "at": format_at(self.at), "spec": self.spec, "spec_sha256": self.spec_sha256,
            "mechanisms": self.mechanisms, "keys": self.keys, "privacy_unit": self.privacy_unit,
            "spent": {"epsilon": self.epsilon, "rho": self.rho, "delta": self.delta},
            "charged_epsilon": self.charged_epsilon,
            "budget": {"total_epsilon": self.budget_total, "spent_epsilon": self.budget_spent,
                       "remaining_epsilon": self.remaining_epsilon},
            "ledger_index": self.ledger_index, "result_sha256": self.result_sha256,
            "confidence": 1 - ALPHA,
        }


def _sha256(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_release_id() -> str:
    return f"dp-{secrets.token_hex(8)}"


class DpLane:
    """The DP lane with its dependencies: catalog, budget store, engine and key sets."""

    def __init__(self, catalog: Catalog, budgets: BudgetStore, engine: DpEngine,
                 keysets: PublicKeySets | None = None, clock: Clock | None = None):
        self.catalog, self.budgets, self.engine = catalog, budgets, engine
        self.keysets = keysets or PublicKeySets()
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    # --- checks ----------------------------------------------------------------------------

    def check(self, spec: Any, *, author: str, authorization_id: str,
              at: datetime | None = None) -> CheckedQuery:
        """Steps 1–2: the spec parsed and checked for this author and authorization."""
        parsed = spec if isinstance(spec, QuerySpec) else parse_spec(spec)
        at = at or self.clock()
        try:
            dataset = self.catalog.get_dataset(parsed.dataset)
        except NotFound as e:
            raise NotAuthorized(f"DP release refused: {e.message}") from None
        check_columns_exist(parsed, dataset)
        try:
            grant = self.catalog.check_user_can_query(author, parsed.dataset, parsed.columns, at,
                                                      authorization_id)
        except QueryNotAuthorized as e:
            raise NotAuthorized(f"DP release refused: {e.message}") from None
        return check_spec(parsed, dataset, grant, self.keysets)

    def remaining(self, authorization_id: str, dataset: str, total: float) -> dict[str, Any]:
        spent = self.budgets.spent(authorization_id, dataset)
        return {"total_epsilon": total, "spent": spent.to_json(),
                "remaining_epsilon": remaining_of(total, spent)}

    # --- the release -----------------------------------------------------------------------

    def release(self, spec: Any, *, author: str, authorization_id: str,
                request_id: str | None = None) -> DpRelease:
        at = self.clock()
        query = self.check(spec, author=author, authorization_id=authorization_id, at=at)
        try:
            calibration = cal.calibrate(plan(query).shape)
        except ValueError as e:
            raise SpecInvalid(f"the budget cannot be calibrated: {e}") from None
        release_id = new_release_id()
        charge = self._charge(query, calibration, release_id, author, at, "")
        total = query.grant.epsilon
        try:
            self.budgets.check(charge, total)
        except BudgetExhausted as e:
            self.budgets.record_refusal(self._refusal_entry(query, author, at, e, request_id))
            raise
        computation = self.engine.compute(query)
        result = {"release": release_id, "dataset": query.dataset.name,
                  "group_by": list(query.group_by), "rows": computation.rows}
        charge = self._charge(query, calibration, release_id, author, at, _sha256(result))
        try:
            receipt = self.budgets.charge(
                charge, total, lambda before, after: self._charged_entry(
                    query, computation, charge, before, after, total, request_id))
        except BudgetExhausted as e:
            self.budgets.record_refusal(self._refusal_entry(query, author, at, e, request_id))
            raise
        return self._result(query, computation, charge, receipt)

    @staticmethod
    def _charge(query: CheckedQuery, c: cal.Calibration, release_id: str, author: str,
                at: datetime, result_sha: str) -> Charge:
        spec = query.spec
        return Charge(release_id, query.grant.authorization, query.dataset.name, author, at,
                      epsilon=spec.epsilon or 0.0, rho=spec.rho or 0.0, delta=c.delta,
                      spec_sha256=spec.sha256(), result_sha256=result_sha)

    # --- what is reported -------------------------------------------------------------------

    @staticmethod
    def mechanisms(computation: Computation) -> list[dict[str, Any]]:
        out = []
        units = {}
        for m in computation.plan.sum_columns + computation.plan.quantiles:
            units[computation.plan.by_measure[m.name]] = m.unit
        for i, noise in enumerate(computation.calibration.noises):
            unit = float(units.get(i, 1))
            acc = cal.accuracy(noise, ALPHA)
            out.append({
                "aggregate": noise.primitive.label, "distribution": noise.distribution,
                "scale": noise.scale * unit if noise.primitive.kind != cal.QUANTILE else noise.scale,
                "scale_units": noise.scale, "unit": unit,
                "sensitivity": noise.primitive.sensitivity,
                "accuracy95": None if acc is None else acc * unit,
            })
        return out

    @staticmethod
    def _keys(query: CheckedQuery, c: cal.Calibration) -> dict[str, Any]:
        if query.keys is None:
            return {"kind": "thresholded", "threshold": c.threshold,
                    "rule": "a group is released when its noisy count is at least the threshold"}
        return {"kind": "public", "sources": dict(zip(query.keys.columns, query.keys.sources)),
                "groups": len(query.keys.values)}

    @staticmethod
    def _unit(query: CheckedQuery) -> dict[str, Any]:
        return {"column": query.unit_column, "max_rows_per_person": query.contributions,
                "meaning": "adding or removing one person's (entity's) rows; at most "
                           f"{query.contributions} row(s) of each are used"}

    def _charged_entry(self, query: CheckedQuery, computation: Computation, charge: Charge,
                       before: Spent, after: Spent, total: float,
                       request_id: str | None) -> dict[str, Any]:
        return {
            "v": 1, "type": "budget.charged", "at": format_at(charge.at),
            "actor": charge.author, "role": "analyst",
            "authorization": charge.authorization, "dataset": charge.dataset,
            "release": charge.release_id,
            "details": {
                "request": request_id, "spec": query.spec.to_json(),
                "spec_sha256": charge.spec_sha256, "result_sha256": charge.result_sha256,
                "privacy_unit": self._unit(query), "mechanisms": self.mechanisms(computation),
                "keys": self._keys(query, computation.calibration),
                "spent": {"epsilon": charge.epsilon, "rho": charge.rho, "delta": charge.delta},
                "budget": {"total_epsilon": total, "before": before.to_json(),
                           "after": after.to_json(),
                           "remaining_epsilon": remaining_of(total, after)},
                "engine": "opendp==0.16.0 measurements (contrib), exact aggregates in DuckDB",
            },
        }

    @staticmethod
    def _refusal_entry(query: CheckedQuery, author: str, at: datetime, error: BudgetExhausted,
                       request_id: str | None) -> dict[str, Any]:
        return {
            "v": 1, "type": "budget.refused", "at": format_at(at), "actor": author,
            "role": "analyst", "authorization": query.grant.authorization,
            "dataset": query.dataset.name,
            "details": {"request": request_id, "spec_sha256": query.spec.sha256(),
                        "reason": error.message, "remaining_epsilon": error.remaining,
                        "requested_epsilon": error.requested, "total_epsilon": error.total},
        }

    def _result(self, query: CheckedQuery, computation: Computation, charge: Charge,
                receipt: Receipt) -> DpRelease:
        return DpRelease(
            release_id=charge.release_id, dataset=charge.dataset,
            authorization=charge.authorization, author=charge.author, at=charge.at,
            spec=query.spec.to_json(), spec_sha256=charge.spec_sha256,
            group_by=query.group_by, rows=computation.rows,
            mechanisms=self.mechanisms(computation),
            keys=self._keys(query, computation.calibration), privacy_unit=self._unit(query),
            epsilon=charge.epsilon, rho=charge.rho, delta=charge.delta,
            charged_epsilon=receipt.after.epsilon_equivalent - receipt.before.epsilon_equivalent,
            budget_total=receipt.total, budget_spent=receipt.after.epsilon_equivalent,
            remaining_epsilon=receipt.remaining, ledger_index=receipt.ledger_index,
            result_sha256=charge.result_sha256,
        )


def release_dp(spec: Any, *, author: str, authorization_id: str, lane: DpLane,
               request_id: str | None = None) -> DpRelease:
    """Release the statistics `spec` asks for (see module doc); `lane` holds the dependencies."""
    return lane.release(spec, author=author, authorization_id=authorization_id,
                        request_id=request_id)
