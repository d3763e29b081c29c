"""The aggregation rule for aggregate-only datasets (重要 data is always aggregate-only).

Modelled on the AWS Clean Rooms aggregation analysis rule. A query that touches an
aggregate-only dataset must be one plain ``SELECT … FROM … [JOIN …] [WHERE …] [GROUP BY …]
[HAVING …] [ORDER BY …] [LIMIT …]`` in which:

- every output is a *dimension* (a column the catalog allows as a group-by dimension, or a
  scalar expression over such columns) or an *aggregate expression*: COUNT, COUNT(DISTINCT),
  SUM, SUM(DISTINCT) or AVG over plain columns, literals, arithmetic and casts (no CASE, IF or
  FILTER inside an aggregate: the group size is counted over the whole group, so an aggregate
  over a hidden sub-group is refused), possibly combined by arithmetic, ROUND or CAST;
- direct identifiers are never aggregated as values (only counted) and never output;
- WHERE, GROUP BY and the non-key parts of JOIN … ON use dimensions only; a join condition
  may equate columns of two datasets (join keys are never output);
- no subqueries, CTEs, set operations, window functions, DISTINCT, QUALIFY, ROLLUP/CUBE/
  GROUPING SETS, or MIN/MAX/MEDIAN (they return one individual's value).

Minimum group size: the gateway adds its own count of distinct entities (the dataset's first
direct identifier, see ``sources.entity_column``) to every output row, for each aggregate-only
dataset in the query, and removes rows whose count is below the authorization's minimum group
size. It never trusts an analyst's own COUNT. The count is computed in the same scan as the
analyst's aggregates (one more output of the same GROUP BY), as cheaply as is exact:

- ``COUNT(DISTINCT hash(entity)) FILTER (WHERE entity IS NOT NULL)`` in general (64-bit hash
  collisions can only lower the count, i.e. suppress more; the filter keeps the NULL rows of an
  outer join's unmatched side, whose hash is a value too, from counting as a person);
- a plain count of the entity column when the engine has verified that column to be unique and
  non-null in the dataset *and* the dataset's rows are not repeated by the query's joins (see
  ``not_repeated``): then each output row of the join holds a different entity of it, and the
  distinct count equals the count: ``COUNT(*)``, unless an outer join may leave the dataset's
  side NULL (then the count of its entity column);
- for a repeated dataset whose entity column is unique and non-null, joined to one other
  dataset on equal keys, first a bound: each of its rows is repeated at most ``M`` times, the
  most rows the other dataset holds for one value of its join key (read from the data). A group
  of ``n`` rows then holds between ``ceil(n / M)`` and ``n`` of its entities, which decides the
  rule for every group with ``n < k`` (removed) or ``ceil(n / M) >= k`` (kept) at the cost of a
  plain count. Only if some group falls in between does the query run again with the exact
  count below (``ExactCountNeeded``); so this is chosen only when the data make groups that
  small unlikely (``BOUND_MARGIN``);
- otherwise, for a repeated dataset whose entity column is unique and non-null, the number of
  its distinct *rows* in the group, as the set bits of a bitmap over the rows' numbers in the
  dataset's table (``bit_count(bitstring_agg(row, 0, N - 1))``): a bit per row instead of a
  hash-set entry, about a third of the distinct count's extra cost on a join. Each group holds an N-bit bitmap, so this
  is used only when the GROUP BY's plain columns bound the number of groups (the product of
  their distinct values, NULL included, read from the data) and all the bitmaps fit
  ``BITMAP_BUDGET``; otherwise the distinct count. A row number out of range makes DuckDB fail
  the query, never count wrong.

The response and the ledger say how many groups were removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from hub.catalog.enums import AccessMode, IdentifierClass
from hub.gateway import sqlrules
from hub.gateway.exceptions import QueryRefused
from hub.gateway.policy import DIALECT, Plan
from hub.gateway.sources import ENTITY, ROW, entity_column, pseudonymizes, quote

COUNT_COLUMN = "__shuyu_n{}"
OUTPUT_WRAPPERS = (*sqlrules.ARITHMETIC, exp.Round, exp.Cast, exp.TryCast, exp.Abs)
VALUE_NODES = (exp.Column, exp.Identifier, exp.Literal, exp.Null, exp.Boolean, exp.DataType,
               exp.DataTypeParam,
               exp.Cast, exp.TryCast, *sqlrules.ARITHMETIC)
JOINS_ALLOWED = {("", ""), ("", "INNER"), ("LEFT", ""), ("LEFT", "OUTER")}


BITMAP_BUDGET = 64 << 20  # bytes of group bitmaps one query may hold, all threads together
# the bound is tried only when the average group of the other dataset's rows is this many times
# the rows a group needs to be decided by it (minimum group size x repetitions)
BOUND_MARGIN = 100


class Sizes(Protocol):
    """Facts about the data the query will run on (one state of the domain store)."""

    threads: int  # the engine's worker threads: each may hold a bitmap for every group

    def rows(self, dataset: str) -> int:
        """One more than the largest row number of the dataset's table (0 if empty)."""

    def distinct(self, dataset: str, column: str) -> int:
        """How many distinct non-null values the column holds."""

    def most_per_value(self, dataset: str, column: str) -> int:
        """The most rows that share one non-null value of the column (0 if there are none)."""


