"""Households and residents of Kunming: the population every other dataset refers to.

Households come first (size, district, township, community, address); residents are the
households' members with family structure: a head, usually a spouse of the other sex, children
who carry the father's surname, sometimes the head's parents. Members share address and mostly
ethnicity, so rare groups appear in small clusters as they do in real registers.

Each resident gets a valid 18-digit identity number: the address code of their district (the
pre-2011/2016 county code for older residents of 呈贡/晋宁, another prefecture's code for some
who moved here), birth date, a sequence number with the sex parity, and the MOD 11-2 check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hub.synthetic import columns as col
from hub.synthetic.identifiers import resident_id_check_bytes
from hub.synthetic.kunming import (
    COMMUNITY_WORDS,
    DISTRICTS,
    OTHER_ID_REGIONS,
    ROADS,
    VILLAGE_WORDS,
    district_weights,
    townships,
)
from hub.synthetic.vocab import (
    EDUCATION,
    EDUCATION_ADULT,
    ETHNIC_GROUPS,
    ETHNIC_PROFILES,
    GIVEN_MODERN,
    GIVEN_TRADITIONAL,
    MARITAL,
    MARITAL_BY_AGE,
    MOBILE_PREFIXES,
    SURNAME_BOOST,
    SURNAMES,
    normalized,
    zipf,
)

HOUSEHOLD_SIZE_P = normalized([25, 29, 22, 13, 6.5, 3, 1.5])  # sizes 1..7
HEAD_AGE_BANDS = np.arange(20, 100, 5)  # 20-24, …, 95-99
HEAD_AGE_W = normalized([4, 8, 11, 11, 10, 11, 11, 10, 8, 7, 5, 3, 2, 1, 0.4, 0.1])
MOVED_IN_SHARE = 0.07  # adults whose identity number was issued outside Kunming

ETHNIC_NAMES = tuple(ETHNIC_GROUPS)
SURNAME_NAMES = tuple(SURNAMES)
SURNAME_VOCAB = col.Vocab.of(SURNAME_NAMES)
_GIVEN_CHARS = sorted({c for pools in (GIVEN_TRADITIONAL, GIVEN_MODERN) for s in pools.values() for c in s})
GIVEN_VOCAB = col.Vocab.of(["", *_GIVEN_CHARS])
NUMBERS = col.Vocab.of([str(i) for i in range(1000)])

ROLE_HEAD, ROLE_SPOUSE, ROLE_CHILD, ROLE_PARENT = 0, 1, 2, 3


@dataclass
class People:
    """What later datasets need to know about households and residents."""

    as_of: date
    household_id: pa.Array
    household_district: np.ndarray
    household_size: np.ndarray
    resident_id: pa.Array
    household: np.ndarray  # household index of each resident
    district: np.ndarray
    sex: np.ndarray  # 1 male, 0 female
    age: np.ndarray  # years, fractional
    education: np.ndarray  # index into EDUCATION

    @property
    def n(self) -> int:
        return len(self.age)


# --- households --------------------------------------------------------------------------


def household_sizes(rng: np.random.Generator, n_residents: int) -> np.ndarray:
    """Sizes whose sum is exactly n_residents."""
    draw = rng.choice(7, size=n_residents // 2 + 16, p=HOUSEHOLD_SIZE_P) + 1
    total = np.cumsum(draw)
    k = int(np.searchsorted(total, n_residents)) + 1
    sizes = draw[:k].copy()
    sizes[-1] -= int(total[k - 1]) - n_residents
    return sizes


def build_households(rng: np.random.Generator, sizes: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """The households table and each household's district index."""
    h = len(sizes)
    names, _, first = townships()
    district = rng.choice(len(DISTRICTS), size=h, p=district_weights())
    # townships of a district differ in size
    t_weight = rng.gamma(2.0, 1.0, size=len(names))
    u = rng.random(h)
    township = np.empty(h, dtype=np.int64)
    for d in range(len(DISTRICTS)):
        rows = np.flatnonzero(district == d)
        w = t_weight[first[d] : first[d + 1]]
        cdf = np.cumsum(w / w.sum())
        township[rows] = first[d] + np.minimum(np.searchsorted(cdf, u[rows]), len(w) - 1)
    # 3-12 communities (社区 / 村委会) per township, names unique within it
    n_comm = rng.integers(3, 13, size=len(names))
    comm_word = np.stack([rng.permutation(len(COMMUNITY_WORDS))[:12] for _ in names])
    community_k = (rng.random(h) * n_comm[township]).astype(np.int64)
    community_word = comm_word[township, community_k]
    is_street = np.array([t.endswith("街道") for t in names])[township]
    community_suffix = np.where(is_street, 0, 1)

    town_vocab = col.Vocab.of(names)
    district_vocab = col.Vocab.of([d.name for d in DISTRICTS])
    words = col.Vocab.of(COMMUNITY_WORDS)
    suffixes = col.Vocab.of(["社区", "村委会"])
    community = col.concat([(words, community_word), (suffixes, community_suffix)], h)

    road = rng.integers(0, len(ROADS), size=h)
    number = rng.integers(1, 400, size=h)
    building = rng.integers(1, 30, size=h)
    unit = rng.integers(1, 7, size=h)
    floor_ = rng.integers(1, 26, size=h)
    room = rng.integers(1, 5, size=h)
    village = rng.integers(0, len(VILLAGE_WORDS), size=h)
    group = rng.integers(1, 16, size=h)
    prefix = "云南省昆明市"
    urban_parts = [
        prefix, (district_vocab, district), (town_vocab, township), (col.Vocab.of(ROADS), road),
        (NUMBERS, number), "号", (NUMBERS, building), "栋", (NUMBERS, unit), "单元",
        (NUMBERS, floor_), col.digits(room, 2), "室",
    ]
    rural_parts = [
        prefix, (district_vocab, district), (town_vocab, township), (col.Vocab.of(VILLAGE_WORDS), village),
        "村", (NUMBERS, group), "组", (NUMBERS, number), "号",
    ]
    address = _choose_text(is_street, urban_parts, rural_parts, h)

    household_id = _household_ids(rng, district)
    table = pa.table({
        "household_id": household_id,
        "district_code": col.categorical([d.code for d in DISTRICTS], district),
        "district": col.categorical([d.name for d in DISTRICTS], district),
        "township": col.categorical(names, township),
        "community": community,
        "address": address,
        "household_size": pa.array(sizes.astype(np.int16)),
    })
    return table, district


