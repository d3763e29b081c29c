"""Catalog reads remembered until the database changes (SQLite only).

The gateway checks the caller's authorization on every query. The check itself (status, term,
suspension, scope, columns) always runs, against the time of the query; what this module saves
is reading the same rows again when nothing was written since. ``PRAGMA data_version``, asked
on a connection of the cache's own that never writes, changes whenever any other connection,
in any process, commits to the database file; every remembered answer is dropped then. A
suspension from the regulator's service is therefore seen by the very next query, as before.

An answer is kept only if no commit happened between the version check that preceded its read
and the moment it is stored, so a read that may predate a commit never outlives that commit.
PostgreSQL has no such counter: there ``changes_for`` returns None and every read goes to the
database.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

from sqlalchemy.engine import make_url

V = TypeVar("V")


class DataVersion:
    """``PRAGMA data_version`` of one SQLite database, on a read-only connection of its own."""

    def __init__(self, path: str):
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA query_only=ON")
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def changes_for(url: str) -> DataVersion | None:
    """A change counter for the database at `url`: SQLite files only, else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return DataVersion(parsed.database)


class UntilChanged(Generic[V]):
    """Answers of `read(key)` remembered (at most `entries`, least recently used first out)
    while `version()` stays the same."""

    def __init__(self, read: Callable[..., V], version: Callable[[], int], entries: int = 4096):
        self._read = read
        self._version = version
        self._entries = entries
        self._lock = threading.Lock()
        self._seen: int | None = None
        self._answers: OrderedDict[Hashable, V] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, *key: Hashable) -> V:
        version = self._version()
        with self._lock:
            if version != self._seen:
                self._answers.clear()
                self._seen = version
            elif key in self._answers:
                self._answers.move_to_end(key)
                self.hits += 1
                return self._answers[key]
            self.misses += 1
        value = self._read(*key)
        with self._lock:
            if self._seen == version and self._version() == version:
                self._answers[key] = value
                if len(self._answers) > self._entries:
                    self._answers.popitem(last=False)
        return value
