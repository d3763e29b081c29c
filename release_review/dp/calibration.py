"""Calibrate once: noise scales and thresholds from OpenDP's own privacy maps, cached per shape.

OpenDP's default Context path recalibrates every query: ``summarize()`` and ``release()`` each
binary-search a *global scale* ``g`` over the whole polars plan (about 60 plan constructions,
2–4 s). This module computes the same numbers from the same definitions in milliseconds, and
caches the resulting OpenDP measurements per *shape* (the primitives and their sensitivities,
the budget and δ), so a release only samples.

The privacy argument, step by step:

1. *Bounded contributions.* The engine keeps at most ``k`` rows per privacy unit (after the
   filters), so adding or removing one unit changes at most ``k`` rows: at most ``l0`` groups,
   at most ``li = k`` rows per group and ``l1 = k`` rows in all (OpenDP's ``L01Inf`` distance
   of ``dp.unit_of(contributions=k)``; ``l0 = min(k, #groups)`` with public keys, ``k``
   otherwise).
2. *Sensitivities* (``Primitive.sensitivity``), the same as OpenDP's stability maps:
   a vector of group counts moves by at most ``k`` in L1 and in L2 (``min(l1, l0·li)`` and
   ``sqrt(min(l1·li, l0·li²))``); a vector of group sums of integers clamped to ``[L, U]`` by
   ``k·max(|L|, |U|)`` (integer sums have no floating-point relaxation, see ``columns.py``); a
   quantile's candidate scores per group by ``k·max(α_num, α_den − α_num)`` in L∞, in ``l0``
   groups.
3. *Mechanisms*: each primitive's exact aggregates go through an OpenDP measurement built with
   ``scale = sensitivity · g`` — ``make_laplace`` (pure DP) or ``make_gaussian`` (zCDP) over
   integer vectors, ``make_noisy_max`` for quantile scores, ``make_laplace_threshold`` /
   ``make_gaussian_threshold`` for the counts when the keys are private. The loss of each is
   that measurement's own privacy map at the sensitivity (times ``l0`` for quantiles); the
   losses add up (basic composition, rounded up as OpenDP's ``inf_add`` does).
4. *Calibration*: ``g`` is the smallest float whose total loss passes the budget (``≤``; ``<``
   for approximate budgets, as OpenDP's Context does), found from the closed form (loss ∝ 1/g,
   or 1/g² under zCDP) and walked to the exact boundary one float at a time. The threshold is
   the smallest integer whose δ (OpenDP's map) is below the spec's δ. Context's binary search
   stops at the same boundary, so the scales are equal (tests compare them).

The released values are therefore exactly what the cited OpenDP measurements produce on the
bounded data; their privacy maps are OpenDP's proofs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import opendp.prelude as dp
from opendp.accuracy import discrete_gaussian_scale_to_accuracy, discrete_laplacian_scale_to_accuracy

from release_review.dp.columns import MAX_ROWS

dp.enable_features("contrib")  # never "honest-but-curious" nor "idealized-numerics"

LEN, SUM, QUANTILE = "len", "sum", "quantile"
NO_THRESHOLD = 2**32 - 1
MAX_ULP_STEPS = 4096


@dataclass(frozen=True)
class Primitive:
    """One noisy aggregate: ``len`` (rows per group), ``sum`` or ``quantile`` of a column."""

    kind: str
    sensitivity: int  # in integer units (see module doc, step 2)
    groups_touched: int = 1  # l0: groups one unit can change (quantiles compose over them)
    label: str = ""


@dataclass(frozen=True)
class Shape:
    """Everything calibration depends on; equal shapes share one cached calibration."""

    primitives: tuple[Primitive, ...]
    zcdp: bool  # rho budget (Gaussian) instead of epsilon (Laplace)
    budget: float  # epsilon or rho
    delta: float | None  # approximate budget; required when keys are private
    contributions: int  # k
    private_keys: bool  # DP thresholding of keys on the len primitive


@dataclass(frozen=True)
class Noise:
    """How one primitive is noised: the OpenDP measurement and its parameters."""

    primitive: Primitive
    distribution: str  # as OpenDP's summarize names it
    scale: float  # in integer units
    measurement: Any  # an opendp Measurement, built once


@dataclass(frozen=True)
class Calibration:
    shape: Shape
    global_scale: float
    noises: tuple[Noise, ...]
    threshold: int | None  # keep a group when its noisy count is at least this
    threshold_measurement: Any  # make_*_threshold over {key: count}, or None
    loss: float  # epsilon or rho spent (OpenDP's maps, composed)
    delta: float  # delta spent (0 with public keys)


def _add_up(a: float, b: float) -> float:
    """a + b rounded towards +inf (OpenDP's ``inf_add``)."""
    s = a + b
    if Fraction(s) < Fraction(a) + Fraction(b):
        s = math.nextafter(s, math.inf)
    return s


def _mul_up(n: int, x: float) -> float:
    """n · x rounded towards +inf (OpenDP's ``inf_mul``)."""
    p = n * x
    if Fraction(p) < n * Fraction(x):
        p = math.nextafter(p, math.inf)
    return p


def _vector_noise(zcdp: bool, scale: float) -> Any:
    space = dp.vector_domain(dp.atom_domain(T=dp.i64))
    if zcdp:
        return dp.m.make_gaussian(space, dp.l2_distance(T=dp.i64), scale)
    return dp.m.make_laplace(space, dp.l1_distance(T=dp.i64), scale)


def _noisy_max(zcdp: bool, scale: float) -> Any:
    measure = dp.zero_concentrated_divergence() if zcdp else dp.max_divergence()
    return dp.m.make_noisy_max(dp.vector_domain(dp.atom_domain(T=dp.u64)),
                               dp.linf_distance(T=dp.u64), measure, scale, negate=True)


def _threshold_noise(zcdp: bool, scale: float, threshold: int) -> Any:
    counts = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=dp.i64))
    if zcdp:
        metric = dp.l02inf_distance(dp.absolute_distance(T=dp.i64))
        return dp.m.make_gaussian_threshold(counts, metric, scale, threshold)
    metric = dp.l01inf_distance(dp.absolute_distance(T=dp.i64))
    return dp.m.make_laplace_threshold(counts, metric, scale, threshold)