def _choose_text(first: np.ndarray, parts_a: list, parts_b: list, n: int) -> pa.Array:
    """Row i from parts_a where first[i], else from parts_b (both built only where used)."""
    a = col.concat(parts_a, n, valid=first)
    b = col.concat(parts_b, n, valid=~first)
    return pc.coalesce(a, b)


def _household_ids(rng: np.random.Generator, district: np.ndarray) -> pa.Array:
    """District code + 8 digits, unique: an affine bijection of the row number mod 10^8."""
    h = len(district)
    mult = int(rng.integers(1, 10**7)) * 10 + 3  # ends in 3: coprime with 10^8
    add = int(rng.integers(0, 10**8))
    serial = (np.arange(h, dtype=np.int64) * mult + add) % 10**8
    codes = np.frombuffer("".join(d.code for d in DISTRICTS).encode(), np.uint8).reshape(-1, 6)
    return col.ascii_strings(np.hstack([codes[district], col.digits(serial, 8)]))


# --- residents ----------------------------------------------------------------------------


def build_residents(
    rng: np.random.Generator,
    as_of: date,
    sizes: np.ndarray,
    household_id: pa.Array,
    household_district: np.ndarray,
    household_address: pa.Array,
) -> tuple[pa.Table, People]:
    n = int(sizes.sum())
    household = np.repeat(np.arange(len(sizes)), sizes)
    rank = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    role = _roles(rng, rank)
    head_row = np.repeat(np.cumsum(sizes) - sizes, sizes)

    age, sex = _ages_and_sexes(rng, role, head_row)
    district = household_district[household]
    urban = np.array([d.urban for d in DISTRICTS])[district]

    ethnicity = _ethnicities(rng, role, head_row, district)
    surname = _surnames(rng, role, head_row, sex, ethnicity)
    birth = np.datetime64(as_of, "D") - (age * 365.2425).astype(np.int64)
    birth_year = birth.astype("datetime64[Y]").astype(np.int64) + 1970

    education = _education(rng, age, urban)
    marital = _marital(rng, age, role, sizes[household])
    given1, given2 = _given_names(rng, sex, birth_year)
    _distinct_names_in_households(rng, household, surname, given1, given2)
    name = col.concat([(SURNAME_VOCAB, surname), (GIVEN_VOCAB, given1), (GIVEN_VOCAB, given2)], n)
    ids = _resident_ids(rng, district, birth, sex, age)
    mobile = _mobiles(rng, age)

    table = pa.table({
        "resident_id": ids,
        "name": name,
        "sex": col.categorical(["女", "男"], sex),
        "birth_date": col.dates(birth),
        "birth_year": pa.array(birth_year.astype(np.int16)),
        "ethnicity": col.categorical(ETHNIC_NAMES, ethnicity),
        "education": col.categorical(EDUCATION, education),
        "marital_status": col.categorical(MARITAL, marital),
        "mobile": mobile,
        "household_id": household_id.take(pa.array(household)),
        "relation_to_head": col.categorical(["户主", "配偶", "子女", "父母"], role),
        "district_code": col.categorical([d.code for d in DISTRICTS], district),
        "district": col.categorical([d.name for d in DISTRICTS], district),
        "address": household_address.take(pa.array(household)),
    })
    people = People(as_of, household_id, household_district, sizes, ids, household, district, sex,
                    age, education)
    return table, people


