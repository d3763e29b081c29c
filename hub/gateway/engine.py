"""Running checked queries in DuckDB over the domain store, within limits.

The engine reads through one ``hub.domain.DomainReader``: a hardened read-only connection (no
external access, no extension loading, configuration locked, memory and thread limits) over the
store's current state, which it renews when a load changes the store. Each query leases the
current snapshot and gets a cursor of its own on it, so queries run concurrently, and a query
that started before a load finishes on the state it started on. Cursors are kept with their
snapshot after use (``Session``), each with the statements it has bound: DuckDB parses and binds
a statement's text in Python and C++ on every ``sql()`` call (0.3-0.7 ms for a rewritten query),
while a bound relation runs again as it is, on the same immutable state. Only the gateway's
rendered SELECTs (and its own fact queries) run on these cursors, and a cursor that failed or
was interrupted is closed, never reused. Facts the aggregation rule relies on
(``entity_unique``) are kept per state (``Snapshot.facts``), so a load never leaves a stale one
behind; ``snapshot()`` lets a caller run its preparation and its query on one state. Limits:

- time: a watchdog thread interrupts a query still running after ``timeout`` seconds
  (``QueryTimeout``);
- rows: results are read batch by batch and cut after ``max_rows`` rows (the result says so);
- bytes: a result larger than ``max_bytes`` is refused (``ResultTooLarge``).

Each batch passes through ``transform`` as it arrives (the aggregation rule's suppression), so
counting and limits apply to what the analyst would receive.

Engine errors are reported without echoing the SQL the engine ran (the governed rewrite stays
server-side). For aggregate queries, errors raised while computing on values (conversion,
overflow) are reported by class only: their text can quote a single person's value.
"""

from __future__ import annotations

import heapq
import itertools
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import duckdb
import pyarrow as pa

from hub.domain import DomainError, DomainReader, Snapshot
from hub.domain.layout import dataset_table
from hub.gateway.exceptions import (
    DomainUnavailable,
    QueryFailed,
    QueryTimeout,
    ResultTooLarge,
)
from hub.gateway.sources import quote

BATCH_ROWS = 65_536
IDLE_SESSIONS = 8  # cursors kept per snapshot between queries
SESSION_STATEMENTS = 64  # bound statements kept per cursor (least recently used go first)
Transform = Callable[[pa.RecordBatch], tuple[pa.RecordBatch, int]]
_DATA_ERRORS = ("Conversion Error", "Out of Range Error", "Invalid Input Error",
                "Mathematical Operation Error")


@dataclass
class Execution:
    """What a query produced, after the transform and the row limit."""

    table: pa.Table
    removed: int
    truncated: bool


def _identity(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int]:
    return batch, 0


