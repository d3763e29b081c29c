"""Bus cards and the trips paid with them over one week.

A fixed synthetic network (routes with ordered stops, mostly in the central districts) serves
the city. Residents hold real-name cards with the probability of their age and district:
students' and seniors' cards are common and discounted or free. Each card makes a Poisson number
of trips with a heavy-tailed activity level, at times with weekday rush-hour peaks, mostly on
routes of the holder's home district. Buses charge on boarding only, so a trip is one tap: time,
route, stop, fare. Times are local (UTC+8) without a zone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from hub.synthetic import columns as col
from hub.synthetic.kunming import DISTRICTS, ROADS, VILLAGE_WORDS
from hub.synthetic.people import People

CARD_TYPES = ("普通卡", "学生卡", "老年卡", "爱心卡")
FARE_FACTOR = np.array([0.9, 0.5, 0.0, 0.0])
TRIPS_PER_WEEK = np.array([6.0, 7.0, 4.0, 4.0])
WINDOW_DAYS = 7
N_ROUTES = 320
URBAN_STOP_SUFFIXES = ("口", "站", "北口", "南口", "东站", "西站", "中段", "路口", "小区", "公交枢纽")
RURAL_STOP_SUFFIXES = ("站", "路口", "村口", "集市", "客运站")


@dataclass
class Cards:
    card_id: pa.Array
    holder: np.ndarray  # resident index
    card_type: np.ndarray


@dataclass
class Network:
    stop_id: list[str]
    stop_name: list[str]
    stop_district: np.ndarray
    route_name: list[str]
    route_district: np.ndarray
    route_fare_cents: np.ndarray
    route_stops: np.ndarray  # flat stop indices
    route_first: np.ndarray  # offsets into route_stops, len N_ROUTES + 1


def build_bus_cards(rng: np.random.Generator, people: People) -> tuple[pa.Table, Cards]:
    age = people.age
    urban = np.array([d.urban for d in DISTRICTS])[people.district]
    p = np.select(
        [age < 6, age < 22, age < 65], [0.0, 0.55, np.where(urban, 0.45, 0.15)],
        np.where(urban, 0.7, 0.3),
    )
    holder = np.flatnonzero(rng.random(people.n) < p)
    h_age = age[holder]
    card_type = np.select([h_age < 22, h_age >= 65], [1, 2], 0)
    card_type[rng.random(len(holder)) < 0.005] = 3
    k = len(holder)
    mult = int(rng.integers(1, 10**10)) * 10 + 7  # coprime with 10^12: a bijection
    serial = (np.arange(k, dtype=np.int64) * mult + int(rng.integers(0, 10**12))) % 10**12
    card_id = col.concat(["5301", col.digits(serial, 12)], k)
    as_of = np.datetime64(people.as_of, "D")
    born = as_of - (h_age * 365.2425).astype(np.int64)
    earliest = np.minimum(np.maximum(np.datetime64("2012-01-01"), born), as_of)  # cards since 2012
    span = (as_of - earliest).astype(np.int64)
    issued = earliest + (rng.random(k) * span).astype(np.int64)
    table = pa.table({
        "card_id": card_id,
        "resident_id": people.resident_id.take(pa.array(holder)),
        "card_type": col.categorical(CARD_TYPES, card_type),
        "issued_date": col.dates(issued),
    })
    return table, Cards(card_id, holder, card_type)


def build_network(rng: np.random.Generator) -> Network:
    stop_id: list[str] = []
    stop_name: list[str] = []
    stop_district: list[int] = []
    district_stops: list[np.ndarray] = []
    for d_index, d in enumerate(DISTRICTS):
        if d.urban:
            pool = [r + s for r in ROADS for s in URBAN_STOP_SUFFIXES]
            count = 260
        else:
            places = [t.removesuffix("街道") for t in d.townships] + list(VILLAGE_WORDS)
            pool = [p + s for p in places for s in RURAL_STOP_SUFFIXES]
            count = 60
        chosen = rng.choice(len(pool), size=count, replace=False)
        first = len(stop_id)
        stop_id.extend(f"{d.code}{k + 1:04d}" for k in range(count))
        stop_name.extend(pool[i] for i in chosen)
        stop_district.extend([d_index] * count)
        district_stops.append(np.arange(first, first + count))

    urban = np.array([d.urban for d in DISTRICTS])
    weight = np.array([d.population for d in DISTRICTS]) * np.where(urban, 2.0, 1.0)
    route_district = rng.choice(len(DISTRICTS), size=N_ROUTES, p=weight / weight.sum())
    lengths = rng.integers(12, 36, N_ROUTES)
    route_stops = np.concatenate([
        rng.choice(district_stops[d], size=n, replace=False) for d, n in zip(route_district, lengths)
    ])
    route_first = np.concatenate([[0], np.cumsum(lengths)])
    fare = np.where(urban[route_district], np.where(rng.random(N_ROUTES) < 0.25, 100, 200),
                    rng.integers(2, 6, N_ROUTES) * 100)
    names = [("K" if rng.random() < 0.2 else "") + f"{i + 1}路" for i in range(N_ROUTES)]
    return Network(stop_id, stop_name, np.array(stop_district), names, route_district, fare,
                   route_stops, route_first)


def build_bus_trips(rng: np.random.Generator, people: People, cards: Cards) -> pa.Table:
    net = build_network(rng)
    activity = rng.gamma(0.8, 1 / 0.8, len(cards.holder))
    urban = np.array([d.urban for d in DISTRICTS])[people.district[cards.holder]]
    lam = TRIPS_PER_WEEK[cards.card_type] * activity * np.where(urban, 1.0, 0.4)
    per_card = rng.poisson(lam)
    card = np.repeat(np.arange(len(cards.holder)), per_card)
    n = len(card)

    first_day = np.datetime64(people.as_of, "D") - (WINDOW_DAYS - 1)
    day = first_day + rng.integers(0, WINDOW_DAYS, n)
    weekend = (day.astype(np.int64) + 3) % 7 >= 5  # 1970-01-01 was a Thursday
    hour = _hours(rng, weekend, cards.card_type[card])
    seconds = day.astype("datetime64[s]").astype(np.int64) + (hour * 3600).astype(np.int64)

    route = _routes(rng, net, people.district[cards.holder[card]])
    length = np.diff(net.route_first)[route]
    stop = net.route_stops[net.route_first[route] + (rng.random(n) * length).astype(np.int64)]
    fare = np.round(net.route_fare_cents[route] * FARE_FACTOR[cards.card_type[card]]).astype(np.int64)

    order = np.argsort(seconds, kind="stable")
    card, seconds, route, stop, fare = card[order], seconds[order], route[order], stop[order], fare[order]
    return pa.table({
        "trip_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "card_id": cards.card_id.take(pa.array(card)),
        "card_type": col.categorical(CARD_TYPES, cards.card_type[card]),
        "board_time": col.timestamps(seconds),
        "route": col.categorical(net.route_name, route),
        "stop_id": col.categorical(net.stop_id, stop),
        "stop_name": pa.array(net.stop_name, type=pa.string()).take(pa.array(stop)),  # repeats
        "stop_district": col.categorical([d.name for d in DISTRICTS], net.stop_district[stop]),
        "fare": col.decimal(fare, 6),
    })


def _hours(rng, weekend: np.ndarray, card_type: np.ndarray) -> np.ndarray:
    """Hour of day (fractional): rush-hour peaks on weekdays, late mornings for seniors."""
    n = len(weekend)
    u = rng.random(n)
    hour = np.where(u < 0.35, rng.normal(7.6, 0.8, n),
                    np.where(u < 0.7, rng.normal(17.8, 1.0, n), rng.uniform(6, 22, n)))
    senior = card_type == 2
    hour[senior] = np.where(u[senior] < 0.6, rng.normal(9.5, 1.5, senior.sum()),
                            rng.uniform(7, 18, senior.sum()))
    hour[weekend] = rng.normal(12.5, 3.5, weekend.sum())
    return np.clip(hour, 5.75, 22.99)


def _routes(rng, net: Network, home: np.ndarray) -> np.ndarray:
    """Mostly a route of the rider's home district, otherwise any route."""
    n = len(home)
    route = rng.integers(0, N_ROUTES, n)
    local = rng.random(n) < 0.8
    u = rng.random(n)
    for d in range(len(DISTRICTS)):
        options = np.flatnonzero(net.route_district == d)
        rows = np.flatnonzero(local & (home == d))
        if options.size and rows.size:
            route[rows] = options[(u[rows] * options.size).astype(np.int64)]
    return route
