"""The differential-privacy lane of release review: JSON query specs in, DP statistics out.

Modules, in the order a release goes through them:

- ``spec``: the JSON query spec, its privacy unit and its strict validation;
- ``keysets``: public key sets (published code lists) for group-by columns;
- ``columns``: column kinds, typed filter values and the integer units sums are computed in;
- ``calibration``: noise scales and thresholds from OpenDP's privacy maps, calibrated once per
  shape and cached (module doc: the privacy argument);
- ``engine``: exact aggregates in DuckDB over the raw data, noise from OpenDP's measurements;
- ``budget``: budgets per (authorization, dataset) in the control database, charged ledger-first;
- ``release``: ``release_dp(spec, author=…, authorization_id=…, lane=…) -> DpRelease``;
- ``reference``: the same query through OpenDP's default Context path (tests and benchmark).

OpenDP is used with the ``contrib`` feature only, in the trusted review service; analysts never
send code. ``contrib`` means OpenDP's proofs "have not completed the vetting process": a residual
risk to be documented, accepted in the design (shared/reference/privacy-and-disclosure.md §1).
"""

from release_review.dp.exceptions import (
    BudgetExhausted,
    ComputationFailed,
    DpError,
    NotAuthorized,
    NotRecorded,
    SpecInvalid,
)
from release_review.dp.release import DpLane, DpRelease, release_dp

__all__ = [
    "BudgetExhausted", "ComputationFailed", "DpError", "DpLane", "DpRelease", "NotAuthorized",
    "NotRecorded", "SpecInvalid", "release_dp",
]