@dataclass(frozen=True)
class GroupRule:
    """One gateway-computed count per output row and the minimum it must reach.

    With ``repeats`` 1 the count is the number of the dataset's entities in the group. With
    ``repeats`` M > 1 it counts rows in which each entity stands at most M times: the entities
    are between ``ceil(count / M)`` and ``count``, and a group in between cannot be decided.
    """

    column: str
    dataset: str
    minimum: int
    repeats: int = 1


class ExactCountNeeded(Exception):
    """A bounded count could not decide a group: run the query with its exact counts."""


def _refuse(datasets: list[str], what: str) -> QueryRefused:
    names = ", ".join(datasets)
    return QueryRefused(
        f"{names} {'is' if len(datasets) == 1 else 'are'} aggregate-only: {what}",
        "aggregate_rule")


class _Checker:
    def __init__(self, plan: Plan):
        self.plan = plan
        self.tree = plan.tree
        self.aggregate_only = sorted(
            d for d, g in plan.grants.items() if g.access_mode is AccessMode.AGGREGATE_ONLY)
        self.alias_to_dataset = {t.alias_or_name: d for t, d in plan.sources}

    def refuse(self, what: str) -> QueryRefused:
        return _refuse(self.aggregate_only, what)

    # --- structure -----------------------------------------------------------------------

    def check(self) -> None:
        tree = self.tree
        if not isinstance(tree, exp.Select):
            raise self.refuse("set operations (UNION, INTERSECT, EXCEPT) are not allowed; "
                              "use one SELECT with GROUP BY")
        if tree.args.get("with_") or tree.args.get("with"):
            raise self.refuse("CTEs (WITH …) are not allowed; use one SELECT with GROUP BY")
        for node in tree.walk():
            self._check_node(node)
        if tree.args.get("distinct"):
            raise self.refuse("SELECT DISTINCT is not allowed; use GROUP BY")
        if tree.args.get("qualify"):
            raise self.refuse("QUALIFY is not allowed")
        self._check_sources()
        self._check_group()
        self._check_outputs()
        where = tree.args.get("where")
        if where is not None:
            self._check_dimensions_only(where.this, "WHERE")
        having = tree.args.get("having")
        if having is not None:
            self._check_having(having.this)
        order = tree.args.get("order")
        if order is not None:
            for item in order.expressions:
                self._check_order_item(item.this)

    def _check_node(self, node: exp.Expression) -> None:
        if node is not self.tree and isinstance(node, (exp.Select, exp.Subquery, exp.Exists,
                                                       exp.Values)):
            raise self.refuse("subqueries are not allowed; use one SELECT with GROUP BY")
        if isinstance(node, exp.Window):
            raise self.refuse("window functions (… OVER …) are not allowed")
        if isinstance(node, exp.Func) and type(node) in (sqlrules.ROW_LEVEL_AGGREGATES
                                                          | sqlrules.WINDOW_FUNCTIONS):
            name = sqlrules.function_name(node).upper()
            raise self.refuse(f"{name} is not allowed: it returns or depends on individual "
                              "values; use COUNT, SUM or AVG")
        if isinstance(node, exp.Filter):
            raise self.refuse("FILTER (WHERE …) on an aggregate is not allowed: the minimum "
                              "group size is counted over the whole group; filter with WHERE")

    def _check_sources(self) -> None:
        from_ = self.tree.args.get("from_") or self.tree.args.get("from")
        if from_ is None or not isinstance(from_.this, exp.Table):
            raise self.refuse("the query must read datasets directly in FROM")
        for join in self.tree.args.get("joins") or []:
            if not isinstance(join.this, exp.Table):
                raise self.refuse("only datasets may be joined")
            side = (join.args.get("side") or "").upper()
            kind = (join.args.get("kind") or "").upper()
            if (side, kind) not in JOINS_ALLOWED or join.args.get("method"):
                shown = " ".join(x for x in (join.args.get("method") or "", side, kind) if x)
                raise self.refuse(f"{shown or 'this'} JOIN is not allowed; use INNER or LEFT "
                                  "JOIN … ON equal keys")
            on = join.args.get("on")
            if on is None:
                raise self.refuse("a join needs ON with equal keys (no cross joins)")
            self._check_join_condition(on)

    def _check_group(self) -> None:
        group = self.tree.args.get("group")
        if group is None:
            return
        for key in ("grouping_sets", "cube", "rollup", "totals"):
            if group.args.get(key):
                raise self.refuse("ROLLUP, CUBE and GROUPING SETS are not allowed (subtotals "
                                  "next to suppressed groups would reveal them)")
        if group.args.get("all"):
            raise self.refuse("GROUP BY ALL is not allowed; name the dimensions")
        for item in group.expressions:
            self._check_dimension(item, "GROUP BY")

    def _check_outputs(self) -> None:
        grouped = self.tree.args.get("group") is not None
        for item in self.tree.expressions:
            value = item.this if isinstance(item, exp.Alias) else item
            if self._is_aggregate_expression(value):
                continue
            if not grouped:
                raise self.refuse(
                    f"{value.sql(DIALECT)} is not an aggregate; without GROUP BY every output "
                    "must be COUNT, SUM or AVG")
            self._check_dimension(value, "SELECT")

    # --- pieces ---------------------------------------------------------------------------

    def _column_rule(self, col: exp.Column) -> tuple[str, bool, bool]:
        """(dataset, is a dimension, is a direct identifier) of a column of the query."""
        dataset = self.alias_to_dataset.get(col.table)
        if dataset is None:
            raise self.refuse(f"{col.sql(DIALECT)} is not a dataset column")
        grant = self.plan.grants[dataset]
        cg = grant.column(col.name)
        if cg is None:
            raise self.refuse(f"{col.sql(DIALECT)} is not in the authorization")
        direct = cg.identifier_class is IdentifierClass.DIRECT_IDENTIFIER
        if grant.access_mode is not AccessMode.AGGREGATE_ONLY:
            return dataset, True, direct
        return dataset, cg.group_by_allowed and not direct, direct

    def _check_dimension(self, node: exp.Expression, where: str) -> None:
        if any(isinstance(n, exp.AggFunc) for n in node.walk()):
            raise self.refuse(f"aggregates are not allowed in {where} dimensions: "
                              f"{node.sql(DIALECT)}")
        for col in node.find_all(exp.Column):
            dataset, dimension, _ = self._column_rule(col)
            if not dimension:
                raise self.refuse(
                    f"{dataset}.{col.name} may not be used in {where}: it is not a group-by "
                    "dimension in the catalog")

    def _check_dimensions_only(self, node: exp.Expression, where: str) -> None:
        self._check_dimension(node, where)

    def _check_join_condition(self, on: exp.Expression) -> None:
        for part in _conjuncts(on):
            if (isinstance(part, exp.EQ) and isinstance(part.this, exp.Column)
                    and isinstance(part.expression, exp.Column)
                    and part.this.table != part.expression.table):
                continue  # a join key: never output, any column class
            self._check_dimension(part, "JOIN … ON")

    def _is_aggregate_expression(self, node: exp.Expression) -> bool:
        """True for COUNT/SUM/AVG calls and arithmetic, ROUND, CAST over them and literals."""
        if isinstance(node, tuple(sqlrules.VALUE_AGGREGATES)):
            self._check_aggregate_call(node)
            return True
        if isinstance(node, OUTPUT_WRAPPERS):
            parts = [c for c in node.iter_expressions()
                     if not isinstance(c, (exp.Literal, exp.DataType, exp.Null))]
            if parts and all(self._is_aggregate_expression(p) for p in parts):
                return True
            if any(isinstance(n, exp.AggFunc) for n in node.walk()):
                raise self.refuse(f"{node.sql(DIALECT)} mixes aggregates with row values")
        return False

    def _check_aggregate_call(self, agg: exp.Expression) -> None:
        arg = agg.this
        if isinstance(arg, exp.Distinct):
            args = list(arg.expressions)
        elif arg is None or isinstance(arg, exp.Star):
            if not isinstance(agg, exp.Count):
                raise self.refuse(f"{agg.sql(DIALECT)} needs a column")
            return
        else:
            args = [arg]
        name = sqlrules.function_name(agg).upper()
        for value in args:
            for node in value.walk():
                if not isinstance(node, VALUE_NODES):
                    raise self.refuse(
                        f"inside {name}() only columns, numbers, arithmetic and CAST are "
                        f"allowed, not {sqlrules.describe_node(node)} ({value.sql(DIALECT)})")
            if isinstance(agg, exp.Count):
                continue  # counting people (even by identifier) is what the rule is about
            for col in value.find_all(exp.Column):
                dataset, _, direct = self._column_rule(col)
                if direct:
                    raise self.refuse(f"{name}({dataset}.{col.name}) is not allowed: it is a "
                                      "direct identifier (count it instead)")

    def _check_having(self, node: exp.Expression) -> None:
        if isinstance(node, sqlrules.PREDICATES) and not self._is_aggregate_expression(node):
            for child in node.iter_expressions():
                self._check_having(child)
            return
        if isinstance(node, (exp.Literal, exp.Null, exp.Boolean)):
            return
        if not self._is_aggregate_expression(node):
            self._check_dimension(node, "HAVING")

    def _check_order_item(self, node: exp.Expression) -> None:
        if isinstance(node, exp.Column) and not node.table:
            return  # an output column by name
        if not self._is_aggregate_expression(node):
            self._check_dimension(node, "ORDER BY")


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


