"""All automatic checks, run in a fixed order, failing closed.

``ALL_CHECKS`` lists ``(check id, run function)`` in the order results are shown. ``run_all``
runs each check against one shared read-only connection to the domain store and returns the
results in a stable order: by check, then by the order of ``ctx.artifacts``, whole-request
results first. It never lets a problem pass silently:

- a check that raises becomes one FAIL result with the error (masked) and no other results;
- a check that returns nothing, or something other than results of its own id, becomes FAIL;
- evidence that is not JSON-serializable becomes FAIL for that result;
- if the domain store cannot be opened, every check that needs it fails with that error.

Supporting files (``Artifact.released`` False) are reviewed but never released: a FAIL on one
becomes REVIEW (the reviewer must still see it), except for the type gate, whose refusals also
protect the reviewer's browser.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import replace

import numpy as np

from release_review.checks import (
    catalog_identifiers, differencing, dominance, identifiers, min_cell_count, overlap,
    reidentification, type_gate,
)
from release_review.checks.base import Check, CheckContext, CheckResult, Verdict
from release_review.checks.detectors import scan_texts
from release_review.checks.masking import mask_identifier
from release_review.checks.trusted import close_shared, open_shared

ALL_CHECKS: tuple[tuple[str, Check], ...] = (
    (type_gate.CHECK, type_gate.run),
    (identifiers.CHECK, identifiers.run),
    (catalog_identifiers.CHECK, catalog_identifiers.run),
    (overlap.CHECK, overlap.run),
    (reidentification.CHECK, reidentification.run),
    (min_cell_count.CHECK, min_cell_count.run),
    (dominance.CHECK, dominance.run),
    (differencing.CHECK, differencing.run),
)
ALWAYS_BINDING = {type_gate.CHECK}


def run_all(ctx: CheckContext, checks: tuple[tuple[str, Check], ...] = ALL_CHECKS
            ) -> list[CheckResult]:
    order = {a.name: i for i, a in enumerate(ctx.artifacts)}
    supporting = {a.name for a in ctx.artifacts if not a.released}
    out: list[CheckResult] = []
    try:
        open_shared(ctx)
    except Exception:  # noqa: BLE001 - each check that needs it opens it again and fails
        pass
    try:
        for check_id, run in checks:
            results = _run_one(ctx, check_id, run)
            results = [_for_supporting(r) if r.artifact in supporting and
                       check_id not in ALWAYS_BINDING else r for r in results]
            out += sorted(results, key=lambda r: -1 if r.artifact is None
                          else order.get(r.artifact, len(order)))
    finally:
        close_shared(ctx)
    return out


def _run_one(ctx: CheckContext, check_id: str, run: Check) -> list[CheckResult]:
    try:
        results = run(ctx)
    except Exception as e:  # noqa: BLE001 - a crashing check must fail, not vanish
        return [_crashed(check_id, e)]
    if not isinstance(results, list) or not results:
        return [CheckResult(check_id, Verdict.FAIL,
                            "The check returned no verdict; treated as a failure.")]
    checked = []
    for r in results:
        if not isinstance(r, CheckResult) or r.check != check_id or not isinstance(
                r.verdict, Verdict):
            return [CheckResult(check_id, Verdict.FAIL,
                                f"The check returned a malformed result ({type(r).__name__}); "
                                "treated as a failure.")]
        try:
            json.dumps(r.evidence, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as e:
            r = replace(r, verdict=Verdict.FAIL, evidence={"error": f"evidence not JSON: {e}"},
                        reason=r.reason + " (Its evidence could not be stored; treated as a "
                                          "failure.)")
        checked.append(r)
    return checked


def _crashed(check_id: str, e: Exception) -> CheckResult:
    message = _masked(f"{type(e).__name__}: {e}")
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    return CheckResult(
        check_id, Verdict.FAIL,
        f"The check could not complete ({message[:300]}); the request cannot pass it.",
        None, {"error": message[:2000],
               "at": f"{where.filename}:{where.lineno}" if where else None},
        "Report this to the platform team; the request can be re-checked once it is fixed.")


def _masked(text: str) -> str:
    """An error message with any identifier in it masked (errors can quote data)."""
    hits = scan_texts([text], np.zeros(1, np.int64))
    for i in range(len(hits)):
        token = hits.tokens.get(i)
        if token:
            text = text.replace(token, mask_identifier(token))
    return text


def _for_supporting(r: CheckResult) -> CheckResult:
    if r.verdict is not Verdict.FAIL:
        return r
    return replace(r, verdict=Verdict.REVIEW,
                   reason=r.reason + " (Supporting file: reviewed, never released.)")
