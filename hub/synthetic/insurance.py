"""Employee social-insurance contributions: one row per resident × employer × month.

Working-age residents (men under 60, women under 55) are employed with a probability that
depends on district and education; each has one employment spell in the reference year,
sometimes cut short, sometimes followed by a second employer. Employers are drawn in proportion
to their size, so a few large ones hold many employees.

Wages are log-normal around a person effect (education, age, industry) with a year-end bonus
for some, so the wage distribution is strongly skewed. The contribution base is the wage
clamped to 60 %–300 % of the provincial average wage; about a third of employers declare the
floor whatever the wage, which piles many rows on one value, as it does in real records. Rates
are close to Kunming's (pension 16 % + 8 %, medical 8.5 % + 2 %, unemployment 0.7 % + 0.3 %,
work injury by industry); amounts are in yuan, rounded to the fen.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from hub.synthetic import columns as col
from hub.synthetic.enterprises import KIND_COMPANY, Enterprises
from hub.synthetic.kunming import DISTRICTS
from hub.synthetic.people import People
from hub.synthetic.vocab import INDUSTRIES

AVERAGE_WAGE = 7_600  # yuan per month, provincial average used for the base limits
BASE_FLOOR = round(AVERAGE_WAGE * 0.6)
BASE_CEILING = AVERAGE_WAGE * 3
RATES = {  # share of the contribution base
    "pension_employee": 0.08, "pension_employer": 0.16,
    "medical_employee": 0.02, "medical_employer": 0.085,
    "unemployment_employee": 0.003, "unemployment_employer": 0.007,
}
PAYMENT_STATUSES = ("正常", "补缴", "欠缴")
MONTHS = 12
MAX_MONTHLY_WAGE = 400_000  # yuan, before the year-end bonus


def reference_months(as_of) -> np.ndarray:
    """The twelve months (first days, datetime64[D]) ending with the month of `as_of`."""
    last = np.datetime64(as_of, "M")
    return (last - np.arange(MONTHS - 1, -1, -1)).astype("datetime64[D]")


def build_social_insurance(rng: np.random.Generator, people: People, ent: Enterprises) -> pa.Table:
    person, employer, first, last = _spells(rng, people, ent)
    lengths = last - first + 1
    row_person = np.repeat(person, lengths)
    row_employer = np.repeat(employer, lengths)
    row_month = np.repeat(first, lengths) + (
        np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    spell_index = np.repeat(np.arange(len(person)), lengths)

    base_wage = _base_wages(rng, people, ent, person, employer)
    months = reference_months(people.as_of)
    december = (months.astype("datetime64[M]").astype(np.int64) % 12 == 11)[row_month]
    wage = base_wage[spell_index] * np.exp(rng.normal(0, 0.06, len(row_month)))
    bonus = (rng.random(len(person)) < 0.3)[spell_index] & december  # year-end bonus
    wage[bonus] *= 1 + np.minimum(np.exp(rng.normal(0.3, 0.6, bonus.sum())), 6)
    wage_cents = np.round(wage * 100).astype(np.int64)

    declares_floor = (rng.random(len(ent.kind)) < 0.33)[employer][spell_index]
    base = np.clip(base_wage[spell_index], BASE_FLOOR, BASE_CEILING)
    base = np.where(declares_floor, BASE_FLOOR, np.round(base))
    base_cents = (base * 100).astype(np.int64)

    status = np.zeros(len(row_month), dtype=np.int64)
    u = rng.random(len(row_month))
    status[u < 0.04] = 1
    status[u < 0.015] = 2
    injury_rate = np.array([i[4] for i in INDUSTRIES]) / 100

    columns: dict[str, pa.Array] = {
        "resident_id": people.resident_id.take(pa.array(row_person)),
        "credit_code": ent.credit_code.take(pa.array(row_employer)),
        "month": col.dates(months[row_month]),
        "wage": col.decimal(wage_cents, 12),
        "contribution_base": col.decimal(base_cents, 12),
    }
    for name, rate in RATES.items():
        columns[name] = col.decimal(np.round(base_cents * rate).astype(np.int64), 10)
    columns["injury_employer"] = col.decimal(
        np.round(base_cents * injury_rate[ent.industry[row_employer]]).astype(np.int64), 10
    )
    columns["payment_status"] = col.categorical(PAYMENT_STATUSES, status)
    return pa.table(columns)


def _spells(rng, people: People, ent: Enterprises):
    """(person, employer, first month, last month) of every employment spell, months 0..11."""
    age = people.age
    working_age = (age >= 18) & np.where(people.sex == 1, age < 60, age < 55)
    urban = np.array([d.urban for d in DISTRICTS])[people.district]
    edu_factor = np.array([0.3, 0.5, 0.75, 1.0, 1.0, 1.2, 1.25, 1.3, 1.3])[people.education]
    p = np.clip(np.where(urban, 0.62, 0.32) * edu_factor, 0, 0.92)
    employed = np.flatnonzero(working_age & (rng.random(people.n) < p))

    start = np.where(rng.random(len(employed)) < 0.8, 0, rng.integers(1, MONTHS, len(employed)))
    stops = rng.random(len(employed)) < 0.15
    end = np.where(stops, start + (rng.random(len(employed)) * (MONTHS - start)).astype(np.int64),
                   MONTHS - 1)
    moves = stops & (end < MONTHS - 2) & (rng.random(len(employed)) < 0.6)
    second_start = end[moves] + 1 + rng.integers(0, 2, moves.sum())

    person = np.concatenate([employed, employed[moves]])
    first = np.concatenate([start, second_start])
    last = np.concatenate([end, np.full(moves.sum(), MONTHS - 1)])
    employer = _employers(rng, ent, people.as_of, len(person))
    order = np.lexsort((first, person))
    return person[order], employer[order], first[order], last[order]


def _employers(rng, ent: Enterprises, as_of, k: int) -> np.ndarray:
    """Employers drawn in proportion to headcount among entities active all year."""
    year_start = reference_months(as_of)[0]
    eligible = np.flatnonzero(ent.active & (ent.founded < year_start))
    if not eligible.size:
        raise ValueError("no enterprise was active during the reference year; use a larger scale")
    weight = ent.employees[eligible] * np.where(ent.kind[eligible] == KIND_COMPANY, 1.0, 0.3)
    return eligible[rng.choice(len(eligible), size=k, p=weight / weight.sum())]


def _base_wages(rng, people: People, ent: Enterprises, person, employer) -> np.ndarray:
    """Monthly wage level of each spell (yuan): education, experience, industry, luck."""
    edu = people.education[person]
    age = people.age[person]
    industry_factor = np.array([i[3] for i in INDUSTRIES])[ent.industry[employer]]
    log_wage = (
        np.log(5_200)
        + 0.14 * (edu - 3)
        + 0.5 * np.log(industry_factor)
        - 0.0009 * (age - 45) ** 2
        + 0.3
        + rng.normal(0, 0.42, len(person))
    )
    wage = np.exp(log_wage)
    top = rng.random(len(person)) < 0.004  # executives
    wage[top] *= 3 + rng.pareto(1.5, top.sum()) * 5
    return np.clip(wage, 1_900, MAX_MONTHLY_WAGE)  # Kunming's minimum wage is about 1,900 yuan
