"""SQL policy: decide, before anything runs, whether a query may run and what it touches.

``plan_query(sql, catalog, authorization)`` parses the SQL with sqlglot (DuckDB dialect) and
either refuses it with a ``QueryRefused`` / ``QueryNotAuthorized`` whose message says exactly
what was refused, or returns a :class:`Plan`: the checked, fully qualified syntax tree plus the
datasets, columns and grants it touches. The steps, each a function below:

1. ``parse_statement``: exactly one statement, and it is a read-only SELECT (or a set operation
   of SELECTs); ``COPY``, ``ATTACH``, ``PRAGMA``, ``SET``, ``INSTALL``, DDL, DML… are refused.
2. ``check_syntax``: every node and function is on the allow-lists of ``sqlrules`` (so table
   functions that read files, environment and settings access, system catalogs, parameters,
   ``LATERAL``, ``PIVOT``, ``SELECT … INTO``, recursive CTEs… are refused); table names are bare
   dataset names; names starting with ``__shuyu`` are reserved.
3. ``base_tables``: every table reference is resolved by scope to a CTE or a dataset.
4. Each dataset goes through the catalog's query-time check (``check_user_can_query``): active,
   unexpired, unsuspended authorization, dataset still authorizable. All datasets of one query
   must come under one authorization (pseudonyms are keyed per authorization).
5. ``qualify``: sqlglot binds every column to its source with the catalog's schema (``*`` is
   expanded here, so ``SELECT *`` counts every column it expands to).
6. ``touched_columns``: every column reference resolves, through CTEs and subqueries, to a
   dataset column; the catalog check runs again with those columns and refuses any outside the
   authorization.
7. If any dataset is aggregate-only, ``aggregation.check_aggregate_query`` applies the
   aggregation rule; otherwise row-level-only functions (MIN/MAX, windows) are allowed.

What runs is the tree this module checked (re-rendered by sqlglot after ``sources`` replaces each
dataset by its governed projection), never the analyst's original text, so the checker and the
engine cannot disagree about what the SQL means.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from hub.catalog.enums import AccessMode
from hub.catalog.exceptions import ColumnsNotAuthorized
from hub.catalog.records import DatasetRecord, Grant
from hub.gateway import sqlrules
from hub.gateway.exceptions import QueryRefused

AUTO_ALIAS = re.compile(r"^_col_\d+$")
MAX_SQL_CHARS = 16_000  # the ledger entry carries the SQL; an entry holds at most 64 KiB
DIALECT = "duckdb"
_TABLE_ARGS_ALLOWED = {"this", "alias", "db", "catalog"}


class CatalogView(Protocol):
    """What the policy needs from the catalog for one caller."""

    def grant(self, dataset: str, columns: Sequence[str], authorization: str | None) -> Grant:
        """The caller's grant on `dataset` (checking `columns`), or a QueryNotAuthorized."""
        ...

    def dataset(self, name: str) -> DatasetRecord:
        """The dataset's catalog record (all its columns, in scope or not)."""
        ...


@dataclass
class Plan:
    """A query that passed policy: the qualified tree and everything it touches."""

    sql: str
    tree: exp.Expression
    grants: dict[str, Grant]
    records: dict[str, DatasetRecord]
    columns: dict[str, tuple[str, ...]]
    sources: list[tuple[exp.Table, str]] = field(default_factory=list)
    aggregate: bool = False

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(sorted(self.grants))

    @property
    def authorization(self) -> str | None:
        ids = {g.authorization for g in self.grants.values()}
        return ids.pop() if len(ids) == 1 else None

    def access_modes(self) -> dict[str, str]:
        return {name: str(g.access_mode) for name, g in sorted(self.grants.items())}


def refuse(message: str, code: str = "query_refused") -> QueryRefused:
    return QueryRefused(message, code)


# --- 1. one read-only statement -----------------------------------------------------------


