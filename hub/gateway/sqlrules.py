"""The SQL vocabulary the gateway accepts: allow-lists of syntax nodes and functions.

Everything here is an allow-list, so anything new that sqlglot learns to parse is refused until
someone adds it on purpose (fail closed). Terms:

- *node*: a sqlglot expression class (``exp.Select``, ``exp.Add``, …) other than a function;
- *scalar function*: a row-wise function that reads only its arguments (no files, settings,
  environment, catalogs or randomness);
- *value aggregate*: an aggregate allowed over aggregate-only data (the AWS Clean Rooms
  aggregation rule's COUNT, COUNT DISTINCT, SUM, SUM DISTINCT, AVG);
- *row-level aggregate* and *window function*: allowed only when every dataset in the query is
  row-level (MIN, MAX, MEDIAN and window functions return single individuals' values).

``refusal_hint`` explains why well-known dangerous functions are refused, so the analyst reads
"reads files" instead of only "not allowed".
"""

from __future__ import annotations

from sqlglot import exp

# --- syntax --------------------------------------------------------------------------------

STATEMENTS = (exp.Select, exp.Union, exp.Intersect, exp.Except)
SET_OPERATIONS = (exp.Union, exp.Intersect, exp.Except)

ALLOWED_NODES: frozenset[type[exp.Expression]] = frozenset({
    # query structure
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.From, exp.Join, exp.Where,
    exp.Group, exp.Having, exp.Qualify, exp.Order, exp.Ordered, exp.Limit, exp.Offset,
    exp.With, exp.CTE, exp.Subquery, exp.Distinct, exp.Table, exp.TableAlias, exp.Alias,
    exp.Column, exp.Identifier, exp.Star, exp.Window, exp.WindowSpec, exp.Filter,
    exp.Values, exp.Tuple, exp.Exists,
    # values
    exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.DataType, exp.DataTypeParam,
    exp.Interval, exp.Var,
    # operators
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.DPipe,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.And, exp.Or, exp.Not, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Escape,
})

# --- functions -----------------------------------------------------------------------------

VALUE_AGGREGATES: frozenset[type[exp.Func]] = frozenset({exp.Count, exp.Sum, exp.Avg})

ROW_LEVEL_AGGREGATES: frozenset[type[exp.Func]] = frozenset({
    exp.Min, exp.Max, exp.Stddev, exp.StddevSamp, exp.StddevPop, exp.Variance,
    exp.VariancePop, exp.Median, exp.PercentileCont, exp.PercentileDisc, exp.CountIf,
    exp.ApproxDistinct,
})

WINDOW_FUNCTIONS: frozenset[type[exp.Func]] = frozenset({
    exp.RowNumber, exp.Rank, exp.DenseRank, exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue,
    exp.NthValue, exp.Ntile, exp.PercentRank, exp.CumeDist,
})

SCALAR_FUNCTIONS: frozenset[type[exp.Func]] = frozenset({
    # conditionals and casts
    exp.Cast, exp.TryCast, exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least,
    exp.Exists,
    # numbers
    exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Ln, exp.Log, exp.Exp, exp.Pow,
    exp.Sign, exp.Trunc, exp.IsNan,
    # text
    exp.Lower, exp.Upper, exp.Length, exp.Substring, exp.Concat, exp.ConcatWs, exp.Trim,
    exp.Left, exp.Right, exp.Replace, exp.StrPosition, exp.Pad, exp.RegexpLike,
    exp.RegexpExtract, exp.RegexpReplace, exp.StartsWith, exp.Reverse, exp.Initcap,
    exp.Contains, exp.SplitPart,
    # dates and times
    exp.DateTrunc, exp.TimestampTrunc, exp.DatetimeTrunc, exp.Extract, exp.Year, exp.Month,
    exp.Day, exp.DayOfWeek, exp.DayOfMonth, exp.DayOfYear, exp.Quarter, exp.WeekOfYear,
    exp.Week, exp.Hour, exp.Minute, exp.Second, exp.DateDiff, exp.DateAdd, exp.DateSub,
    exp.TimeToStr, exp.StrToTime, exp.StrToDate, exp.Date, exp.TsOrDsToDate, exp.CurrentDate,
    exp.CurrentTimestamp, exp.DateFromParts, exp.Dayname, exp.Monthname,
})

ALL_FUNCTIONS = VALUE_AGGREGATES | ROW_LEVEL_AGGREGATES | WINDOW_FUNCTIONS | SCALAR_FUNCTIONS

# Arithmetic allowed inside and around aggregates over aggregate-only data.
ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.Paren)
# Boolean structure of filters over dimensions (WHERE, JOIN … ON, HAVING).
PREDICATES = (
    exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
    exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike,
    exp.Escape,
)

RESERVED_PREFIX = "__shuyu"

_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("read_", "_scan", "glob", "sniff_csv", "parquet_", "iceberg", "delta_scan"),
     "it reads files or URLs"),
    (("getenv", "current_setting", "getvariable", "setting"),
     "it reads the server's environment or configuration"),
    (("duckdb_", "pragma_", "information_schema", "pg_", "sqlite_", "which_secret"),
     "it reads the system catalog"),
    (("query", "query_table"), "it runs SQL the gateway cannot check"),
    (("current_user", "current_database", "current_schema", "current_catalog", "version",
      "user", "session_user"), "it reveals details of the server"),
    (("random", "uuid", "gen_random", "setseed"), "its results cannot be reproduced"),
    (("list", "array_agg", "string_agg", "group_concat", "histogram", "first", "last",
      "any_value", "arg_max", "arg_min", "max_by", "min_by", "mode"),
     "it returns individual values"),
)


def function_name(node: exp.Func) -> str:
    """The SQL name a function was called by (for messages)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def refusal_hint(name: str) -> str:
    """Why a well-known function is refused, or an empty string."""
    low = name.lower()
    for patterns, why in _HINTS:
        if any(low == p or low.startswith(p) or low.endswith(p) for p in patterns):
            return why
    return ""


def describe_node(node: exp.Expression) -> str:
    """A readable name of a syntax node for refusal messages (``COPY``, ``LATERAL``, …)."""
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, (exp.Placeholder, exp.Parameter)):
        return "a query parameter ($1, ?)"
    return node.key.upper().replace("_", " ")