def check_aggregate_query(plan: Plan) -> None:
    """Refuse (QueryRefused) unless the planned query follows the aggregation rule."""
    _Checker(plan).check()


def _join_keys(plan: Plan) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """((alias, column), (alias, column)) of every ON conjunct ``a.x = b.y`` between two
    sources whose columns have the same catalog type and reach the engine in clear."""
    datasets = {t.alias_or_name: d for t, d in plan.sources}
    pseudonymized = pseudonymizes(plan)
    keys = []
    for join in plan.tree.args.get("joins") or []:
        on = join.args.get("on")
        for part in _conjuncts(on) if on is not None else []:
            if not (isinstance(part, exp.EQ) and isinstance(part.this, exp.Column)
                    and isinstance(part.expression, exp.Column)):
                continue
            ends = []
            for col in (part.this, part.expression):
                dataset = datasets.get(col.table)
                record = plan.records.get(dataset) if dataset else None
                column = record.column(col.name) if record else None
                grant = plan.grants[dataset].column(col.name) if dataset else None
                if column is None or grant is None or (
                        pseudonymized
                        and grant.identifier_class is IdentifierClass.DIRECT_IDENTIFIER):
                    break
                ends.append((col.table, col.name, column.type))
            if len(ends) == 2 and ends[0][0] != ends[1][0] and ends[0][2] == ends[1][2]:
                keys.append(((ends[0][0], ends[0][1]), (ends[1][0], ends[1][1])))
    return keys