def _roles(rng: np.random.Generator, rank: np.ndarray) -> np.ndarray:
    role = np.full(len(rank), ROLE_CHILD, dtype=np.int64)
    role[rank == 0] = ROLE_HEAD
    spouse = (rank == 1) & (rng.random(len(rank)) < 0.85)
    role[spouse] = ROLE_SPOUSE
    role[(rank == 4) | (rank == 5)] = ROLE_PARENT
    return role


def _ages_and_sexes(rng, role, head_row) -> tuple[np.ndarray, np.ndarray]:
    n = len(role)
    band = rng.choice(len(HEAD_AGE_BANDS), size=n, p=HEAD_AGE_W)
    age = HEAD_AGE_BANDS[band] + 5 * rng.random(n)
    head_age = age[head_row]
    spouse = role == ROLE_SPOUSE
    spouse_age = head_age[spouse] + rng.normal(-1.5, 3.0, spouse.sum())
    age[spouse] = np.where(spouse_age < 20, 20 + 3 * rng.random(spouse.sum()), spouse_age)
    child = role == ROLE_CHILD
    gap = 19 + rng.random(child.sum()) * (np.minimum(38, head_age[child]) - 19)
    age[child] = np.maximum(rng.random(child.sum()), head_age[child] - gap)
    parent = role == ROLE_PARENT
    parent_age = head_age[parent] + 22 + 12 * rng.random(parent.sum())
    too_old = parent_age > 100  # spread the oldest over 90-105 instead of piling them up
    parent_age[too_old] = 90 + 15 * rng.random(too_old.sum()) ** 2
    age[parent] = parent_age

    sex = (rng.random(n) < 0.515).astype(np.int8)
    sex[role == ROLE_HEAD] = (rng.random((role == ROLE_HEAD).sum()) < 0.56).astype(np.int8)
    sex[spouse] = 1 - sex[head_row[spouse]]
    parent_rank = np.flatnonzero(parent)
    first_parent = np.r_[True, head_row[parent_rank][1:] != head_row[parent_rank][:-1]]
    sex[parent_rank] = first_parent.astype(np.int8)
    return age, sex


