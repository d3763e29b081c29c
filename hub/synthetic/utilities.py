"""Household water and electricity use: one row per household and month of the reference year.

Use grows with household size and varies between households (log-normal); the season shapes
it: Kunming's dry spring raises water use, winter raises electricity use (heaters), summer
hardly does (no air conditioning in a mild climate). Some homes stand empty and use almost
nothing; a few (electric cars, small workshops) use far more. Bills follow tiered residential
prices close to Kunming's (water per m³ 3.45 / 4.83 / 10.35 yuan above 15 and 22 m³ a month;
electricity per kWh 0.45 / 0.50 / 0.75 yuan above 170 and 260 kWh a month).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from hub.synthetic import columns as col
from hub.synthetic.insurance import MONTHS, reference_months
from hub.synthetic.kunming import DISTRICTS
from hub.synthetic.people import People

# month of year (Jan..Dec) -> factor
WATER_SEASON = np.array([0.95, 0.97, 1.10, 1.14, 1.12, 1.02, 0.96, 0.95, 0.96, 0.98, 0.97, 0.96])
POWER_SEASON = np.array([1.38, 1.30, 1.08, 0.95, 0.92, 0.98, 1.02, 1.03, 0.95, 0.94, 1.05, 1.30])
WATER_TIERS = ((15, 345), (22, 483), (None, 1035))  # (up to m³, fen per m³)
POWER_TIERS = ((170, 45), (260, 50), (None, 75))  # (up to kWh, fen per kWh)


def build_water_use(rng: np.random.Generator, people: People) -> pa.Table:
    level = 4.0 + 3.0 * np.minimum(people.household_size, 6)
    return _monthly_use(rng, people, level, WATER_SEASON, 0.35, 0.12, "usage_m3", WATER_TIERS,
                        heavy_extra=25)


def build_electricity_use(rng: np.random.Generator, people: People) -> pa.Table:
    level = 60.0 + 45.0 * np.minimum(people.household_size, 6)
    return _monthly_use(rng, people, level, POWER_SEASON, 0.45, 0.10, "usage_kwh", POWER_TIERS,
                        heavy_extra=280)


def _monthly_use(rng, people, level, season, spread, noise, usage_name, tiers, heavy_extra):
    h = len(people.household_size)
    months = reference_months(people.as_of)
    month_of_year = months.astype("datetime64[M]").astype(np.int64) % 12
    household_factor = np.exp(rng.normal(-spread**2 / 2, spread, h))
    empty = rng.random(h) < 0.05
    heavy = ~empty & (rng.random(h) < 0.03)

    household = np.repeat(np.arange(h), MONTHS)
    month = np.tile(np.arange(MONTHS), h)
    expected = (level * household_factor)[household] * season[month_of_year[month]]
    expected = expected + np.where(heavy[household], heavy_extra, 0.0)
    expected = np.where(empty[household], 0.4, expected)
    usage = rng.poisson(expected * np.exp(rng.normal(0, noise, len(household))))
    return pa.table({
        "household_id": people.household_id.take(pa.array(household)),
        "district": col.categorical([d.name for d in DISTRICTS], people.household_district[household]),
        "month": col.dates(months[month]),
        usage_name: pa.array(usage.astype(np.int32)),
        "amount": col.decimal(tiered_fen(usage, tiers), 10),
    })


def tiered_fen(usage: np.ndarray, tiers) -> np.ndarray:
    """The bill in fen for each usage under increasing-block prices."""
    total = np.zeros(len(usage), dtype=np.int64)
    lower = 0
    for upper, price in tiers:
        top = usage if upper is None else np.minimum(usage, upper)
        total += np.maximum(top - lower, 0) * price
        if upper is None:
            break
        lower = upper
    return total