def not_repeated(plan: Plan, unique: Callable[[str, str], bool]) -> set[str]:
    """Aliases of the sources whose rows each appear in at most one row of the query's join.

    A source X is not repeated when every other source is *determined* by it: reachable from X
    through ON equalities ``a.x = b.u`` in which ``u`` is unique and non-null in b's dataset
    (``unique(dataset, column)``, verified by the engine on the whole table). Then a row of X
    fixes at most one row of each source in turn (or none: a LEFT JOIN adds one row with
    NULLs), so it is in at most one row of the join. Only INNER and LEFT joins reach here (the
    rule refuses the others); keys compared after a cast or as pseudonyms are not used.
    """
    datasets = {t.alias_or_name: d for t, d in plan.sources}
    if len(datasets) != len(plan.sources):
        return set()
    keys = _join_keys(plan)

    def reached_from(start: str) -> set[str]:
        reached, grew = {start}, True
        while grew:
            grew = False
            for left, right in keys:
                for (src, _), (dst, column) in ((left, right), (right, left)):
                    if src in reached and dst not in reached and unique(datasets[dst], column):
                        reached.add(dst)
                        grew = True
        return reached

    return {alias for alias in datasets if reached_from(alias) == set(datasets)}


def add_group_counts(plan: Plan, unique: Callable[[str, str], bool],
                     sizes: Sizes | None = None, bounded: bool = True
                     ) -> tuple[list[GroupRule], set[str]]:
    """Append the gateway's entity counts to the query's outputs. Returns the rules to apply
    and the aliases of the sources whose row numbers the counts read (``sources.render`` must
    project them).

    `unique(dataset, column)` tells whether a column is unique and non-null in its dataset;
    without `sizes`, repeated datasets always take the distinct count. With `bounded` False a
    repeated dataset is never counted by a bound (the exact rewrite a bound falls back to).
    """
    rules: list[GroupRule] = []
    numbered: set[str] = set()
    select = plan.tree
    assert isinstance(select, exp.Select)
    nullable = outer_sides(select)
    once = None
    for table, dataset in plan.sources:
        grant = plan.grants[dataset]
        if grant.access_mode is not AccessMode.AGGREGATE_ONLY:
            continue
        alias = quote(table.alias_or_name)
        entity = entity_column(plan.records[dataset])
        if entity is not None and once is None:
            once = not_repeated(plan, unique)
        # its rows, when each row of the join holds a different one of them: COUNT(*) where
        # every row has one (the same aggregate as an analyst's count(*), computed once)
        own_rows = (f"COUNT({alias}.{quote(ENTITY)})" if table.alias_or_name in nullable
                    else "COUNT(*)")
        repeats = 1
        if entity is None:  # no identifier: its rows are the measure (a marker, never NULL)
            count = own_rows
        elif table.alias_or_name in once and unique(dataset, entity):
            count = own_rows
        elif bounded and (most := repetition_bound(plan, table.alias_or_name, unique, sizes,
                                                   grant.min_group_size)) is not None:
            count, repeats = own_rows, most
        elif (width := _bitmap_rows(plan, dataset, entity, unique, sizes)) is not None:
            count = f"bit_count(bitstring_agg({alias}.{quote(ROW)}, 0, {width - 1}))"
            numbered.add(table.alias_or_name)
        else:
            entity_ref = f"{alias}.{quote(ENTITY)}"
            # hash(NULL) is a value: without the filter, the NULL side of an outer join (or a
            # NULL identifier) would count as one more person
            count = f"COUNT(DISTINCT hash({entity_ref})) FILTER (WHERE {entity_ref} IS NOT NULL)"
        column = COUNT_COLUMN.format(len(rules))
        select.select(exp.alias_(exp.maybe_parse(count, dialect=DIALECT), column, quoted=True),
                      copy=False)
        rules.append(GroupRule(column, dataset, grant.min_group_size, repeats))
    return rules, numbered


