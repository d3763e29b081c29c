"""Checked queries, remembered: the policy's work is done once per SQL text and grant state.

Preparing a query for the engine (parsing, the allow-list walk, qualifying against the catalog
schema, resolving columns, the aggregation rule, the group counts and the governed rewrite) is
pure given its inputs:

- the SQL text and the authorization the caller named;
- for each dataset the query reads, the caller's :class:`~hub.catalog.records.Grant` (its
  authorization, access mode, columns in scope with their classes and group-by flags, minimum
  group size, term…) and the dataset's catalog record (columns, types, grade, revision);
- the state of the domain store the query runs on (``Snapshot.state``): the rewrite relies on
  facts about the data (which columns are unique), and a load gives a new state, so a rewrite
  is never reused on data it was not prepared for.

What is *not* remembered is the decision whether the caller may query now. On every query the
catalog is read afresh and ``check_user_can_query`` decides status (suspended, revoked), term
and expiry (against the clock), and whether the dataset may still be authorized; a refusal
there is final whatever the cache holds. Only the grants it returns then look the prepared
query up, and they are part of the key *by value*: any change to scope, access mode, columns,
minimum group size, term or the dataset's record gives a different key and a fresh check.

Two maps, both bounded (least recently used entries go first):

- SQL text → the datasets it reads (only for SQL that passed the syntax checks, which depend on
  the text alone), so the grants can be fetched without parsing;
- (SQL, authorization named, store state, grants and records) → :class:`Prepared`.

Refusals are never remembered: a refused query is checked in full every time.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Generic, Hashable, TypeVar

from hub.gateway import aggregation, policy, sources

V = TypeVar("V")


@dataclass(frozen=True)
class Prepared:
    """A checked query ready for the engine. Shared between requests: never changed.

    ``exact``: when a rule counts by a bound (``GroupRule.repeats`` > 1), the same query with
    exact counts, to run instead when the bound leaves a group undecided."""

    plan: policy.Plan
    sql: str
    keyed: bool
    rules: tuple[aggregation.GroupRule, ...]
    exact: "Prepared | None" = None


def prepare(plan: policy.Plan, unique: Callable[[str, str], bool],
            sizes: aggregation.Sizes | None = None, bounded: bool = True) -> Prepared:
    """The governed rewrite of a checked plan (changes ``plan.tree`` in place)."""
    if not plan.aggregate:
        sql, keyed = sources.render(plan, set())
        return Prepared(plan, sql, keyed, ())
    # an untouched copy for the exact rewrite, should a bound be used
    original = _copy(plan) if bounded and sizes is not None and len(plan.sources) == 2 else None
    rules, numbered = aggregation.add_group_counts(plan, unique, sizes,
                                                   bounded=original is not None)
    sql, keyed = sources.render(plan, numbered)
    exact = None
    if original is not None and any(r.repeats > 1 for r in rules):
        exact = prepare(original, unique, sizes, bounded=False)
    return Prepared(plan, sql, keyed, tuple(rules), exact)


def _copy(plan: policy.Plan) -> policy.Plan:
    """The plan with a tree of its own (its sources are that tree's table nodes, found again
    the way the policy found them)."""
    tree = plan.tree.copy()
    found = policy.base_tables(tree)
    if [d for _, d in found] != [d for _, d in plan.sources]:
        raise RuntimeError("the copied plan reads other sources")  # never: the same tree
    return dataclasses.replace(plan, tree=tree, sources=found)


class _Lru(Generic[V]):
    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class Checked:
    """A query that passed policy for this request: its plan, its cache key, and the prepared
    query when one was remembered."""

    plan: policy.Plan
    key: tuple
    prepared: Prepared | None


class PlanCache:
    """Prepared queries by SQL text and grant state; thread-safe. ``size`` 0 turns it off."""

    def __init__(self, size: int, unique: Callable[[str, str], bool]):
        self.unique = unique
        self._names: _Lru[tuple[str, ...]] = _Lru(size)
        self._prepared: _Lru[Prepared] = _Lru(size)
        self.hits = 0
        self.misses = 0

    def check(self, sql: str, catalog: policy.CatalogView,
              authorization: str | None, state: Hashable = None) -> Checked:
        """Policy for this request: QueryRefused / QueryNotAuthorized exactly as
        ``policy.plan_query`` raises them, else the plan (and the prepared query if known).

        `catalog` must answer ``grant(name, ())`` from one read per dataset and request (the
        service's per-request view does), so a miss costs no second catalog read. `state` is
        the domain store's state the query will run on.
        """
        names = self._names.get(sql)
        if names is not None:
            key = self._key(sql, authorization, state, names, catalog)
            found = self._prepared.get(key)
            if found is not None:
                self.hits += 1
                return Checked(found.plan, key, found)
        self.misses += 1
        plan = policy.plan_query(sql, catalog, authorization)
        names = tuple(plan.grants)  # first-reference order, as read_statement gives them
        self._names.put(sql, names)
        return Checked(plan, self._key(sql, authorization, state, names, catalog), None)

    def prepare(self, checked: Checked, unique: Callable[[str, str], bool] | None = None,
                sizes: aggregation.Sizes | None = None) -> Prepared:
        """The prepared query of a checked one; remembered under the check's key. `unique`
        (default: the cache's) must answer for the state the check was keyed with. Engine
        errors (the store's uniqueness facts are read on first use) propagate."""
        if checked.prepared is not None:
            return checked.prepared
        prepared = prepare(checked.plan, unique or self.unique, sizes)
        self._prepared.put(checked.key, prepared)
        return prepared

    @staticmethod
    def _key(sql: str, authorization: str | None, state: Hashable, names: tuple[str, ...],
             catalog: policy.CatalogView) -> tuple:
        """The decision's inputs. ``grant`` runs the full query-time check (fresh each
        request) and raises if the caller may not query the dataset now."""
        return (sql, authorization, state,
                tuple((n, catalog.grant(n, (), authorization), catalog.dataset(n))
                      for n in names))
