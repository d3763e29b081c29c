"""The subject index, the explorer's queries and the activity aggregates on real PostgreSQL."""

from __future__ import annotations

import pytest

from ledger.console import activity as act
from ledger.console.disclosure import authorization_states
from ledger.index import EventFilter, SubjectIndex, find_entries
from ledger.log import Log, init_log
from tests.ledger.logfactory import config

pytestmark = pytest.mark.postgres


def test_index_queries_and_aggregates_on_postgres(tmp_path, pg_url) -> None:
    cfg = config(tmp_path, url=pg_url)
    init_log(cfg)
    log = Log.open(cfg)
    try:
        log.append({"type": "authorization.created", "actor": "zhang.wei", "role": "authority",
                    "operator": "云数科技", "authorization": "auth-1",
                    "details": {"analysts": ["alice"], "starts_at": "2026-01-01T00:00:00Z",
                                "ends_at": "2027-01-01T00:00:00Z",
                                "scope": [{"dataset": "residents", "columns": ["district"]}]},
                    "at": "2026-03-01T08:00:00.000Z"})
        log.append_many([{"type": "query", "actor": "alice", "role": "analyst",
                          "authorization": "auth-1", "details": {"datasets": ["residents"]},
                          "at": f"2026-03-0{1 + i % 2}T09:00:00.000Z"} for i in range(5)])
        size = log.store.head().size
    finally:
        log.close()
    index = SubjectIndex(pg_url)
    try:
        assert index.catch_up(size) == size and index.catch_up(size) == 0
        by_operator = find_entries(index.reader, EventFilter(operator="云数科技", type="query"),
                                   size, None, 100)
        assert by_operator == [5, 4, 3, 2, 1]
        assert find_entries(index.reader, EventFilter(dataset="residents", analyst="alice"),
                            size, 3, 100) == [2, 1, 0]
        period, errors = act.parse_period("2026-03-01", "2026-03-02", act.date(2026, 3, 9))
        assert not errors
        daily = act.per_day_per_operator(index.reader, "query", period, size)
        assert daily.series == {"云数科技": [3, 2]}
        assert [a.authorization for a in authorization_states(index.reader, size)] == ["auth-1"]
        assert index.check(0, size) == []
    finally:
        index.close()