def repetition_bound(plan: Plan, alias: str, unique: Callable[[str, str], bool],
                     sizes: Sizes | None, minimum: int) -> int | None:
    """At most how many rows of the join one row of source `alias` stands in, when that is
    known from the data and worth a bounded count; else None.

    Only for two sources joined on equal keys in clear (``_join_keys``), where `alias`'s
    dataset has a unique, non-null entity: a row of it matches at most as many rows of the
    other source as share the other side's key value, for every key pair, so the smallest of
    those maxima bounds it (a LEFT JOIN's unmatched row stands once). WHERE and further ON
    conditions only remove rows. Worth it when the other source's rows, spread over the
    query's group bound, average ``BOUND_MARGIN`` times what a group needs to be decided.
    """
    if sizes is None or len(plan.sources) != 2:
        return None
    datasets = {t.alias_or_name: d for t, d in plan.sources}
    if len(datasets) != 2:
        return None
    entity = entity_column(plan.records[datasets[alias]])
    if entity is None or not unique(datasets[alias], entity):
        return None
    most = None
    for left, right in _join_keys(plan):
        for (mine, _), (other, column) in ((left, right), (right, left)):
            if mine == alias:
                rows = sizes.most_per_value(datasets[other], column)
                most = rows if most is None else min(most, rows)
    if most is None:
        return None
    most = max(1, most)
    other_rows = sizes.rows(next(d for a, d in datasets.items() if a != alias))
    groups = group_bound(plan, sizes, other_rows)
    if groups is None or other_rows < groups * BOUND_MARGIN * minimum * most:
        return None
    return most