def _ethnicities(rng, role, head_row, district) -> np.ndarray:
    n = len(role)
    base = np.array(list(ETHNIC_GROUPS.values()))
    ethnicity = np.zeros(n, dtype=np.int64)
    for d_index, d in enumerate(DISTRICTS):
        rows = np.flatnonzero(district == d_index)
        boost = ETHNIC_PROFILES[d.ethnic_profile]
        w = base * np.array([boost.get(e, 1.0) for e in ETHNIC_NAMES])
        ethnicity[rows] = rng.choice(len(ETHNIC_NAMES), size=len(rows), p=w / w.sum())
    follows_head = (role != ROLE_HEAD) & ~((role == ROLE_SPOUSE) & (rng.random(n) < 0.15))
    ethnicity[follows_head] = ethnicity[head_row[follows_head]]
    return ethnicity


def _surnames(rng, role, head_row, sex, ethnicity) -> np.ndarray:
    n = len(role)
    base = np.array(list(SURNAMES.values()))
    surname = np.empty(n, dtype=np.int64)
    boosted = {ETHNIC_NAMES.index(e): b for e, b in SURNAME_BOOST.items()}
    plain = ~np.isin(ethnicity, list(boosted))
    surname[plain] = rng.choice(len(base), size=int(plain.sum()), p=base / base.sum())
    for e, boost in boosted.items():
        rows = np.flatnonzero(ethnicity == e)
        w = base * np.array([boost.get(s, 1.0) for s in SURNAME_NAMES])
        surname[rows] = rng.choice(len(base), size=len(rows), p=w / w.sum())
    # children take the father's surname: the head's, or the spouse's when the head is a woman
    spouse_rows = np.flatnonzero(role == ROLE_SPOUSE)
    family = surname.copy()  # per head row
    male_spouse = spouse_rows[sex[spouse_rows] == 1]
    family[head_row[male_spouse]] = surname[male_spouse]
    child = role == ROLE_CHILD
    surname[child] = family[head_row[child]]
    father = (role == ROLE_PARENT) & (sex == 1)
    surname[father] = surname[head_row[father]]
    return surname


def _education(rng, age, urban) -> np.ndarray:
    n = len(age)
    u = rng.random(n)
    edu = np.zeros(n, dtype=np.int64)
    edu[(age >= 6) & (age < 12)] = 1
    teen = (age >= 12) & (age < 15)
    edu[teen] = np.where(u[teen] < 0.1, 1, 2)
    older_teen = (age >= 15) & (age < 18)
    edu[older_teen] = np.select([u[older_teen] < 0.25, u[older_teen] < 0.8], [2, 3], 4)
    upper = np.inf
    for min_age, w_urban, w_rural in EDUCATION_ADULT:
        band = (age >= min_age) & (age < upper)
        for is_urban, w in ((True, w_urban), (False, w_rural)):
            rows = np.flatnonzero(band & (urban == is_urban))
            cdf = np.cumsum(normalized(w))
            edu[rows] = np.minimum(np.searchsorted(cdf, u[rows]), len(w) - 1)
        upper = min_age
    return edu


def _marital(rng, age, role, household_size) -> np.ndarray:
    n = len(age)
    u = rng.random(n)
    status = np.zeros(n, dtype=np.int64)
    upper = np.inf
    for min_age, w in MARITAL_BY_AGE:
        rows = np.flatnonzero((age >= min_age) & (age < upper))
        status[rows] = np.minimum(np.searchsorted(np.cumsum(normalized(w)), u[rows]), len(w) - 1)
        upper = min_age
    spouse = role == ROLE_SPOUSE
    status[spouse] = 1
    head_with_spouse = np.r_[spouse[1:], False]  # a spouse always directly follows the head
    status[head_with_spouse & (role == ROLE_HEAD)] = 1
    return status


def _given_names(rng, sex, birth_year) -> tuple[np.ndarray, np.ndarray]:
    n = len(sex)
    modern = rng.random(n) < np.clip((birth_year - 1965) / 35, 0.0, 1.0)
    single = rng.random(n) < np.where(modern, 0.12, 0.35)
    first = np.empty(n, dtype=np.int64)
    second = np.empty(n, dtype=np.int64)
    index = {c: i for i, c in enumerate(GIVEN_VOCAB.words)}
    for pools, is_modern in ((GIVEN_TRADITIONAL, False), (GIVEN_MODERN, True)):
        for sex_code, sex_name in ((0, "女"), (1, "男")):
            chars = np.array([index[c] for c in pools[sex_name]])
            rows = np.flatnonzero((sex == sex_code) & (modern == is_modern))
            p = zipf(len(chars), 0.8)
            first[rows] = chars[rng.choice(len(chars), size=len(rows), p=p)]
            second[rows] = chars[rng.choice(len(chars), size=len(rows), p=p)]
    second[single] = 0  # the empty string
    return first, second


