"""Market entities registered in Kunming: companies, individual businesses and co-operatives.

Each has a valid unified social credit code (GB 32100-2015): registration authority 9 (market
regulation), entity type 1 (enterprise), 2 (individual business) or 3 (farmers' co-operative),
the registering office's administrative code, an organisation code with its own GB 11714 check
character (eight digits for older entities, ``MA`` + six characters for those registered since
2015, as in real codes), and the MOD 31 check character.

Registered capital is log-normal with a Pareto tail, so a handful of entities dominate any sum
(the case the (n, k) dominance rule exists for); employees follow capital with their own noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hub.synthetic import columns as col
from hub.synthetic.identifiers import (
    CREDIT_CODE_ALPHABET,
    credit_code_check_bytes,
    org_code_check_bytes,
)
from hub.synthetic.kunming import CITY_CODE, DISTRICTS, district_weights
from hub.synthetic.people import People
from hub.synthetic.vocab import (
    COOP_PRODUCTS,
    INDUSTRIES,
    LEGAL_FORMS,
    SHOP_WORDS,
    TRADE_NAME_CHARS,
    normalized,
)

RESIDENTS_PER_ENTITY = 20
KIND_COMPANY, KIND_INDIVIDUAL, KIND_COOP = 0, 1, 2
KIND_P = (0.84, 0.13, 0.03)
LEGAL_FORM_NAMES = (*LEGAL_FORMS, "个体工商户", "农民专业合作社")
STATUSES = ("存续", "注销", "吊销")
MAX_CAPITAL = 5_000_000  # 万元 (500 亿元)

_ALPHABET = np.frombuffer(CREDIT_CODE_ALPHABET.encode(), np.uint8)
SHOP_VOCAB = col.Vocab.of([w for words in SHOP_WORDS.values() for w in words])
INDUSTRY_WORDS = col.Vocab.of([w for i in INDUSTRIES for w in i[5]])


@dataclass
class Enterprises:
    """What later datasets need to know about the entities."""

    credit_code: pa.Array
    kind: np.ndarray
    industry: np.ndarray
    employees: np.ndarray
    founded: np.ndarray  # datetime64[D]
    active: np.ndarray  # bool


def entity_count(n_residents: int) -> int:
    return max(20, n_residents // RESIDENTS_PER_ENTITY)  # some were active all year


def build_enterprises(rng: np.random.Generator, people: People) -> tuple[pa.Table, Enterprises]:
    m = entity_count(people.n)
    kind = rng.choice(3, size=m, p=KIND_P)
    industry = _industries(rng, kind)
    district_w = district_weights() * np.array([1.6 if d.urban else 1.0 for d in DISTRICTS])
    district = rng.choice(len(DISTRICTS), size=m, p=normalized(district_w))

    as_of = np.datetime64(people.as_of, "D")
    founded = _founding_dates(rng, m, people.as_of)
    age_years = (as_of - founded).astype(np.int64) / 365.25
    status = np.zeros(m, dtype=np.int64)
    closed = rng.random(m) < np.clip(0.02 + 0.012 * age_years, 0, 0.45)
    status[closed] = np.where(rng.random(closed.sum()) < 0.7, 1, 2)

    capital_cents = _capital_cents(rng, kind)
    employees = _employees(rng, kind, capital_cents)
    legal_form = np.where(kind == KIND_INDIVIDUAL, 4, np.where(kind == KIND_COOP, 5, rng.choice(
        len(LEGAL_FORMS), size=m, p=normalized(LEGAL_FORMS.values()))))
    codes = _credit_codes(rng, kind, district, founded)
    names = _names(rng, kind, district, industry, legal_form)
    adults = np.flatnonzero((people.age >= 25) & (people.age < 75))
    legal_rep = people.resident_id.take(pa.array(adults[rng.integers(0, len(adults), m)]))

    table = pa.table({
        "credit_code": codes,
        "name": names,
        "legal_form": col.categorical(LEGAL_FORM_NAMES, legal_form),
        "legal_representative_id": legal_rep,
        "industry_code": col.categorical([i[0] for i in INDUSTRIES], industry),
        "industry": col.categorical([i[1] for i in INDUSTRIES], industry),
        "district_code": col.categorical([d.code for d in DISTRICTS], district),
        "district": col.categorical([d.name for d in DISTRICTS], district),
        "founded_date": col.dates(founded),
        "founded_year": pa.array((founded.astype("datetime64[Y]").astype(np.int64) + 1970).astype(np.int16)),
        "registered_capital": col.decimal(capital_cents, 16),
        "employees": pa.array(employees.astype(np.int32)),
        "status": col.categorical(STATUSES, status),
    })
    return table, Enterprises(codes, kind, industry, employees, founded, status == 0)


def _industries(rng, kind) -> np.ndarray:
    m = len(kind)
    shares = normalized([i[2] for i in INDUSTRIES])
    industry = rng.choice(len(INDUSTRIES), size=m, p=shares)
    codes = [i[0] for i in INDUSTRIES]
    individual = np.flatnonzero(kind == KIND_INDIVIDUAL)
    shop = np.array([codes.index(c) for c in "FFHO"])  # retail twice as common
    industry[individual] = shop[rng.integers(0, len(shop), len(individual))]
    industry[kind == KIND_COOP] = codes.index("A")
    return industry


def _founding_dates(rng, m: int, as_of: date) -> np.ndarray:
    """More entities were registered each year than the year before (about +12 % a year)."""
    years = np.arange(1985, as_of.year + 1)
    year = rng.choice(years, size=m, p=normalized(np.exp(0.12 * (years - years[0]))))
    start = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    day = start + (rng.random(m) * 365).astype(np.int64)
    return np.minimum(day, np.datetime64(as_of, "D"))


def _capital_cents(rng, kind) -> np.ndarray:
    """Registered capital in 万元 × 100 (two decimals): log-normal body, Pareto tail."""
    m = len(kind)
    wan = np.exp(rng.normal(np.log(100), 1.5, m))  # companies: median 100 万元
    tail = (kind == KIND_COMPANY) & (rng.random(m) < 0.02)
    wan[tail] = 2000 * (1 + rng.pareto(1.1, tail.sum()))
    individual = kind == KIND_INDIVIDUAL
    wan[individual] = np.exp(rng.normal(np.log(5), 0.9, individual.sum()))
    coop = kind == KIND_COOP
    wan[coop] = np.exp(rng.normal(np.log(50), 1.0, coop.sum()))
    wan = np.clip(np.round(wan, 1), 0.1, MAX_CAPITAL)
    return np.round(wan * 100).astype(np.int64)


def _employees(rng, kind, capital_cents) -> np.ndarray:
    m = len(kind)
    log_cap = np.log(capital_cents / 100)
    emp = np.exp(0.5 + 0.38 * log_cap + rng.normal(0, 0.8, m))
    emp[kind == KIND_INDIVIDUAL] = rng.integers(1, 9, (kind == KIND_INDIVIDUAL).sum())
    emp[kind == KIND_COOP] = rng.integers(5, 61, (kind == KIND_COOP).sum())
    return np.clip(np.round(emp), 1, 60_000).astype(np.int64)


def _credit_codes(rng, kind, district, founded) -> pa.Array:
    m = len(kind)
    head = np.empty((m, 2), dtype=np.uint8)
    head[:, 0] = ord("9")
    head[:, 1] = kind.astype(np.uint8) + ord("1")
    office = np.array([d.code for d in DISTRICTS] + [CITY_CODE])
    office_idx = np.where(rng.random(m) < 0.3, len(DISTRICTS), district)
    office_bytes = np.frombuffer("".join(office).encode(), np.uint8).reshape(-1, 6)[office_idx]
    new_style = founded >= np.datetime64("2015-10-01")
    body = _org_code_bodies(rng, new_style)
    for _ in range(64):  # organisation codes are unique nationwide: redraw later duplicates
        keys = body.view("S8").ravel()
        first = np.zeros(m, dtype=bool)
        first[np.unique(keys, return_index=True)[1]] = True
        if first.all():
            break
        body[~first] = _org_code_bodies(rng, new_style[~first])
    else:
        raise RuntimeError("could not draw unique organisation codes")
    org = np.hstack([body, org_code_check_bytes(body)[:, None]])
    first17 = np.hstack([head, office_bytes, org])
    return col.ascii_strings(np.hstack([first17, credit_code_check_bytes(first17)[:, None]]))


def _org_code_bodies(rng, new_style: np.ndarray) -> np.ndarray:
    """8-character organisation-code bodies: digits, or ``MA`` + 6 characters since 2015."""
    body = col.digits(rng.integers(10_000_000, 100_000_000, len(new_style)), 8)
    body[new_style, 0] = ord("M")
    body[new_style, 1] = ord("A")
    body[new_style, 2:] = _ALPHABET[rng.integers(0, len(_ALPHABET), (int(new_style.sum()), 6))]
    return body


def _shop_words(rng, industry) -> np.ndarray:
    """A shop word fitting each row's industry (only used for individual businesses)."""
    codes = [i[0] for i in INDUSTRIES]
    shop = np.zeros(len(industry), dtype=np.int64)
    first = 0
    for section, words in SHOP_WORDS.items():
        rows = np.flatnonzero(industry == codes.index(section))
        shop[rows] = first + rng.integers(0, len(words), len(rows))
        first += len(words)
    return shop