def parse_statement(sql: str) -> exp.Expression:
    if not isinstance(sql, str) or not sql.strip():
        raise refuse("the query is empty", "sql_syntax")
    if len(sql) > MAX_SQL_CHARS:
        raise refuse(f"the query is {len(sql):,} characters; the limit is {MAX_SQL_CHARS:,}",
                     "sql_syntax")
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as e:
        first = e.errors[0] if e.errors else {}
        where = f" (line {first.get('line')}, column {first.get('col')})" if first else ""
        raise refuse(f"the SQL could not be parsed{where}: "
                     f"{first.get('description', 'syntax error')}", "sql_syntax") from None
    except SqlglotError as e:
        raise refuse(f"the SQL could not be parsed: {e}", "sql_syntax") from None
    if not statements:
        raise refuse("the query is empty", "sql_syntax")
    if len(statements) > 1:
        raise refuse(f"exactly one statement is allowed; this has {len(statements)}",
                     "multiple_statements")
    tree = statements[0]
    if not isinstance(tree, sqlrules.STATEMENTS):
        raise refuse(
            f"only a read-only SELECT is allowed; this is a {sqlrules.describe_node(tree)} "
            "statement", "not_read_only")
    return tree


# --- 2. allow-listed syntax --------------------------------------------------------------


TABLE_VALUE = tuple(t for t in (getattr(exp, "TableColumn", None),) if t is not None)


def check_syntax(tree: exp.Expression) -> None:
    """Refuse any node or function not on the allow-lists (run before and after qualifying)."""
    for node in tree.walk():
        if TABLE_VALUE and isinstance(node, TABLE_VALUE):
            raise refuse(f"{node.sql(DIALECT)} is a table, not a column: a table or alias "
                         "cannot be selected as a value", "unresolved_column")
        if isinstance(node, exp.Table):
            _check_table(node)
        elif isinstance(node, exp.Func):
            _check_function(node)
        elif type(node) not in sqlrules.ALLOWED_NODES:
            raise refuse(f"{sqlrules.describe_node(node)} is not allowed in a query",
                         "syntax_not_allowed")
        if isinstance(node, exp.Identifier) and str(node.name).lower().startswith(
                sqlrules.RESERVED_PREFIX):
            raise refuse(f"names starting with {sqlrules.RESERVED_PREFIX} are reserved for the "
                         f"gateway: {node.name}", "reserved_name")
        if isinstance(node, exp.With) and node.args.get("recursive"):  # noqa: SIM102
            raise refuse("recursive CTEs (WITH RECURSIVE) are not allowed", "syntax_not_allowed")


def _check_table(node: exp.Table) -> None:
    target = node.this
    if isinstance(target, exp.Func):
        name = sqlrules.function_name(target)
        hint = sqlrules.refusal_hint(name)
        raise refuse(f"table function {name}() is not allowed" + (f": {hint}" if hint else "")
                     + "; query datasets by name", "table_function")
    if not isinstance(target, exp.Identifier):
        raise refuse(f"FROM {node.sql(DIALECT)} is not a dataset name", "table_function")
    if node.args.get("db") or node.args.get("catalog"):
        raise refuse(
            f"qualified name {node.sql(DIALECT)} is not allowed (system catalogs and schemas "
            "are out of reach): name datasets directly", "qualified_name")
    extra = sorted(k for k, v in node.args.items() if v and k not in _TABLE_ARGS_ALLOWED)
    if extra:
        raise refuse(f"table option(s) {', '.join(extra).upper()} on {node.name} are not "
                     "allowed", "syntax_not_allowed")
    if "." in target.name or "/" in target.name or ":" in target.name:
        raise refuse(f"{target.name!r} looks like a file or URL; only datasets can be queried",
                     "table_function")


def _check_function(node: exp.Func) -> None:
    if type(node) in sqlrules.ALL_FUNCTIONS:
        return
    name = sqlrules.function_name(node)
    hint = sqlrules.refusal_hint(name)
    raise refuse(f"function {name}() is not allowed" + (f": {hint}" if hint else ""),
                 "function_not_allowed")