def _measurement(p: Primitive, zcdp: bool, scale: float) -> Any:
    return _noisy_max(zcdp, scale) if p.kind == QUANTILE else _vector_noise(zcdp, scale)


def _loss(p: Primitive, zcdp: bool, scale: float) -> float:
    if scale == 0.0:
        return math.inf
    loss = _measurement(p, zcdp, scale).map(p.sensitivity)
    return _mul_up(p.groups_touched, loss) if p.kind == QUANTILE else loss


def total_loss(shape: Shape, g: float) -> float:
    total = 0.0
    for p in shape.primitives:
        total = _add_up(total, _loss(p, shape.zcdp, p.sensitivity * g))
    return total


def _passes(shape: Shape, g: float) -> bool:
    loss = total_loss(shape, g)
    return loss < shape.budget if shape.delta is not None else loss <= shape.budget


def _global_scale(shape: Shape) -> float:
    at_one = total_loss(shape, 1.0)
    g = at_one / shape.budget if not shape.zcdp else math.sqrt(at_one / shape.budget)
    for _ in range(MAX_ULP_STEPS):
        if _passes(shape, g):
            break
        g = math.nextafter(g, math.inf)
    else:  # pragma: no cover - the closed form is within a few ulps
        raise RuntimeError("noise calibration did not converge")
    for _ in range(MAX_ULP_STEPS):
        lower = math.nextafter(g, 0.0)
        if not _passes(shape, lower):
            return g
        g = lower
    return g  # pragma: no cover