def _names(rng, kind, district, industry, legal_form) -> pa.Array:
    """Names unique across the register: the trade name (字号) of any duplicate is redrawn."""
    m = len(kind)
    word_first = np.cumsum([0] + [len(i[5]) for i in INDUSTRIES])
    word = word_first[industry] + (rng.random(m) * np.diff(word_first)[industry]).astype(np.int64)
    parts = {
        "shop": _shop_words(rng, industry),
        "product": rng.integers(0, len(COOP_PRODUCTS), m),
        "region": rng.choice(3, size=m, p=(0.35, 0.45, 0.20)),  # 云南 / 昆明 / 昆明市<district>
        "c1": rng.integers(0, len(TRADE_NAME_CHARS), m),
        "c2": rng.integers(0, len(TRADE_NAME_CHARS), m),
        # a third character for some (0 = none), and for every name redrawn after a clash
        "c3": np.where(rng.random(m) < 0.7, 0, rng.integers(1, len(TRADE_NAME_CHARS) + 1, m)),
    }
    for _ in range(64):
        names = _compose_names(kind, district, word, legal_form, **parts)
        indices = pc.dictionary_encode(names).indices.to_numpy()
        first = np.zeros(len(indices), dtype=bool)
        first[np.unique(indices, return_index=True)[1]] = True
        dup = ~first
        if not dup.any():
            return names
        parts["c1"][dup] = rng.integers(0, len(TRADE_NAME_CHARS), dup.sum())
        parts["c2"][dup] = rng.integers(0, len(TRADE_NAME_CHARS), dup.sum())
        parts["c3"][dup] = rng.integers(1, len(TRADE_NAME_CHARS) + 1, dup.sum())
    raise RuntimeError("could not make enterprise names unique")