def outer_sides(select: exp.Select) -> set[str]:
    """Aliases of the sources an outer join may fill with NULLs (the right side of a LEFT
    JOIN; the rule admits no RIGHT or FULL joins). Every other source has a row in every row of
    the join."""
    return {join.this.alias_or_name for join in select.args.get("joins") or []
            if (join.side or "").upper() == "LEFT"}


def _bitmap_rows(plan: Plan, dataset: str, entity: str, unique: Callable[[str, str], bool],
                 sizes: Sizes | None) -> int | None:
    """The bitmap width for `dataset`'s count, or None when the distinct count must be used."""
    if sizes is None or not unique(dataset, entity):
        return None
    rows = sizes.rows(dataset)
    if rows <= 0:
        return None
    limit = BITMAP_BUDGET // (max(1, sizes.threads) * ((rows + 7) // 8))
    groups = group_bound(plan, sizes, limit)
    return rows if groups is not None and groups <= limit else None


def group_bound(plan: Plan, sizes: Sizes, limit: int) -> int | None:
    """At most how many groups the query can have: the product of the distinct values (and
    NULL) of its GROUP BY columns; None when a grouping item is not a plain dataset column, or
    as soon as the product exceeds `limit`."""
    group = plan.tree.args.get("group")
    items = group.expressions if group is not None else []
    if group is not None and not items:
        return None  # GROUP BY ALL, ROLLUP and the like: no bound from here
    datasets = {t.alias_or_name: d for t, d in plan.sources}
    bound = 1
    for item in items:
        if not isinstance(item, exp.Column) or item.table not in datasets:
            return None
        bound *= sizes.distinct(datasets[item.table], item.name) + 1
        if bound > limit:
            return None
    return bound


def suppress(batch: pa.RecordBatch, rules: list[GroupRule]) -> tuple[pa.RecordBatch, int]:
    """Drop rows whose gateway counts are below the minimum; remove the count columns."""
    if not rules:
        return batch, 0
    keep = None
    for rule in rules:
        counts = batch.column(rule.column)
        ok = pc.fill_null(pc.greater_equal(counts, rule.minimum), False)
        if rule.repeats > 1:
            # entities >= ceil(count / M) >= minimum  <=>  count >= (minimum - 1) * M + 1
            sure = pc.fill_null(pc.greater(counts, (rule.minimum - 1) * rule.repeats), False)
            if pc.any(pc.xor(ok, sure)).as_py():
                raise ExactCountNeeded(rule.dataset)
        keep = ok if keep is None else pc.and_(keep, ok)
    kept = batch.filter(keep)
    removed = batch.num_rows - kept.num_rows
    names = {r.column for r in rules}
    columns = [i for i, f in enumerate(kept.schema) if f.name not in names]
    return kept.select(columns), removed


def warm_up() -> None:
    """Load Arrow's compute kernels now (the first call imports a lot), not in a query."""
    batch = pa.RecordBatch.from_pydict({"v": [1, 20], COUNT_COLUMN.format(0): [1, 20]})
    suppress(batch, [GroupRule(COUNT_COLUMN.format(0), "warm-up", 10)])