# --- 3. tables -----------------------------------------------------------------------------


def _scopes(tree: exp.Expression) -> list[Scope]:
    try:
        return list(traverse_scope(tree))
    except SqlglotError as e:
        raise refuse(f"the query's structure could not be analysed: {e}", "sql_syntax") from None


def base_tables(tree: exp.Expression) -> list[tuple[exp.Table, str]]:
    """(table node, dataset name) for every reference to a dataset; CTE references excluded.

    Every table node in the tree must be accounted for as one or the other (fail closed).
    """
    found: list[tuple[exp.Table, str]] = []
    accounted: set[int] = set()
    for scope in _scopes(tree):
        for table in scope.tables:
            source = scope.sources.get(table.alias_or_name)
            if source is table:
                found.append((table, str(table.name).lower()))
                accounted.add(id(table))
            elif isinstance(source, Scope):
                accounted.add(id(table))
    for table in tree.find_all(exp.Table):
        if id(table) not in accounted:
            raise refuse(f"table reference {table.sql(DIALECT)} could not be resolved",
                         "unresolved_table")
    return found


# --- 5./6. columns -------------------------------------------------------------------------


def _qualify(tree: exp.Expression, records: dict[str, DatasetRecord]) -> exp.Expression:
    schema = {name: {c.name: c.type for c in rec.columns} for name, rec in records.items()}
    try:
        return qualify(tree, schema=schema, dialect=DIALECT, validate_qualify_columns=True,
                       quote_identifiers=True)
    except SqlglotError as e:
        raise refuse(f"the query could not be resolved against the catalog: {e}",
                     "unresolved_column") from None


def _source_of(scope: Scope, table: str) -> exp.Expression | Scope | None:
    while scope is not None:
        if table in scope.sources:
            return scope.sources[table]
        scope = scope.parent
    return None


def _output_names(node: exp.Expression) -> set[str]:
    while isinstance(node, sqlrules.SET_OPERATIONS):
        node = node.this
    return set(node.named_selects) if isinstance(node, exp.Select) else set()


def touched_columns(tree: exp.Expression) -> dict[str, set[str]]:
    """dataset → the columns the query reads from it (through CTEs and subqueries)."""
    touched: dict[str, set[str]] = defaultdict(set)
    seen: set[int] = set()
    for scope in _scopes(tree):
        for col in scope.columns:
            seen.add(id(col))
            if not col.table:
                continue  # checked below with the other unqualified references
            source = _source_of(scope, col.table)
            if source is None:
                raise refuse(f"column {col.sql(DIALECT)} could not be resolved",
                             "unresolved_column")
            if isinstance(source, exp.Table):
                touched[str(source.name).lower()].add(col.name)
    for col in tree.find_all(exp.Column):
        if isinstance(col.this, exp.Star):
            raise refuse(f"{col.sql(DIALECT)} could not be expanded", "unresolved_column")
        if id(col) in seen and col.table:
            continue
        select = col.find_ancestor(exp.Select, *sqlrules.SET_OPERATIONS)
        ordered = col.find_ancestor(exp.Order) is not None
        if ordered and not col.table and select is not None and col.name in _output_names(
                select):
            continue  # ORDER BY an output column of the query
        raise refuse(f"{col.sql(DIALECT)} is not a column of any dataset in the query (a "
                     "table or alias cannot be selected as a value)", "unresolved_column")
    for star in tree.find_all(exp.Star):
        if not isinstance(star.parent, exp.Count):
            raise refuse("* could not be expanded to dataset columns", "unresolved_column")
    return touched


def _display(node: exp.Expression) -> str:
    """How an unnamed output column is named: its expression without table qualifiers."""
    copy = node.copy()
    for col in list(copy.find_all(exp.Column)):
        col.set("table", None)
    for ident in copy.find_all(exp.Identifier):
        ident.set("quoted", False)
    return copy.sql(dialect=DIALECT, normalize_functions="lower")[:200]