def _compose_names(kind, district, word, legal_form, shop, product, region, c1, c2, c3
                   ) -> pa.Array:
    m = len(kind)
    chars = col.Vocab.of(list(TRADE_NAME_CHARS))
    third = col.Vocab.of(["", *TRADE_NAME_CHARS])
    district_names = col.Vocab.of(["", *(d.name for d in DISTRICTS)])
    company = col.concat([
        (col.Vocab.of(["云南", "昆明", "昆明市"]), region),
        (district_names, np.where(region == 2, district + 1, 0)),
        (chars, c1), (chars, c2), (third, c3), (INDUSTRY_WORDS, word),
        (col.Vocab.of(["有限公司", "股份有限公司", "经营部", "合伙企业（有限合伙）"]), np.minimum(legal_form, 3)),
    ], m, valid=kind == KIND_COMPANY)
    individual = col.concat([
        (district_names, district + 1), (chars, c1), (chars, c2), (third, c3), (SHOP_VOCAB, shop),
    ], m, valid=kind == KIND_INDIVIDUAL)
    coop = col.concat([
        (district_names, district + 1), (chars, c1), (chars, c2), (third, c3),
        (col.Vocab.of(COOP_PRODUCTS), product), "种植专业合作社",
    ], m, valid=kind == KIND_COOP)
    return pc.coalesce(company, individual, coop)