def _distinct_names_in_households(rng, household, surname, given1, given2) -> None:
    """No two members of a household share a full name: redraw the later one's last character."""
    v = len(GIVEN_VOCAB)
    for _ in range(16):
        key = ((household * len(SURNAME_NAMES) + surname) * v + given1) * v + given2
        order = np.argsort(key, kind="stable")
        dup = np.zeros(len(key), dtype=bool)
        dup[order[1:]] = key[order[1:]] == key[order[:-1]]
        if not dup.any():
            return
        given2[dup] = rng.integers(1, v, dup.sum())  # 0 is the empty string


def _resident_ids(rng, district, birth, sex, age) -> pa.Array:
    n = len(district)
    codes = [d.code for d in DISTRICTS]
    legacy = {i: codes.index(d.code) for i, d in enumerate(DISTRICTS) if d.legacy_code}
    codes += [DISTRICTS[i].legacy_code for i in legacy] + list(OTHER_ID_REGIONS)
    region = district.copy()
    birth_year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    for k, i in enumerate(legacy):
        d = DISTRICTS[i]
        region[(district == i) & (birth_year < d.legacy_until)] = len(DISTRICTS) + k
    moved = (age >= 18) & (rng.random(n) < MOVED_IN_SHARE)
    first_other = len(codes) - len(OTHER_ID_REGIONS)
    region[moved] = first_other + rng.integers(0, len(OTHER_ID_REGIONS), moved.sum())
    code_bytes = np.frombuffer("".join(codes).encode(), np.uint8).reshape(-1, 6)
    month_start = birth.astype("datetime64[M]")
    month = month_start.astype(np.int64) % 12 + 1
    day = (birth - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    yyyymmdd = birth_year * 10000 + month * 100 + day
    # sequence: odd last digit for men (1..999), even for women (2..998); unique per region+date
    seq = _unique_sequences(rng, region * 100_000 + birth.astype(np.int64) + 50_000, sex)
    body = np.hstack([code_bytes[region], col.digits(yyyymmdd, 8), col.digits(seq, 3)])
    check = resident_id_check_bytes(body)
    return col.ascii_strings(np.hstack([body, check[:, None]]))


def _unique_sequences(rng, key: np.ndarray, sex: np.ndarray) -> np.ndarray:
    """Sequence numbers with the sex parity, redrawn until (key, sequence) pairs are unique."""
    n = len(key)
    half = np.where(sex == 1, rng.integers(0, 500, n) * 2 + 1, rng.integers(1, 500, n) * 2)
    todo = np.arange(n)
    for _ in range(64):
        combined = key * 1000 + half
        order = np.argsort(combined, kind="stable")
        dup = np.zeros(n, dtype=bool)
        dup[order[1:]] = combined[order[1:]] == combined[order[:-1]]
        todo = np.flatnonzero(dup)
        if not todo.size:
            return half
        fresh = rng.integers(0, 499, todo.size)
        half[todo] = np.where(sex[todo] == 1, fresh * 2 + 1, fresh * 2 + 2)
    raise RuntimeError("could not make resident identity numbers unique; scale too large")


def _mobiles(rng, age) -> pa.Array:
    n = len(age)
    has = rng.random(n) < np.select([age < 12, age < 16, age < 70], [0.0, 0.5, 0.97], 0.75)
    carrier_w = np.where(np.arange(len(MOBILE_PREFIXES)) < 22, 60 / 22, np.where(
        np.arange(len(MOBILE_PREFIXES)) < 34, 20 / 12, 20 / 12))
    prefix = rng.choice(len(MOBILE_PREFIXES), size=n, p=normalized(carrier_w))
    rest = col.digits(rng.integers(0, 10**8, n), 8)
    return col.concat([(col.Vocab.of(MOBILE_PREFIXES), prefix), rest], n, valid=has)
