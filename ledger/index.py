"""The subject index: which entries name which operator, analyst, authorization, dataset….

The ledger's entries are self-contained JSON (DESIGN.md "Ledger entry"), so everything a
regulator filters by is in the leaf itself; this index only makes finding it fast. Terms:

- a *subject* of an entry is a (key, value) pair it names: ``operator``, ``analyst``,
  ``authorization``, ``dataset``, ``release``, ``session`` or ``actor``. Besides the top-level
  ids, an entry's subjects include the datasets a query read (``details.datasets``), the analysts
  and datasets an agreement names (``details.analysts``, ``details.scope``), the sources of a
  release (``details.sources``), and the operator of
  its authorization: a query names only its authorization, and the operator is taken from the
  earlier entry of the log that named both (``authorization.created``). Log order makes this
  derivation deterministic: rebuilding the index from the entries gives the same rows.

Tables (created by the indexer, beside the ledger's own tables):

- ``ledger_subjects (key, value, idx)``: primary key in that order, so a filter walks one key
  range backwards from the newest entry;
- ``ledger_subject_operators (auth_id, operator)``: the derivation above;
- ``ledger_subject_state``: one row, the number of entries indexed so far.

Why not in the append transaction: the append path is the ledger's durability-critical hot path
(one sequencer, fsync per batch); an index is derived data that can always be rebuilt from the
verified entries, so it is kept by :class:`SubjectIndex` (run by the ledger service before each
filtered read) in its own short transactions, each covering whole chunks of entries up to the
signed tree size and moving the high-water mark with a compare-and-swap, so concurrent indexers
never double-count. The index is not trusted for what it shows: every entry a page shows is read
from ``ledger_entries``, re-hashed and proven included. It could only hide entries from a
filtered view; :meth:`SubjectIndex.check` re-derives the subjects of a range of entries and
reports any difference, and the unfiltered view never uses the index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    text,
)
from sqlalchemy.exc import IntegrityError

from ledger.sqlreads import entry_data
from ledger.sqlstore import make_engines

SUBJECT_KEYS = ("operator", "analyst", "authorization", "dataset", "release", "session", "actor")
MAX_VALUE = 200
CHUNK = 20_000

metadata = MetaData()
subjects_t = Table(
    "ledger_subjects",
    metadata,
    Column("key", String(16), primary_key=True),
    Column("value", String(MAX_VALUE), primary_key=True),
    Column("idx", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    sqlite_with_rowid=False,
)
operators_t = Table(
    "ledger_subject_operators",
    metadata,
    Column("auth_id", String(MAX_VALUE), primary_key=True),
    Column("operator", String(MAX_VALUE), nullable=False),
)
state_t = Table(
    "ledger_subject_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("upto", BigInteger, nullable=False),
)


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value[:MAX_VALUE]
    return None


def _names(values: Any, key: str | None = None) -> Iterator[str]:
    """Strings of a list, or the `key` field of a list of objects."""
    if not isinstance(values, list):
        return
    for item in values:
        if key is not None and isinstance(item, dict):
            item = item.get(key)
        name = _text(item)
        if name:
            yield name


def subjects_of(entry: dict[str, Any], operators: dict[str, str]) -> set[tuple[str, str]]:
    """The (key, value) subjects an entry names; `operators` maps authorizations to operators
    and is extended with what this entry teaches."""
    out: set[tuple[str, str]] = set()
    for key in ("operator", "authorization", "dataset", "release", "session", "actor"):
        value = _text(entry.get(key))
        if value:
            out.add((key, value))
    details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
    actor = _text(entry.get("actor"))
    if actor and entry.get("role") == "analyst":
        out.add(("analyst", actor))
    for name in _names(details.get("analysts")):
        out.add(("analyst", name))
    if str(entry.get("type", "")).startswith("analyst."):
        name = _text(details.get("user_name"))
        if name:
            out.add(("analyst", name))
    for name in _names(details.get("datasets")):
        out.add(("dataset", name))
    for name in _names(details.get("datasets"), "dataset"):
        out.add(("dataset", name))
    for name in _names(details.get("scope"), "dataset"):
        out.add(("dataset", name))
    for name in _names(details.get("sources"), "dataset"):
        out.add(("dataset", name))
    auth = _text(entry.get("authorization"))
    operator = _text(entry.get("operator")) or _text(details.get("operator"))
    if auth and operator:
        operators.setdefault(auth, operator)
    if auth and not operator:
        operator = operators.get(auth)
    if operator:
        out.add(("operator", operator))
    return out


def subjects_of_bytes(data: bytes, operators: dict[str, str]) -> set[tuple[str, str]]:
    """Subjects of stored leaf bytes; an entry that is not a JSON object names none."""
    try:
        entry = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return set()
    return subjects_of(entry, operators) if isinstance(entry, dict) else set()


@dataclass(frozen=True)
class IndexDifference:
    """An entry whose indexed subjects differ from what its bytes name."""

    index: int
    missing: list[tuple[str, str]]
    extra: list[tuple[str, str]]


class SubjectIndex:
    """Keeps the subject index of one ledger database up to a given tree size."""

    def __init__(self, url: str):
        self.writer, self.reader = make_engines(url)
        self._created = False

    def close(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()

    def create(self) -> None:
        if self._created:
            return
        metadata.create_all(self.writer)
        with self.writer.begin() as conn:
            if conn.execute(text("SELECT upto FROM ledger_subject_state")).first() is None:
                try:
                    conn.execute(state_t.insert().values(id=1, upto=0))
                except IntegrityError:
                    pass  # another indexer made it first (PostgreSQL: the statement failed)
        self._created = True

    def indexed(self) -> int:
        self.create()
        with self.reader.connect() as conn:
            return int(conn.execute(text("SELECT upto FROM ledger_subject_state")).scalar() or 0)

    def catch_up(self, size: int, progress=None) -> int:  # type: ignore[no-untyped-def]
        """Index every entry below `size` not indexed yet; return how many were added."""
        self.create()
        added = 0
        while True:
            done = self.indexed()
            if done >= size:
                return added
            end = min(size, done + CHUNK)
            if self._index_chunk(done, end):
                added += end - done
            if progress:
                progress(min(end, size), size)

    def _operators(self, conn) -> dict[str, str]:  # type: ignore[no-untyped-def]
        rows = conn.execute(text("SELECT auth_id, operator FROM ledger_subject_operators"))
        return {a: o for a, o in rows}

    def _index_chunk(self, start: int, end: int) -> bool:
        """Index entries [start, end) in one transaction; False if another indexer did."""
        rows = entry_data(self.reader, start, end)
        try:
            with self.writer.begin() as conn:
                operators = self._operators(conn)
                known = dict(operators)
                subject_rows = [(key, value, idx) for idx, data in rows
                                for key, value in subjects_of_bytes(data, operators)]
                moved = conn.execute(
                    text("UPDATE ledger_subject_state SET upto = :new WHERE id = 1 AND upto = :old"),
                    {"new": end, "old": start},
                )
                if moved.rowcount != 1:
                    raise _Raced()
                if subject_rows:  # plain SQL: several rows per entry, the bulk of the work
                    ph = "?" if conn.dialect.paramstyle == "qmark" else "%s"
                    conn.exec_driver_sql(
                        f"INSERT INTO ledger_subjects (key, value, idx) VALUES ({ph}, {ph}, {ph})",
                        subject_rows)
                new_ops = [{"auth_id": a, "operator": o}
                           for a, o in operators.items() if a not in known]
                if new_ops:
                    conn.execute(operators_t.insert(), new_ops)
        except (_Raced, IntegrityError):
            return False
        return True

    def rebuild(self) -> None:
        """Drop the index and its derivations; the next catch-up starts from entry 0."""
        self.create()
        with self.writer.begin() as conn:
            conn.execute(subjects_t.delete())
            conn.execute(operators_t.delete())
            conn.execute(text("UPDATE ledger_subject_state SET upto = 0 WHERE id = 1"))

    def check(self, start: int, end: int) -> list[IndexDifference]:
        """Re-derive the subjects of entries [start, end) and compare them with the index.

        The derivation of operators needs the log from its beginning, so the entries before
        `start` are read (without comparison) to rebuild it.
        """
        operators: dict[str, str] = {}
        for lo in range(0, start, CHUNK):
            for _, data in entry_data(self.reader, lo, min(start, lo + CHUNK)):
                subjects_of_bytes(data, operators)
        out = []
        for lo in range(start, end, CHUNK):
            hi = min(end, lo + CHUNK)
            stored: dict[int, set[tuple[str, str]]] = {}
            with self.reader.connect() as conn:
                for key, value, idx in conn.execute(
                    text("SELECT key, value, idx FROM ledger_subjects WHERE idx >= :a AND idx < :b"),
                    {"a": lo, "b": hi},
                ):
                    stored.setdefault(int(idx), set()).add((key, value))
            for idx, data in entry_data(self.reader, lo, hi):
                want = subjects_of_bytes(data, operators)
                have = stored.get(idx, set())
                if want != have:
                    out.append(IndexDifference(idx, sorted(want - have), sorted(have - want)))
        return out


class _Raced(Exception):
    """Another indexer moved the high-water mark first."""


# --- finding entries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """What a regulator filters the ledger by; every field optional, all must match.

    `type` is an entry type (``query``) or a family (``release.*``: ``release`` and every
    ``release.…`` type); `since`/`until` are UTC times in the entries' own format, compared as
    text (``at >= since`` and ``at < until``).
    """

    operator: str | None = None
    analyst: str | None = None
    authorization: str | None = None
    dataset: str | None = None
    type: str | None = None
    since: str | None = None
    until: str | None = None

    def subjects(self) -> list[tuple[str, str]]:
        return [(k, getattr(self, k)) for k in ("operator", "analyst", "authorization", "dataset")
                if getattr(self, k)]

    def is_empty(self) -> bool:
        return not (self.subjects() or self.type or self.since or self.until)


def _conditions(flt: EventFilter, params: dict[str, Any], alias: str = "e") -> list[str]:
    cond = []
    if flt.type:
        if flt.type.endswith(".*"):
            params["family"] = flt.type[:-2]
            params["family_like"] = flt.type[:-2] + ".%"
            cond.append(f"({alias}.type = :family OR {alias}.type LIKE :family_like)")
        else:
            params["type"] = flt.type
            cond.append(f"{alias}.type = :type")
    if flt.since:
        params["since"] = flt.since
        cond.append(f"{alias}.at >= :since")
    if flt.until:
        params["until"] = flt.until
        cond.append(f"{alias}.at < :until")
    return cond


def find_entries(engine: Engine, flt: EventFilter, size: int, before: int | None,
                 limit: int) -> list[int]:
    """Indexes of the entries below min(size, before) that match, newest first, at most `limit`.

    With a subject in the filter, the walk starts from that subject's key range of the index;
    otherwise from the entries' primary key. The caller must have caught the index up to `size`.
    """
    hi = size if before is None else min(size, before)
    params: dict[str, Any] = {"hi": hi, "limit": limit}
    subjects = flt.subjects()
    if subjects:
        (k0, v0), rest = subjects[0], subjects[1:]
        params.update({"k0": k0, "v0": v0})
        where = ["s0.key = :k0", "s0.value = :v0", "s0.idx < :hi"]
        for n, (k, v) in enumerate(rest, 1):
            params[f"k{n}"], params[f"v{n}"] = k, v
            where.append(
                f"EXISTS (SELECT 1 FROM ledger_subjects s{n} WHERE s{n}.key = :k{n} "
                f"AND s{n}.value = :v{n} AND s{n}.idx = s0.idx)"
            )
        extra = _conditions(flt, params)
        join = " JOIN ledger_entries e ON e.idx = s0.idx" if extra else ""
        sql = (f"SELECT s0.idx FROM ledger_subjects s0{join} WHERE "
               + " AND ".join(where + extra) + " ORDER BY s0.idx DESC LIMIT :limit")
    else:
        where = ["e.idx < :hi", *_conditions(flt, params)]
        sql = ("SELECT e.idx FROM ledger_entries e WHERE " + " AND ".join(where)
               + " ORDER BY e.idx DESC LIMIT :limit")
    with engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(text(sql), params)]


def iter_matching(engine: Engine, flt: EventFilter, size: int,
                  chunk: int = 1000) -> Iterable[int]:
    """Every matching index below `size`, newest first (for exports)."""
    before = None
    while True:
        page = find_entries(engine, flt, size, before, chunk)
        yield from page
        if len(page) < chunk:
            return
        before = page[-1]


def subject_values(engine: Engine, key: str, limit: int = 500) -> list[str]:
    """Distinct values of one subject key, for the filter form's suggestions."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT DISTINCT value FROM ledger_subjects WHERE key = :k ORDER BY value "
                 "LIMIT :n"),
            {"k": key, "n": limit},
        )
        return [r[0] for r in rows]


def entry_types(engine: Engine) -> list[str]:
    """The distinct entry types in the log (one index scan)."""
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT DISTINCT type FROM ledger_entries "
                                                "ORDER BY type"))]


__all__ = ["SubjectIndex", "EventFilter", "find_entries", "iter_matching", "subjects_of",
           "subject_values", "entry_types"]
