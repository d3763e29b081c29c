"""Fixtures of the check tests: the real synthetic data domain and a factory of check contexts.

The domain is the gateway tests' session ``world`` (``tests/gateway/world.py``): synthetic
Kunming data from ``shuyu data generate``'s generator (3,000 residents, seed 7) loaded into the
DuckDB domain store with a real ledger. Source datasets and their column classes come from the
generator's ``catalog.json``; ``raw(name)`` reads a dataset's Parquet file for building
submissions, and checks look the raw data up through the hardened read-only connection.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from hub.domain import open_readonly
from release_review.checks.base import (
    Artifact, AuthoredQuery, CheckContext, ColumnInfo, SourceDataset, Thresholds,
)

MEDIA = {".csv": "text/csv", ".parquet": "application/vnd.apache.parquet", ".png": "image/png",
         ".json": "application/json", ".txt": "text/plain", ".md": "text/markdown",
         ".html": "text/html"}


def sources_from_catalog(path: Path) -> list[SourceDataset]:
    out = []
    for d in json.loads(path.read_text(encoding="utf-8"))["datasets"]:
        cols = tuple(ColumnInfo(c["name"], c["type"], c["identifier_class"],
                                c["group_by_allowed"], c.get("label", "")) for c in d["columns"])
        out.append(SourceDataset(d["name"], d["grade"], cols, tuple(c.name for c in cols)))
    return out


def artifact_of(path: Path, released: bool = True, media_type: str | None = None) -> Artifact:
    data = path.read_bytes()
    return Artifact(path.name, media_type or MEDIA.get(path.suffix.lower(), "application/octet-stream"),
                    path, hashlib.sha256(data).hexdigest(), len(data), released)


@dataclass
class Submission:
    """Builds the files of one release request and its check context."""

    world: Any
    dir: Path

    def raw(self, dataset: str) -> pa.Table:
        return pq.read_table(self.world.source / f"{dataset}.parquet")

    def sql(self, query: str) -> pa.Table:
        con = open_readonly(self.world.settings.domain_dir)
        try:
            return con.sql(query).to_arrow_table()
        finally:
            con.close()

    def csv(self, name: str, table: pa.Table) -> Path:
        path = self.dir / name
        pacsv.write_csv(table, path)
        return path

    def parquet(self, name: str, table: pa.Table) -> Path:
        path = self.dir / name
        pq.write_table(table, path)
        return path

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.dir / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    def context(self, *paths: Path, queries: list[str] = (), prior: list[dict] = (),
                thresholds: Thresholds | None = None, supporting: tuple[str, ...] = (),
                **kw: Any) -> CheckContext:
        artifacts = [artifact_of(p, released=p.name not in supporting) for p in paths]
        settings = self.world.settings
        return CheckContext(
            artifacts=artifacts, author="alice", authorization_id="auth-row",
            sources=sources_from_catalog(self.world.source / "catalog.json"),
            queries=[AuthoredQuery(100 + i, q, (), (), "2026-01-05T10:00:00.000Z")
                     for i, q in enumerate(queries)],
            domain=lambda: open_readonly(settings.domain_dir),
            prior_releases=list(prior), thresholds=thresholds or Thresholds(),
            derived_dir=self.dir / "derived", **kw)


@pytest.fixture
def sub(world, tmp_path: Path) -> Submission:
    return Submission(world, tmp_path)


def only(results, check: str | None = None, artifact: str | None = None):
    """The one result of `check` for `artifact` (fails the test if there is not exactly one)."""
    got = [r for r in results if (check is None or r.check == check)
           and (artifact is None or r.artifact == artifact)]
    assert len(got) == 1, got
    return got[0]
