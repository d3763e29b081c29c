"""What a dataset looks like to a query: its governed projection.

Before a checked query runs, every reference to a dataset is replaced by a subquery over the
domain store's table that projects only:

- the columns in the caller's authorization that the query reads (others do not exist for the
  query at all; the policy already refused references to them);
- each direct identifier as its keyed pseudonym (``pseudonyms.pseudonym_sql``), except when
  every dataset of the query is aggregate-only: the aggregation rule then lets direct
  identifiers be only counted or compared as join keys, never output, so they stay in clear
  inside the engine (the same counts and joins, without hashing every row);
- for aggregate-only datasets, the entity identifier in clear under the reserved name
  ``__shuyu_entity`` (``TRUE`` for a dataset without identifiers), which only the gateway's own
  group-size count reads (analysts cannot name it: identifiers starting with ``__shuyu`` are
  refused by the policy);
- when that count is a bitmap of rows (``aggregation``), the row's number in the dataset's table
  as ``__shuyu_row``: the subquery then reads the table itself (``shuyu_ds_<name>.main.<name>``,
  which the store's view ``main.<name>`` shows unchanged), as a view has no row numbers.

The replacement is textual on purpose: the checked tree is rendered with a reserved placeholder
table name per source, and the placeholder is replaced by the subquery written here in DuckDB
SQL, so no SQL generator sits between this module and the engine. DuckDB prunes projected
columns a query does not use, so unused pseudonyms cost nothing.
"""

from __future__ import annotations

from sqlglot import exp

from hub.catalog.enums import AccessMode, IdentifierClass
from hub.catalog.records import DatasetRecord, Grant
from hub.domain.layout import dataset_table
from hub.gateway.policy import DIALECT, Plan
from hub.gateway.pseudonyms import pseudonym_sql

ENTITY = "__shuyu_entity"
ROW = "__shuyu_row"
PLACEHOLDER = "__shuyu_src_{}"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def entity_column(record: DatasetRecord) -> str | None:
    """The column naming the person or entity a row is about: the first direct identifier."""
    for col in record.columns:
        if col.identifier_class is IdentifierClass.DIRECT_IDENTIFIER:
            return col.name
    return None


def source_sql(grant: Grant, record: DatasetRecord, used: tuple[str, ...],
               pseudonymize: bool, numbered: bool = False) -> tuple[str, bool]:
    """(the subquery's SQL, whether it uses the pseudonym parameters $1/$2)."""
    items, keyed = [], False
    for col in grant.columns:
        if col.name not in used:
            continue
        if pseudonymize and col.identifier_class is IdentifierClass.DIRECT_IDENTIFIER:
            items.append(f"{pseudonym_sql(quote(col.name))} AS {quote(col.name)}")
            keyed = True
        else:
            items.append(quote(col.name))
    entity = entity_column(record)
    if grant.access_mode is AccessMode.AGGREGATE_ONLY:
        # the group-size count's column: the entity, or for a dataset without identifiers a
        # marker that is NULL only where an outer join found none of its rows
        items.append(f"{quote(entity) if entity is not None else 'TRUE'} AS {quote(ENTITY)}")
    if numbered:
        items.append(f"rowid AS {quote(ROW)}")
        table = dataset_table(record.name)
    else:
        table = f"main.{quote(record.name)}"
    if not items:
        items.append(f"NULL AS {quote(ENTITY)}")
    return f"(SELECT {', '.join(items)} FROM {table})", keyed


def pseudonymizes(plan: Plan) -> bool:
    """Whether direct identifiers are replaced by pseudonyms in this query (see module doc)."""
    return not all(g.access_mode is AccessMode.AGGREGATE_ONLY for g in plan.grants.values())


def render(plan: Plan, numbered: frozenset[str] | set[str] = frozenset()) -> tuple[str, bool]:
    """The SQL to execute for `plan` (its tree is changed in place) and whether it needs $1/$2.
    `numbered`: aliases of the sources that must project their row numbers."""
    replacements: dict[str, str] = {}
    keyed = False
    pseudonymize = pseudonymizes(plan)
    for i, (table, dataset) in enumerate(plan.sources):
        name = PLACEHOLDER.format(i)
        sub, uses = source_sql(plan.grants[dataset], plan.records[dataset],
                               plan.columns.get(dataset, ()), pseudonymize,
                               table.alias_or_name in numbered)
        keyed |= uses
        replacements[quote(name)] = sub
        table.replace(exp.Table(this=exp.to_identifier(name, quoted=True),
                                alias=table.args.get("alias")))
    sql = plan.tree.sql(dialect=DIALECT, comments=False)  # the analyst's comments stay out
    for placeholder, sub in replacements.items():
        if sql.count(placeholder) != 1:
            raise RuntimeError(f"source placeholder {placeholder} rendered "
                               f"{sql.count(placeholder)} times")
        sql = sql.replace(placeholder, sub)
    return sql, keyed