def _delta(shape: Shape, scale: float, threshold: int) -> float:
    k = shape.contributions
    return _threshold_noise(shape.zcdp, scale, threshold).map((k, k, k))[1]


def _threshold(shape: Shape, scale: float) -> int:
    """The smallest threshold whose δ is below the spec's δ (OpenDP's own map)."""
    assert shape.delta is not None
    lower = shape.contributions + 1  # OpenDP: the threshold must exceed li
    if _delta(shape, scale, NO_THRESHOLD) >= shape.delta:
        raise ValueError(f"delta {shape.delta:g} is too small for any threshold at this budget")
    lo, hi = lower, NO_THRESHOLD  # invariant: hi passes; bisect to the smallest passing value
    if _delta(shape, scale, lo) < shape.delta:
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _delta(shape, scale, mid) < shape.delta:
            hi = mid
        else:
            lo = mid
    return hi


@lru_cache(maxsize=512)
def calibrate(shape: Shape) -> Calibration:
    """Scales, threshold and OpenDP measurements for `shape` (computed once, then cached)."""
    if not shape.primitives:
        raise ValueError("nothing to calibrate")
    if any(p.sensitivity <= 0 for p in shape.primitives):
        raise ValueError("every primitive needs a positive sensitivity")
    g = _global_scale(shape)
    noises = []
    for p in shape.primitives:
        scale = p.sensitivity * g
        noises.append(Noise(p, distribution(p, shape.zcdp), scale,
                            _measurement(p, shape.zcdp, scale)))
    threshold = threshold_m = None
    delta = 0.0
    if shape.private_keys:
        len_noise = next(n for n in noises if n.primitive.kind == LEN)
        threshold = _threshold(shape, len_noise.scale)
        threshold_m = _threshold_noise(shape.zcdp, len_noise.scale, threshold)
        delta = threshold_m.map((shape.contributions,) * 3)[1]
    return Calibration(shape, g, tuple(noises), threshold, threshold_m, total_loss(shape, g), delta)


def distribution(p: Primitive, zcdp: bool) -> str:
    if p.kind == QUANTILE:
        return "GumbelMin" if zcdp else "ExponentialMin"
    return "Integer Gaussian" if zcdp else "Integer Laplace"


def quantile_constants(alpha: float) -> tuple[int, int, int]:
    """(α_num, α_den, size_limit) exactly as OpenDP's ``score_candidates_constants`` with the
    public row bound ``MAX_ROWS``: the exact fraction of α if its denominator is small enough,
    else α rounded onto the finest grid that cannot overflow a u64 score."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be within [0, 1]")
    exact = Fraction(alpha)
    den_approx = (2**64 - 1) // MAX_ROWS
    if exact.denominator < den_approx:
        num, den = exact.numerator, exact.denominator
    else:
        product = alpha * float(den_approx)
        num, den = int(math.floor(product + 0.5)), den_approx  # round half away from zero
    return num, den, MAX_ROWS


def quantile_sensitivity(alpha: float, contributions: int) -> int:
    num, den, _ = quantile_constants(alpha)
    return contributions * max(num, den - num)


def accuracy(noise: Noise, alpha: float = 0.05) -> float | None:
    """Half-width of the (1 − alpha) interval of one noisy value, in integer units."""
    if noise.primitive.kind == QUANTILE:
        return None
    if noise.distribution == "Integer Gaussian":
        return discrete_gaussian_scale_to_accuracy(noise.scale, alpha)
    return discrete_laplacian_scale_to_accuracy(noise.scale, alpha)


def selection_error(noise: Noise, candidates: int, alpha: float = 0.05) -> float:
    """With probability ≥ 1 − alpha the selected candidate's score is within this of the best.

    Noisy max with exponential or Gumbel noise of scale s picks a candidate scoring t worse
    than the best with probability at most e^(−t/s) each, so t = s·ln(candidates/alpha).
    """
    return noise.scale * math.log(max(candidates, 1) / alpha)