class Session:
    """A cursor of one snapshot and the statements it has bound, by SQL text. Used by one query
    at a time; parked on the snapshot in between (``Snapshot.park``)."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection):
        self.cursor = cursor
        self._bound: OrderedDict[str, duckdb.DuckDBPyRelation] = OrderedDict()

    def relation(self, sql: str, params: list | None) -> duckdb.DuckDBPyRelation:
        """`sql` as a relation on this cursor: bound once per text (statements with parameters
        are bound afresh each time)."""
        if params:
            return self._checked(self.cursor.sql(sql, params=params))
        found = self._bound.get(sql)
        if found is not None:
            self._bound.move_to_end(sql)
            return found
        found = self._bound[sql] = self._checked(self.cursor.sql(sql))
        if len(self._bound) > SESSION_STATEMENTS:
            self._bound.popitem(last=False)
        return found

    @staticmethod
    def _checked(relation: duckdb.DuckDBPyRelation | None) -> duckdb.DuckDBPyRelation:
        if relation is None:
            raise QueryFailed("the statement returned no rows")
        return relation

    def close(self) -> None:
        self._bound.clear()
        self.cursor.close()


class Watchdog:
    """One thread that calls each registered callback when its deadline passes, unless it was
    cancelled first (a thread per query would cost a thread start per query). A callback runs
    under the watchdog's lock, so once ``cancel`` returns, the callback is not running and will
    not run."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int]] = []
        self._pending: dict[int, Callable[[], None]] = {}
        self._wake = threading.Condition()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float, callback: Callable[[], None]) -> int:
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="query-watchdog",
                                                daemon=True)
                self._thread.start()
            ticket = next(self._ids)
            self._pending[ticket] = callback
            heapq.heappush(self._due, (time.monotonic() + seconds, ticket))
            if self._due[0][1] == ticket:  # else the thread wakes earlier anyway
                self._wake.notify()
            return ticket

    def cancel(self, ticket: int) -> None:
        with self._wake:
            self._pending.pop(ticket, None)

    def close(self) -> None:
        """Stop the thread (a later ``watch`` starts a new one)."""
        with self._wake:
            thread, self._thread = self._thread, None
            self._wake.notify_all()
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        with self._wake:
            while self._thread is threading.current_thread():
                while self._due and self._due[0][1] not in self._pending:
                    heapq.heappop(self._due)
                if not self._due:
                    self._wake.wait()
                    continue
                wait = self._due[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                callback = self._pending.pop(heapq.heappop(self._due)[1])
                try:
                    callback()
                except Exception:  # noqa: BLE001 - a failed interrupt must not stop the watchdog
                    pass


class Engine:
    def __init__(
        self,
        domain_dir: Path,
        *,
        memory_limit: str = "2GB",
        threads: int = 2,
        timeout: float = 120.0,
    ):
        self.domain_dir = Path(domain_dir)
        self.memory_limit = memory_limit
        self.threads = threads
        self.timeout = timeout
        self.reader = DomainReader(self.domain_dir, memory_limit=memory_limit, threads=threads)
        self._watchdog = Watchdog()

    def acquire(self) -> Snapshot:
        """Lease the store's current state (``DomainUnavailable`` if there is none); every
        ``acquire`` needs one ``release``."""
        try:
            return self.reader.acquire()
        except DomainError as e:
            raise DomainUnavailable(str(e)) from None

    def release(self, snapshot: Snapshot) -> None:
        self.reader.release(snapshot)

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """Lease the store's current state for the block."""
        snap = self.acquire()
        try:
            yield snap
        finally:
            self.release(snap)

    def close(self) -> None:
        self._watchdog.close()
        self.reader.close()

    # --- facts the aggregation rule relies on --------------------------------------------

    def entity_unique(self, dataset: str, column: str, snapshot: Snapshot | None = None) -> bool:
        """Whether `column` of `dataset` is non-null and unique in `snapshot` (the current
        state if None); computed once per state."""
        if snapshot is None:
            with self.snapshot() as snap:
                return self.entity_unique(dataset, column, snap)
        sql = (f"SELECT count(*) = count({quote(column)}) AND count(*) = "
               f"count(DISTINCT {quote(column)}) FROM main.{quote(dataset)}")
        return bool(self.fact(snapshot, ("entity_unique", dataset, column), sql))

    def sizes(self, snapshot: Snapshot) -> "SnapshotSizes":
        """Row-number bounds and distinct counts of `snapshot`'s data (``aggregation.Sizes``)."""
        return SnapshotSizes(self, snapshot)

    def fact(self, snapshot: Snapshot, key: tuple, sql: str) -> int:
        """The one number `sql` gives on `snapshot`, read once per state under `key`."""
        if key not in snapshot.facts:
            result = self.execute(sql, None, max_rows=1, max_bytes=1 << 20, snapshot=snapshot)
            snapshot.facts[key] = int(result.table.column(0)[0].as_py() or 0)
        return snapshot.facts[key]

    # --- running ----------------------------------------------------------------------------

    def execute(
        self,
        sql: str,
        params: list | None,
        *,
        max_rows: int,
        max_bytes: int,
        transform: Transform = _identity,
        aggregate: bool = False,
        snapshot: Snapshot | None = None,
    ) -> Execution:
        """Run `sql` on `snapshot` (leasing the current state for the query if None)."""
        if snapshot is None:
            with self.snapshot() as snap:
                return self.execute(sql, params, max_rows=max_rows, max_bytes=max_bytes,
                                    transform=transform, aggregate=aggregate, snapshot=snap)
        session = snapshot.unpark() or Session(snapshot.cursor())
        fired = threading.Event()
        finished = False

        def interrupt() -> None:
            fired.set()
            session.cursor.interrupt()

        timer = self._watchdog.watch(self.timeout, interrupt)
        try:
            reader = session.relation(sql, params).to_arrow_reader(BATCH_ROWS)
            try:
                result = self._collect(reader, max_rows, max_bytes, transform)
            finally:
                reader.close()  # a result cut at the row limit ends here, not at the next query
            finished = True
            return result
        except duckdb.InterruptException:
            raise QueryTimeout(
                f"the query ran longer than {self.timeout:g} s and was stopped; narrow it with "
                "WHERE or aggregate more") from None
        except duckdb.Error as e:
            if fired.is_set():
                raise QueryTimeout(f"the query ran longer than {self.timeout:g} s and was "
                                   "stopped") from None
            raise QueryFailed(engine_message(e, aggregate)) from None
        finally:
            self._watchdog.cancel(timer)
            # reused only after a clean run (an interrupt may still be pending on a cursor whose
            # deadline passed as the query ended)
            if not (finished and not fired.is_set() and snapshot.park(session, IDLE_SESSIONS)):
                session.close()

    @staticmethod
    def _collect(reader: pa.RecordBatchReader, max_rows: int, max_bytes: int,
                 transform: Transform) -> Execution:
        batches: list[pa.RecordBatch] = []
        rows = size = removed = 0
        truncated = False
        schema = None
        for batch in reader:
            batch, gone = transform(batch)
            removed += gone
            schema = batch.schema
            if rows + batch.num_rows > max_rows:
                batch = batch.slice(0, max_rows - rows)
                truncated = True
            rows += batch.num_rows
            size += batch.nbytes
            if size > max_bytes:
                raise ResultTooLarge(
                    f"the result is larger than {max_bytes:,} bytes; select fewer columns or "
                    "rows, or aggregate")
            if batch.num_rows:
                batches.append(batch)
            if truncated:
                break
        if schema is None:  # no batches at all: the schema of an empty result
            schema = transform(pa.RecordBatch.from_pylist([], schema=reader.schema))[0].schema
        return Execution(pa.Table.from_batches(batches, schema=schema), removed, truncated)


def engine_message(error: duckdb.Error, aggregate: bool) -> str:
    """The engine's error for the analyst, without the SQL it ran (and without values)."""
    text = str(error).strip()
    kind = text.split(":", 1)[0] if ":" in text else type(error).__name__
    if aggregate and any(text.startswith(k) for k in _DATA_ERRORS):
        return (f"the query failed while computing on the data ({kind}); details are withheld "
                "for aggregate-only data: check casts and arithmetic")
    first = text.splitlines()[0] if text else type(error).__name__
    first = re.sub(r"__shuyu_\w+", "<internal>", first)
    return f"the engine could not run the query: {first[:500]}"


class SnapshotSizes:
    """``aggregation.Sizes`` for one snapshot, each fact read from the data once per state."""

    def __init__(self, engine: Engine, snapshot: Snapshot):
        self.engine, self.snapshot = engine, snapshot
        self.threads = engine.threads

    def rows(self, dataset: str) -> int:
        return self.engine.fact(self.snapshot, ("row_bound", dataset),
                                f"SELECT coalesce(max(rowid) + 1, 0) FROM {dataset_table(dataset)}")

    def distinct(self, dataset: str, column: str) -> int:
        sql = f"SELECT count(DISTINCT {quote(column)}) FROM main.{quote(dataset)}"
        return self.engine.fact(self.snapshot, ("distinct", dataset, column), sql)

    def most_per_value(self, dataset: str, column: str) -> int:
        sql = (f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM main.{quote(dataset)}"
               f" WHERE {quote(column)} IS NOT NULL GROUP BY {quote(column)})")
        return self.engine.fact(self.snapshot, ("most_per_value", dataset, column), sql)