def name_outputs(tree: exp.Expression) -> None:
    """Give unnamed outputs readable names (``count(*)``) instead of sqlglot's ``_col_1``."""
    select = tree
    while isinstance(select, sqlrules.SET_OPERATIONS):
        select = select.this
    if not isinstance(select, exp.Select):
        return
    used = set(select.named_selects)
    renames: dict[str, str] = {}
    for item in select.expressions:
        if isinstance(item, exp.Alias) and AUTO_ALIAS.match(item.alias):
            name, n = _display(item.this), 2
            base = name
            while name in used:
                name, n = f"{base}_{n}", n + 1
            used.add(name)
            renames[item.alias] = name
            item.set("alias", exp.to_identifier(name, quoted=True))
    order = tree.args.get("order")
    if renames and order is not None:
        for col in order.find_all(exp.Column):
            if not col.table and col.name in renames:
                col.set("this", exp.to_identifier(renames[col.name], quoted=True))


def _star_datasets(tree: exp.Expression) -> set[str]:
    """Datasets that a * (or t.*) in the original query may expand over (for messages)."""
    if not any(not isinstance(s.parent, exp.Count) for s in tree.find_all(exp.Star)):
        return set()
    return {str(t.name).lower() for t in tree.find_all(exp.Table)}


# --- the whole check -----------------------------------------------------------------------


def read_statement(sql: str) -> tuple[exp.Expression, tuple[str, ...]]:
    """Steps 1–3, which depend on the SQL text alone: the normalized, allow-listed tree and
    the datasets it reads, in order of first reference."""
    tree = normalize_identifiers(parse_statement(sql), dialect=DIALECT)
    check_syntax(tree)
    return tree, tuple(dict.fromkeys(name for _, name in base_tables(tree)))


def plan_query(sql: str, catalog: CatalogView, authorization: str | None = None) -> Plan:
    tree, names = read_statement(sql)
    grants = {name: catalog.grant(name, (), authorization) for name in names}
    _check_one_authorization(grants)
    records = {name: catalog.dataset(name) for name in names}
    stars = _star_datasets(tree)
    qualified = _qualify(tree, records)
    check_syntax(qualified)
    touched = touched_columns(qualified)
    name_outputs(qualified)
    for name in names:
        _check_columns(catalog, grants[name], sorted(touched.get(name, ())), name in stars)
    plan = Plan(
        sql=sql, tree=qualified, grants=grants, records=records,
        columns={n: tuple(c for c in records[n].column_names if c in touched.get(n, ()))
                 for n in names},
        sources=base_tables(qualified),
        aggregate=any(g.access_mode is AccessMode.AGGREGATE_ONLY for g in grants.values()),
    )
    if plan.aggregate:
        from hub.gateway.aggregation import check_aggregate_query

        check_aggregate_query(plan)
    return plan


def _check_one_authorization(grants: dict[str, Grant]) -> None:
    by_auth: dict[str, list[str]] = defaultdict(list)
    for name, grant in grants.items():
        by_auth[grant.authorization].append(name)
    if len(by_auth) > 1:
        parts = "; ".join(f"{a}: {', '.join(sorted(d))}" for a, d in sorted(by_auth.items()))
        raise refuse(
            f"one query works under one authorization, but these datasets come under several "
            f"({parts}); query them separately or name one authorization", "mixed_authorizations")


def _check_columns(catalog: CatalogView, grant: Grant, columns: list[str], star: bool) -> None:
    allowed = set(grant.column_names)
    if all(c in allowed for c in columns):
        return
    try:
        catalog.grant(grant.dataset, columns, grant.authorization)
    except ColumnsNotAuthorized as e:
        if star:
            e.message = (f"{e.message} (SELECT * expands to every column of {grant.dataset}; "
                         "list the columns you may use instead)")
            e.args = (e.message,)
        raise
    outside = [c for c in columns if c not in allowed]
    raise refuse(f"column(s) {', '.join(outside)} of {grant.dataset} are outside the "
                 f"authorization {grant.authorization}", "columns_not_authorized")
