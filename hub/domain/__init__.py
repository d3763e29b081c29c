"""The domain store: the raw public data, one DuckDB file per dataset version, server side only.

Raw data never leaves it except as query results the gateway allows (原始数据不出域).

Terms:
- *dataset version*: one load of a dataset from one Parquet file, identified by the file's
  sha256. Its table lives in its own immutable DuckDB file
  ``<domain_dir>/datasets/<name>/<version-id>.duckdb``, written once by the load and never
  changed (``store``, ``build``);
- *manifest*: ``<domain_dir>/manifest.json``, which version of each dataset is current and every
  version ever loaded (provenance for released products: 注明数据来源和获取日期). Loads replace
  it atomically under an exclusive lock, so concurrent loaders serialize and readers never see
  a half-written one (``manifest``, ``layout``);
- *reader*: a hardened, read-only DuckDB connection over the current versions, with each
  dataset under its plain name; it notices a new manifest on its next use and moves to it,
  while queries already running finish on the state they started on (``reader``).

So datasets can be loaded while the gateway, the release checks and the DP lane are reading:
a load writes a new file nobody else has open, and readers never hold the files a load writes.
A store of the earlier single-file layout (``domain.duckdb``) is converted once, automatically
(``migrate``).
"""

from hub.domain.errors import ChecksumMismatch, DatasetExists, DomainError
from hub.domain.manifest import CurrentFile, DatasetVersion, Manifest, read_manifest
from hub.domain.reader import DomainReader, LeasedConnection, Snapshot, open_readonly
from hub.domain.store import Audit, DomainStore, TableInfo, check_dataset_name, read_catalog

__all__ = [
    "Audit", "ChecksumMismatch", "CurrentFile", "DatasetExists", "DatasetVersion", "DomainError",
    "DomainReader", "DomainStore", "LeasedConnection", "Manifest", "Snapshot", "TableInfo",
    "check_dataset_name", "open_readonly", "read_catalog", "read_manifest",
]
